"""netx (.net) export: the file loads in lava-dl's own reader and runs bit-identically to
the emulator; importing it gives back the same integers. Convolutions are written as netx
conv layers (kernel + geometry), never unrolled."""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import DT, _conv, _neuron, conv_net, conv_stack_net, delay_net, dense_net, recurrent_net, spikes  # noqa: E402,E501

from neurodeploy.errors import UnsupportedError  # noqa: E402
from neurodeploy.graph import load  # noqa: E402
from neurodeploy.targets.loihi.emulator import EmulatorTarget  # noqa: E402
from neurodeploy.targets.loihi.netx import export_netx, read_netx  # noqa: E402
from neurodeploy.targets.loihi.program import Synapse  # noqa: E402

try:
    import lava.lib.dl.netx.hdf5  # noqa: F401

    HAVE_NETX = True
except Exception:  # pragma: no cover
    HAVE_NETX = False

NETS = {
    "cuba-lif-lif": lambda: dense_net(0, kinds=("CubaLIF", "LIF"), readout="LIF"),
    "recurrent": lambda: recurrent_net(21),
    "delay-pre": lambda: delay_net(30),
    "delay-post": lambda: delay_net(31, where="post"),
    "if-bias-li": lambda: dense_net(2, kinds=("IF", "LIF"), readout="LI"),
}


def biased_conv_net(seed: int = 0):
    """in (2, 6, 7) → conv 4@3×2 stride (1, 2) pad (1, 0), biased → LIF with per-position
    v_leak (a per-neuron bias) → conv 4@2×2 pad 1 dilation 2 groups 2, biased → IF (a
    per-channel bias) → flatten → dense → LI."""
    import nir

    rng = np.random.default_rng(seed)
    conv1 = _conv(rng, 4, 2, (3, 2), stride=(1, 2), padding=(1, 0), input_shape=(6, 7))
    conv1.bias = rng.normal(0.3, 0.3, 4).astype(np.float32)
    lif1 = _neuron("LIF", (4, 6, 3), rng)
    lif1.v_leak = rng.uniform(-0.3, 0.5, (4, 6, 3)).astype(np.float32)
    conv2 = _conv(rng, 4, 4, 2, padding=1, dilation=2, groups=2, input_shape=(6, 3), gain=3.0)
    conv2.bias = rng.normal(0.0, 0.5, 4).astype(np.float32)
    nodes = {"in": nir.Input(input_type=np.array([2, 6, 7])), "conv1": conv1, "lif1": lif1, "conv2": conv2,
             "if2": _neuron("IF", (4, 6, 3), rng),
             "flat": nir.Flatten(input_type={"input": np.array([4, 6, 3])}, start_dim=0, end_dim=-1),
             "fc": nir.Linear(weight=(rng.normal(0.3, 0.7, (3, 72)) * 2).astype(np.float32)),
             "ro": _neuron("LI", 3, rng), "out": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    return load(nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False), dt=DT)


CONV_NETS = {
    "conv-pool": lambda: conv_net(10),  # conv layer, then pool+flatten+fc folded into one dense layer
    "pool-conv": lambda: conv_stack_net(0, "pool-conv"),  # pool∘conv one kernel (stride 2), groups 2
    "strided": lambda: conv_stack_net(0, "strided"),  # the second conv feeds a flat population
    "pool-only": lambda: conv_stack_net(0, "pool-only"),  # the pooling is a depthwise kernel of ones
    "conv1d": lambda: conv_stack_net(0, "conv1d"),  # a netx conv over (C, 1, L)
    "biased": biased_conv_net,  # per-neuron and per-channel conv biases
}


def _compile_zero(g):
    with warnings.catch_warnings():  # biased_conv_net: Lava's bias leads the lagged input (a compile warning)
        warnings.simplefilter("ignore", UserWarning)
        return EmulatorTarget().compile(g, weight_exp="zero")


def _same_integers(a, b):
    assert [(p.du, p.dv, p.vth, p.spiking) for p in a.populations] == [(p.du, p.dv, p.vth, p.spiking) for p in b.populations]
    for p, q in zip(a.populations, b.populations):
        np.testing.assert_array_equal(p.bias_mant, q.bias_mant)
    assert len(a.synapses) == len(b.synapses)
    for s, t in zip(a.synapses, b.synapses):
        assert s.is_kernel == t.is_kernel, s.name  # a kernel comes back as a kernel, with its geometry
        if s.is_kernel:
            np.testing.assert_array_equal(s.weights, t.weights)
            assert s.conv == t.conv
        else:
            np.testing.assert_array_equal(s.dense(), t.dense())
        assert s.weight_exp == t.weight_exp
        assert (s.delays is None) == (t.delays is None)
        if s.delays is not None:
            np.testing.assert_array_equal(np.where(s.dense() != 0, s.delays, 0), np.where(t.dense() != 0, t.delays, 0))


@pytest.mark.parametrize("name", [*NETS, *CONV_NETS])
def test_export_import_roundtrip(name, tmp_path):
    g = {**NETS, **CONV_NETS}[name]()
    prog = _compile_zero(g)
    path = export_netx(prog, tmp_path / "model.net")
    layers = read_netx(path)
    assert layers[0]["type"] == "input"
    back = load(path)  # graph.load dispatches .net to frontends.netx
    assert back.dt == pytest.approx(g.dt)
    prog2 = _compile_zero(back)
    _same_integers(prog, prog2)
    x = spikes(1, 2, 20, g.shapes[g.inputs[0]], p=0.4)
    (shape2,) = prog2.inputs.values()  # netx inputs are flat before a dense layer, (C, H, W) before a conv
    r1, r2 = prog.run(x, record="all"), prog2.run(x.reshape(2, 20, *shape2), record="all")
    total = 0
    for p, q in zip(prog.populations, prog2.populations):
        if p.spiking:
            assert torch.equal(r1.records[p.name].reshape(2, 20, -1), r2.records[q.name].reshape(2, 20, -1))
            total += int(r1.records[p.name].sum())
    assert total > 0


@pytest.mark.parametrize("name", list(CONV_NETS))
def test_conv_is_written_as_a_netx_conv_layer(name, tmp_path):
    """Each kernel synapse is one netx conv layer holding the kernel (torch layout) and its
    geometry; nothing is unrolled (every dense layer's weight is a synapse's own matrix),
    and a flatten layer sits between a conv layer and the dense layer it feeds."""
    prog = _compile_zero(CONV_NETS[name]())
    layers = [d for d in read_netx(export_netx(prog, tmp_path / "m.net")) if d["type"] not in ("input", "_dt")]
    kernels = [s for s in prog.synapses if s.is_kernel]
    conv = [d for d in layers if d["type"] == "conv"]
    assert len(conv) == len(kernels) > 0
    for d, s in zip(conv, kernels):
        np.testing.assert_array_equal(d["weight"], s.weights)
        assert list(d["shape"]) == s.conv["out_shape"] and int(d["groups"]) == s.conv["groups"]
        for key in ("stride", "padding", "dilation"):
            assert list(d[key]) == s.conv[key], key
    dense = [d for d in layers if d["type"] == "dense"]
    assert [d["weight"].shape for d in dense] == [s.shape for s in prog.synapses if not s.is_kernel]
    types = [d["type"] for d in layers]
    assert types[types.index("dense") - 1] == "flatten" and types.count("flatten") == 1


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_NETX, reason="lava-dl (netx) is not importable")
@pytest.mark.parametrize("name", ["cuba-lif-lif", "recurrent", "delay-pre", "if-bias-li", "biased"])
def test_netx_file_runs_in_lava_dl_like_the_emulator(name, tmp_path):
    """``biased``: two netx conv layers (stride, padding, dilation, groups, a per-neuron
    and a per-channel bias) and a flatten, run by lava-dl as Lava Conv processes."""
    from neurodeploy.targets.loihi.netx import run_netx

    g = {**NETS, **CONV_NETS}[name]()
    prog = _compile_zero(g)
    path = export_netx(prog, tmp_path / "model.net")
    steps = 20
    x = spikes(2, 1, steps, g.shapes[g.inputs[0]], p=0.4)
    emu = prog.run(x, record="all")
    layers = run_netx(path, x[0].reshape(steps, -1).T)
    assert len(layers) == len(prog.populations)
    total = 0
    for got, p in zip(layers, prog.populations):
        want = emu.records[p.name][0].reshape(steps, -1).numpy()
        if p.spiking:
            np.testing.assert_array_equal(got, want, err_msg=p.name)
            total += int(want.sum())
    assert total > 0


def test_non_chain_or_nonzero_exponent_is_unsupported(tmp_path):
    g = recurrent_net(24)
    prog = EmulatorTarget().compile(g)
    if any(s.weight_exp != 0 for s in prog.synapses):
        with pytest.raises(UnsupportedError, match="weight_exp"):
            export_netx(prog, tmp_path / "a.net")
    import nir

    from neurodeploy.graph import load as gload

    ones = np.ones(3, np.float32)
    lif = lambda: nir.LIF(tau=ones * 1e-2, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones)  # noqa: E731
    skip = gload(nir.NIRGraph(nodes={
        "in": nir.Input(input_type=np.array([3])), "a": nir.Linear(weight=np.eye(3, dtype=np.float32)), "l1": lif(),
        "b": nir.Linear(weight=np.eye(3, dtype=np.float32)), "l2": lif(), "c": nir.Linear(weight=np.eye(3, dtype=np.float32)),
        "out": nir.Output(output_type=np.array([3]))},
        edges=[("in", "a"), ("a", "l1"), ("l1", "b"), ("b", "l2"), ("in", "c"), ("c", "l2"), ("l2", "out")]), dt=1e-3)
    with pytest.raises(UnsupportedError, match="'l2'"):
        export_netx(EmulatorTarget().compile(skip, weight_exp="zero"), tmp_path / "b.net")
    assert not (tmp_path / "b.net").exists()


def _conv_with(what: str):
    """conv_net's program with something a netx conv layer cannot hold."""
    prog = _compile_zero(conv_net(10))
    i, s = next((i, s) for i, s in enumerate(prog.synapses) if s.is_kernel)
    if what == "delays":
        prog.synapses[i] = dataclasses.replace(s, delays=np.ones(s.shape, np.int64))
    elif what == "dense-before":  # the first synapse as a plain matrix: the conv reads a flat netx layer
        prog = _compile_zero(conv_stack_net(0, "pool-only"))
        prog.synapses[0] = dataclasses.replace(prog.synapses[0], weights=prog.synapses[0].dense(), conv=None)
    elif what == "recurrent":
        n = prog.pop(s.dst).n
        prog.synapses.append(Synapse(name="rec", src=s.dst, dst=s.dst, weights=np.eye(n, dtype=np.int64) * 2,
                                     weight_exp=0))
    return prog


@pytest.mark.parametrize("what, why", [("delays", "has delays"), ("recurrent", "recurrent synapse 'rec'"),
                                       ("wrap", "24 bits"), ("dense-before", r"layer has shape \(48,\)")])
def test_what_a_netx_conv_layer_cannot_hold_is_refused(what, why, tmp_path, monkeypatch):
    from neurodeploy.targets.loihi import netx

    prog = _conv_with(what)
    if what == "wrap":  # a row sum that reaches Lava's Conv's 24-bit wrap (a real one needs ≥ 33 026 taps)
        monkeypatch.setattr(netx, "CONV_WRAP", int(np.abs(prog.synapses[0].weights).sum(axis=(1, 2, 3)).max()))
    conv = "'pool' into 'lif2'" if what == "dense-before" else "'conv' into 'lif1'"
    with pytest.raises(UnsupportedError, match=f"conv synapse {conv}.*{why}.*never unrolled"):
        export_netx(prog, tmp_path / "c.net")
    assert not (tmp_path / "c.net").exists()


def _without_input_layer(src, dst):
    """A copy of a .net file whose layer 0 (the input layer) is removed, layers renumbered."""
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        del f["layer"]["0"]
        for k in sorted((int(k) for k in f["layer"].keys())):
            f["layer"].move(str(k), str(k - 1))
    return dst


@pytest.mark.parametrize("name", ["cuba-lif-lif", "recurrent"])
def test_file_without_input_layer_imports_like_with_it(name, tmp_path):
    g = NETS[name]()
    prog = EmulatorTarget().compile(g, weight_exp="zero")
    full = export_netx(prog, tmp_path / "model.net")
    bare = _without_input_layer(full, tmp_path / "bare.net")
    assert read_netx(bare)[0]["type"] != "input"
    a, b = load(full), load(bare)
    assert b.shapes[b.inputs[0]] == a.shapes[a.inputs[0]]
    x = spikes(3, 2, 20, a.shapes[a.inputs[0]], p=0.4)
    ra = EmulatorTarget().compile(a, weight_exp="zero").run(x, record="all")
    rb = EmulatorTarget().compile(b, weight_exp="zero").run(x, record="all")
    assert ra.records.keys() == rb.records.keys()
    assert all(torch.equal(ra.records[k], rb.records[k]) for k in ra.records)
    assert sum(int(v.sum()) for v in ra.records.values()) > 0


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_NETX, reason="lava-dl (netx) is not importable")
def test_file_without_input_layer_runs_in_lava_dl_like_our_import(tmp_path):
    from neurodeploy.targets.loihi.netx import run_netx

    g = NETS["cuba-lif-lif"]()
    bare = _without_input_layer(export_netx(EmulatorTarget().compile(g, weight_exp="zero"), tmp_path / "m.net"),
                                tmp_path / "bare.net")
    back = load(bare)
    prog = EmulatorTarget().compile(back, weight_exp="zero")
    steps = 20
    x = spikes(5, 1, steps, back.shapes[back.inputs[0]], p=0.4)
    ours = prog.run(x, record="all")
    layers = run_netx(bare, x[0].reshape(steps, -1).T)  # lava-dl's own netx.hdf5.Network, in Lava
    assert len(layers) == len(prog.populations)
    total = 0
    for got, p in zip(layers, prog.populations):
        if p.spiking:
            want = ours.records[p.name][0].reshape(steps, -1).numpy()
            np.testing.assert_array_equal(got, want, err_msg=p.name)
            total += int(want.sum())
    assert total > 0


def test_conv_file_imports_with_its_layout(tmp_path):
    import nir

    from netx_files import conv_net_file  # noqa: E402

    g = load(conv_net_file(tmp_path / "conv.net"))
    conv = next(n for n in g.nodes.values() if isinstance(n, nir.Conv2d))
    assert g.shapes["input"] == (2, 6, 7) and conv.stride == (1, 2) and conv.padding == (1, 0)
    assert conv.weight.shape == (3, 2, 3, 2) and g.shapes[g.outputs[0]] == (4,)


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_NETX, reason="lava-dl (netx) is not importable")
def test_conv_file_runs_in_lava_dl_like_our_import(tmp_path):
    from netx_files import conv_net_file, run_lava_dl  # noqa: E402

    path = conv_net_file(tmp_path / "conv.net")
    g = load(path)
    prog = EmulatorTarget().compile(g)
    steps = 12
    x = spikes(7, 1, steps, g.shapes["input"], p=0.4)
    ours = prog.run(x, record="all")
    theirs = run_lava_dl(path, x[0].transpose(1, 2, 3, 0))  # (C, H, W, steps)
    assert len(theirs) == len(prog.populations)
    for got, p in zip(theirs, prog.populations):
        want = ours.records[p.name][0].numpy()
        assert got.shape == want.shape and want.sum() > 0, p.name
        np.testing.assert_array_equal(got, want, err_msg=p.name)


def _dvs_program():
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from nets import dvs_gesture_net

    g = dvs_gesture_net()
    return g, _compile_zero(g)


def test_dvs_sized_net_is_three_conv_layers_and_imports_back(tmp_path):
    """Issue 11's DVS-gesture-sized CNN as a netx file: three conv layers holding the kernels
    (16×2×5×5, 32×16×3×3, 64×32×3×3; unrolled, conv0 alone would be 61 504 × 32 768), a
    flatten and the 11 × 12 544 dense layer; re-imported, it compiles to the same program."""
    _, prog = _dvs_program()
    path = export_netx(prog, tmp_path / "dvs.net")
    layers = [d for d in read_netx(path) if d["type"] != "_dt"]
    assert [d["type"] for d in layers] == ["input", "conv", "conv", "conv", "flatten", "dense"]
    assert [d["weight"].shape for d in layers if "weight" in d] == [(16, 2, 5, 5), (32, 16, 3, 3), (64, 32, 3, 3),
                                                                    (11, 12544)]
    _same_integers(prog, _compile_zero(load(path)))


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_NETX, reason="lava-dl (netx) is not importable")
def test_dvs_sized_net_runs_in_lava_dl_like_the_emulator(tmp_path):
    """The DVS-sized netx file in lava-dl's own Network (three Lava Conv blocks): one sample
    of 7 steps (10 % input spikes), every spiking layer identical to the emulator (12–16 s in
    Lava with readback='file' on a 2-core CPU)."""
    from neurodeploy.targets.loihi.netx import run_netx

    g, prog = _dvs_program()
    path = export_netx(prog, tmp_path / "dvs.net")
    steps = 7
    x = spikes(9, 1, steps, g.shapes["in"], p=0.1)
    emu = prog.run(x, record="all")
    layers = run_netx(path, x[0].reshape(steps, -1).T, timeout=300, readback="file")
    assert len(layers) == len(prog.populations)
    for got, p in zip(layers, prog.populations):
        if p.spiking:
            want = emu.records[p.name][0].reshape(steps, -1).numpy()
            assert want.sum() > 0, p.name
            np.testing.assert_array_equal(got, want, err_msg=p.name)


def test_split_weight_signs_are_refused_naming_the_lowering_that_netx_holds(tmp_path):
    """The default lowering (weight_sign 'split') stores a mixed-sign matrix as two synapses;
    netx has one matrix per layer, so export names the parts and the netx-compatible options
    (it used to say the layer was 'fed twice', which hid why)."""
    from neurodeploy.graph import load as gload

    g = gload(Path(__file__).parents[1] / "examples" / "models" / "digits_snn.nir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        split = EmulatorTarget().compile(g)
        mixed = EmulatorTarget().compile(g, weight_sign="mixed")
    assert any(s.name.endswith(":exc") for s in split.synapses)
    with pytest.raises(UnsupportedError, match=r"0:exc, 0:inh hold a mixed-sign matrix.*weight_exp='zero'"):
        export_netx(split, tmp_path / "a.net")
    assert not (tmp_path / "a.net").exists()
    assert all(s.weight_exp == 0 for s in mixed.synapses)  # the digits SNN's weights need no exponent
    assert read_netx(export_netx(mixed, tmp_path / "b.net"))[0]["type"] == "input"  # one matrix: netx holds it
