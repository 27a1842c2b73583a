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


def _by_matrix(prog, value) -> dict:
    """{synapse name without the ':exc'/':inh' suffix of weight_sign='split': value(s)}, both
    halves of a split matrix asserted equal."""
    out = {}
    for s in prog.synapses:
        if s.src == BIAS_NEURON:
            continue
        v, key = value(s), s.name.split(":")[0]
        assert out.get(key, v) == v, (s.name, v, out[key])
        out[key] = v
    return out


def test_conv_geometry_kept_in_program_and_saved(tmp_path):
    g = conv_stack_net(1, "pool-conv")
    prog = quantize(g)
    geo = _by_matrix(prog, lambda s: s.conv)
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
    assert _by_matrix(prog, lambda s: s.conv is not None) == {"conv1": True, "conv2": False, "fc": False}
    # per-position thresholds give per-position weights into lif1: no single kernel
    prog = quantize(conv_stack_net(1, "pool-conv", per_position=True))
    assert _by_matrix(prog, lambda s: s.conv is not None) == {"conv1": False, "conv2": True, "fc": False}


# ---------------------------------------------------------------------------------------
# issue 11: synaptic biases into decaying currents, equal lags, loops
from loihi_exact_nets import biased_cuba_net, loop_net, skip_net, skip_only_net, spikes  # noqa: E402

from neurodeploy.errors import InputError, UnsupportedError  # noqa: E402
from neurodeploy.targets.loihi.quantize import BIAS_NEURON  # noqa: E402
from neurodeploy.targets.loihi.target import EmulatorTarget  # noqa: E402


def _shift(x: np.ndarray, k: int, e: int) -> np.ndarray:
    return x << e if e >= 0 else x >> -e  # Lava: arithmetic shift of the accumulated input


def _trunc_decay(x: np.ndarray, keep: int) -> np.ndarray:
    p = x * keep
    return np.sign(p) * (np.abs(p) >> 12)


def _lava_model(prog, x: np.ndarray, bias_from: dict[str, int]):
    """Lava's fixed-point LIF/Dense equations for a feed-forward program, written out with
    the bias as a constant ``B`` added to a_in at every step t ≥ ``bias_from[pop]`` — no
    bias neuron. Returns {pop: (spikes (T, n), v (T, n))} (24-bit wrap not modelled: the
    nets are small)."""
    T = x.shape[0]
    spk = {next(iter(prog.inputs)): x.astype(np.int64)}
    out = {}
    for p in prog.populations:
        if p.role == "bias":
            continue
        syn = [s for s in prog.incoming(p.name) if s.src != BIAS_NEURON]
        B = sum((s.weights[:, 0].astype(np.int64) << s.weight_exp for s in prog.incoming(p.name) if s.src == BIAS_NEURON),
                np.zeros(p.n, np.int64))
        u, v = np.zeros(p.n, np.int64), np.zeros(p.n, np.int64)
        S, V = np.zeros((T, p.n), np.int64), np.zeros((T, p.n), np.int64)
        for t in range(T):
            a = np.zeros(p.n, np.int64)
            for s in syn:
                d = s.delays if s.delays is not None else np.zeros(s.weights.shape, np.int64)
                for k in np.unique(d):
                    if t - 1 - k >= 0:
                        a += _shift(np.where(d == k, s.weights, 0) @ spk[s.src][t - 1 - k], 0, s.weight_exp)
            if t >= bias_from[p.name]:
                a += B
            u = _trunc_decay(u, 4095 - p.du) + (a << 6)
            v = _trunc_decay(v, 4096 - p.dv) + u + (p.bias_mant << p.bias_exp)
            v = np.clip(v, -(2**23 - 1), 2**23 - 1)
            s_t = (v > (p.vth << 6)) if p.spiking else np.zeros(p.n, bool)
            v[s_t] = 0
            S[t], V[t] = s_t, v
        spk[p.name] = S
        out[p.name] = (S, V)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synaptic_bias_into_cubalif_is_a_constant_into_u_from_the_lag_on(seed):
    """The bias neuron (spikes at every step from step 0) through a synapse with delay
    lag − 1 equals, step by step, Lava's equations with the bias added to u at exactly the
    steps t ≥ lag at which the layer runs NIR's steps 0, 1, …: no bias before the lag (no
    transient), and at every step from it on — checked against that model written out."""
    g = biased_cuba_net(seed)
    prog = EmulatorTarget().compile(g)
    lag = prog.describe()["lag"]
    assert prog.populations[0].role == "bias" and prog.populations[0].name == BIAS_NEURON
    for name in ("n0", "n1", "ro"):  # every decaying current gets its bias through the bias neuron
        bsyn = [s for s in prog.incoming(name) if s.src == BIAS_NEURON]
        assert bsyn and all(s.max_delay == lag[name] - 1 and s.lag_delay == lag[name] - 1 for s in bsyn)
        assert not prog.pop(name).bias_mant.any()
        assert prog.report["layers"][name]["bias"]["start_step"] == lag[name]
    for driven, x in ((True, spikes(seed, 1, 30, 8)[0]), (False, np.zeros((30, 8), np.float32))):
        model = _lava_model(prog, x, bias_from=lag)  # with input, and the bias alone
        res = prog.run(x[None], record="all", record_states=True)
        for name, (S, V) in model.items():
            p = prog.pop(name)
            if p.spiking:
                np.testing.assert_array_equal(res.records[name][0].numpy(), S, err_msg=name)
            np.testing.assert_array_equal(res.states[name][0].numpy(), (V / p.scale).astype(np.float32), err_msg=name)
            assert not V[: lag[name]].any(), f"{name}: state moved before its lag"
        if driven:
            assert model["n0"][0].sum() > 0 and model["n1"][0].sum() > 0, "no spikes: the check would be vacuous"
        else:
            assert all(model[n][1][lag[n]:].any() for n in ("n0", "n1", "ro")), "the bias moved no state"


def test_bias_gets_the_precision_of_lavas_v_bias():
    """The bias synapses sum to the rounded integer bias exactly (a_in units, the
    resolution of bias_mant << 6 in v), even for biases beyond one 8-bit mantissa."""
    from neurodeploy.targets.loihi.quantize import _bias_split

    B = np.array([0, 1, -1, 255, -255, 256, 4095, -4096, 32767, -1000, 77])
    parts, clipped = _bias_split(B, zero_exp=False)
    assert clipped == 0
    got = sum(m.astype(np.int64) << e for m, e in parts)
    np.testing.assert_array_equal(got, B)
    for m, e in parts:  # one sign per synapse: excitatory/inhibitory 8-bit mantissas, as Lava stores them
        assert np.all(m >= 0) or np.all(m <= 0)
        np.testing.assert_array_equal(lava_weights(m), m)
    parts, clipped = _bias_split(np.array([300, 600, -10]), zero_exp=True)
    assert all(e == 0 for _, e in parts) and clipped == 1  # 600 > 255 + 255 at exponent 0


def test_bias_option_synapse_routes_every_bias_and_auto_keeps_lavas_v_bias():
    from loihi_nets import dense_net

    g = dense_net(3, kinds=("LIF", "LIF"), readout="LI")  # Affine biases into LIF (u cleared each step)
    auto = EmulatorTarget().compile(g)
    assert all(p.role != "bias" for p in auto.populations) and auto.pop("n0").bias_mant.any()
    syn = EmulatorTarget().compile(g, bias="synapse")
    assert syn.populations[0].role == "bias"
    assert not syn.pop("n0").bias_mant.any() and not syn.pop("n1").bias_mant.any()
    assert syn.options["bias"] == "synapse" and syn.describe()["compile_options"]["bias"] == "synapse"
    with pytest.raises(InputError, match="bias must be"):
        EmulatorTarget().compile(g, bias="u")


def test_skip_connections_lag_equally_and_are_exact_shifts():
    """Paths of depth 1, 2 and 3 into n2: compile delays the short ones so that every node
    has one integer lag; with the long paths' weights zero, n2 and the readout are exactly
    the skip-only net's, 2 steps later (the same integers, only the lag differs)."""
    g = skip_net(4)
    prog = EmulatorTarget().compile(g)
    lag = prog.describe()["lag"]
    assert lag == {"n0": 1, "n1": 2, "n2": 3, "ro": 4, "out": 4}
    assert all(isinstance(v, int) for v in lag.values())
    pad = _by_matrix(prog, lambda s: s.lag_delay)
    assert pad == {"fc0": 0, "fc1": 0, "fc2": 0, "skip": 2, "res": 1, "fco": 0}
    assert prog.report["lags"] == {k: v for k, v in lag.items() if k != "out"} | {"in": 0}
    zero, alone = EmulatorTarget().compile(skip_net(4, long_path=False)), EmulatorTarget().compile(skip_only_net(4))
    x = spikes(5, 4, 30, 8, p=0.4)
    a = zero.run(np.concatenate([x, np.zeros((4, 4, 8), np.float32)], 1), record="all", record_states=True)
    b = alone.run(np.concatenate([x, np.zeros((4, 2, 8), np.float32)], 1), record="all", record_states=True)
    for n in ("n2", "ro"):
        assert torch_equal(a.records[n][:, 2:], b.records[n]), n
        assert torch_equal(a.states[n][:, 2:], b.states[n]), n
        assert not a.records[n][:, :2].any()
    assert float(b.records["n2"].sum()) > 0


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_lag_equalization_beyond_max_delay_is_refused_naming_the_node():
    g = skip_net(4)
    with pytest.raises(UnsupportedError, match=r"node 'n2'.*'in'.*delay of 2 steps.*max_delay"):
        quantize(g, max_delay=1, profile="tiny")
    with pytest.raises(UnsupportedError, match=r"node 'n1': its bias must start at step 2.*max_delay \(0\)"):
        quantize(biased_cuba_net(0), max_delay=0, profile="tiny")
    quantize(g, max_delay=3, profile="tiny")  # the readout's bias starts at step 4: delay 3, at the limit


def test_loop_through_two_layers_is_refused_unless_allowed():
    g = loop_net(6)
    with pytest.raises(UnsupportedError, match=r"loop a → b → a: .* 2 steps around it instead of NIR's 1 "
                                               r"\(1 extra step\(s\), back edge 'back'\).*allow_loop_delay=True"):
        EmulatorTarget().compile(g)
    prog = EmulatorTarget().compile(g, allow_loop_delay=True)
    loops = [{"loop": ["a", "b", "a"], "synapse": "back", "extra_delay": 1, "loihi_delay": 2, "nir_delay": 1}]
    assert prog.report["loops"] == loops
    assert prog.describe()["quantization"]["loops"] == loops
    assert prog.describe()["compile_options"]["allow_loop_delay"] is True
    res = prog.run(spikes(0, 2, 10, 8))
    assert res.info["loop_delays"] == loops
    assert res.info["lag"] == {"a": 1, "b": 2, "ro": 3, "out": 3}


def test_self_loops_keep_nirs_delay_and_are_not_refused():
    prog = EmulatorTarget().compile(biased_cuba_net(1, recurrent=True))
    assert prog.report["loops"] == [] and "loop_delays" not in prog.run(spikes(0, 1, 5, 8)).info
    rec = [s for s in prog.synapses if s.name.split(":")[0] == "rec"]
    assert rec and all(r.src == r.dst == "n1" and r.delays is None for r in rec)  # one step, as in NIR


def test_bias_neuron_and_lag_delays_survive_save_and_load(tmp_path):
    prog = EmulatorTarget().compile(skip_net(2))
    prog.save(tmp_path)
    back = EmulatorTarget.load(tmp_path)
    assert [p.role for p in back.populations] == [p.role for p in prog.populations]
    assert [s.lag_delay for s in back.synapses] == [s.lag_delay for s in prog.synapses]
    assert back.describe()["lag"] == prog.describe()["lag"]
    x = spikes(1, 2, 12, 8)
    assert torch_equal(back.run(x).outputs["out"], prog.run(x).outputs["out"])


def test_netx_export_refuses_a_bias_neuron(tmp_path):
    from neurodeploy.targets.loihi.netx import export_netx

    prog = EmulatorTarget().compile(biased_cuba_net(0), weight_exp="zero")
    with pytest.raises(UnsupportedError, match=r"netx: population\(s\) n0, n1, ro take their bias through"):
        export_netx(prog, tmp_path / "m.net")


def test_weight_sign_split_keeps_the_synapses_and_gains_a_bit():
    """A mixed-sign matrix becomes an excitatory and an inhibitory synapse holding the same
    nonzero connections; each mantissa may be odd (Lava's mixed mode keeps only even ones),
    so the weight error is at most half a unit of the exponent instead of one."""
    g = biased_cuba_net(3)
    mixed, split = quantize(g, max_delay=63, weight_sign="mixed"), quantize(g, max_delay=63, weight_sign="split")
    checked = 0
    for s in mixed.synapses:
        if s.src == BIAS_NEURON or sign_of(s) != "mixed":
            continue
        checked += 1
        exc, inh = (next(t for t in split.synapses if t.name == s.name + suf) for suf in (":exc", ":inh"))
        assert exc.weights.min() >= 0 and inh.weights.max() <= 0
        assert np.array_equal((exc.weights != 0) | (inh.weights != 0), s.weights_f != 0)
        assert np.all(s.weights % 2 == 0) and (np.any(exc.weights % 2) or np.any(inh.weights % 2))
        for t in (exc, inh):
            err = np.abs(t.weights * 2.0**t.weight_exp - t.weights_f / 64)
            assert err.max() <= 0.5 * 2.0**t.weight_exp + 1e-9
    assert checked >= 2
    # the default ("auto") splits, except in the netx-compatible lowering (one matrix per netx layer)
    names = lambda p: [t.name for t in p.synapses]  # noqa: E731
    assert names(quantize(g, max_delay=63)) == names(split)
    assert split.report["options"]["weight_sign"] == "split"
    zero = quantize(g, max_delay=63, weight_exp="zero")
    assert names(zero) == names(quantize(g, max_delay=63, weight_exp="zero", weight_sign="mixed"))
    assert zero.report["options"]["weight_sign"] == "mixed" and not any(":" in n for n in names(zero))
    with pytest.raises(InputError, match="weight_sign must be"):
        quantize(g, weight_sign="both")


def sign_of(s) -> str:
    from neurodeploy.targets.loihi.quantize import sign_mode

    return sign_mode(s.weights)


def test_compile_cli_refuses_a_loop_unless_allow_loop_delay(tmp_path, capsys):
    from neurodeploy.cli import main
    from neurodeploy.graph import save

    save(loop_net(6), tmp_path / "loop.nir")
    rc = main(["compile", str(tmp_path / "loop.nir"), "--dt", "1e-3", "-o", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: loop a → b → a") and "--allow-loop-delay" in err
    rc = main(["compile", str(tmp_path / "loop.nir"), "--dt", "1e-3", "-o", str(tmp_path / "b"), "--allow-loop-delay"])
    out = capsys.readouterr().out
    assert rc == 0 and "loop a → b → a: 2 steps on Loihi, NIR's 1 (1 extra)" in out
    q = json.loads((tmp_path / "b" / "quantization.json").read_text())
    assert q["loops"][0]["extra_delay"] == 1 and q["options"]["allow_loop_delay"] is True


def test_a_bias_that_leads_the_lagged_input_is_said_not_silent():
    """Lava's bias acts from step 0 while a layer's input arrives at its lag: compile says
    which layers and by how many steps; bias="synapse" starts the bias at the lag (no warning)."""
    g = load(Path(__file__).resolve().parents[1] / "examples" / "models" / "digits_snn.nir")
    with pytest.warns(UserWarning, match=r"Lava's bias acts from step 0, ahead of the lagged input of '1' \(1 step"):
        prog = EmulatorTarget().compile(g)
    assert prog.report["early_bias"] == {n: prog.report["lags"][n] for n in prog.report["early_bias"]}
    assert all(v > 0 for v in prog.report["early_bias"].values()) and prog.describe()["quantization"]["early_bias"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EmulatorTarget().compile(g, bias="synapse").report["early_bias"] == {}
