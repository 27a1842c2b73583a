"""The pytest plugin (neurodeploy.testing), tested with pytest's own pytester: each
assertion passing and failing (its message checked against numbers computed here
independently), reports, parametrization, caching, and an unrelated run left alone."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits_snn.nir"

HEADER = f'''
import re
import numpy as np
import numpy as np
import pytest
import neurodeploy as nd
from neurodeploy.measure.metrics import accuracy, predict
from neurodeploy.testing.assertions import *
M = {str(MODEL)!r}
X = (np.random.default_rng(0).random((16, 24, 64)) < 0.2).astype(np.float32)
XCAL = (np.random.default_rng(1).random((8, 24, 64)) < 0.2).astype(np.float32)  # never checked
G = nd.load(M)
Y = predict(nd.run(G, X).output, "spikes")  # the reference is right on every sample

def pad(x, n):
    return np.concatenate([x, np.zeros((x.shape[0], n, x.shape[2]), x.dtype)], 1)
'''


@pytest.fixture(autouse=True, scope="module")
def _imported():
    """In-process pytester runs drop the modules they import afterwards; h5py cannot be
    imported twice in one process, so import everything the inner tests use here once."""
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.measure.report import profile_run
    from neurodeploy.testing import assertions, reports  # noqa: F401

    g = nd.load(MODEL)
    x = np.zeros((1, 3, 64), np.float32)
    profile_run(MODEL, "x", g, x, target="loihi2-emu")
    from neurodeploy.measure.calibration import Calibration

    profile_run(MODEL, "x", g, x, target="rram", calibration=Calibration(x, "warm-up zeros", True))
    nd.compile(g, "loihi2-emu", hardware="loihi2")


def run(pytester, body, *args):
    pytester.makepyfile(test_nd=HEADER + body)
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_accuracy_passes_and_fails_with_the_numbers(pytester):
    body = '''
def window_acc(target, lag, x=X, y=Y, cal=None, **opts):  # the documented semantics: pad 2 steps (depth), read lag steps late
    run = {} if cal is None else {"calibration": cal}
    out = nd.compile(G, target, **opts).run(pad(x, 2), **run).output[:, lag:lag + x.shape[1]]
    return accuracy(out, y, "spikes")

def test_pass():
    v = assert_accuracy_within(M, X, Y, "loihi2-emu", tol_pp=100)
    assert v["reference"] == 1.0 and v["target"] == window_acc("loihi2-emu", 2) and v["calibration"] is None

def test_fail():
    from neurodeploy.targets.rram.device import DeviceConfig
    cfg = DeviceConfig(read_noise=3.0)
    want = window_acc("rram", 0, cal=XCAL, config=cfg, seed=0)
    assert want < 0.9
    with pytest.raises(AssertionError) as e:
        assert_accuracy_within(M, X, Y, "rram", tol_pp=5, options={"config": cfg}, calibration=XCAL)
    msg = str(e.value)
    assert f"is {100 * want:.2f} % vs 100.00 % on reference" in msg, msg
    assert f"{100 * (want - 1):+.2f} pp, outside ±5 pp" in msg and "16 samples" in msg
    assert f"{round(16 * (1 - want))} sample(s) right on reference but wrong on rram" in msg

def test_rram_without_calibration_data_is_refused():
    from neurodeploy.errors import InputError
    for check in (lambda: assert_accuracy_within(M, X, Y, "rram", tol_pp=100),
                  lambda: assert_energy_below(M, X, "rram", joules=1.0),
                  lambda: assert_spikes_match(M, X, "reference", "rram")):
        with pytest.raises(InputError) as e:
            check()
        msg = str(e.value)
        assert msg.startswith("rram: the program calibrates on data") and "calibration=x_cal" in msg, msg
        assert "calibration=N" in msg and "--nd-calibration" in msg and "--nd-calibrate-on-eval" in msg

def test_rram_calibrates_on_the_split_it_is_given():
    v = assert_accuracy_within(M, X, Y, "rram", tol_pp=100, calibration=XCAL)
    assert v["calibration"] == {"source": "calibration inputs given", "samples": 8, "disjoint": True}
    assert v["target"] == window_acc("rram", 0, cal=XCAL, seed=0)
    held = assert_accuracy_within(M, X, Y, "rram", tol_pp=100, calibration=4)  # the first 4 held out, not checked
    assert held["calibration"]["samples"] == 4 and held["calibration"]["disjoint"]
    assert held["target"] == window_acc("rram", 0, x=X[4:], y=Y[4:], cal=X[:4], seed=0)
    with pytest.warns(UserWarning, match="calibrates on the samples it checks"):
        ev = assert_accuracy_within(M, X, Y, "rram", tol_pp=100, calibrate_on_eval=True)
    assert ev["calibration"]["disjoint"] is False and ev["target"] == window_acc("rram", 0, cal=X, seed=0)
'''
    run(pytester, body).assert_outcomes(passed=4)


def test_spikes_match_passes_exactly_and_fails_at_the_first_divergence(pytester):
    body = '''
def first_divergence(a, b, lags):  # independent: shift each layer by its lag, first differing step
    best = None
    for n in G.order:
        if n not in a.records or n not in lags:
            continue
        L, ra, rb = lags[n], a.records[n].numpy(), b.records[n].numpy()
        steps = ra.shape[1] - L
        d = (ra[:, :steps] != rb[:, L:L + steps]).reshape(ra.shape[0], steps, -1).any((0, 2))
        if d.any() and (best is None or d.argmax() < best[0]):
            best = (int(d.argmax()), n)
    return best

def test_identical():
    from neurodeploy.targets.rram.device import DeviceConfig
    ag = assert_spikes_match(M, X, "reference", "rram", options_b={"config": DeviceConfig().ideal()})
    assert ag["identical"] and ag["spike_match"] == 1.0

def test_diverges():
    a = nd.compile(G, "reference").run(X, record="all")
    b = nd.compile(G, "loihi2-emu").run(X, record="all")
    lags = {n: v for n, v in b.info["lag"].items() if n in a.records}
    step, layer = first_divergence(a, b, lags)
    with pytest.raises(AssertionError) as e:
        assert_spikes_match(M, X, "reference", "loihi2-emu")
    msg = str(e.value)
    assert f"first divergence at step {step} of reference (step {step + lags[layer]} of loihi2-emu: lag {lags[layer]}) in layer '{layer}'" in msg, msg
    m = re.search(r"sample (\\d+), neuron\\(s\\) \\[([\\d, …]+)\\]: reference \\[([\\d., ]+)\\], loihi2-emu \\[([\\d., ]+)\\]", msg)
    s, i = int(m.group(1)), int(m.group(2).split(",")[0])
    ra, rb = a.records[layer][s, step].reshape(-1), b.records[layer][s, step + lags[layer]].reshape(-1)
    assert float(m.group(3).split(",")[0]) == ra[i] and float(m.group(4).split(",")[0]) == rb[i] != ra[i]

def test_min_match():
    ag = assert_spikes_match(M, X, "reference", "loihi2-emu", min_match=0.5)
    assert 0.5 <= ag["spike_match"] < 1
'''
    run(pytester, body).assert_outcomes(passed=3)


def test_fits_energy_and_latency_pass_and_fail_at_the_measured_values(pytester):
    loihi = (ROOT / "hardware_profiles" / "loihi2.toml").read_text()
    one_core = loihi.replace("[constants.cores_per_chip]\nvalue = 128", "[constants.cores_per_chip]\nvalue = 1")
    assert one_core != loihi
    (pytester.path / "one_core.toml").write_text(one_core.replace('name = "loihi2"', 'name = "one_core"'))
    body = '''
from neurodeploy.measure.report import fmt_si, profile_run

def measured(target):  # the plugin calibrates a data-dependent program on the split it is given, as --calibration
    from neurodeploy.measure.calibration import Calibration

    rep, _ = profile_run(M, "x", G, X, target=target, calibration=Calibration(XCAL, "calibration inputs given", True))
    t = rep["targets"][0]
    return t["energy"]["per_inference_J"], t["latency"]["per_inference_s"]

def test_fits(nd_compile):
    cores = nd_compile(M, "loihi2-emu", hardware="loihi2").mapping["cores"]
    assert assert_fits(M, "loihi2")["cores"] == cores > 1
    with pytest.raises(AssertionError) as e:
        assert_fits(M, "one_core.toml", chips=1)
    assert f"needs {cores} cores = {cores} chip(s) of 1 cores, but only 1 chip(s)" in str(e.value), str(e.value)
    tiles = nd.compile(G, "rram").tiles
    assert assert_fits(M, "rram_40nm", chips=len(tiles))["tiles"] == sum(tiles.values())
    with pytest.raises(AssertionError, match=f"needs {sum(tiles.values())} crossbar arrays of 512×512"):
        assert_fits(M, "rram_40nm", chips=len(tiles) - 1)

@pytest.mark.parametrize("target", ["loihi2-emu", "rram"])
def test_energy_latency(target):
    e, t = measured(target)
    assert assert_energy_below(M, X, target, joules=e * 1.001, calibration=XCAL)["per_inference_J"] == e
    assert assert_latency_below(M, X, target, seconds=t * 1.001, calibration=XCAL)["per_inference_s"] == t
    with pytest.raises(AssertionError) as err:
        assert_energy_below(M, X, target, joules=e * 0.999, calibration=XCAL)
    assert f"is {fmt_si(e, 'J')}, above the limit {fmt_si(e * 0.999, 'J')}" in str(err.value) and "by event kind" in str(err.value)
    with pytest.raises(AssertionError) as err:
        assert_latency_below(M, X, target, seconds=t / 2, calibration=XCAL)
    assert f"is {fmt_si(t, 's')}, above the limit {fmt_si(t / 2, 's')} (2× the limit)" in str(err.value), str(err.value)
'''
    run(pytester, body).assert_outcomes(passed=3)


def test_report_dir_has_each_test_report_and_an_index(pytester):
    body = '''
def test_ok(nd_target):
    assert_accuracy_within(M, X, Y, nd_target, tol_pp=100)

def test_bad():
    assert_spikes_match(M, X, "reference", "loihi2-emu")
'''
    np.save(pytester.path / "cal.npy", (np.random.default_rng(1).random((8, 24, 64)) < 0.2).astype(np.float32))
    res = run(pytester, body, "--nd-targets", "rram", "--nd-report", "rep", "--nd-calibration", "cal.npy")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines(["neurodeploy: reports of 2 test(s) in *index.html"])
    from neurodeploy.measure.schema import validate

    rep = pytester.path / "rep"
    index = json.loads((rep / "index.json").read_text())
    by_test = {t["test"]: t for t in index["tests"]}
    assert by_test["test_nd.py::test_ok[rram]"]["outcome"] == "passed"
    bad = by_test["test_nd.py::test_bad"]
    assert bad["outcome"] == "failed" and not bad["checks"][0]["passed"] and "first divergence" in bad["checks"][0]["message"]
    for t in index["tests"]:
        html = rep / t["checks"][0]["report"]
        report = json.loads(html.with_name("report.json").read_text())
        assert validate(report) == [] and html.read_text().startswith("<!DOCTYPE html>")
        assert [e["target"] for e in report["targets"]] == ["reference", "rram" if "ok" in t["test"] else "loihi2-emu"]
        cal = {"source": "calibration inputs given", "samples": 8, "disjoint": True} if "ok" in t["test"] else None
        assert report.get("calibration") == cal and t["checks"][0]["values"]["calibration"] == cal
    page = (rep / "index.html").read_text()
    assert 'href="test_nd.py_test_bad/1-assert_spikes_match/report.html"' in page and "1 failed" in page


def test_targets_and_seeds_parametrize_and_compile_is_cached(pytester):
    from neurodeploy.testing.session import available_targets

    body = '''
SEEN = []
def test_t(nd_target, nd_seed, nd_compile):
    p = nd_compile(M, nd_target, seed=nd_seed)
    assert nd_compile(M, nd_target, seed=nd_seed) is p
    SEEN.append(p)
    assert len(set(map(id, SEEN))) == len(SEEN)  # a new (target, seed) is a new program
'''
    res = run(pytester, body, "--nd-targets", "loihi2-emu,rram", "--nd-seeds", "2", "-v")
    res.assert_outcomes(passed=3)
    res.stdout.fnmatch_lines(["*test_t?loihi2-emu-seed0? PASSED*", "*test_t?rram-seed0? PASSED*", "*test_t?rram-seed1? PASSED*"])
    res = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    res.stdout.fnmatch_lines([f"*test_t?{t}-seed0?" for t in available_targets()])


def test_bad_option_is_one_usage_line(pytester):
    pytester.makepyfile(test_x="def test_x(): pass")
    res = pytester.runpytest("--nd-targets", "loihi2-emu,bogus")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["ERROR: --nd-targets: unknown target 'bogus'*"])
    assert "Traceback" not in res.stderr.str()
    for args, needle in ((["--nd-calibration", "missing.npy"], "ERROR: --nd-calibration missing.npy: no such file*"),
                         (["--nd-calibration", "4", "--nd-calibrate-on-eval"], "ERROR: --nd-calibration and --nd-calibrate-on-eval exclude*")):
        res = pytester.runpytest(*args)
        assert res.ret == pytest.ExitCode.USAGE_ERROR
        res.stderr.fnmatch_lines([needle])


def test_nd_calibration_holds_out_samples_or_flags_calibrating_on_them(pytester):
    body = '''
def test_held_out():
    v = assert_accuracy_within(M, X, Y, "rram", tol_pp=100)
    assert v["calibration"] == {"source": "the first 4 samples of the input, held out (not evaluated)", "samples": 4, "disjoint": True}
'''
    run(pytester, body, "--nd-calibration", "4").assert_outcomes(passed=1)
    body = '''
def test_on_eval():
    v = assert_accuracy_within(M, X, Y, "rram", tol_pp=100)
    assert v["calibration"]["disjoint"] is False and v["calibration"]["samples"] == 16
'''
    res = run(pytester, body, "--nd-calibrate-on-eval")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*calibrates on the samples it checks*"])  # in pytest's warnings summary


def test_unrelated_project_is_unaffected(pytester):
    pytester.makepyfile(test_plain='''
import sys
def test_plain():
    assert "neurodeploy.testing.plugin" in sys.modules  # the plugin is loaded ...
    heavy = [m for m in ("torch", "numpy", "neurodeploy.targets", "neurodeploy.measure") if m in sys.modules]
    assert heavy == []  # ... and imported nothing heavy
''')
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.assert_outcomes(passed=1)
    lines = (res.stdout.str() + res.stderr.str()).splitlines()
    assert [ln for ln in lines if "neurodeploy" in ln and not ln.startswith("plugins:")] == []  # pytest's own header only
    assert not list(pytester.path.rglob("*.html")) and not list(pytester.path.rglob("check.json"))  # wrote nothing


def test_nd_hardware_applies_per_target_or_by_kind(pytester):
    from neurodeploy.testing.session import Session

    per = Session(hardware="loihi2-emu=loihi1")
    assert per.profile("loihi2-emu").name == "loihi1" and per.profile("rram").name == "rram_40nm"
    bare = Session(hardware="rram_40nm")  # an RRAM profile: only for the rram target
    assert bare.profile("rram").name == "rram_40nm" and bare.profile("loihi2-emu").name == "loihi2"
    assert Session(hardware="loihi1").profile("lava").name == "loihi1"
    body = '''
def test_e():
    assert_energy_below(M, X, "loihi2-emu", joules=1.0)
'''
    run(pytester, body, "--nd-hardware", "loihi1", "--nd-report", "r").assert_outcomes(passed=1)
    check = json.loads(next((pytester.path / "r").rglob("check.json")).read_text())
    assert check["targets"] == ["loihi2-emu (loihi1)"] and check["passed"]
    res = pytester.runpytest("--nd-hardware", "no_such_profile")
    assert res.ret == pytest.ExitCode.USAGE_ERROR and "no_such_profile" in res.stderr.str()
