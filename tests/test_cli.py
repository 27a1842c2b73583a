"""The CLI end to end: bad input gives one `error:` line, exit 2, no traceback, no file."""

import json
import subprocess
import sys

import nir
import numpy as np
import pytest

import neurodeploy
import neurodeploy.graph as G

from .helpers import affine, chain, lif

EXE = [sys.executable, "-m", "neurodeploy.cli"]


def cli(*args):
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(0)
    g = chain(nir.Input(np.array([4])), affine(rng, 5, 4, scale=4), lif(5), nir.Output(np.array([5])), dt=1e-3)
    path = tmp_path / "m.nir"
    nir.write(str(path), g)
    return path


@pytest.fixture
def xfile(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "x.npz"
    np.savez(path, x=(rng.random((3, 20, 4)) < 0.5).astype(np.float32), y=np.array([0, 1, 2]))
    return path


def assert_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_version_and_help():
    p = cli("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"neurodeploy {neurodeploy.__version__}"
    for cmd in ([], ["inspect"], ["run"]):
        p = cli(*cmd, "--help")
        assert p.returncode == 0 and "Usage" in p.stdout


def test_run_writes_outputs_equal_to_api(model, xfile, tmp_path):
    out = tmp_path / "o.npz"
    p = cli("--quiet", "run", model, "--input", xfile, "-o", out, "--record", "all")
    assert p.returncode == 0, p.stderr
    data = np.load(out)
    # "all" = the neuron and spiking nodes (on every target); graded records go to values.*
    assert set(data.files) == {"outputs", "spikes.lif"}
    from neurodeploy.targets.reference import ReferenceTarget

    api = ReferenceTarget().compile(G.load(model)).run(np.load(xfile)["x"]).output.numpy()
    np.testing.assert_array_equal(data["outputs"], api)


def test_inspect_json(model):
    p = cli("inspect", model, "--json")
    info = json.loads(p.stdout)
    assert info["neurons"] == 5 and info["synapses"] == 20 and info["dt"] == 1e-3
    assert [n["type"] for n in info["nodes"]] == ["Input", "Affine", "LIF", "Output"]


def _corrupt(tmp_path, model):
    data = model.read_bytes()
    trunc = tmp_path / "trunc.nir"
    trunc.write_bytes(data[: len(data) // 2])
    return trunc


def _unknown_type(tmp_path, model):
    import h5py

    bad = tmp_path / "unk.nir"
    bad.write_bytes(model.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Spiky")
    return bad


@pytest.mark.parametrize(
    "make_model, needles",
    [
        (lambda tmp, m: tmp / "missing.nir", ["missing.nir", "file not found"]),
        (_corrupt, ["trunc.nir", "not a readable NIR/HDF5 file"]),
        (lambda tmp, m: (tmp / "text.nir").write_text("hello") and tmp / "text.nir", ["text.nir", "not a readable"]),
        (lambda tmp, m: _h5_not_nir(tmp), ["plain.nir", "not a NIR graph"]),
        (_unknown_type, ["node 'lif' has unknown type 'Spiky'"]),
    ],
)
def test_bad_model_files(tmp_path, model, xfile, make_model, needles):
    bad = make_model(tmp_path, model)
    out = tmp_path / "o.npz"
    assert_error(cli("run", bad, "--input", xfile, "-o", out), *needles)
    assert not out.exists() and not list(tmp_path.glob(".o.npz*"))


def _h5_not_nir(tmp):
    import h5py

    path = tmp / "plain.nir"
    with h5py.File(path, "w") as f:
        f["data"] = np.zeros(3)
    return path


@pytest.mark.parametrize(
    "arrays, needles",
    [
        ({"z": np.zeros((3, 20, 4))}, ["no array 'x'", "found: z"]),
        ({"x": np.zeros((3, 20, 5), np.float32)}, ["input 'input' has shape (3, 20, 5)", "expected (batch, time, 4)"]),
        ({"x": np.zeros((3, 4), np.float32)}, ["'x' has shape (3, 4)"]),
        ({"x": np.zeros((3, 20, 4), np.float32), "y": np.zeros(2)}, ["labels 'y' have shape (2,)"]),
    ],
)
def test_bad_input_arrays(tmp_path, model, arrays, needles):
    xf = tmp_path / "bad.npz"
    np.savez(xf, **arrays)
    out = tmp_path / "o.npz"
    assert_error(cli("run", model, "--input", xf, "-o", out), *needles)
    assert not out.exists()


def test_non_positive_dt_and_missing_input(tmp_path, model, xfile):
    out = tmp_path / "o.npz"
    assert_error(cli("run", model, "--input", xfile, "-o", out, "--dt", "0"), "dt must be a positive")
    assert_error(cli("run", model, "--input", tmp_path / "nope.npz", "-o", out), "nope.npz", "input file not found")
    (tmp_path / "notnpz.npz").write_text("x")
    assert_error(cli("run", model, "--input", tmp_path / "notnpz.npz", "-o", out), "not a readable .npz")
    assert_error(cli("run", model, "--input", xfile, "-o", out, "--target", "tpu"), "unknown target 'tpu'")
    assert not out.exists()


def test_debug_shows_traceback(tmp_path, xfile):
    p = cli("--debug", "run", tmp_path / "missing.nir", "--input", xfile, "-o", tmp_path / "o.npz")
    assert p.returncode != 0 and "Traceback" in p.stderr and "InputError" in p.stderr


@pytest.mark.parametrize("module", ["neurodeploy.cli", "neurodeploy"])
def test_quiet_reaches_plugin_commands_as_a_module(tmp_path, model, xfile, module):
    """`python -m neurodeploy[.cli] --quiet profile …` prints nothing: the plugin commands
    share the one CLI state even when the CLI module runs as __main__."""
    out = tmp_path / "rep"
    base = [sys.executable, "-m", module]
    loud = subprocess.run([*base, "profile", str(model), "--input", str(xfile), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0, loud.stderr
    assert "report.json" in loud.stdout
    quiet = subprocess.run([*base, "--quiet", "profile", str(model), "--input", str(xfile), "-o", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == ""
    assert (out / "report.json").exists()


def _x(rng, bad=None):
    x = (rng.random((3, 20, 4)) < 0.5).astype(np.float32)
    if bad is not None:
        x[1, 7, 2] = bad
    return x


@pytest.mark.parametrize(
    "arrays, extra, needles",
    [
        (lambda r: {"x": _x(r)}, ["--readout", "foo"], ["--readout must be one of", "'foo'"]),
        (lambda r: {"x": _x(r)}, ["--record", "nosuch"], ["--record: no node 'nosuch'"]),
        (lambda r: {"x": _x(r, np.nan)}, [], ["input 'input' contains NaN or Inf", "sample 1, step 7"]),
        (lambda r: {"x": _x(r, np.inf)}, [], ["contains NaN or Inf"]),
        (lambda r: {"x": _x(r), "y": np.array([0.0, 1.5, 2.0])}, [], ["must be integer class indices", "sample 1"]),
        (lambda r: {"x": _x(r), "y": np.array([0, 5, 1])}, [], ["label 5 of sample 1 is out of range", "5 classes"]),
        (lambda r: {"x": _x(r), "y": np.array([0, -1, 1])}, [], ["label -1 of sample 1 is out of range"]),
    ],
)
@pytest.mark.parametrize("command", ["run", "profile"])
def test_bad_values_and_options_refused_before_anything_is_written(tmp_path, model, arrays, extra, needles, command,
                                                                   capsys):
    from neurodeploy.cli import main  # in process: the same main() the console script runs

    if command == "profile" and extra[:1] == ["--record"]:
        pytest.skip("profile records every population; it has no --record")
    xf = tmp_path / "bad.npz"
    np.savez(xf, **arrays(np.random.default_rng(2)))
    out = tmp_path / ("o.npz" if command == "run" else "rep")
    assert main([command, str(model), "--input", str(xf), "-o", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and all(n in err[0] for n in needles), err
    assert not out.exists() and not list(tmp_path.glob(".o*"))


def test_out_of_memory_is_one_line_with_the_size(tmp_path, model, xfile, monkeypatch, capsys):
    import torch

    from neurodeploy.cli import main
    from neurodeploy.targets.reference import ReferenceProgram

    def greedy(self, x, **kw):  # a real allocation failure from torch's CPU allocator (2^45 bytes)
        return torch.empty(2**45, dtype=torch.uint8)

    monkeypatch.setattr(ReferenceProgram, "run", greedy)
    out = tmp_path / "o.npz"
    assert main(["-q", "run", str(model), "--input", str(xfile), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: out of memory: the run asked for 35184.4 GB"), err
    assert "fewer samples" in err[0] and not out.exists()


def test_a_cpu_only_target_refuses_another_device():
    from neurodeploy.errors import InputError
    from neurodeploy.measure.report import device_options

    class CpuOnly:
        name, compile_options = "cpu-only", {"seed": "an int"}

    assert device_options(CpuOnly, "cpu") == {}
    with pytest.raises(InputError, match="--device cuda: target 'cpu-only' has no device option"):
        device_options(CpuOnly, "cuda")


def test_profile_reports_and_prints_diagnostics_and_strict_refuses(tmp_path, xfile):
    g = chain(nir.Input(np.array([4])), nir.Affine(weight=np.zeros((5, 4), np.float32), bias=np.zeros(5, np.float32)),
              lif(5), nir.Output(np.array([5])), dt=1e-3)
    path = tmp_path / "silent.nir"
    nir.write(str(path), g)
    out = tmp_path / "rep"
    p = cli("profile", path, "--input", xfile, "-o", out)
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning: ")]
    assert any("node 'lif'" in w for w in warnings), p.stderr
    rep = json.loads((out / "report.json").read_text())
    codes = {d["code"] for d in rep["diagnostics"]} | {d["code"] for d in rep["targets"][0]["diagnostics"]}
    assert "dead-layer" in codes and all(f"{c}" in p.stderr for c in codes)
    assert "Diagnostics" in (out / "report.html").read_text() and "dead-layer" in (out / "report.html").read_text()
    strict_out = tmp_path / "strict"
    assert_error(cli("--strict", "profile", path, "--input", xfile, "-o", strict_out), "[--strict]")
    assert not strict_out.exists()


def test_compile_options_reach_run_profile_and_compare(tmp_path, capsys):
    from neurodeploy.cli import main
    from neurodeploy.graph import save

    from .test_loihi_quantize import loop_net

    save(loop_net(6), tmp_path / "loop.nir")
    x = tmp_path / "x.npz"
    np.savez(x, x=(np.random.default_rng(3).random((2, 10, 8)) < 0.4).astype(np.float32))
    m, out = str(tmp_path / "loop.nir"), tmp_path / "o.npz"
    base = ["-q", "run", m, "--dt", "1e-3", "--target", "loihi2-emu", "-i", str(x), "-o", str(out)]
    assert main(base) == 2 and "error: loop a → b → a" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--compile-option", "allow_loop_delay=true"]) == 0 and out.exists()
    assert main([*base[:-1], str(tmp_path / "o2.npz"), "--compile-option", "nosuch=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "--compile-option nosuch: target 'loihi2-emu' has no such compile option" in err[0]
    rep = tmp_path / "rep"
    assert main(["-q", "profile", m, "--dt", "1e-3", "--target", "loihi2-emu", "-i", str(x), "-o", str(rep),
                 "--compile-option", "allow_loop_delay=true"]) == 0
    e = json.loads((rep / "report.json").read_text())["targets"][0]
    assert e["description"]["compile_options"]["allow_loop_delay"] is True and e["info"]["loop_delays"]
    assert main(["-q", "compare", m, "--dt", "1e-3", "--targets", "reference", "-i", str(x),
                 "--compile-option", "allow_loop_delay=true"]) == 2  # no target declares it
    assert "none of the targets (reference) declares it" in capsys.readouterr().err
