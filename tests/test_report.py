"""``neurodeploy profile``: report.json against its schema, numbers against independent
runs, errors (exit 2, one ``error:`` line, no output files), --json and --quiet."""

import copy
import json
import re
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.cli import main
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.hardware import load_profile
from neurodeploy.hardware.energy import estimate_energy
from neurodeploy.hardware.profiles import BUNDLED_DIR
from neurodeploy.measure.metrics import accuracy
from neurodeploy.measure.schema import SCHEMA, SCHEMA_VERSION, validate
from neurodeploy.targets.base import REGISTRY, get_target

from .helpers import chain, f32, lif

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "models" / "digits_snn.nir"


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    """The trained digits SNN with 40 rate-encoded test digits (falls back to a small random
    network when the example model is absent)."""
    d = tmp_path_factory.mktemp("digits")
    data = d / "digits.npz"
    if DIGITS.exists():
        from neurodeploy.data import digits_spikes

        _, (x, y) = digits_spikes(steps=16, seed=0)
        x, y = x[:40], y[:40]
        model = DIGITS
    else:  # pragma: no cover - depends on the checkout
        rng = np.random.default_rng(0)
        model = d / "net.nir"
        nir.write(str(model), chain(nir.Input(np.array([64])), nir.Linear(weight=f32(rng.normal(0.3, 0.5, (10, 64)))), lif(10, tau=0.004, thr=1.0),
                                    nir.Output(np.array([10])), dt=1e-3))
        x = (rng.random((40, 16, 64)) < 0.3).astype(np.float32)
        y = rng.integers(0, 10, 40)
    np.savez(data, x=x, y=y)
    return model, data, x, y


def _profile(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_profile_reference_digits(digits_files, tmp_path, capsys):
    model, data, x, y = digits_files
    out = tmp_path / "prof"
    rc, stdout, err = _profile(["--quiet", "profile", str(model), "--target", "reference", "--hardware", "loihi2",
                                "--input", str(data), "-o", str(out), "--json"], capsys)
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["report"] == str(out / "report.json")
    rep = json.loads((out / "report.json").read_text())
    assert validate(rep) == []
    assert rep["schema_version"] == SCHEMA_VERSION and rep["kind"] == "profile"
    assert rep["inputs"]["samples"] == 40 and rep["inputs"]["steps"] == 16 and rep["inputs"]["readout"] == "spikes"
    g0 = load(str(model))
    assert rep["graph"]["neurons"] == sum(int(np.prod(g0.shapes[n])) for n in g0.neuron_nodes())
    (e,) = rep["targets"]
    # independent run of the reference target gives the same accuracy, spikes and energy
    g = load(str(model))
    r = get_target("reference").compile(g).run(x)
    assert e["metrics"]["accuracy"] == pytest.approx(accuracy(r, y, "spikes"))
    assert e["metrics"]["spikes"]["total"] == r.total("spikes")
    en = estimate_energy(r, load_profile("loihi2"), get_target("reference").compile(g).describe(), g)
    assert e["energy"]["total_J"] == pytest.approx(en["total_J"], rel=1e-9)
    assert e["energy"]["per_inference_J"] == pytest.approx(en["total_J"] / 40, rel=1e-9)
    assert e["latency"]["model"] == "loihi" and e["latency"]["per_step_s"] > 0
    assert e["hardware"]["name"] == "loihi2"
    assert all(c["source"] for c in e["energy"]["constants"].values())
    assert e["memory"]["weights"] == sum(int(np.asarray(g.nodes[n].weight).size + np.asarray(g.nodes[n].bias).size) for n in g.synapse_nodes())
    assert summary["targets"][0]["accuracy"] == e["metrics"]["accuracy"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    for alt in ("spikes per sample by layer", "spike raster reference", "energy by layer reference"):
        assert f'alt="{alt}"' in html
    assert f"{100 * e['metrics']['accuracy']:.2f} %" in html
    assert "http://" not in html.replace("http://json-schema.org", "") and "https://" not in html


@pytest.mark.parametrize("target", [pytest.param(t, marks=[pytest.mark.slow, pytest.mark.lava]) if t == "lava" else t for t in REGISTRY])
def test_profile_every_available_target(target, digits_files, tmp_path, capsys):
    try:
        get_target(target)
    except InputError as exc:
        if target != "lava":  # only Lava may be missing (Python ≥ 3.11); the rest is core
            raise
        pytest.skip(str(exc))
    model, data, x, y = digits_files
    if target == "lava":  # Lava runs one process per sample: keep it short
        pytest.importorskip("lava")
        data = tmp_path / "few.npz"
        np.savez(data, x=x[:6], y=y[:6])
    out = tmp_path / "p"
    cal = ["--calibration", "8"] if target == "rram" else []  # the ADCs calibrate on 8 held-out samples
    rc, stdout, err = _profile(["--quiet", "profile", str(model), "--target", target, "--input", str(data), "-o", str(out), *cal], capsys)
    assert rc == 0, err
    assert stdout == ""  # --quiet
    rep = json.loads((out / "report.json").read_text())
    assert validate(rep) == []
    (e,) = rep["targets"]
    if cal:
        assert rep["calibration"] == {"source": rep["calibration"]["source"], "samples": 8, "disjoint": True}
        assert e["metrics"]["samples"] == len(np.load(data)["x"]) - 8  # held-out samples are not evaluated
    assert e["target"] == target and e["status"] == "ok"
    assert e["hardware"]["kind"] == ("rram" if target == "rram" else "loihi")
    assert e["energy"]["total_J"] > 0
    assert 0 <= e["metrics"]["accuracy"] <= 1


def test_profile_human_output(digits_files, tmp_path, capsys):
    model, data, *_ = digits_files
    rc, stdout, err = _profile(["profile", str(model), "--input", str(data), "-o", str(tmp_path / "h")], capsys)
    assert rc == 0, err
    assert "reference" in stdout and "report.html" in stdout and "%" in stdout


def _bad_profile(tmp_path):
    text = (BUNDLED_DIR / "loihi2.toml").read_text()
    text = re.sub(r"\[constants\.energy_synop\]\n(.*\n)*?(?=\n\[)", "", text, count=1)
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("case", ["profile", "compare_profile", "input_missing_x", "input_shape", "profile_name", "wrong_kind", "sample", "out_is_file"])
def test_profile_errors_exit_2_and_write_nothing(case, digits_files, tmp_path, capsys):
    model, data, x, _ = digits_files
    args = ["profile", str(model), "--input", str(data)]
    if case == "profile":
        args += ["--hardware", str(_bad_profile(tmp_path))]
        expect = "energy_synop"
    elif case == "compare_profile":
        args = ["compare", str(model), "--targets", "reference,rram", "--input", str(data), "--hardware", f"reference={_bad_profile(tmp_path)}"]
        expect = "energy_synop"
    elif case == "input_missing_x":
        bad = tmp_path / "bad.npz"
        np.savez(bad, data=x)
        args[3] = str(bad)
        expect = "no array 'x'"
    elif case == "input_shape":
        bad = tmp_path / "bad.npz"
        np.savez(bad, x=x[:, :, :10])
        args[3] = str(bad)
        expect = "shape"
    elif case == "profile_name":
        args += ["--hardware", "no_such_chip"]
        expect = "no_such_chip"
    elif case == "wrong_kind":
        args = ["compare", str(model), "--targets", "reference,loihi2-emu", "--input", str(data), "--hardware", "loihi2-emu=rram_40nm"]
        expect = "rram"
    elif case == "sample":
        args += ["--sample", "999"]
        expect = "999"
    out = tmp_path / "out"
    if case == "out_is_file":
        out.write_text("not a directory")
        expect = "not a directory"
    rc, stdout, err = _profile(args + ["-o", str(out)], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], err
    if case == "out_is_file":
        assert out.read_text() == "not a directory"
    else:
        assert not out.exists()


def test_schema_rejects_malformed_reports(digits_files, tmp_path, capsys):
    model, data, *_ = digits_files
    out = tmp_path / "s"
    assert main(["--quiet", "profile", str(model), "--input", str(data), "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert validate(rep) == []
    bad = copy.deepcopy(rep)
    del bad["targets"][0]["metrics"]["synaptic_ops"]
    assert any("synaptic_ops" in e for e in validate(bad))
    bad = copy.deepcopy(rep)
    bad["targets"][0]["energy"]["terms"][0]["confidence"] = "guessed"
    assert any("guessed" in e for e in validate(bad))
    bad = copy.deepcopy(rep)
    bad["schema_version"] = "0.9"
    assert validate(bad)
    bad = copy.deepcopy(rep)
    bad["targets"][0]["metrics"]["accuracy"] = 1.5
    assert validate(bad)
    bad = copy.deepcopy(rep)
    bad["surprise"] = 1
    assert validate(bad)
    # the schema document is plain JSON
    json.loads(json.dumps(SCHEMA))


def test_schema_documented():
    doc = (ROOT / "docs" / "report-schema.md").read_text()
    for key in SCHEMA["properties"]:
        assert f"`{key}`" in doc, key
    assert SCHEMA_VERSION in doc


def test_report_overwrite_is_atomic(digits_files, tmp_path, capsys, monkeypatch):
    """A failure while writing keeps the previous report intact and leaves no temp files."""
    model, data, *_ = digits_files
    out = tmp_path / "o"
    assert main(["--quiet", "profile", str(model), "--input", str(data), "-o", str(out)]) == 0
    before = (out / "report.json").read_bytes()
    import neurodeploy.measure.html as html

    def boom(*a, **k):
        raise InputError("render failed")

    monkeypatch.setattr(html, "render_html", boom)
    assert main(["--quiet", "profile", str(model), "--input", str(data), "-o", str(out), "--readout", "membrane"]) == 2
    assert (out / "report.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
