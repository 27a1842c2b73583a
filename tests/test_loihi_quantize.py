"""Quantization to Lava's fixed-point conventions: weights, exponents, decays, thresholds,
and the per-layer report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import DT, conv_stack_net, dense_net, recurrent_net  # noqa: E402

from neurodeploy.graph import load  # noqa: E402
from neurodeploy.targets.loihi.program import LoihiProgram, conv_kernel  # noqa: E402
from neurodeploy.targets.loihi.quantize import lava_weights, quantize, quantize_weights  # noqa: E402


def test_lava_weights_match_lava_weightutils():
    wu = pytest.importorskip("lava.utils.weightutils")
    rng = np.random.default_rng(0)
    for lo, hi in [(-300, 300), (0, 300), (-300, 1), (-5, 5)]:
        w = rng.integers(lo, hi, (20, 30))
        mode = wu.determine_sign_mode(w)
        expect = wu.truncate_weights(wu.clip_weights(w, mode, num_bits=8), mode, 8)
        np.testing.assert_array_equal(lava_weights(w), expect)


@pytest.mark.parametrize("scale", [1e-3, 0.37, 1.0, 80.0, 3000.0])
def test_quantize_weights_uses_full_mantissa_without_clipping(scale):
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (16, 16)) * scale
    mant, e, clipped = quantize_weights(w)
    assert clipped == 0 or e == 7
    assert np.abs(mant).max() <= 256
    np.testing.assert_array_equal(lava_weights(mant), mant)  # Lava leaves them as they are
    if -8 < e < 7:
        assert 127 <= np.abs(mant).max() <= 254  # the largest weight fills the 8-bit mantissa
        err = np.abs(mant * 2.0**e - w).max()
        assert err <= 2.0**e  # mixed sign: one LSB of the 7-bit magnitude (×2)


def test_forced_zero_exponent_counts_clipped_weights():
    w = np.array([[1000.0, -3.0, 2.0]])
    mant, e, clipped = quantize_weights(w, fixed_exp=0)
    assert e == 0 and clipped == 1 and mant.max() == 254


def test_decays_thresholds_and_scales():
    ones = np.ones(3, np.float32)
    g = load(nir.NIRGraph(nodes={
        "in": nir.Input(input_type=np.array([2])),
        "fc": nir.Linear(weight=np.full((3, 2), 2.0, np.float32)),
        "cuba": nir.CubaLIF(tau_syn=ones * 4e-3, tau_mem=ones * 8e-3, r=ones, v_leak=0 * ones,
                            v_threshold=np.array([0.5, 1.0, 2.0], np.float32), v_reset=0 * ones, w_in=ones),
        "out": nir.Output(output_type=np.array([3]))}, edges=[("in", "fc"), ("fc", "cuba"), ("cuba", "out")]), dt=DT)
    prog = quantize(g)
    p = prog.pop("cuba")
    assert p.du == round(0.25 * 4096) - 1 and p.dv == round(0.125 * 4096)
    # per-neuron thresholds become per-neuron scales: scale·θ = vth << 6 for every neuron
    np.testing.assert_allclose(p.scale * np.array([0.5, 1.0, 2.0]), 64 * p.vth)
    rep = prog.report["layers"]["cuba"]
    assert rep["du_error"] < 1 / 4096 and rep["dv_error"] < 1 / 4096
    json.dumps(prog.report)


def test_report_per_layer_is_json_and_complete():
    prog = quantize(dense_net(2))
    rep = json.loads(json.dumps(prog.report))
    assert set(rep["layers"]) == {p.name for p in prog.populations}
    for layer in rep["layers"].values():
        for key in ("du", "dv", "vth", "bias_clipped", "dv_error", "synapses"):
            assert key in layer
        for syn in layer["synapses"].values():
            for key in ("weight_exp", "rms_weight_error", "clipped_weights", "sign_mode"):
                assert key in syn
            assert syn["relative_rms_weight_error"] < 0.02


def test_weight_exp_modes():
    g = recurrent_net(26)
    auto = quantize(g)
    zero = quantize(g, weight_exp="zero")
    assert all(s.weight_exp == 0 for s in zero.synapses)
    # auto never loses precision against "zero"
    for a, z in zip(auto.synapses, zero.synapses):
        ea = np.abs(a.weights * 2.0**a.weight_exp - a.weights_f / 64).mean()
        ez = np.abs(z.weights * 2.0**z.weight_exp - z.weights_f / 64).mean()
        assert ea <= ez + 1e-9


def _unrolled(k, conv):
    """The (n_dst, n_src) matrix of torch's conv2d with kernel ``k`` and geometry ``conv``."""
    import torch

    n_src = int(np.prod(conv["in_shape"]))
    eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, *conv["in_shape"])
    out = torch.nn.functional.conv2d(eye, torch.as_tensor(k, dtype=torch.float64), stride=conv["stride"],
                                     padding=conv["padding"], dilation=conv["dilation"], groups=conv["groups"])
    return out.reshape(n_src, -1).T.numpy()


@pytest.mark.parametrize("geo", [
    dict(in_shape=[2, 5, 4], out_shape=[3, 5, 4], kernel=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1),
    dict(in_shape=[4, 7, 6], out_shape=[2, 3, 3], kernel=[3, 2], stride=[2, 2], padding=[0, 1], dilation=[1, 2], groups=2),
    dict(in_shape=[3, 6, 5], out_shape=[3, 3, 4], kernel=[2, 2], stride=[2, 1], padding=[0, 0], dilation=[1, 1], groups=3),
])
def test_conv_kernel_recovers_the_kernel_and_rejects_other_matrices(geo):
    rng = np.random.default_rng(0)
    k = rng.integers(-9, 10, (geo["out_shape"][0], geo["in_shape"][0] // geo["groups"], *geo["kernel"])).astype(float)
    m = _unrolled(k, geo)
    assert m.shape == (int(np.prod(geo["out_shape"])), int(np.prod(geo["in_shape"])))
    got = conv_kernel(m, geo)
    assert got is not None
    np.testing.assert_array_equal(_unrolled(got, geo), m)
    bad = m.copy()
    bad[np.unravel_index(np.flatnonzero(m)[3], m.shape)] += 1  # one position differs
    assert conv_kernel(bad, geo) is None
    bad = m.copy()
    bad[np.unravel_index(np.flatnonzero(m == 0)[0], m.shape)] = 1  # weight outside the taps
    assert conv_kernel(bad, geo) is None


def test_conv_geometry_kept_in_program_and_saved(tmp_path):
    g = conv_stack_net(1, "pool-conv")
    prog = quantize(g)
    geo = {s.name: s.conv for s in prog.synapses}
    assert geo["conv1"]["kernel"] == [3, 3] and geo["conv1"]["padding"] == [1, 1]
    # SumPool 2 then conv 3×3 p1: one 6×6 conv, stride 2, padding 2, the conv's groups
    assert geo["conv2"] == {"in_shape": [4, 8, 6], "out_shape": [4, 4, 3], "kernel": [6, 6], "stride": [2, 2],
                            "padding": [2, 2], "dilation": [1, 1], "groups": 2}
    assert geo["fc"] is None  # flatten + Linear: a matrix
    assert prog.report["layers"]["lif2"]["synapses"]["conv2"]["convolution"] is True
    prog.save(tmp_path)
    back = LoihiProgram.load(tmp_path)
    assert [s.conv for s in back.synapses] == [s.conv for s in prog.synapses]
    json.dumps(prog.to_arrays()[0])


def test_conv_geometry_only_where_the_matrix_is_one_convolution():
    # odd height: the pooling drops the last row, the composed conv would read it
    prog = quantize(conv_stack_net(1, "odd-pool"))
    assert {s.name: s.conv is not None for s in prog.synapses} == {"conv1": True, "conv2": False, "fc": False}
    # per-position thresholds give per-position weights into lif1: no single kernel
    prog = quantize(conv_stack_net(1, "pool-conv", per_position=True))
    assert {s.name: s.conv is not None for s in prog.synapses} == {"conv1": False, "conv2": True, "fc": False}
