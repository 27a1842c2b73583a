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
from loihi_nets import DT, dense_net, recurrent_net  # noqa: E402

from neurodeploy.graph import load  # noqa: E402
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
