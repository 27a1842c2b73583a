"""Crossbar: tiling, ADC, DAC, read noise and IR drop against independent numpy models."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurodeploy.targets.rram import device as dev
from neurodeploy.targets.rram.crossbar import Crossbar, conv_padding, unfold_input
from neurodeploy.targets.rram.device import DeviceConfig

IDEAL = DeviceConfig().ideal()


def weights(out=13, inp=37, seed=0):
    return torch.tensor(np.random.default_rng(seed).normal(0, 1, (out, inp)), dtype=torch.float32)


def spikes(n, inp, p=0.3, seed=0):
    return (torch.rand(n, inp, generator=torch.Generator().manual_seed(seed)) < p).float()


def test_ideal_crossbar_is_exact_gemm():
    w = weights()
    xb = Crossbar.program(w, IDEAL.replace(array_rows=8, array_cols=6), dev.make_generator(0))
    x = spikes(50, 37)
    assert xb.fast and xb.tiles == 5 * 5
    assert torch.equal(xb(x), F.linear(x, w))
    assert torch.equal(xb.weight, w)


def test_adc_per_tile_matches_numpy_model():
    w = weights()
    cfg = IDEAL.replace(array_rows=8, array_cols=6, adc_bits=5, adc_range=0.4)
    xb = Crossbar.program(w, cfg, dev.make_generator(0))
    x = spikes(40, 37, p=0.5, seed=1)
    y = xb(x).numpy()
    # independent model: 5 row tiles of 8 inputs × 5 column tiles of 3 outputs, each tile
    # digitized with its own range (0.4 × its worst-case column sum)
    wn, xn = w.numpy().astype(np.float64), x.numpy().astype(np.float64)
    expect = np.zeros((40, 13))
    n = 2 ** 4 - 1
    sat = 0
    for t in range(5):
        sl = slice(8 * t, min(8 * t + 8, 37))
        part = xn[:, sl] @ wn[:, sl].T
        lsb = np.zeros(13)
        for c0 in range(0, 13, 3):
            lsb[c0:c0 + 3] = 0.4 * np.abs(wn[c0:c0 + 3, sl]).sum(1).max() / n
        code = np.round(part / lsb)
        sat += int(((np.abs(code) > n) & (xn[:, sl].any(1))[:, None]).sum())
        expect += np.clip(code, -n, n) * lsb
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)
    assert xb.counts()["adc_saturations"] == sat > 0


def test_read_noise_column_statistics_match_per_device_monte_carlo():
    """Sampling the column noise from sqrt(Σ x² G²) equals reading every device with
    its own N(0, σ) in distribution: compare mean and std over many reads."""
    w = weights(4, 30, seed=2)
    cfg = IDEAL.replace(read_noise=0.05, g_min=2e-6)
    xb = Crossbar.program(w, cfg, dev.make_generator(0))
    xb.generator = dev.make_generator(1)
    x = spikes(1, 30, p=0.5, seed=3).repeat(20_000, 1)
    y = xb(x).double()
    gp, gn = xb.conductances()
    g = torch.Generator().manual_seed(5)
    reads = 20_000
    npn = lambda: 1 + 0.05 * torch.randn(reads, *gp.shape, generator=g, dtype=torch.float64)  # noqa: E731
    mc = ((x[:1].double()[:, None, :] * (gp * npn() - gn * npn())).sum(-1)) * xb.scale
    torch.testing.assert_close(y.mean(0), mc.mean(0), atol=4 * float(mc.std(0).max()) / math.sqrt(reads), rtol=0)
    torch.testing.assert_close(y.std(0), mc.std(0), rtol=0.05, atol=0)
    assert float(mc.std(0).min()) > 0


def test_dac_quantizes_graded_inputs_only():
    """input_bits None, dac_bits = 3: one cycle of a 3-bit DAC: codes round(x / lsb) in
    [-3, 3], lsb the power of two with max|x| <= 3 lsb (per vector)."""
    w = weights(5, 10)
    cfg = IDEAL.replace(dac_bits=3)
    xb = Crossbar.program(w, cfg, dev.make_generator(0))
    xs = spikes(7, 10, p=0.5)
    assert torch.equal(xb(xs), F.linear(xs, w))  # spikes: no DAC
    xg = torch.rand(7, 10, generator=torch.Generator().manual_seed(0))
    lsb = 2.0 ** torch.ceil(torch.log2(xg.abs().amax(1, keepdim=True) / 3))
    xq = torch.clamp(torch.round(xg / lsb), -3, 3) * lsb
    torch.testing.assert_close(xb(xg), F.linear(xq, w), rtol=1e-5, atol=1e-5)
    assert xb.counts()["dac_conversions"] == int((xq != 0).sum())


def _graded_codes(shape, bits, seed, signed=True):
    """Inputs on an 8-bit grid: integer codes in [-(2^(b-1)-1), 2^(b-1)-1] times 2^-5."""
    n = 2 ** (bits - 1) - 1
    g = torch.Generator().manual_seed(seed)
    code = torch.randint(-n if signed else 0, n + 1, shape, generator=g, dtype=torch.float64)
    code[:, 0] = n  # the vector's max |x| on the grid's top code: lsb = 2^-5 exactly
    return code * 2.0 ** -5


@pytest.mark.parametrize("signed", [False, True])
def test_bit_serial_dac_equals_wide_dac_without_noise_or_adc(signed):
    """8-bit inputs through a 1-bit DAC over 7 cycles (per sign) equal the same inputs
    through an 8-bit DAC in one cycle and the exact product (integer-coded inputs)."""
    w = weights(6, 20).double()
    x = _graded_codes((9, 20), 8, seed=1, signed=signed)
    serial = Crossbar.program(w, IDEAL.replace(input_bits=8, dac_bits=1), dev.make_generator(0), dtype=torch.float64)
    wide = Crossbar.program(w, IDEAL.replace(input_bits=8, dac_bits=8), dev.make_generator(0), dtype=torch.float64)
    exact = F.linear(x, w)
    torch.testing.assert_close(serial(x), exact, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(wide(x), exact, rtol=1e-12, atol=1e-12)
    # cycles: one per nonzero bit of each code (per sign), binary vectors one cycle
    code = (x * 32).round()
    bit = lambda c: torch.stack([torch.remainder(torch.div(c, 2 ** k, rounding_mode="floor"), 2) for k in range(7)])  # noqa: E731
    pos, neg = bit(code.clamp(min=0)), bit((-code).clamp(min=0))  # (7 cycles, vectors, rows)
    assert serial.counts()["dac_conversions"] == int(pos.sum() + neg.sum())
    assert serial.counts()["array_reads"] == int((pos != 0).any(-1).sum() + (neg != 0).any(-1).sum())
    assert wide.counts()["dac_conversions"] == int((x != 0).sum())
    xs = spikes(5, 20, p=0.5).double()
    serial.reset_counts()
    assert torch.equal(serial(xs), F.linear(xs, w))
    assert serial.counts()["array_reads"] == int((xs != 0).any(1).sum())  # binary: one cycle


def test_bit_serial_applies_read_noise_and_adc_per_cycle():
    """Each cycle is its own read with its own read noise: the column variance is
    σ² s² lsb² Σ_i (G+² + G−²)_ij Σ_k (2^k b_ki)² (b: the code's bits), below one wide
    read's σ² s² lsb² Σ_i (G+² + G−²)_ij code_i²; the ADC converts every cycle."""
    w = weights(4, 16).double()
    x = _graded_codes((1, 16), 8, seed=2, signed=False)
    cfg = IDEAL.replace(input_bits=8, read_noise=0.05)
    serial = Crossbar.program(w, cfg.replace(dac_bits=1), dev.make_generator(0), dtype=torch.float64)
    wide = Crossbar.program(w, cfg.replace(dac_bits=8), dev.make_generator(0), dtype=torch.float64)
    serial.generator, wide.generator = dev.make_generator(1), dev.make_generator(1)
    reads = 4000
    ys, yw = serial(x.expand(reads, 16)), wide(x.expand(reads, 16))
    gp, gn = serial.conductances()
    g2 = (gp ** 2 + gn ** 2) * serial.scale ** 2  # (out, in)
    code = (x[0] * 32).round()
    bits = torch.stack([torch.remainder(torch.div(code, 2 ** k, rounding_mode="floor"), 2) * 2 ** k for k in range(7)])
    sd_serial = 0.05 / 32 * (g2 @ (bits ** 2).sum(0)).sqrt()
    sd_wide = 0.05 / 32 * (g2 @ code ** 2).sqrt()
    torch.testing.assert_close(ys.std(0), sd_serial, rtol=0.1, atol=0)
    torch.testing.assert_close(yw.std(0), sd_wide, rtol=0.1, atol=0)
    torch.testing.assert_close(ys.mean(0), F.linear(x, w)[0], rtol=0, atol=float(4 * sd_serial.max() / math.sqrt(reads)))
    adc = Crossbar.program(w, IDEAL.replace(input_bits=8, dac_bits=1, adc_bits=6, adc_range="worst"), dev.make_generator(0))
    adc(x.float())
    cycles = int((bits != 0).any(1).sum())
    assert cycles > 1 and adc.counts()["array_reads"] == cycles and adc.counts()["adc_conversions"] == cycles * 4


def test_ir_drop_attenuates_and_vanishes_at_zero_resistance():
    w = weights(8, 64).abs()
    x = torch.ones(1, 64)
    y0 = Crossbar.program(w, IDEAL, dev.make_generator(0))(x)
    ys = [Crossbar.program(w, IDEAL.replace(wire_resistance=r), dev.make_generator(0))(x) for r in (1.0, 5.0, 20.0)]
    assert torch.equal(Crossbar.program(w, IDEAL.replace(wire_resistance=0.0), dev.make_generator(0))(x), y0)
    assert bool((ys[0] < y0).all() and (ys[1] < ys[0]).all() and (ys[2] < ys[1]).all())
    # first-order check of one cell: G/(1 + G R)
    xb = Crossbar.program(w, IDEAL.replace(wire_resistance=5.0), dev.make_generator(0))
    gp, _ = xb.conductances()
    R = 5.0 * ((2 * 0 + 1) + (xb.rows - 0))
    assert float(xb.weight64[0, 0]) == pytest.approx(float(gp[0, 0] / (1 + gp[0, 0] * R)) * xb.scale, rel=1e-12)


def test_sparse_path_equals_dense():
    w = weights(100, 120)
    w[torch.rand(w.shape, generator=torch.Generator().manual_seed(0)) < 0.95] = 0
    x = spikes(16, 120, p=0.3)
    xb = Crossbar.program(w, IDEAL, dev.make_generator(0), sparse=True)
    torch.testing.assert_close(xb(x), F.linear(x, w), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("padding,stride,dilation", [(1, 1, 1), (0, 2, 1), ("same", 1, 2), ("valid", 1, 1)])
def test_unfold_matches_conv2d(padding, stride, dilation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 9, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    pads = conv_padding(padding if isinstance(padding, str) else (padding, padding), (3, 3), (dilation, dilation))
    cols, L = unfold_input(x, (3, 3), (stride, stride), pads, (dilation, dilation))
    ref = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    y = (cols @ w.reshape(4, -1).T).reshape(2, L, 4).transpose(1, 2).reshape(ref.shape)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("g_min", [0.0, 1e-6])
def test_sparse_noisy_path_equals_dense_noisy_path(g_min):
    """Same generator state → same noise draws: the sparse product with read noise and ADC
    equals the dense one up to float rounding."""
    w = weights(80, 100, seed=1)
    w[torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) < 0.93] = 0
    cfg = IDEAL.replace(read_noise=0.05, adc_bits=10, g_min=g_min)
    x = spikes(32, 100, p=0.3)
    ys = []
    for sparse in (False, True):
        xb = Crossbar.program(w, cfg, dev.make_generator(0), sparse=sparse)
        xb.generator = dev.make_generator(9)
        ys.append(xb(x))
    lsb = float(xb.adc.lsb.max())
    assert float((ys[0] - ys[1]).abs().max()) <= lsb + 1e-6  # at most one ADC code apart (rounding ties)
    assert float((ys[0] != ys[1]).float().mean()) < 0.01


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(out=st.integers(1, 40), inp=st.integers(1, 70), rows=st.integers(1, 16), cols=st.integers(2, 12),
       seed=st.integers(0, 2**16))
def test_ideal_tiling_is_exact_and_tiles_cover_matrix(out, inp, rows, cols, seed):
    w = weights(out, inp, seed=seed)
    cfg = IDEAL.replace(array_rows=rows, array_cols=cols)
    xb = Crossbar.program(w, cfg, dev.make_generator(seed))
    x = spikes(5, inp, p=0.5, seed=seed)
    assert torch.equal(xb(x), F.linear(x, w))
    assert xb.tiles == -(-inp // rows) * -(-out // (cols // 2))
    # the per-tile path without quantization (a 24-bit ADC) sums the same products
    xq = Crossbar.program(w, cfg.replace(adc_bits=24), dev.make_generator(seed))
    torch.testing.assert_close(xq(x), F.linear(x, w), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("levels,slices", [(4, 3), (2, 5), (8, 2)])
def test_bit_slicing_quantizes_to_levels_power_slices(levels, slices):
    w = weights(20, 30, seed=4)
    cfg = IDEAL.replace(levels=levels, slices=slices)
    xb = Crossbar.program(w, cfg, dev.make_generator(0))
    wmax = float(w.abs().max())
    top = levels ** slices - 1
    expect = torch.sign(w.double()) * torch.round(w.abs().double() / wmax * top) * wmax / top
    torch.testing.assert_close(xb.weight64, expect, rtol=1e-12, atol=1e-12)
    gp, gn = xb.conductances()
    assert gp.shape == (slices, 20, 30)
    assert len(torch.unique(gp)) <= levels and bool(((gp > 0) & (gn > 0)).sum() == 0)
    # per-slice ADC path: a fine ADC reproduces the GEMM with the sliced weights
    xq = Crossbar.program(w, cfg.replace(adc_bits=24, array_rows=8, array_cols=10), dev.make_generator(0))
    x = spikes(6, 30, p=0.5)
    torch.testing.assert_close(xq(x), F.linear(x, xq.weight), rtol=1e-5, atol=1e-4)
    c = xq.counts()
    reads = int((F.pad(x, (0, 2)).reshape(6, 4, 8) != 0).any(-1).sum())
    assert c["adc_conversions"] == reads * 20 * slices
    assert xq.tiles == 4 * -(-(20 * slices) // 5)


def test_bit_slicing_beats_one_coarse_pair():
    w = weights(40, 60, seed=5)
    err = {}
    for slices in (1, 3):
        xb = Crossbar.program(w, IDEAL.replace(levels=4, slices=slices), dev.make_generator(0))
        err[slices] = float((xb.weight64 - w.double()).abs().max())
    assert err[3] < err[1] / 10


# ---------------------------------------------------------------------------------- ADC calibration
def test_calibrated_adc_range_is_observed_max_per_tile():
    """adc_range="calibrated": each (row tile, column tile) group's full scale is the largest
    |partial sum| its columns saw in the calibration reads (ADC bypassed), much below the
    static worst case; the calibration data then never saturate and a larger input does."""
    w = weights(13, 37)
    cfg = IDEAL.replace(array_rows=8, array_cols=6, adc_bits=6)
    xb = Crossbar.program(w, cfg, dev.make_generator(0))
    worst = Crossbar.program(w, cfg.replace(adc_range="worst"), dev.make_generator(0))
    assert xb.needs_calibration and xb.adc_range is None and xb.adc_groups == (1, 5, 5)
    x = spikes(60, 37, p=0.3, seed=1)
    xb.begin_calibration()
    y_cal = xb(x)
    xb.end_calibration()
    torch.testing.assert_close(y_cal, F.linear(x, w), rtol=1e-5, atol=1e-5)  # bypassed ADC
    wn, xn = w.numpy().astype(np.float64), x.numpy().astype(np.float64)
    expect = np.zeros((5, 5))
    for t in range(5):
        part = np.abs(xn[:, 8 * t:8 * t + 8] @ wn[:, 8 * t:8 * t + 8].T).max(0)  # per output column
        for c in range(5):
            expect[t, c] = part[3 * c:3 * c + 3].max()
    np.testing.assert_allclose(xb.adc_range[0].numpy(), expect, rtol=1e-5)
    assert bool((xb.adc_range < worst.adc_range).all())
    xb.reset_counts()
    xb(x)
    assert xb.counts()["adc_saturations"] == 0
    xb(torch.ones(1, 37))
    assert xb.counts()["adc_saturations"] > 0
    # the finer LSB pays: less error than the worst-case range on the same data
    err = lambda c: float((c(x) - F.linear(x, w)).abs().mean())  # noqa: E731
    assert err(xb) < 0.6 * err(worst)


def test_uncalibrated_crossbar_calibrates_on_first_call_and_keeps_range():
    w = weights(6, 20)
    xb = Crossbar.program(w, IDEAL.replace(adc_bits=8), dev.make_generator(0))
    x = spikes(30, 20, p=0.4)
    y = xb(x)
    r = xb.adc_range.clone()
    assert float(r.max()) == pytest.approx(float(F.linear(x, w).abs().max()), rel=1e-5)
    assert xb.counts()["adc_saturations"] == 0
    xb(spikes(30, 20, p=0.9, seed=4))
    assert torch.equal(xb.adc_range, r)  # fixed once calibrated
    assert float((y - F.linear(x, w)).abs().max()) <= float(r.max()) / 127 / 2 + 1e-5


def test_adc_range_modes_validated():
    from neurodeploy.errors import InputError

    for bad in ("big", 0, -1.0, float("inf"), True):
        with pytest.raises(InputError, match="adc_range"):
            IDEAL.replace(adc_range=bad)
    assert IDEAL.replace(adc_bits=8, adc_range="auto").adc_fraction == 1.0  # legacy alias of "worst"
    assert IDEAL.replace(adc_bits=8).adc_calibrated and DeviceConfig().adc_range == "calibrated"


@pytest.mark.parametrize("mode", ["global", "per_column"])
def test_drift_compensation_restores_a_uniform_power_law_decay(mode):
    """Every device decays by (t/t0)^-ν with one ν (no spread, g_min = 0): uncompensated the
    product shrinks by exactly that factor; a reference read's digital scale undoes it."""
    w = weights(6, 20).double()
    x = spikes(5, 20, p=0.5).double()
    cfg = IDEAL.replace(drift_nu_mean=0.05, drift_nu_std=0.0, read_time=86400.0 * 30)
    factor = (cfg.read_time / cfg.drift_t0) ** -0.05
    raw = Crossbar.program(w, cfg.replace(drift_compensation="none"), dev.make_generator(0), dtype=torch.float64)
    comp = Crossbar.program(w, cfg.replace(drift_compensation=mode), dev.make_generator(0), dtype=torch.float64)
    torch.testing.assert_close(raw(x), F.linear(x, w) * factor, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(comp(x), F.linear(x, w), rtol=1e-12, atol=1e-12)
    noisy = Crossbar.program(w, cfg.replace(drift_compensation=mode, read_noise=0.01), dev.make_generator(0), dtype=torch.float64)
    noisy.generator = dev.make_generator(1)  # the scale also applies on the read-noise path
    assert float((noisy(x) - F.linear(x, w)).abs().max()) < float((raw(x) - F.linear(x, w)).abs().max())


def test_drift_compensation_is_one_without_drift():
    w = weights(6, 20).double()
    xb = Crossbar.program(w, IDEAL.replace(drift_nu_std=0.02, read_time=1.0), dev.make_generator(0), dtype=torch.float64)
    assert xb.compensation is None  # read at t0: nothing drifted, nothing to compensate
