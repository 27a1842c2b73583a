"""Device model statistics match their parameters within sampling error; seeded; switchable."""

import math

import numpy as np
import pytest
import torch

from neurodeploy.errors import InputError
from neurodeploy.targets.rram import device as dev
from neurodeploy.targets.rram.device import DeviceConfig

N = 200_000
BASE = DeviceConfig().ideal()


def gen(seed=0):
    return dev.make_generator(seed)


def test_from_profile_reads_rram_40nm():
    from neurodeploy.hardware import load_profile

    p = load_profile("rram_40nm")
    c = DeviceConfig.from_profile()
    assert c.g_max == pytest.approx(p.si("g_max")) and c.g_min == pytest.approx(p.si("g_min"))
    assert c.levels == int(p["levels"].value) and c.adc_bits == int(p["adc_bits"].value)
    assert c.programming_noise == pytest.approx(p.si("programming_noise_sigma"))
    assert c.read_noise == pytest.approx(p.si("read_noise_sigma"))
    assert c.stuck_on == pytest.approx(p.si("stuck_on_fraction"))
    assert c.d2d == pytest.approx(p.si("d2d_variation"))
    assert c.array_rows == int(p["array_rows"].value)
    assert DeviceConfig.from_profile(levels=16).levels == 16


def test_ideal_switches_everything_off():
    c = DeviceConfig.from_profile()
    i = c.ideal()
    assert not c.is_ideal and i.is_ideal
    assert i.levels is None and i.programming_noise == 0 and i.read_noise == 0 and i.stuck_on == 0
    assert i.stuck_off == 0 and i.d2d == 0 and i.adc_bits is None and i.dac_bits is None and not i.drifts
    assert (i.g_min, i.g_max, i.array_rows) == (c.g_min, c.g_max, c.array_rows)


@pytest.mark.parametrize("kw", [dict(levels=1), dict(stuck_on=0.7, stuck_off=0.5), dict(read_noise=-1),
                                dict(g_min=1e-5, g_max=1e-6), dict(adc_bits=0), dict(adc_range="big")])
def test_config_validation(kw):
    with pytest.raises(InputError, match="DeviceConfig"):
        DeviceConfig(**kw)
    with pytest.raises(InputError, match="unknown"):
        BASE.replace(nonsense=1)


def test_weights_map_to_conductances_exactly():
    w = torch.tensor(np.random.default_rng(0).normal(0, 0.3, (50, 40)), dtype=torch.float32)
    s = dev.weight_scale(float(w.abs().max()), BASE)
    assert math.log2(s) == int(math.log2(s))  # a power of two
    p, n = dev.weights_to_targets(w, s, BASE)
    assert float(torch.maximum(p, n).max()) <= BASE.window
    assert torch.equal(((p - n) * s).float(), w)
    assert not bool(((p > 0) & (n > 0)).any())  # one device of the pair carries the weight


def test_levels_quantize_to_evenly_spaced_states():
    c = BASE.replace(levels=5)
    t = torch.rand(10_000, generator=gen(), dtype=torch.float64) * c.window
    q = dev.quantize(t, c)
    vals = torch.unique(q)
    assert len(vals) == 5
    torch.testing.assert_close(vals, torch.linspace(0, c.window, 5, dtype=torch.float64))
    assert float((q - t).abs().max()) <= c.window / 8 + 1e-18


@pytest.mark.parametrize("u", [0.5, 0.25])
@pytest.mark.parametrize("state_dependent", [True, False])
def test_programming_noise_sigma(u, state_dependent):
    c = BASE.replace(programming_noise=0.05, programming_noise_state_dependent=state_dependent)
    t = torch.full((N,), u * c.window, dtype=torch.float64)
    dg, _ = dev.program(t, c, gen(1))
    e = dev.PROGRAMMING_NOISE_EDGE_RATIO
    shape = (e + (1 - e) * 4 * u * (1 - u)) / (e + (1 - e) * 2 / 3) if state_dependent else 1.0
    expect = 0.05 * c.window * shape
    sd = float(dg.std())
    # std of a sample std ≈ σ/sqrt(2N); 5 of them
    assert abs(sd - expect) < 5 * expect / math.sqrt(2 * N)
    assert abs(float(dg.mean()) - u * c.window) < 5 * expect / math.sqrt(N)


def test_state_dependent_shape_averages_to_one():
    u = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    assert float(dev.noise_shape(u * BASE.window, BASE).mean()) == pytest.approx(1.0, abs=1e-4)
    edge, mid = dev.noise_shape(torch.tensor([0.0, BASE.window / 2], dtype=torch.float64), BASE)
    assert float(edge / mid) == pytest.approx(dev.PROGRAMMING_NOISE_EDGE_RATIO)


def test_stuck_fault_fractions():
    c = BASE.replace(stuck_on=0.05, stuck_off=0.03)
    t = torch.full((N,), 0.5 * c.window, dtype=torch.float64)
    dg, d = dev.program(t, c, gen(2))
    for frac, mask, val in ((0.05, d.stuck_on, c.window), (0.03, d.stuck_off, 0.0)):
        f = float(mask.double().mean())
        assert abs(f - frac) < 5 * math.sqrt(frac * (1 - frac) / N)
        assert bool((dg[mask] == val).all())
    assert not bool((d.stuck_on & d.stuck_off).any())
    assert bool((dg[~(d.stuck_on | d.stuck_off)] == 0.5 * c.window).all())


def test_d2d_upper_bound_spread_and_clipping():
    c = BASE.replace(d2d=0.3)
    d = dev.DeviceArray.sample((N,), c, gen(3))
    rel = d.gmax / c.window
    assert abs(float(rel.std()) - 0.3) < 5 * 0.3 / math.sqrt(2 * N)
    assert abs(float(rel.mean()) - 1.0) < 5 * 0.3 / math.sqrt(N)
    dg, _ = dev.program(torch.full((N,), c.window, dtype=torch.float64), c, gen(3), d)
    assert bool((dg <= d.gmax).all())
    assert float((dg < c.window).double().mean()) == pytest.approx(0.5, abs=0.01)  # half the devices cap lower


def test_drift_exponent_statistics():
    c = BASE.replace(drift_nu_mean=0.05, drift_nu_std=0.02, read_time=3600.0, drift_t0=1.0)
    assert c.drifts
    g0 = torch.full((N,), 0.6 * c.window, dtype=torch.float64)
    d = dev.DeviceArray.sample((N,), c, gen(4))
    gt = dev.drift(g0, d, c)
    nu_hat = -torch.log((gt + c.g_min) / (g0 + c.g_min)) / math.log(3600.0)
    assert abs(float(nu_hat.mean()) - 0.05) < 5 * 0.02 / math.sqrt(N)
    assert abs(float(nu_hat.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * N)
    # the power law itself, per device
    torch.testing.assert_close(gt, g0 * 3600.0 ** (-d.nu))
    assert torch.equal(dev.drift(g0, d, c, t=1.0), g0)  # no drift at t0


def test_breakdown_generator_density_and_spread():
    c = BASE
    v = dev.forming_voltage(0.1)
    assert dev.breakdown_probability(v) == pytest.approx(0.1)
    assert dev.breakdown_probability(2.0) < dev.breakdown_probability(2.5) < dev.breakdown_probability(3.0)
    g = dev.formed_conductances((N,), v, c, gen(5))
    # a formed cell is N(0.5, 0.25)·W clipped to [0, W]: it reads 0 with P(n < -2)
    p_pos = 0.1 * (1 - 0.5 * math.erfc(2 / math.sqrt(2)))
    assert abs(float((g > 0).double().mean()) - p_pos) < 5 * math.sqrt(p_pos * (1 - p_pos) / N)
    # mean over all cells = p · E[clip] = 0.1 · 0.5 (the clipping is symmetric)
    m = g / c.window
    assert abs(float(m.mean()) - 0.05) < 5 * float(m.std()) / math.sqrt(N)
    assert float(m.max()) <= 1.0
    gp, gn = dev.random_weights((N,), v, c, gen(6))
    w = gp - gn
    q = 1 - p_pos
    assert abs(float((w != 0).double().mean()) - (1 - q ** 2)) < 0.005  # either cell formed
    assert abs(float(w.mean())) < 0.01 * c.window  # sign-symmetric


def test_seeded_programming_is_reproducible():
    c = DeviceConfig.from_profile().replace(drift_nu_std=0.02, read_time=100.0)
    t = torch.rand(1000, generator=gen(9), dtype=torch.float64) * c.window
    a, da = dev.program(t, c, gen(7))
    b, db = dev.program(t, c, gen(7))
    x, _ = dev.program(t, c, gen(8))
    assert torch.equal(a, b) and torch.equal(da.nu, db.nu) and torch.equal(da.stuck_on, db.stuck_on)
    assert not torch.equal(a, x)


def test_each_non_ideality_switches_off_alone():
    t = torch.rand(5000, generator=gen(9), dtype=torch.float64) * BASE.window
    ref, _ = dev.program(t, BASE, gen(0))
    assert torch.equal(ref, t)  # ideal programming is exact
    for kw in (dict(levels=8), dict(programming_noise=0.05), dict(stuck_on=0.1), dict(stuck_off=0.1), dict(d2d=0.3)):
        out, _ = dev.program(t, BASE.replace(**kw), gen(0))
        assert not torch.equal(out, t), kw


# ---------------------------------------------------------------------------------- fault compensation
def _pairs(stuck):
    """DeviceArray for pairs (2, n) with ``stuck[k] = (state of G+, state of G−)``, each None,
    "on" or "off"; upper bounds at the window (no d2d)."""
    n = len(stuck)
    on = torch.zeros((2, n), dtype=torch.bool)
    off = torch.zeros((2, n), dtype=torch.bool)
    for k, pair in enumerate(stuck):
        for c, state in enumerate(pair):
            on[c, k] = state == "on"
            off[c, k] = state == "off"
    return dev.DeviceArray(torch.full((2, n), BASE.window, dtype=torch.float64), on, off, torch.zeros((2, n), dtype=torch.float64))


def test_fault_compensation_restores_weights_by_hand():
    """G+ stuck-on → G− = W − d; G− stuck-on → G+ = d + W; a stuck-off cell on the side the
    sign needs → clipped to 0; both stuck → as is; no fault → as written."""
    W = BASE.window
    d = torch.tensor([0.3, -0.4, 0.5, 0.2, -0.7, -0.2, 0.45, 0.0], dtype=torch.float64) * W
    stuck = [("on", None), (None, "on"), ("off", None), (None, "off"), ("on", None), ("on", "off"), (None, None), ("on", None)]
    tp, tn = torch.clamp(d, min=0), torch.clamp(-d, min=0)
    cfg = BASE.replace(stuck_on=0.05, stuck_off=0.05)  # fractions only switch the fault path on; masks are given
    dg, _ = dev.program_pair(tp, tn, cfg, gen(0), _pairs(stuck))
    got = (dg[0] - dg[1]) / W
    expect = torch.tensor([0.3, -0.4, 0.0, 0.2, 0.0, 1.0, 0.45, 0.0], dtype=torch.float64)
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-12)
    assert float(dg[1, 0]) == pytest.approx(0.7 * W) and float(dg[0, 1]) == pytest.approx(0.6 * W)
    assert float(dg[1, 4]) == pytest.approx(W)  # wanted 1.7 W: clipped, error 0.7 W instead of 1.0 W
    plain, _ = dev.program_pair(tp, tn, cfg.replace(fault_compensation=False), gen(0), _pairs(stuck))
    torch.testing.assert_close((plain[0] - plain[1]) / W,
                               torch.tensor([1.0, -1.0, 0.0, 0.2, 0.3, 1.0, 0.45, 1.0], dtype=torch.float64), rtol=0, atol=1e-12)
    # on the level grid (L = 4) with a stuck-on cell at the top level the partner lands on a level: exact
    q, _ = dev.program_pair(tp[:2], tn[:2], cfg.replace(levels=4), gen(0), _pairs(stuck[:2]))
    d4 = torch.round(d[:2] / (W / 3)) * (W / 3)
    torch.testing.assert_close(q[0] - q[1], d4, rtol=0, atol=1e-18)


def test_fault_compensation_statistics_and_untouched_pairs():
    """Full rram_40nm_worstcase write-verify of trained-network-like weights (normal, σ = W/5):
    compensation leaves fault-free pairs bit for bit as they were and cuts the weight-error
    variance several-fold (a stuck-on cell costs ~W uncompensated, ~|w| + the d2d mismatch
    of the two bounds compensated)."""
    cfg = DeviceConfig.from_profile("rram_40nm_worstcase")  # 5 % + 5 % stuck cells
    g = gen(11)
    d = torch.clamp(0.2 * torch.randn(N, generator=g, dtype=torch.float64), -1, 1) * cfg.window
    tp, tn = torch.clamp(d, min=0), torch.clamp(-d, min=0)
    on, devs = dev.program_pair(tp, tn, cfg, gen(12))
    off, devs2 = dev.program_pair(tp, tn, cfg.replace(fault_compensation=False), gen(12))
    assert torch.equal(devs.stuck_on, devs2.stuck_on) and torch.equal(devs.gmax, devs2.gmax)  # same devices
    faulty = (devs.stuck_on | devs.stuck_off).any(0)
    assert 0.15 < float(faulty.double().mean()) < 0.23  # 1 − 0.9² of the pairs
    assert torch.equal(on[:, ~faulty], off[:, ~faulty])
    err_on, err_off = (on[0] - on[1]) - d, (off[0] - off[1]) - d
    v_on, v_off = float(err_on.var()), float(err_off.var())
    assert v_on < v_off / 3, (v_on, v_off)
    # on the faulty pairs alone the compensated error is far smaller
    assert float(err_on[faulty].abs().mean()) < 0.5 * float(err_off[faulty].abs().mean())
    # no stuck cells: the same as programming without the option
    c0 = cfg.replace(stuck_on=0.0, stuck_off=0.0)
    a, _ = dev.program_pair(tp, tn, c0, gen(13))
    b, _ = dev.program_pair(tp, tn, c0.replace(fault_compensation=False), gen(13))
    assert torch.equal(a, b)
