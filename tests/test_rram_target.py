"""RRAM target: with every non-ideality off it is the reference target, spike for spike;
with them on it stays close, counts crossbar events, saves/loads, and runs via the CLI."""

import json

import nir
import numpy as np
import pytest
import torch

from .helpers import affine, chain, cubalif, f32, graph, lif
from .conftest import spikes
from neurodeploy.graph import load
from neurodeploy.targets.base import get_target
from neurodeploy.targets.reference import ReferenceTarget
from neurodeploy.targets.rram.device import DeviceConfig
from neurodeploy.targets.rram.program import RRAMProgram, RRAMTarget

IDEAL = DeviceConfig().ideal()


def dense_graph(rng):
    return chain(nir.Input(np.array([20])), affine(rng, 30, 20, 1.5), lif(30, tau=0.004, thr=0.5),
                 affine(rng, 10, 30, 1.0), lif(10, tau=0.004, thr=0.5), nir.Output(np.array([10])), dt=1e-3)


def conv_graph(rng, groups=1):
    cin = 2
    conv = nir.Conv2d(input_shape=(8, 8), weight=f32(rng.normal(0, 1.5, (4, cin // groups, 3, 3))), stride=1, padding=1,
                      dilation=1, groups=groups, bias=f32(rng.normal(0, 0.1, 4)))
    l1 = nir.LIF(**{k: f32(np.full((4, 8, 8), v)) for k, v in
                    dict(tau=0.005, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()})
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    fl = nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1)
    return chain(nir.Input(np.array([2, 8, 8])), conv, l1, pool, fl, affine(rng, 5, 64, scale=0.7), lif(5, tau=0.005),
                 nir.Output(np.array([5])), dt=1e-3)


def conv1d_graph(rng):
    conv = nir.Conv1d(input_shape=12, weight=f32(rng.normal(0, 1.5, (3, 2, 3))), stride=2, padding=1,
                      dilation=1, groups=1, bias=f32(rng.normal(0, 0.1, 3)))
    l1 = nir.LIF(**{k: f32(np.full((3, 6), v)) for k, v in
                    dict(tau=0.005, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()})
    return chain(nir.Input(np.array([2, 12])), conv, l1, nir.Output(np.array([3, 6])), dt=1e-3)


def recurrent_graph(rng, cuba=True):
    n = 12
    neuron = cubalif(n, thr=1.0, w_in=2.0) if cuba else lif(n, tau=0.004, thr=0.7)
    nodes = {"input": nir.Input(np.array([6])), "w_in": affine(rng, n, 6, scale=4.0), "lif": neuron,
             "w_rec": affine(rng, n, n, scale=2.0, bias=False), "output": nir.Output(np.array([n]))}
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    g = graph(nodes, edges, dt=1e-3)
    return g


CASES = {
    "dense": (dense_graph, (4, 40, 20)),
    "conv": (conv_graph, (3, 25, 2, 8, 8)),
    "conv_grouped": (lambda r: conv_graph(r, groups=2), (3, 25, 2, 8, 8)),
    "conv1d": (conv1d_graph, (3, 25, 2, 12)),
    "recurrent_cuba": (recurrent_graph, (4, 40, 6)),
    "recurrent_lif": (lambda r: recurrent_graph(r, cuba=False), (4, 40, 6)),
}


def _both(name, seed, config=IDEAL, array=None):
    build, shape = CASES[name]
    g = load(build(np.random.default_rng(seed)))
    x = spikes(shape, p=0.4, seed=seed)
    ref = ReferenceTarget().compile(g).run(x, record="all")
    cfg = config if array is None else config.replace(array_rows=array[0], array_cols=array[1])
    ours = RRAMTarget().compile(g, config=cfg, seed=seed).run(x, record="all")
    return g, ref, ours


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_ideal_rram_equals_reference_spike_for_spike(name, seed):
    g, ref, ours = _both(name, seed)
    total = 0
    for n in ref.records:
        assert torch.equal(ref.records[n], ours.records[n]), n
        if n in g.neuron_nodes():
            total += float(ref.records[n].sum())
    assert total > 0  # the comparison is not vacuous
    assert torch.equal(ref.output, ours.output)
    for n, c in ref.counts.items():  # reference kinds are counted identically
        for k, v in c.items():
            assert ours.counts[n][k] == v, (n, k)


@pytest.mark.parametrize("name", ["dense", "recurrent_cuba"])
def test_ideal_with_small_tiles_still_exact_and_tiles_counted(name):
    """Tiling 20 inputs onto 7-row arrays: the digital sum of tile partial sums is exact
    here because the ideal path is one GEMM; the tile count follows the geometry."""
    g, ref, ours = _both(name, 0, array=(7, 8))
    assert torch.equal(ref.output, ours.output)
    for n in g.synapse_nodes():
        w = np.asarray(g.nodes[n].weight)
        assert ours.counts[n]["tiles"] == -(-w.shape[1] // 7) * -(-w.shape[0] // 4)


def test_ideal_with_adc_off_but_read_path_tiled_matches_reference_closely():
    """Forcing the per-tile path (a 24-bit ADC with huge range would still quantize):
    use tiny read noise 0 but adc 24 bits: outputs agree with reference on almost all
    spikes and potentials agree to ~1e-5."""
    cfg = IDEAL.replace(adc_bits=24, array_rows=7, array_cols=8)
    g, ref, ours = _both("dense", 0, config=cfg)
    a, b = ref.records["lif"], ours.records["lif"]
    assert (a != b).float().mean() < 0.01
    assert a.sum() > 0


@pytest.mark.parametrize("kw", [dict(levels=4), dict(programming_noise=0.05), dict(read_noise=0.01),
                                dict(stuck_on=0.05, stuck_off=0.05), dict(d2d=0.3), dict(adc_bits=8)])
def test_each_non_ideality_changes_outputs_but_stays_correlated(kw):
    g, ref, ours = _both("dense", 0, config=IDEAL.replace(**kw))
    a, b = ref.records["lif"].sum(1), ours.records["lif"].sum(1)  # spike counts (batch, n)
    assert not torch.equal(a, b)
    r = np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]
    assert r > 0.5


def test_crossbar_counts_match_hand_count(rng):
    g = load(chain(nir.Input(np.array([10])), affine(rng, 6, 10), lif(6), nir.Output(np.array([6])), dt=1e-3))
    x = spikes((3, 5, 10), p=0.3, seed=3)
    x[0, 0] = 0  # one all-zero input vector: no read
    cfg = DeviceConfig.from_profile().replace(array_rows=4, array_cols=4)  # tiles 3 x 3
    res = RRAMTarget().compile(g, config=cfg).run(x)
    c = res.counts["affine"]
    xt = torch.nn.functional.pad(x, (0, 2)).reshape(3, 5, 3, 4)
    active_rows = int((xt != 0).sum())
    reads = int((xt != 0).any(-1).sum())
    assert c["tiles"] == 9
    assert c["rows_activated"] == active_rows * 3
    assert c["array_reads"] == reads * 3
    assert c["adc_conversions"] == reads * 6
    assert c["cell_reads"] == active_rows * 2 * 6
    assert c["dac_conversions"] == 0  # binary inputs need no DAC
    assert c["synaptic_events"] == int((x != 0).sum()) * 6


def test_graded_inputs_use_dac(rng):
    """Inputs k/8 (k = 0..7) on 8 bits (lsb 2^-7: code 16 k) through 1-bit DACs: one read
    cycle per set bit of k, so dac_conversions = Σ popcount(k); ideal: no DAC."""
    g = load(chain(nir.Input(np.array([10])), affine(rng, 6, 10), lif(6), nir.Output(np.array([6])), dt=1e-3))
    k = torch.randint(0, 8, (2, 4, 10), generator=torch.Generator().manual_seed(0))
    k[..., 0] = 7  # every vector's max is 7/8
    x = k.float() / 8
    cfg = DeviceConfig().replace(input_bits=8, dac_bits=1)
    res = RRAMTarget().compile(g, config=cfg).run(x)
    popcount = (k & 1) + ((k >> 1) & 1) + ((k >> 2) & 1)
    assert res.counts["affine"]["dac_conversions"] == int(popcount.sum())
    wide = RRAMTarget().compile(g, config=cfg.replace(dac_bits=8)).run(x)
    assert wide.counts["affine"]["dac_conversions"] == int((x != 0).sum())  # one cycle
    res = RRAMTarget().compile(g, config=IDEAL).run(x)
    assert res.counts["affine"]["dac_conversions"] == 0


def test_adc_saturation_counted_with_small_range(rng):
    g = load(chain(nir.Input(np.array([32])), affine(rng, 8, 32), lif(8), nir.Output(np.array([8])), dt=1e-3))
    x = spikes((4, 10, 32), p=0.9, seed=1)
    full = RRAMTarget().compile(g, config=IDEAL.replace(adc_bits=8, adc_range="worst")).run(x)
    small = RRAMTarget().compile(g, config=IDEAL.replace(adc_bits=8, adc_range=0.05)).run(x)
    assert full.counts["affine"]["adc_saturations"] == 0
    assert small.counts["affine"]["adc_saturations"] > 0
    cal = RRAMTarget().compile(g, config=IDEAL.replace(adc_bits=8))  # calibrated on its first batch
    assert cal.run(x).counts["affine"]["adc_saturations"] == 0  # (its calibration data)
    w = torch.as_tensor(np.asarray(g.nodes["affine"].weight))
    j = int(w.clamp(min=0).sum(1).argmax())
    worst_input = (w[j] > 0).float().expand(1, 3, 32)  # the largest current column j can carry
    assert cal.run(worst_input).counts["affine"]["adc_saturations"] > 0


@pytest.mark.parametrize("name", ["dense", "recurrent_cuba", "conv"])
def test_adc_calibration_pass_lazy_explicit_save_load(tmp_path, name):
    """A program calibrates its ADC ranges on the first batch it runs (a separate pass, ADCs
    bypassed), exactly as an explicit calibrate(x); ranges are then fixed, saved and loaded;
    calibrating on other data gives other ranges."""
    build, shape = CASES[name]
    g = load(build(np.random.default_rng(0)))
    x, x2 = spikes(shape, p=0.4, seed=0), spikes(shape, p=0.2, seed=1)
    cfg = DeviceConfig.from_profile()
    lazy = RRAMTarget().compile(g, config=cfg, seed=2)
    assert lazy.needs_calibration and lazy.adc_ranges() == {}
    ra = lazy.run(x, record="all")
    explicit = RRAMTarget().compile(g, config=cfg, seed=2)
    ranges = explicit.calibrate(x)
    assert set(ranges) == set(g.synapse_nodes()) and not explicit.needs_calibration
    for n, r in lazy.adc_ranges().items():
        assert np.array_equal(r, ranges[n]) and np.all(r > 0)
    rb = explicit.run(x, record="all")
    for n in ra.records:
        assert torch.equal(ra.records[n], rb.records[n]), n
    assert ra.counts == rb.counts  # the calibration pass is not counted
    explicit.save(tmp_path / "p")
    q = RRAMProgram.load(tmp_path / "p")
    assert not q.needs_calibration
    assert torch.equal(q.run(x2).output, explicit.run(x2).output)
    other = RRAMTarget().compile(g, config=cfg, seed=2)
    other.calibrate(x2)
    assert any(not np.array_equal(other.adc_ranges()[n], ranges[n]) for n in ranges)
    worst = RRAMTarget().compile(g, config=cfg.replace(adc_range="worst"), seed=2)
    for n, r in worst.adc_ranges().items():  # the static worst case bounds every calibrated range
        assert np.all(ranges[n] <= r * (1 + 1e-6) + 0.05 * r.max())


def test_fault_compensation_keeps_trained_layer_close_to_reference():
    """Only the profile's stuck-at faults (5 % + 5 %): write-verify with partner compensation
    realizes the weights far better than without, and the hidden layer's spike counts track
    the reference more closely."""
    build, shape = CASES["dense"]
    g = load(build(np.random.default_rng(0)))
    x = spikes(shape, p=0.4, seed=0)
    ref = ReferenceTarget().compile(g).run(x, record="all").records["lif"].sum(1).flatten().numpy()
    cfg = IDEAL.replace(stuck_on=0.05, stuck_off=0.05)
    w = np.asarray(g.nodes["affine"].weight, np.float64)
    err, corr = {}, {}
    for comp in (True, False):
        p = RRAMTarget().compile(g, config=cfg.replace(fault_compensation=comp), seed=0)
        err[comp] = float(np.abs(p.effective_weights()["affine"] - w).mean())
        counts = p.run(x, record="all").records["lif"].sum(1).flatten().numpy()
        corr[comp] = np.corrcoef(ref, counts)[0, 1]
    assert err[True] < 0.5 * err[False], err
    assert corr[True] > corr[False] and corr[True] > 0.9, corr


def test_seeded_runs_identical_and_seeds_differ():
    build, shape = CASES["dense"]
    g = load(build(np.random.default_rng(0)))
    x = spikes(shape, p=0.4, seed=0)
    cfg = DeviceConfig.from_profile()
    a = RRAMTarget().compile(g, config=cfg, seed=5)
    b = RRAMTarget().compile(g, config=cfg, seed=5)
    ra, rb = a.run(x, record="all"), b.run(x, record="all")
    assert torch.equal(ra.records["lif"], rb.records["lif"])
    assert torch.equal(ra.records["lif"], a.run(x, record="all").records["lif"])  # rerun same
    c = RRAMTarget().compile(g, config=cfg, seed=6)
    assert not np.array_equal(a.effective_weights()["affine"], c.effective_weights()["affine"])
    rd = a.run(x, record="all", seed=123)  # another read-noise draw, same conductances
    assert not torch.equal(ra.records["lif"], rd.records["lif"])


def test_save_load_roundtrip(tmp_path):
    build, shape = CASES["recurrent_cuba"]
    g = load(build(np.random.default_rng(0)))
    x = spikes(shape, p=0.4, seed=0)
    cfg = DeviceConfig.from_profile().replace(drift_nu_std=0.05, read_time=1e4)
    p = RRAMTarget().compile(g, config=cfg, seed=3)
    p.save(tmp_path / "prog")
    q = RRAMProgram.load(tmp_path / "prog")
    assert q.config == p.config
    for n in p.crossbars:
        assert np.array_equal(p.effective_weights()[n], q.effective_weights()[n])
    assert torch.equal(p.run(x, record="all").records["lif"], q.run(x, record="all").records["lif"])
    meta = json.loads((tmp_path / "prog" / "program.json").read_text())
    assert meta["target"] == "rram" and meta["seed"] == 3


def test_registry_and_profile():
    tgt = get_target("rram")
    assert isinstance(tgt, RRAMTarget)
    from neurodeploy.hardware import load_profile

    g = load(dense_graph(np.random.default_rng(0)))
    p = tgt.compile(g, hardware=load_profile("rram_40nm"))
    assert p.config.g_max == pytest.approx(40e-6) and p.config.levels == int(load_profile("rram_40nm").si("levels"))
    assert tgt.compile(g, hardware="rram_40nm_worstcase").config.levels == int(load_profile("rram_40nm_worstcase").si("levels"))
    with pytest.raises(Exception, match="loihi"):
        tgt.compile(g, hardware="loihi2")
    with pytest.raises(Exception, match="unknown option"):
        tgt.compile(g, bogus=1)


def test_cli_run_target_rram(tmp_path):
    from neurodeploy.cli import main
    from neurodeploy.graph import save

    g = load(dense_graph(np.random.default_rng(0)))
    save(g, tmp_path / "m.nir")
    x = spikes((3, 20, 20), p=0.4, seed=0).numpy()
    np.savez(tmp_path / "in.npz", x=x, y=np.array([0, 1, 2]))
    rc = main(["-q", "run", str(tmp_path / "m.nir"), "--target", "rram", "--hardware", "rram_40nm",
               "-i", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz")])
    assert rc == 0
    out = np.load(tmp_path / "out.npz")
    assert out["outputs"].shape == (3, 20, 10)


def test_bit_sliced_program_saves_and_tracks_reference(tmp_path):
    build, shape = CASES["dense"]
    g = load(build(np.random.default_rng(0)))
    x = spikes(shape, p=0.4, seed=0)
    ref = ReferenceTarget().compile(g).run(x, record="all")
    cfg = DeviceConfig.from_profile().replace(slices=4, stuck_on=0.0, stuck_off=0.0, d2d=0.0)
    p = RRAMTarget().compile(g, config=cfg, seed=1)
    assert p.crossbars["affine"].slices == 4
    a, b = ref.records["lif"].sum(1).flatten().numpy(), p.run(x, record="all").records["lif"].sum(1).flatten().numpy()
    coarse = RRAMTarget().compile(g, config=cfg.replace(slices=1), seed=1).run(x, record="all").records["lif"].sum(1).flatten().numpy()
    assert np.corrcoef(a, b)[0, 1] > np.corrcoef(a, coarse)[0, 1]
    p.save(tmp_path / "p")
    q = RRAMProgram.load(tmp_path / "p")
    assert torch.equal(p.run(x).output, q.run(x).output)
