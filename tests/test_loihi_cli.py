"""`neurodeploy compile --target loihi2` and `run --target loihi2-emu|lava`; core mapping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import DT, dense_net, spikes  # noqa: E402

from neurodeploy.cli import main  # noqa: E402
from neurodeploy.errors import FitError  # noqa: E402
from neurodeploy.graph import load, save  # noqa: E402
from neurodeploy.targets.loihi.emulator import EmulatorTarget  # noqa: E402
from neurodeploy.targets.loihi.mapping import map_program  # noqa: E402
from neurodeploy.targets.loihi.netx import read_netx  # noqa: E402


@pytest.fixture()
def model(tmp_path):
    g = dense_net(3, kinds=("CubaLIF", "LIF"), readout="LIF")
    path = tmp_path / "net.nir"
    save(g, path)
    return path, g


def test_compile_writes_program_netx_and_reports(model, tmp_path, capsys):
    path, g = model
    out = tmp_path / "build"
    rc = main(["--quiet", "compile", str(path), "--target", "loihi2", "--dt", str(DT), "-o", str(out),
               "--weight-exp", "zero"])
    assert rc == 0, capsys.readouterr().err
    for f in ("program.json", "program.npz", "graph.nir", "quantization.json", "mapping.json", "model.net"):
        assert (out / f).exists(), f
    prog = EmulatorTarget.load(out)
    direct = EmulatorTarget().compile(load(path, dt=DT), weight_exp="zero")
    x = spikes(0, 2, 15, g.shapes["in"])
    assert torch.equal(prog.run(x).output, direct.run(x).output)
    q = json.loads((out / "quantization.json").read_text())
    assert set(q["layers"]) == {p.name for p in prog.populations}
    m = json.loads((out / "mapping.json").read_text())
    assert m["cores"] == len(prog.populations) and m["chips"] == 1
    assert [lay["type"] for lay in read_netx(out / "model.net") if lay["type"] != "_dt"] == ["input", "dense", "dense", "dense"]


def test_compile_errors_are_one_line(model, tmp_path, capsys):
    path, _ = model
    rc = main(["compile", str(path), "--target", "rram", "--dt", "1e-3", "-o", str(tmp_path / "b")])
    assert rc == 2 and capsys.readouterr().err.startswith("error: ")
    ones = np.ones(2, np.float32)
    bad = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([3])), "fc": nir.Linear(weight=np.ones((2, 3), np.float32)),
                              "lif": nir.LIF(tau=ones * 1e-2, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=ones),
                              "out": nir.Output(output_type=np.array([2]))},
                       edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])
    save(load(bad, dt=DT), tmp_path / "bad.nir")
    rc = main(["compile", str(tmp_path / "bad.nir"), "-o", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "error: " in err and "'lif'" in err


@pytest.mark.parametrize("target", ["loihi2-emu", pytest.param("lava", marks=pytest.mark.lava)])
def test_run_command_on_loihi_targets(model, tmp_path, target, capsys):
    if target == "lava":
        pytest.importorskip("lava.proc.lif.process")
    path, g = model
    x = spikes(1, 2, 12, g.shapes["in"])
    np.savez(tmp_path / "in.npz", x=x)
    rc = main(["--quiet", "run", str(path), "--target", target, "--dt", str(DT), "-i", str(tmp_path / "in.npz"),
               "-o", str(tmp_path / "o.npz"), "--record", "n0"])
    assert rc == 0, capsys.readouterr().err
    got = np.load(tmp_path / "o.npz")
    want = EmulatorTarget().compile(load(path, dt=DT)).run(x, record="n0")
    np.testing.assert_array_equal(got["outputs"], want.output.numpy())
    np.testing.assert_array_equal(got["spikes.n0"], want.records["n0"].numpy())


# ---- mapping -------------------------------------------------------------------------
def _tiny_profile(tmp_path, **values):
    from neurodeploy.hardware.profiles import profile_dirs

    src = next(d / "loihi2.toml" for d in profile_dirs() if (d / "loihi2.toml").exists())
    text = src.read_text()
    for name, v in values.items():
        head = f"[constants.{name}]\nvalue = "
        i = text.index(head) + len(head)
        j = text.index("\n", i)
        text = text[:i] + str(v) + text[j:]
    text = text.replace('name = "loihi2"', 'name = "tiny"')
    p = tmp_path / "tiny.toml"
    p.write_text(text)
    return p


def test_mapping_respects_core_limits_and_reports_fit_errors(tmp_path):
    g = dense_net(4, kinds=("LIF",), readout="LIF", n_in=8, n_h=6, n_o=3)
    prog = EmulatorTarget().compile(g)
    m = map_program(prog, "loihi2")
    assert m["cores"] == 2 and m["chips"] == 1
    tiny = _tiny_profile(tmp_path, neurons_per_core=4, cores_per_chip=2)
    m = map_program(prog, str(tiny))
    assert m["layers"]["n0"]["cores"] == 2 and m["layers"]["n0"]["neurons_per_core"] == 4
    assert m["cores"] == 3 and m["chips"] == 2
    with pytest.raises(FitError, match=r"3 cores = 2 chip.*1 chip"):
        map_program(prog, str(tiny), chips=1)
    # synaptic memory: 8 inputs × 8 bits per neuron; a 100-bit core holds one neuron
    mem = _tiny_profile(tmp_path, synaptic_memory_per_core=0.0125)  # KiB -> 102.4 bits
    assert map_program(prog, str(mem))["layers"]["n0"]["neurons_per_core"] == 1
    fan = _tiny_profile(tmp_path, max_fanin_axons_per_core=4)
    with pytest.raises(FitError, match="'n0'.*8 input axons"):
        map_program(prog, str(fan))
