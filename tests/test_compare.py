"""Agreement metrics (lag, spike match, correlation, first divergence) and the compare CLI."""

import json

import nir
import numpy as np
import pytest
import torch

from neurodeploy.cli import main
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.measure.compare import agreement, declared_lag, synaptic_depth
from neurodeploy.measure.schema import validate
from neurodeploy.targets.base import REGISTRY, RunResult, get_target

from .helpers import chain, f32, lif


def _result(records, info=None, target="t"):
    rec = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in records.items()}
    first = next(iter(rec.values()))
    counts = {k: {"spikes": int(v.sum())} for k, v in rec.items()}
    return RunResult(outputs={"o": first}, target=target, dt=1e-3, batch=first.shape[0], steps=first.shape[1],
                     records=rec, counts=counts, info=info or {})


def _spikes(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.float32)


def test_identical_runs_agree(rng):
    a, b = _spikes(rng, (2, 10, 4)), _spikes(rng, (2, 10, 3))
    ref = _result({"a": a, "b": b})
    ag = agreement(ref, _result({"a": a.copy(), "b": b.copy()}))
    assert ag["spike_match"] == 1.0 and ag["identical"] and ag["first_divergence"] is None
    assert ag["layers"]["a"]["count_correlation"] == 1.0
    assert ag["lag"] == 0


def test_lag_is_applied_and_shown(rng):
    a = _spikes(rng, (2, 10, 4))
    lagged = np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], 1)  # target delivers one step late
    ref = _result({"a": a})
    ag = agreement(ref, _result({"a": lagged}, info={"lag": 1}))
    assert ag["lag"] == 1 and ag["layers"]["a"]["lag"] == 1
    assert ag["spike_match"] == 1.0 and ag["first_divergence"] is None
    assert ag["layers"]["a"]["compared_steps"] == 9
    # the same trains without the declared lag disagree, and the report says where
    ag0 = agreement(ref, _result({"a": lagged}))
    assert ag0["lag"] == 0 and ag0["spike_match"] < 1.0 and ag0["first_divergence"] is not None
    # per-layer lag dict
    ag2 = agreement(_result({"a": a, "b": a}), _result({"a": a, "b": lagged}, info={"lag": {"a": 0, "b": 1}}))
    assert ag2["lag"] == {"a": 0, "b": 1} and ag2["spike_match"] == 1.0


def test_first_divergence_and_match_fraction(rng):
    a, b = _spikes(rng, (2, 8, 5)), _spikes(rng, (2, 8, 3))
    b2 = b.copy()
    b2[1, 3, 2] = 1 - b2[1, 3, 2]
    b2[0, 6, 0] = 1 - b2[0, 6, 0]
    ag = agreement(_result({"a": a, "b": b}), _result({"a": a, "b": b2}))
    assert ag["first_divergence"] == {"step": 3, "layer": "b", "target_step": 3}
    assert ag["layers"]["b"]["first_divergent_step"] == 3
    assert ag["layers"]["a"]["spike_match"] == 1.0
    assert ag["layers"]["b"]["spike_match"] == pytest.approx(1 - 2 / b.size)
    assert ag["spike_match"] == pytest.approx(1 - 2 / (a.size + b.size))
    rc, tc = b.sum((0, 1)), b2.sum((0, 1))
    assert ag["layers"]["b"]["count_correlation"] == pytest.approx(np.corrcoef(rc, tc)[0, 1])


def _graph3(rng):
    w1 = f32(rng.normal(1.0, 0.5, (6, 4)))
    w2 = f32(rng.normal(0.5, 0.7, (3, 6)))
    return chain(nir.Input(np.array([4])), nir.Affine(weight=w1, bias=np.zeros(6, np.float32)), lif(6, tau=0.004, thr=0.5),
                 nir.Affine(weight=w2, bias=np.zeros(3, np.float32)), lif(3, tau=0.004, thr=0.5), nir.Output(np.array([3])), dt=1e-3)


def test_declared_output_lag_extends_by_synaptic_depth(rng):
    g = load(_graph3(rng))
    depth = synaptic_depth(g)
    n1, n2 = g.neuron_nodes()
    assert depth[n1] == 1 and depth[n2] == 2 and depth[g.outputs[0]] == 2
    lag, rule = declared_lag({"lag": {g.outputs[0]: 2}}, g, [n1, n2])
    assert lag == {n1: 1, n2: 2, g.outputs[0]: 2} and "synaptic depth" in rule
    lag, rule = declared_lag({"lag": {g.outputs[0]: 5}}, g, [n1, n2])
    assert lag == {g.outputs[0]: 5} and f"({n1}, {n2}) compared without lag" in rule
    lag, rule = declared_lag({"lag": {g.outputs[0]: 5, n1: 3, n2: 4}}, g, [n1, n2])  # every layer declared
    assert lag == {g.outputs[0]: 5, n1: 3, n2: 4} and rule == "declared per layer (info.lag)"
    assert declared_lag({"lag": 1}, g, [n1])[0] == 1
    assert declared_lag({}, g, [n1]) == (0, "no lag declared")


@pytest.fixture
def tiny_files(tmp_path, rng):
    model = tmp_path / "tiny.nir"
    nir.write(str(model), _graph3(rng))
    x = _spikes(rng, (4, 12, 4), 0.5)
    data = tmp_path / "x.npz"
    np.savez(data, x=x, y=np.array([0, 1, 2, 0]))
    return model, data, x


def _available(name):
    try:
        get_target(name)
        return True
    except InputError:
        return False


def test_compare_cli_all_targets(tiny_files, tmp_path, capsys):
    model, data, x = tiny_files
    out = tmp_path / "cmp"
    targets = [t for t in REGISTRY if t != "lava"]  # lava: see test_compare_cli_lava (slow)
    rc = main(["--quiet", "compare", str(model), "--targets", ",".join(targets), "--input", str(data), "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    rep = json.loads((out / "report.json").read_text())
    assert validate(rep) == []
    assert (out / "report.html").exists()
    by = {e["target"]: e for e in rep["targets"]}
    assert list(by) == targets
    assert [s["target"] for s in summary["targets"]] == targets
    ref = by["reference"]
    assert ref["status"] == "ok" and ref["agreement"]["spike_match"] == 1.0
    # reference accuracy: an independent run of the reference target
    r = get_target("reference").compile(load(str(model))).run(x)
    from neurodeploy.measure.metrics import accuracy

    assert ref["metrics"]["accuracy"] == pytest.approx(accuracy(r, [0, 1, 2, 0], "spikes"))
    for t in targets:
        e = by[t]
        if not _available(t):
            assert e["status"] == "skipped" and e["reason"]
            continue
        assert e["status"] in ("ok", "error"), e
        if e["status"] == "error":
            assert e["reason"]
            continue
        ag = e["agreement"]
        assert "lag" in ag and ag["lag_note"]
        assert 0.0 <= ag["spike_match"] <= 1.0
        assert e["energy"]["per_inference_J"] > 0
        row = next(s for s in summary["targets"] if s["target"] == t)
        assert row["lag"] == ag["lag"]


def test_compare_unavailable_target_is_skipped(tiny_files, tmp_path, monkeypatch, capsys):
    model, data, _ = tiny_files
    monkeypatch.setitem(REGISTRY, "rram", "neurodeploy.targets.does_not_exist:Nothing")
    out = tmp_path / "cmp"
    rc = main(["--quiet", "compare", str(model), "--targets", "reference,rram", "--input", str(data), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    rram = next(e for e in rep["targets"] if e["target"] == "rram")
    assert rram["status"] == "skipped" and "not available" in rram["reason"]
    assert "skipped" in (out / "report.html").read_text()


def test_compare_bad_target_name(tiny_files, tmp_path, capsys):
    model, data, _ = tiny_files
    rc = main(["compare", str(model), "--targets", "reference,gpu", "--input", str(data), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "gpu" in err
    assert not (tmp_path / "o").exists()


def test_compare_hardware_that_prices_no_target_is_refused_before_work(tiny_files, tmp_path, capsys):
    """A bare --hardware PROFILE applies to the targets of its kind; one that applies to none
    (an rram profile for reference + loihi2-emu, the digital baseline for any) was silently
    ignored (the reference priced on its default): now one error line, nothing written."""
    model, data, _ = tiny_files
    for prof, why in (("rram_40nm", "applies to none of the targets"), ("digital_45nm", "applies to none")):
        out = tmp_path / prof
        rc = main(["compare", str(model), "--targets", "loihi2-emu", "--hardware", prof, "--input", str(data),
                   "-o", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: --hardware " + prof) and why in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()
    out = tmp_path / "named"
    rc = main(["compare", str(model), "--targets", "loihi2-emu", "--hardware", "reference=digital_45nm",
               "--input", str(data), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "digital baseline: it prices no target's runs" in err and not out.exists(), err
    rc = main(["profile", str(model), "--target", "reference", "--hardware", "digital_45nm", "--input", str(data),
               "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "digital baseline" in err and len(err.strip().splitlines()) == 1 and not out.exists(), err


@pytest.mark.slow
@pytest.mark.lava
def test_compare_cli_lava(tiny_files, tmp_path, capsys):
    """Lava's documented one-step-per-synapse lag is declared and accounted for."""
    if not _available("lava"):
        pytest.skip("lava target not available")
    pytest.importorskip("lava")
    model, data, _ = tiny_files
    out = tmp_path / "cmp"
    rc = main(["--quiet", "compare", str(model), "--targets", "reference,lava,loihi2-emu", "--input", str(data), "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert validate(rep) == []
    by = {e["target"]: e for e in rep["targets"]}
    lava = by["lava"]
    assert lava["status"] == "ok", lava.get("reason")
    assert lava["agreement"]["lag"] != 0
    if by["loihi2-emu"]["status"] == "ok":
        # the emulator reproduces Lava bit-exactly: their spike counts match
        assert lava["metrics"]["spikes"]["total"] == by["loihi2-emu"]["metrics"]["spikes"]["total"]


def test_relative_lag_between_two_lagged_runs(rng):
    a = _spikes(rng, (2, 10, 4))
    lagged = np.concatenate([np.zeros_like(a[:, :1]), a[:, :-1]], 1)
    # both runs lag by one step: their difference is 0 and they agree exactly
    ag = agreement(_result({"a": lagged}, info={"lag": 1}), _result({"a": lagged}, info={"lag": 1}))
    assert ag["lag"] == 0 and ag["spike_match"] == 1.0
    # the lagged run used as reference for an unlagged one: lag -1
    ag = agreement(_result({"a": lagged}, info={"lag": 1}), _result({"a": a}))
    assert ag["lag"] == -1 and ag["spike_match"] == 1.0 and ag["layers"]["a"]["compared_steps"] == 9


@pytest.mark.slow
@pytest.mark.lava
def test_agreement_with_real_lava(rng):
    """Against Lava itself: Lava's spikes trail the reference by one step per synapse
    (declared through info["lag"]), and match the Loihi emulator exactly."""
    pytest.importorskip("lava")
    if not _available("lava"):
        pytest.skip("lava target not available")
    g = load(_graph3(rng))
    x = _spikes(rng, (2, 12, 4), 0.5)
    ref = get_target("reference").compile(g).run(x, record="all")
    emu = get_target("loihi2-emu").compile(g).run(x, record="all")
    lava = get_target("lava").compile(g).run(x, record="all")
    n1, n2 = g.neuron_nodes()
    ag = agreement(ref, lava, g)
    assert ag["lag"][n1] == 1 and ag["lag"][n2] == 2
    ag_emu = agreement(emu, lava, g)
    assert ag_emu["spike_match"] == 1.0 and ag_emu["identical"]
    assert all(v == 0 for v in ag_emu["lag"].values()) if isinstance(ag_emu["lag"], dict) else ag_emu["lag"] == 0


def test_declared_lag_explains_emulator_timing():
    """On the trained digits SNN the Loihi emulator's spikes agree with the reference far
    better once its declared lag (one step per synapse) is applied than without it."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits_snn.nir"
    assert model.exists(), "the digits model ships in examples/models"
    from neurodeploy.data import digits_spikes

    _, (x, _) = digits_spikes(steps=16, seed=0)
    g = load(str(model))
    ref = get_target("reference").compile(g).run(x[:30], record="all")
    emu = get_target("loihi2-emu").compile(g).run(x[:30], record="all")
    with_lag = agreement(ref, emu, g)
    n1, n2 = g.neuron_nodes()
    assert with_lag["lag"][n1] == 1 and with_lag["lag"][n2] == 2
    info = {k: v for k, v in emu.info.items() if k != "lag"}
    no_lag = agreement(ref, RunResult(outputs=emu.outputs, target="x", dt=emu.dt, batch=emu.batch, steps=emu.steps,
                                      records=emu.records, counts=emu.counts, info=info), g)
    assert no_lag["lag"] == 0
    assert with_lag["spike_match"] > 0.95
    assert with_lag["spike_match"] > no_lag["spike_match"] + 0.02
    assert with_lag["layers"][n1]["count_correlation"] > 0.99
