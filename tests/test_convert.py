"""ANN → SNN conversion from ONNX, checked against onnxruntime (docs/convert.md)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import neurodeploy
from neurodeploy.convert import convert
from neurodeploy.errors import InputError, UnsupportedError

ROOT = Path(__file__).resolve().parents[1]
T_REF = 32  # the documented T of the digits CNN (docs/convert.md)


def _examples():
    spec = importlib.util.spec_from_file_location("convert_models", ROOT / "examples" / "convert_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The digits CNN and residual net, trained here (seeded, a few seconds) and exported."""
    torch.set_num_threads(1)
    return _examples().build(tmp_path_factory.mktemp("convert"), seed=0)


def _acc(pred, y):
    return float((np.asarray(pred).reshape(-1) == y).mean())


# ---- the accuracy criteria ------------------------------------------------------
def test_digits_cnn_reference_within_one_point_of_onnxruntime(nets):
    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"], steps=T_REF)
    x, y = nets["x_test"], nets["y_test"]
    ann = _acc(conv.ann(x).argmax(1), y)
    snn = _acc(conv.predict(conv.run(x)), y)
    assert ann > 0.9  # the ANN itself learned the task
    assert snn >= ann - 0.01, (snn, ann)


def test_digits_cnn_loihi_within_two_points_of_onnxruntime(nets):
    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"], steps=T_REF, reset="zero")
    x, y = nets["x_test"], nets["y_test"]
    ann = _acc(conv.ann(x).argmax(1), y)
    res = conv.run(x, target="loihi2-emu")
    assert res.target == "loihi2-emu" and res.steps == T_REF + conv.depth  # lag padded
    assert _acc(conv.predict(res), y) >= ann - 0.02


def test_residual_net_reference_and_loihi(nets):
    x, y = nets["x_test"], nets["y_test"]
    sub = convert(nets["paths"]["digits_resnet"], nets["x_train"], steps=64)
    ann = _acc(sub.ann(x).argmax(1), y)
    assert any(type(n).__name__ == "Scale" for n in sub.graph.nodes.values())  # the skip branch
    assert _acc(sub.predict(sub.run(x)), y) >= ann - 0.01
    zero = convert(nets["paths"]["digits_resnet"], nets["x_train"], steps=32, reset="zero")
    assert _acc(zero.predict(zero.run(x, target="loihi2-emu")), y) >= ann - 0.02


def test_rram_ideal_devices_reproduce_the_reference(nets):
    from neurodeploy.targets.rram.device import DeviceConfig

    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"], steps=16)
    x = nets["x_test"][:40]
    ref = conv.run(x)
    rram = conv.run(x, target="rram", config=DeviceConfig().ideal())
    out = conv.graph.outputs[0]
    assert torch.allclose(ref.outputs[out], rram.outputs[out], rtol=1e-4, atol=1e-4)
    noisy = conv.run(x, target="rram")  # default 40 nm profile: runs, counts crossbar reads
    assert any("cell_reads" in c for c in noisy.counts.values())


def test_loihi_refuses_reset_by_subtraction(nets):
    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"][:64], steps=8)
    with pytest.raises(UnsupportedError, match="reset='zero'"):
        conv.run(nets["x_test"][:2], target="loihi2-emu")


def test_saved_graph_loads_and_runs_the_same(nets, tmp_path):
    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"][:128], steps=8)
    path = conv.save(tmp_path / "cnn.nir")
    g = neurodeploy.load(path)
    assert g.dt == conv.graph.dt and g.reset == "subtract"
    xe = conv.encode(nets["x_test"][:8])
    a = neurodeploy.run(conv.graph, xe).outputs
    b = neurodeploy.run(g, xe).outputs
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- encodings -------------------------------------------------------------------------
def test_encodings(nets):
    x = nets["x_train"][:16]
    conv = convert(nets["paths"]["digits_cnn"], x, steps=20)
    xe = conv.encode(x)
    assert xe.shape == (16, 20, 1, 8, 8) and set(np.unique(xe.numpy())) <= {0.0, 1.0}
    # regular code: round(T·p) spikes per pixel
    p = np.clip(x / conv.input_scale, 0, 1)
    assert np.array_equal(xe.sum(1).numpy(), np.floor(20 * p + 0.5))
    graded = convert(nets["paths"]["digits_cnn"], x, steps=4, encoding="graded", reset="zero")
    assert torch.equal(graded.encode(x)[:, 3], torch.as_tensor(x))
    with pytest.raises(UnsupportedError, match="binary spikes"):
        graded.compile("loihi2-emu")


# ---- one small model per supported op --------------------------------------------------
def _w(*shape, seed=0):
    return np.random.default_rng(seed).normal(0, 1 / np.sqrt(np.prod(shape[1:]) or 1), shape)


def _relu(i, o):
    from onnx import helper

    return helper.make_node("Relu", [i], [o], name=f"relu_{o}")


def _gemm_head(i, n_in, n_out, out="y", seed=9):
    from onnx import helper

    return [helper.make_node("Gemm", [i, f"W_{out}", f"b_{out}"], [out], name=f"gemm_{out}", transB=1)], \
        {f"W_{out}": _w(n_out, n_in, seed=seed), f"b_{out}": np.linspace(-0.1, 0.1, n_out)}


def _conv(i, o, cin, cout, **attrs):
    from onnx import helper

    return helper.make_node("Conv", [i, f"W_{o}", f"b_{o}"], [o], name=f"conv_{o}", **attrs), \
        {f"W_{o}": _w(cout, cin // attrs.get("group", 1), 3, 3, seed=len(o)), f"b_{o}": np.linspace(-0.1, 0.1, cout)}


def _cases():
    from onnx import helper as h

    cases = {}
    # Gemm alone, transB = 0 with alpha/beta, into a ReLU layer and a Gemm readout
    n, hd = _gemm_head("h", 6, 5, "y")
    cases["gemm"] = ([h.make_node("Gemm", ["x", "W1", "b1"], ["a"], name="g1", alpha=0.7, beta=2.0), _relu("a", "r"),
                      h.make_node("Identity", ["r"], ["h"], name="id"), *n],
                     {"W1": _w(6, 12).T, "b1": np.linspace(-0.2, 0.2, 6), **hd}, (12,), (5,))
    # MatMul + Add (bias folded)
    n, hd = _gemm_head("h", 7, 4, "y")
    cases["matmul_add"] = ([h.make_node("MatMul", ["x", "W1"], ["m"], name="mm"), h.make_node("Add", ["m", "b1"], ["a"], name="bias"),
                            _relu("a", "h"), *n], {"W1": _w(7, 12).T, "b1": np.linspace(-0.3, 0.3, 7), **hd}, (12,), (4,))
    # Conv with stride, padding, groups and dilation; Flatten; Clip(0, a) as ReLU
    c1, w1 = _conv("x", "c1", 2, 4, strides=[2, 2], pads=[1, 1, 1, 1], group=2)
    c2, w2 = _conv("r1", "c2", 4, 4, pads=[2, 2, 2, 2], dilations=[2, 2])
    n, hd = _gemm_head("f", 64, 3, "y")
    cases["conv_clip_flatten"] = ([c1, h.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="clip"), c2, _relu("c2", "r2"),
                                   h.make_node("Flatten", ["r2"], ["f"], name="flat", axis=1), *n],
                                  {**w1, **w2, "lo": np.float32(0), "hi": np.float32(0.3), **hd}, (2, 8, 8), (3,))
    # BatchNormalization after Conv and after Gemm; AveragePool with padding (both divisors);
    # GlobalAveragePool; Reshape as flatten
    c1, w1 = _conv("x", "c1", 1, 3, pads=[1, 1, 1, 1])
    bn = {"g": [1.5, 0.5, 1.0], "be": [0.1, -0.2, 0.0], "mu": [0.05, 0.0, -0.1], "var": [0.5, 2.0, 1.0]}
    n, hd = _gemm_head("rg", 3, 4, "y")
    cases["bn_pools_reshape"] = ([c1, h.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["b1"], name="bn"), _relu("b1", "r1"),
                                  h.make_node("AveragePool", ["r1"], ["p1"], name="avg_excl", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
                                  h.make_node("AveragePool", ["p1"], ["p2"], name="avg_incl", kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
                                  h.make_node("GlobalAveragePool", ["p2"], ["gp"], name="gap"),
                                  h.make_node("Reshape", ["gp", "shape"], ["rg"], name="reshape"), *n],
                                 {**w1, **bn, "shape": np.array([-1, 3], np.int64), **hd}, (1, 6, 6), (4,))
    # residual Add (scales differ: ReLU output + conv output) and channel Concat into a conv
    c1, w1 = _conv("x", "c1", 1, 2, pads=[1, 1, 1, 1])
    c2, w2 = _conv("r1", "c2", 2, 2, pads=[1, 1, 1, 1])
    c3, w3 = _conv("cat", "c3", 4, 2, pads=[1, 1, 1, 1])
    n, hd = _gemm_head("fcat", 64, 3, "y")  # a Concat of flattened layers into a Gemm, too
    cases["add_concat"] = ([c1, _relu("c1", "r1"), c2, h.make_node("Add", ["r1", "c2"], ["s"], name="residual"), _relu("s", "r2"),
                            h.make_node("Concat", ["r1", "r2"], ["cat"], name="cat", axis=1), c3, _relu("c3", "r3"),
                            h.make_node("Flatten", ["r3"], ["f"], name="flat"), h.make_node("Flatten", ["r1"], ["f1"], name="flat1"),
                            h.make_node("Concat", ["f", "f1"], ["fcat"], name="cat2", axis=1), *n],
                           {**w1, **w2, **w3, **hd}, (1, 4, 4), (3,))
    return cases


CASES = ("gemm", "matmul_add", "conv_clip_flatten", "bn_pools_reshape", "add_concat")


@pytest.mark.parametrize("case", CASES)
def test_each_supported_op_matches_onnxruntime(case, tmp_path):
    nodes, inits, ins, outs = _cases()[case]
    path = _onnx(tmp_path, nodes, inits, ins, outs, case)
    x = np.random.default_rng(1).uniform(0, 1, (64, *ins)).astype(np.float32)
    # percentile 100: no calibration sample saturates, so the rate network *is* the ANN there
    conv = convert(path, x, steps=8, percentile=100)
    ort = conv.ann(x)
    assert conv.check_error < 1e-5
    np.testing.assert_allclose(conv.saturated_ann(x), ort, rtol=1e-4, atol=1e-4 * np.abs(ort).max())
    # the SNN converges to it: the error shrinks as T grows
    err = [np.abs(conv.logits(conv.run(x, steps=T), T) - ort).mean() for T in (16, 256)]
    assert err[1] < err[0] / 2, err


def _onnx(tmp_path, nodes, inits, ins, outs, name):
    """A one-input, one-output opset-17 model; int64 initializers stay int64 (Reshape's shape)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors = [numpy_helper.from_array(v if np.asarray(v).dtype.kind == "i" else np.asarray(v, np.float32), k)
               for k, v in inits.items()]
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *ins])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *outs])], tensors)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_every_supported_op_has_a_case():
    from neurodeploy.convert.translate import SUPPORTED

    covered = {n.op_type for case in _cases().values() for n in case[0]}
    assert covered == set(SUPPORTED)


# ---- refusals --------------------------------------------------------------------------
def _unsupported(tmp_path, op="Sigmoid", **attrs):
    from onnx import helper

    n, hd = _gemm_head("s", 6, 3, "y")
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["a"], name="g1", transB=1),
             helper.make_node(op, ["a"], ["s"], name="the_bad_node", **attrs), *n]
    return _onnx(tmp_path, nodes, {"W1": _w(6, 12), "b1": np.zeros(6), **hd}, (12,), (3,), "bad")


def test_unsupported_op_names_op_and_node(tmp_path):
    path = _unsupported(tmp_path)
    with pytest.raises(UnsupportedError) as e:
        convert(path, np.random.default_rng(0).uniform(0, 1, (8, 12)))
    msg = str(e.value)
    assert "Sigmoid" in msg and "the_bad_node" in msg and "\n" not in msg


def test_maxpool_is_refused(tmp_path):
    from onnx import helper

    n, hd = _gemm_head("f", 4, 3, "y")
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], name="mp", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="fl"), *n]
    path = _onnx(tmp_path, nodes, hd, (1, 4, 4), (3,), "mp")
    with pytest.raises(UnsupportedError, match="MaxPool.*'mp'|'mp'.*MaxPool"):
        convert(path, np.random.default_rng(0).uniform(0, 1, (8, 1, 4, 4)))


def test_bad_inputs_are_input_errors(tmp_path, nets):
    p = nets["paths"]["digits_cnn"]
    with pytest.raises(InputError, match="expects"):
        convert(p, np.zeros((4, 64), np.float32))
    with pytest.raises(InputError, match="negative"):
        convert(p, -np.ones((4, 1, 8, 8), np.float32))
    with pytest.raises(InputError, match="steps"):
        convert(p, nets["x_train"][:4], steps=0)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        convert(bad, nets["x_train"][:4])


def test_cli_convert_and_errors(tmp_path, nets):
    from neurodeploy.cli import main

    cal = tmp_path / "cal.npz"
    np.savez(cal, x=nets["x_train"][:200], y=nets["y_train"][:200])
    out, enc = tmp_path / "cnn.nir", tmp_path / "enc.npz"
    assert main(["-q", "convert", str(nets["paths"]["digits_cnn"]), "--calibration", str(cal), "--steps", "8",
                 "-o", str(out), "--write-input", str(enc)]) == 0
    assert neurodeploy.load(out).reset == "subtract"
    with np.load(enc) as d:
        assert d["x"].shape == (200, 8, 1, 8, 8) and np.array_equal(d["y"], nets["y_train"][:200])
    x12 = tmp_path / "x12.npz"
    np.savez(x12, x=np.random.default_rng(0).uniform(0, 1, (8, 12)))
    bad_out = tmp_path / "bad.nir"
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "neurodeploy", "convert", str(_unsupported(tmp_path)), "--calibration",
                        str(x12), "-o", str(bad_out)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "Sigmoid" in r.stderr
    assert "Traceback" not in r.stderr and not bad_out.exists() and not list(tmp_path.glob("bad.nir*"))


def test_public_api_name_is_callable_before_and_after_import(nets):
    import neurodeploy.convert as module

    assert callable(neurodeploy.convert) and callable(module)
    conv = module(nets["paths"]["digits_cnn"], nets["x_train"][:32], steps=4)
    assert type(conv).__name__ == "Conversion" and conv.steps == 4


def test_lava_runs_the_loihi_conversion_like_the_emulator(nets):
    pytest.importorskip("lava")
    conv = convert(nets["paths"]["digits_cnn"], nets["x_train"][:256], steps=8, reset="zero")
    x = nets["x_test"][:1]
    emu, lava = conv.run(x, target="loihi2-emu"), conv.run(x, target="lava")
    out = conv.graph.outputs[0]
    assert torch.equal(emu.outputs[out].float(), lava.outputs[out].float())


def test_example_sweep_quick_mode(capsys):
    spec = importlib.util.spec_from_file_location("convert_digits", ROOT / "examples" / "convert_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick"]) == 0
    text = capsys.readouterr().out
    assert "| 32 |" in text and "loihi2-emu acc" in text and "ANN (onnxruntime)" in text


def test_balancing_brings_every_layer_rate_to_the_rate_network(nets):
    """balance.py's claim: per IF layer, the SNN's mean rate on the calibration samples moves
    to the rate network's (here on the reset-to-zero residual net, where it is far off)."""
    import nir

    from neurodeploy.convert.check import rate_ann
    from neurodeploy.targets.reference import ReferenceProgram

    x = nets["x_train"][:256]
    plain = convert(nets["paths"]["digits_resnet"], x, steps=16, reset="zero", balance=False)
    bal = convert(nets["paths"]["digits_resnet"], x, steps=16, reset="zero")
    xr = torch.as_tensor(np.clip(x / plain.input_scale, 0, 1), dtype=torch.float64)
    target = rate_ann(plain.graph, xr, plain.clip_rate, saturate=True, every=True)
    layers = [n for n in plain.graph.order if isinstance(plain.graph.nodes[n], nir.IF)]
    assert set(bal.balance) == set(layers)
    err = {}
    for name, conv in (("plain", plain), ("balanced", bal)):
        rec = ReferenceProgram(conv.graph).run(conv.encode(x), record=layers).records
        err[name] = [abs(float(rec[n].mean()) - float(target[n].mean())) for n in layers]
    assert all(b < p for b, p in zip(err["balanced"], err["plain"])), err


def test_torch_view_flatten_shape_arithmetic_is_folded(tmp_path):
    """``x.view(x.size(0), -1)`` with a dynamic batch exports Shape → Gather → Unsqueeze →
    Concat → Reshape: folded to a flatten, the result still equals onnxruntime."""
    from torch import nn

    class ViewNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 6 * 6, 3)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).view(x.size(0), -1))

    torch.manual_seed(0)
    path = tmp_path / "view.onnx"
    torch.onnx.export(ViewNet().eval(), torch.zeros(1, 1, 8, 8), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=17)
    x = np.random.default_rng(0).uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
    conv = convert(path, x, steps=8, percentile=100)
    assert {"Shape", "Gather", "Unsqueeze"} <= {n.op_type for n in conv.model.proto.graph.node}
    np.testing.assert_allclose(conv.saturated_ann(x), conv.ann(x), rtol=1e-4, atol=1e-5)


def test_gather_of_data_is_refused(tmp_path):
    from onnx import helper

    n, hd = _gemm_head("s", 4, 3, "y")
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["a"], name="g1", transB=1),
             helper.make_node("Gather", ["a", "idx"], ["s"], name="the_bad_node", axis=1), *n]
    path = _onnx(tmp_path, nodes, {"W1": _w(6, 12), "b1": np.zeros(6), "idx": np.array([0, 2, 3, 5], np.int64), **hd},
                 (12,), (3,), "gather")
    with pytest.raises(UnsupportedError, match="the_bad_node"):
        convert(path, np.random.default_rng(0).uniform(0, 1, (8, 12)))
