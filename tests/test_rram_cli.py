"""`neurodeploy profile|compare` with the RRAM fidelity options (issue 12), in process:
calibration data kept off the evaluated samples (held out, training split, file, or flagged),
`--device-param`, `--attribute` (report.json, the HTML chart, the printed table), dynamic and
total energy apart; and `examples/rram_fidelity.py --quick`."""

import importlib.util
import json
from pathlib import Path

import nir
import numpy as np
import pytest

from .conftest import spikes
from .helpers import affine, chain, lif
from neurodeploy.cli import main
from neurodeploy.graph import load
from neurodeploy.measure.metrics import predict
from neurodeploy.targets.reference import ReferenceTarget

ROOT = Path(__file__).resolve().parents[1]
N = 24


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 16 → 4 LIF model, inputs x (24 samples) with labels = the reference's own
    predictions (so the ideal accuracy is 1 by construction), and a calibration file."""
    d = tmp_path_factory.mktemp("rram_cli")
    rng = np.random.default_rng(0)
    model = d / "m.nir"
    nir.write(str(model), chain(nir.Input(np.array([16])), affine(rng, 4, 16, scale=2.0), lif(4), nir.Output(np.array([4])),
                                dt=1e-3))
    x = spikes((N, 15, 16), p=0.4, seed=1).numpy()
    y = np.asarray(predict(ReferenceTarget().compile(load(model)).run(x).output, "spikes"))
    np.savez(d / "x.npz", x=x, y=y)
    np.savez(d / "x_train.npz", x=x, y=y, x_train=spikes((6, 15, 16), p=0.4, seed=2).numpy())
    np.savez(d / "cal.npz", x=spikes((7, 15, 16), p=0.4, seed=3).numpy())
    np.savez(d / "cal_shape.npz", x=np.zeros((7, 15, 9), np.float32))
    np.savez(d / "cal_nox.npz", y=np.zeros(3))
    (d / "cal_text.npz").write_text("not an npz")
    return d


def profile(files, out, *extra):
    return main(["-q", "profile", str(files / "m.nir"), "-t", "rram", "-i", str(files / "x.npz"), "-o", str(out), *extra])


def report(out) -> dict:
    return json.loads((Path(out) / "report.json").read_text())


def one_error(capsys, *needles) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_calibration_n_is_held_out_and_the_report_says_disjoint(files, tmp_path):
    out = tmp_path / "r"
    assert profile(files, out, "--calibration", "5") == 0
    rep = report(out)
    assert rep["calibration"] == {"source": "the first 5 samples of the input, held out (not evaluated)", "samples": 5,
                                  "disjoint": True}
    assert rep["inputs"]["samples"] == rep["targets"][0]["metrics"]["samples"] == N - 5  # the held-out 5 are not scored
    cal = rep["targets"][0]["description"]["calibration"]
    assert cal["calibrated"] and cal["samples"] == 5  # the program's ADC ranges came from those 5 only
    assert "disjoint from the evaluated samples" in (out / "report.html").read_text()


def test_missing_calibration_is_one_line_exit_2_nothing_written(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert profile(files, out) == 2
    one_error(capsys, "calibrates on data", "--calibration FILE|N", "--calibrate-on-eval")
    assert not out.exists()
    # the input's own training split is the default calibration data
    assert main(["-q", "profile", str(files / "m.nir"), "-t", "rram", "-i", str(files / "x_train.npz"), "-o", str(out)]) == 0
    rep = report(out)
    assert rep["calibration"]["samples"] == 6 and rep["calibration"]["disjoint"] and rep["inputs"]["samples"] == N


def test_calibrate_on_eval_is_flagged_not_disjoint(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert profile(files, out, "--calibrate-on-eval") == 0
    rep = report(out)
    assert rep["calibration"]["disjoint"] is False and rep["calibration"]["samples"] == rep["inputs"]["samples"] == N
    assert "not disjoint" in (out / "report.html").read_text()
    assert profile(files, tmp_path / "r2", "--calibrate-on-eval", "--calibration", "5") == 2
    one_error(capsys, "exclude each other")
    assert not (tmp_path / "r2").exists()


def test_calibration_file_good_and_bad(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert profile(files, out, "--calibration", str(files / "cal.npz")) == 0
    rep = report(out)
    assert rep["calibration"]["samples"] == 7 and rep["calibration"]["disjoint"] and rep["inputs"]["samples"] == N
    for name, needle in (("cal_shape.npz", "x has shape (7, 15, 9), expected (batch, time, 16)"),
                         ("cal_nox.npz", "has no array 'x'"), ("cal_text.npz", "not a readable .npz"),
                         ("missing.npz", "not a file of inputs")):
        bad = tmp_path / f"bad_{name}"
        assert profile(files, bad, "--calibration", str(files / name)) == 2, name
        one_error(capsys, f"--calibration {files / name}: ", needle)
        assert not bad.exists()


def test_device_param_good_and_bad(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert profile(files, out, "--calibration", "5", "--device-param", "read_time=3600",
                   "--device-param", "drift_compensation=per_column") == 0
    config = report(out)["targets"][0]["description"]["compile_options"]["config"]
    assert config["read_time"] == 3600 and config["drift_compensation"] == "per_column"
    for param, needle in (("bogus=1", "--device-param bogus=1: unknown parameter"),
                          ("read_time=-1", "--device-param read_time=-1: "),
                          ("levels=abc", "--device-param levels=abc: levels must be"),
                          ("read_time", "expected KEY=VALUE")):
        bad = tmp_path / f"bad_{param}"
        assert profile(files, bad, "--calibration", "5", "--device-param", param) == 2, param
        line = one_error(capsys, needle)
        assert "DeviceConfig:" not in line
        assert not bad.exists()
    # compare refuses before running anything, not as an error row of the rram target
    bad = tmp_path / "bad_compare"
    assert main(["-q", "compare", str(files / "m.nir"), "--targets", "reference,rram", "-i", str(files / "x.npz"),
                 "-o", str(bad), "--calibration", "5", "--device-param", "bogus=1"]) == 2
    one_error(capsys, "--device-param bogus=1: unknown parameter")
    assert not bad.exists()
    assert main(["-q", "profile", str(files / "m.nir"), "-i", str(files / "x.npz"), "-o", str(bad),
                 "--device-param", "read_time=1"]) == 2  # the reference takes no device parameters
    one_error(capsys, "--device-param")


def test_attribute_writes_report_chart_and_table(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["profile", str(files / "m.nir"), "-t", "rram", "-i", str(files / "x.npz"), "-o", str(out),
                 "--calibration", "4", "--attribute", "--seeds", "2"]) == 0
    printed = capsys.readouterr().out
    rep = report(out)
    a = rep["attribution"]
    names = list(rep["targets"][0]["description"]["nonidealities"])
    assert a["nonidealities"] == names and set(a["per"]) == set(names) and a["seeds"] == [0, 1]
    assert a["ideal"]["values"] == [1.0, 1.0]  # labels are the reference's predictions; ideal RRAM = reference
    assert a["calibration"] == rep["calibration"] and rep["calibration"]["samples"] == 4
    for n in names:
        p = a["per"][n]
        assert p["cost_alone"]["values"] == pytest.approx([1.0 - v for v in p["alone"]["values"]])
        assert p["cost_in_context"]["values"] == pytest.approx([w - f for w, f in zip(p["without"]["values"], a["all"]["values"])])
    html = (out / "report.html").read_text()
    assert "Where the accuracy goes" in html and 'alt="accuracy cost of each non-ideality" src="data:image/png;base64,' in html
    assert all(f"<td>{n}</td>" in html for n in names)
    assert "where the accuracy goes" in printed and "cost in context" in printed
    assert all(n in printed for n in names)
    # without --attribute there is no attribution anywhere
    assert profile(files, tmp_path / "plain", "--calibration", "4") == 0
    assert "attribution" not in report(tmp_path / "plain")
    assert "Where the accuracy goes" not in (tmp_path / "plain" / "report.html").read_text()


def test_summary_shows_dynamic_and_total_energy(files, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["compare", str(files / "m.nir"), "--targets", "reference,rram", "-i", str(files / "x.npz"),
                 "-o", str(out), "--calibration", "5"]) == 0
    printed = capsys.readouterr().out
    rep = report(out)
    for row, e in zip(rep["summary"], rep["targets"]):
        assert row["energy_per_inference_J"] == e["energy"]["per_inference_J"]
        assert row["dynamic_energy_per_inference_J"] == e["energy"]["dynamic_per_inference_J"]
        static = e["energy"]["static_J"] / rep["inputs"]["samples"]
        assert row["energy_per_inference_J"] == pytest.approx(row["dynamic_energy_per_inference_J"] + static)
    rram = rep["summary"][1]
    assert rram["dynamic_energy_per_inference_J"] < rram["energy_per_inference_J"]  # the profile has static power
    assert "E dyn/inf" in printed
    html = (out / "report.html").read_text()
    assert "dynamic energy / inference" in html and "energy / inference (total)" in html


def test_fidelity_example_quick(tmp_path, capsys):
    """examples/rram_fidelity.py --quick: known by construction — the ideal program equals the
    reference; at read time 1 s (= t0) nothing drifts, so every compensation mode gives the
    same accuracy for each seed; every entry has one value per seed."""
    spec = importlib.util.spec_from_file_location("rram_fidelity", ROOT / "examples" / "rram_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "q.json"
    assert mod.main(["--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    seeds = res["seeds"]
    for key in ("drift", "drift_decay"):
        curve = res[key]
        assert set(curve) == set(mod.MODES) and all(list(c) == ["1 s", "1 month"] for c in curve.values())
        assert len({tuple(curve[m]["1 s"]["values"]) for m in mod.MODES}) == 1, key
        assert all(len(v["values"]) == len(seeds) for c in curve.values() for v in c.values())
    for hw in mod.PROFILES:
        a = res["attribution"][hw]
        assert a["ideal"]["values"] == [res["reference"]] * len(seeds) and a["hardware"] == hw
    printed = capsys.readouterr().out
    assert "(a) accuracy vs read time" in printed and printed.count("(b) where the accuracy goes") == 2
