"""RRAM target and the measurement protocol (docs/protocol.md): counts keyed by NIR nodes
with the shared definitions, describe() from the programmed crossbars, options checked,
DeviceConfig defaults = the profile, one crossbar periphery for the dense and sparse paths."""

import json

import nir
import numpy as np
import pytest
import torch

from .conftest import spikes
from .helpers import affine, chain, f32, lif
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.hardware import load_profile
from neurodeploy.targets.base import EVENT_KINDS, EXTRA_KINDS, describe_base
from neurodeploy.targets.reference import ReferenceTarget
from neurodeploy.targets.rram import crossbar as xbar
from neurodeploy.targets.rram import device as dev
from neurodeploy.targets.rram.device import DeviceConfig
from neurodeploy.targets.rram.lsm import LSMConfig, Reservoir
from neurodeploy.targets.rram.program import RRAMProgram, RRAMTarget
from neurodeploy.targets.rram.sparse import SparseLayer

IDEAL = DeviceConfig().ideal()


def conv_pool_dense(rng):
    """conv (padding 1: border taps fall off) → LIF → sum pool → flatten → scale → affine → LIF."""
    conv = nir.Conv2d(input_shape=(8, 8), weight=f32(rng.normal(0, 1.5, (4, 2, 3, 3))), stride=1, padding=1,
                      dilation=1, groups=1, bias=f32(rng.normal(0, 0.1, 4)))
    l1 = nir.LIF(**{k: f32(np.full((4, 8, 8), v)) for k, v in
                    dict(tau=0.005, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()})
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    fl = nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1)
    scale = nir.Scale(scale=f32(np.full(64, 0.5)))
    return load(chain(nir.Input(np.array([2, 8, 8])), conv, l1, pool, fl, scale, affine(rng, 5, 64, scale=1.4),
                      lif(5, tau=0.005), nir.Output(np.array([5])), dt=1e-3))


def conv_macs(cin, cout, k, h, w, pad):
    """MACs of one step of a stride-1 conv, counted tap by tap (taps on padding excluded)."""
    taps = sum(1 for i in range(h) for j in range(w) for di in range(k) for dj in range(k)
               if 0 <= i + di - pad < h and 0 <= j + dj - pad < w)
    return taps * cin * cout


def test_ideal_counts_equal_reference_on_conv_pool_dense():
    g = conv_pool_dense(np.random.default_rng(0))
    x = spikes((3, 20, 2, 8, 8), p=0.4, seed=0)
    ref = ReferenceTarget().compile(g).run(x)
    ours = RRAMTarget().compile(g, config=IDEAL).run(x)
    assert ours.total("spikes") > 0 and torch.equal(ref.output, ours.output)
    for kind in ("dense_synops", "synaptic_events", "neuron_updates", "spikes"):
        for n, c in ref.counts.items():
            if kind in c:
                assert ours.counts[n][kind] == c[kind], (n, kind)
    synapses = {n for n, c in ours.counts.items() if "dense_synops" in c}
    assert synapses == {"conv2d", "affine"}  # pooling, flatten and scale are no synapses
    assert not {"sumpool2d", "flatten", "scale"} & set(ours.counts)
    steps_samples = 3 * 20
    assert ours.counts["conv2d"]["dense_synops"] == conv_macs(2, 4, 3, 8, 8, 1) * steps_samples
    assert ours.counts["affine"]["dense_synops"] == 64 * 5 * steps_samples
    assert ours.counts["conv2d"]["synaptic_events"] < ours.counts["conv2d"]["dense_synops"]


def _all_kinds(counts):
    return {k for c in counts.values() for k in c}


def test_every_emitted_kind_is_defined():
    g = conv_pool_dense(np.random.default_rng(1))
    res = RRAMTarget().compile(g).run(spikes((2, 5, 2, 8, 8), p=0.4, seed=1))
    known = set(EVENT_KINDS) | set(EXTRA_KINDS)
    assert _all_kinds(res.counts) <= known
    assert {"array_reads", "cell_reads", "adc_conversions", "tiles"} <= _all_kinds(res.counts)
    r = Reservoir(LSMConfig(n_inputs=16, n_neurons=60, fan_in=6))
    sres = r.compile("rram").run(spikes((2, 8, 16), p=0.3, seed=2))
    assert _all_kinds(sres.counts) <= known and "stored_synaptic_events" in _all_kinds(sres.counts)


def test_cell_reads_are_active_rows_times_both_cells_of_every_pair_bit_sliced(rng):
    """With 2 bit slices every active row reads 2 cells × 6 outputs × 2 slices."""
    g = load(chain(nir.Input(np.array([10])), affine(rng, 6, 10), lif(6), nir.Output(np.array([6])), dt=1e-3))
    x = spikes((3, 5, 10), p=0.3, seed=3)
    cfg = IDEAL.replace(levels=4, slices=2, array_rows=4, array_cols=8)
    res = RRAMTarget().compile(g, config=cfg).run(x)
    c = res.counts["affine"]
    active = int((x != 0).sum())
    reads = int((torch.nn.functional.pad(x, (0, 2)).reshape(3, 5, 3, 4) != 0).any(-1).sum())
    col_tiles = -(-6 * 2 // 4)
    assert c["cell_reads"] == active * 2 * 6 * 2
    assert c["rows_activated"] == active * col_tiles
    assert c["array_reads"] == reads * col_tiles and c["adc_conversions"] == reads * 6 * 2
    assert c["tiles"] == 3 * col_tiles


# --------------------------------------------------------------------------- DeviceConfig
def test_device_config_defaults_are_the_profile():
    prof = load_profile("rram_40nm")
    from_prof = DeviceConfig.from_profile(prof)
    assert DeviceConfig() == from_prof
    assert from_prof.dac_bits == int(prof.si("dac_bits")) and from_prof.adc_bits == int(prof.si("adc_bits"))
    assert from_prof.array_cols == int(prof.si("array_cols")) and from_prof.g_max == pytest.approx(prof.si("g_max"))
    g = load(chain(nir.Input(np.array([4])), affine(np.random.default_rng(0), 3, 4), lif(3),
                   nir.Output(np.array([3])), dt=1e-3))
    assert RRAMTarget().compile(g).config == from_prof
    assert RRAMTarget().compile(g, hardware="rram_40nm").config == from_prof
    with pytest.raises(InputError, match="nonsense"):
        DeviceConfig.from_profile(prof, nonsense=1)


# --------------------------------------------------------------------------- describe / options
PROTOCOL_KEYS = set(describe_base("x", None))


def test_describe_crossbars_memory_and_options():
    g = conv_pool_dense(np.random.default_rng(2))
    cfg = DeviceConfig().replace(array_rows=7, array_cols=8, slices=2)
    prog = RRAMTarget().compile(g, config=cfg, seed=3)
    d = prog.describe()
    assert PROTOCOL_KEYS <= set(d) and json.loads(json.dumps(d)) == d
    conv, dense = d["crossbars"]["conv2d"], d["crossbars"]["affine"]
    assert (conv["rows"], conv["cols"], conv["reads_per_step"]) == (2 * 9, 2 * 4 * 2, 64)
    assert (conv["row_tiles"], conv["col_tiles"], conv["cells_per_weight"]) == (3, 2, 4)
    assert (dense["rows"], dense["row_tiles"], dense["col_tiles"], dense["reads_per_step"]) == (64, 10, 3, 1)
    for n, xb in prog.crossbars.items():
        b = d["crossbars"][n]
        assert (b["row_tiles"], b["col_tiles"], b["tiles"]) == (xb.row_tiles, xb.col_tiles, xb.tiles)
        assert d["memory"]["cells_per_node"][n] == 2 * 2 * xb.in_features * xb.out_features
    assert d["memory"]["cells"] == sum(d["memory"]["cells_per_node"].values())
    assert d["compile_options"]["seed"] == 3 and d["compile_options"]["config"]["slices"] == 2
    assert "seed" in d["run_options"] and prog.tiles == {n: b["tiles"] for n, b in d["crossbars"].items()}
    res = prog.run(spikes((1, 3, 2, 8, 8), seed=0))
    assert {n: c["tiles"] for n, c in res.counts.items() if "tiles" in c} == prog.tiles


def test_unknown_options_are_input_errors():
    g = conv_pool_dense(np.random.default_rng(3))
    t = RRAMTarget()
    assert t.hardware_kinds == ("rram",) and t.default_hardware == "rram_40nm"
    assert set(t.compile_options) == {"config", "seed", "device", "dtype", "conductances", "sparse", "device_params",
                                      "nonidealities", "calibration"}
    with pytest.raises(InputError, match="unknown option.*bogus"):
        t.compile(g, bogus=1)
    prog = t.compile(g, config=IDEAL)
    with pytest.raises(InputError, match="unknown option.*read_sed"):
        prog.run(spikes((1, 2, 2, 8, 8)), read_sed=1)
    sprog = Reservoir(LSMConfig(n_inputs=8, n_neurons=20, fan_in=4)).compile("rram")
    with pytest.raises(InputError, match="unknown option.*nope"):
        sprog.run(spikes((1, 2, 8)), nope=True)
    assert PROTOCOL_KEYS <= set(sprog.describe())


def test_calibration_says_which_data(tmp_path):
    g = conv_pool_dense(np.random.default_rng(4))
    assert RRAMTarget().compile(g, config=IDEAL).describe()["calibration"] is None  # no ADC
    cal_x, test_x = spikes((5, 6, 2, 8, 8), seed=1), spikes((2, 6, 2, 8, 8), seed=2)
    prog = RRAMTarget().compile(g)
    c0 = prog.describe()["calibration"]
    assert c0["adc_range"] == "calibrated" and not c0["calibrated"] and c0["samples"] == 0
    prog.calibrate(cal_x, data="calibration split")
    prog.run(test_x)  # does not recalibrate
    c = prog.describe()["calibration"]
    assert c["calibrated"] and (c["data"], c["samples"], c["steps"]) == ("calibration split", 5, 6)
    assert set(c["ranges"]) == {"conv2d", "affine"}
    back = RRAMProgram.load(prog.save(tmp_path / "p"))
    assert back.describe()["calibration"] == c
    lazy = RRAMTarget().compile(g)
    lazy.run(test_x)
    assert "run()" in lazy.describe()["calibration"]["data"] and lazy.describe()["calibration"]["samples"] == 2
    fixed = RRAMTarget().compile(g, config=DeviceConfig().replace(adc_range="worst")).describe()["calibration"]
    assert fixed["adc_range"] == "worst" and fixed["data"] is None and len(fixed["ranges"]) == 2


def test_sparse_reservoir_describe_matches_dense_layout():
    r = Reservoir(LSMConfig(n_inputs=30, n_neurons=300, fan_in=10))
    cfg = DeviceConfig().replace(array_rows=128, array_cols=256)
    sp = r.compile("rram", config=cfg)
    dense = r.dense().compile("rram", config=cfg)
    ds, dd = sp.describe(), dense.describe()
    for n in ("w_in", "w_rec"):
        for k in ("rows", "cols", "row_tiles", "col_tiles", "tiles", "reads_per_step", "cells_per_weight"):
            assert ds["crossbars"][n][k] == dd["crossbars"][n][k], (n, k)
    assert ds["memory"]["weights"] == 300 * (r.config.input_k + 10) and ds["memory"]["cells"] == 2 * ds["memory"]["weights"]
    assert r.compile("reference").describe()["crossbars"] is None


# --------------------------------------------------------------------------- one periphery
@pytest.mark.parametrize("rows", [64, 16])
def test_sparse_layer_and_crossbar_share_adc_noise_dac_and_counts(rows):
    """The same fixed-fan-in weights as a SparseLayer and as a dense Crossbar (float64, read
    noise, calibrated 6-bit ADC, 4-bit DAC): the same counts; with one row tile (both
    digitize the whole column sum) the same ADC ranges and outputs."""
    torch.manual_seed(0)
    n_pre, n_post, k = 40, 24, 5
    cfg = IDEAL.replace(read_noise=0.05, adc_bits=6, dac_bits=4, array_rows=rows, array_cols=16)
    gen = dev.make_generator(0)
    idx = torch.stack([torch.randperm(n_pre, generator=gen)[:k].sort().values for _ in range(n_post)])
    gp = torch.rand((n_post, k), generator=gen, dtype=torch.float64) * cfg.window
    gn = torch.rand((n_post, k), generator=gen, dtype=torch.float64) * cfg.window * (torch.rand((n_post, k), generator=gen) < 0.5)
    s = 2.0 / cfg.window
    dense_gp = torch.zeros(n_post, n_pre, dtype=torch.float64).scatter_(1, idx, gp)
    dense_gn = torch.zeros(n_post, n_pre, dtype=torch.float64).scatter_(1, idx, gn)
    xb = xbar.Crossbar.from_conductances(dense_gp, dense_gn, s, cfg, dtype=torch.float64)
    layer = SparseLayer(idx, (gp - gn) * s, s, cfg, n_pre, torch.float64, "cpu", "gather", g2=(gp ** 2 + gn ** 2) * s ** 2)
    x = spikes((6, n_pre), p=0.3, seed=4) * torch.rand(6, n_pre, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for m in (xb, layer):
        m.begin_calibration()
    xb.generator, layer.generator = dev.make_generator(7), dev.make_generator(7)
    xb(x)
    layer(x.T.contiguous(), graded=True)
    for m in (xb, layer):
        m.end_calibration()
        m.reset_counts()
    xb.generator, layer.generator = dev.make_generator(8), dev.make_generator(8)
    y_dense = xb(x)
    y_sparse = layer(x.T.contiguous(), graded=True).T
    layer.count(x.T[None], graded=[True])
    cs, cd = layer.counts(6), xb.counts()
    for kind in xbar.COUNT_KINDS:
        if kind != "adc_saturations" or rows >= n_pre:
            assert cs[kind] == cd[kind], kind
    assert cd["dac_conversions"] == int((xbar.dac(x, cfg, 1) != 0).sum()) * xb.col_tiles > 0  # one 4-bit cycle
    if rows >= n_pre:
        # the products differ only in float64 summation order (a gather vs the full row)
        assert torch.allclose(layer.adc_range, xb.adc_range.reshape(-1), rtol=1e-12, atol=0)
        _, f, m = xbar.stream(x, cfg, 1)  # x ≥ 0 and 4 bits: one cycle per vector, y = code·lsb·m₀·f
        lsb = xb.adc.lsb.reshape(-1) * m[0] * f
        assert torch.allclose(y_sparse, y_dense, rtol=0, atol=1e-9)
        assert torch.equal(torch.round(y_sparse / lsb), torch.round(y_dense / lsb))  # the same ADC codes
        assert len(torch.unique(torch.round(y_dense / lsb))) > 5


def test_dac_conversions_do_not_depend_on_batching(rng):
    """A binary sample batched with a graded one drives no DAC: the count of the batch is
    the sum of the counts of its samples run alone (dense and sparse paths)."""
    g = load(chain(nir.Input(np.array([10])), affine(rng, 6, 10), lif(6), nir.Output(np.array([6])), dt=1e-3))
    binary = spikes((1, 4, 10), p=0.5, seed=1)
    graded = torch.rand(1, 4, 10, generator=torch.Generator().manual_seed(2)) * spikes((1, 4, 10), p=0.5, seed=3)
    x = torch.cat([binary, graded])
    cfg = DeviceConfig().replace(dac_bits=8)
    prog = RRAMTarget().compile(g, config=cfg)
    prog.calibrate(x)
    dac_of = lambda inp: prog.run(inp).counts["affine"]["dac_conversions"]  # noqa: E731
    assert dac_of(binary) == 0 and dac_of(x) == dac_of(graded) == int((graded != 0).sum()) > 0
    r = Reservoir(LSMConfig(n_inputs=10, n_neurons=30, fan_in=5))
    sp = r.compile("rram", config=cfg)
    sp.calibrate(x)
    s_dac = lambda inp: sp.run(inp).counts["w_in"]["dac_conversions"]  # noqa: E731
    assert s_dac(binary) == 0 and s_dac(x) == s_dac(graded) == int((graded != 0).sum())
