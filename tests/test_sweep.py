"""neurodeploy.sweep: local pool and Ray give the same numbers; an interrupted sweep
resumes without redoing finished tasks; a failing point is retried once, then reported."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits_snn.nir"


def _value(params, seed):
    return 10 * params["p"] + seed


def logged_eval(params, seed, context):
    """A cheap evaluation that logs every call; interrupts at one point while a marker
    file exists, and fails where the context says."""
    with open(context["log"], "a") as f:
        f.write(json.dumps([params["p"], seed]) + "\n")
    if params["p"] == context.get("interrupt_at") and Path(context["marker"]).exists():
        raise KeyboardInterrupt
    if params["p"] in context.get("fail_at", []):
        raise ValueError(f"point p={params['p']} is broken")
    if params["p"] in context.get("flaky_at", []):
        flag = Path(context["log"]).with_suffix(f".flaky{params['p']}-{seed}")
        if not flag.exists():
            flag.touch()
            raise RuntimeError("first attempt fails")
    return {"value": _value(params, seed)}


def _calls(log):
    return [tuple(json.loads(ln)) for ln in Path(log).read_text().splitlines()]


@pytest.fixture(scope="module")
def digits_input(tmp_path_factory):
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.measure.metrics import predict

    x = (np.random.default_rng(0).random((8, 12, 64)) < 0.2).astype(np.float32)
    y = predict(nd.run(nd.load(MODEL), x).output, "spikes")
    path = tmp_path_factory.mktemp("sweep") / "in.npz"
    x_train = (np.random.default_rng(1).random((4, 12, 64)) < 0.2).astype(np.float32)  # ADC calibration split
    np.savez(path, x=x, y=y, x_train=x_train)
    return path


def test_local_and_ray_give_the_same_numbers(digits_input, tmp_path):
    pytest.importorskip("ray")
    from neurodeploy.sweep import evaluate_model, run_sweep

    params = {"target": ["rram"], "device.read_noise": [0.0, 0.5]}
    ctx = {"model": str(MODEL), "input": str(digits_input)}
    local = run_sweep(evaluate_model, params, 2, out=tmp_path / "local", context=ctx)
    ray = run_sweep(evaluate_model, params, 2, out=tmp_path / "ray", context=ctx, backend="ray", workers=2)
    assert local["failed"] == 0 and local["points"] == ray["points"]
    noisy = local["points"][1]["metrics"]["spikes_per_sample"]["values"]
    assert noisy[0] != noisy[1]  # the seed reaches the device noise
    direct = evaluate_model({"target": "rram", "device.read_noise": 0.5}, 1, ctx)  # in this process
    assert {k: m["values"][1] for k, m in local["points"][1]["metrics"].items()} == direct
    assert json.loads((tmp_path / "ray" / "sweep.json").read_text())["points"] == ray["points"]


def test_a_point_never_calibrates_on_the_data_it_evaluates(digits_input, tmp_path):
    import numpy as np

    from neurodeploy.errors import InputError
    from neurodeploy.sweep import evaluate_model

    no_train = tmp_path / "x_only.npz"
    np.savez(no_train, **{k: v for k, v in np.load(digits_input).items() if k != "x_train"})
    with pytest.raises(InputError, match="calibrates on data"):
        evaluate_model({"target": "rram"}, 0, {"model": str(MODEL), "input": str(no_train)})
    assert evaluate_model({"target": "reference"}, 0, {"model": str(MODEL), "input": str(no_train)})["accuracy"] == 1.0


def test_interrupted_sweep_resumes_without_redoing_finished_tasks(tmp_path):
    from neurodeploy.errors import InputError
    from neurodeploy.sweep import RESULTS, run_sweep

    marker = tmp_path / "interrupt"
    marker.touch()
    ctx = {"log": str(tmp_path / "calls.log"), "marker": str(marker), "interrupt_at": 3}
    params, out = {"p": [0, 1, 2, 3, 4, 5]}, tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(logged_eval, params, 2, out=out, context=ctx, workers=1)
    saved = [json.loads(ln)["key"] for ln in (out / RESULTS).read_text().splitlines()]
    assert 0 < len(saved) < 12 and not (out / "sweep.json").exists()
    with open(out / RESULTS, "a") as f:
        f.write('{"key": "trunc')  # a writer killed mid-line
    with pytest.raises(InputError, match="not empty: pass --resume"):
        run_sweep(logged_eval, params, 2, out=out, context=ctx)
    with pytest.raises(InputError, match="different sweep"):
        run_sweep(logged_eval, {"p": [0, 1]}, 2, out=out, context=ctx, resume=True)
    marker.unlink()
    n_before = len(_calls(ctx["log"]))
    done = run_sweep(logged_eval, params, 2, out=out, context=ctx, resume=True)
    again = _calls(ctx["log"])[n_before:]
    assert len(again) == 12 - len(saved)  # only the tasks not saved ran again
    assert [p["metrics"]["value"]["values"] for p in done["points"]] == [[_value({"p": p}, s) for s in (0, 1)] for p in params["p"]]


def test_an_interrupt_keeps_the_tasks_finished_in_the_same_batch(tmp_path, monkeypatch):
    """A backend's wait() returns a batch in any order: an interrupted task at its head must
    not lose the results that finished beside it (they are saved, then the interrupt raised)."""
    import neurodeploy.sweep as sw

    class Batch:  # every submitted task comes back in one batch, the first one interrupted
        def __init__(self):
            self.args = []

        def submit(self, fn, params, seed, context):
            self.args.append((params, seed))
            return len(self.args) - 1

        def wait(self, handles):
            return [(h, {"status": "interrupted"} if h == 0 else {"status": "ok", "metrics": {"value": 1.0}})
                    for h in sorted(handles)]

        def close(self, abort=False):
            pass

    monkeypatch.setattr(sw, "make_backend", lambda *a: Batch())
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        sw.run_sweep(logged_eval, {"p": [0, 1, 2]}, 1, out=tmp_path / "out", context={})
    saved = [json.loads(ln)["key"] for ln in (tmp_path / "out" / sw.RESULTS).read_text().splitlines()]
    assert len(saved) == 2 and len(set(saved)) == 2


def test_failing_point_is_retried_once_then_reported(tmp_path):
    from neurodeploy.sweep import run_sweep

    ctx = {"log": str(tmp_path / "calls.log"), "fail_at": [1], "flaky_at": [2]}
    out = run_sweep(logged_eval, {"p": [0, 1, 2]}, 1, out=tmp_path / "out", context=ctx)
    calls = _calls(ctx["log"])
    assert calls.count((1, 0)) == 2 and calls.count((2, 0)) == 2 and calls.count((0, 0)) == 1
    bad, flaky = out["points"][1], out["points"][2]
    assert out["failed"] == 1 and bad["metrics"] == {}
    assert bad["failed"] == [{"seed": 0, "error": "ValueError: point p=1 is broken", "attempts": 2}]
    assert flaky["failed"] == [] and flaky["metrics"]["value"]["values"] == [20.0]
    recs = [json.loads(ln) for ln in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["params"]["p"], r["status"], r["attempts"]) for r in recs) == [(0, "ok", 1), (1, "error", 2), (2, "ok", 2)]


def test_cli_sweep_runs_and_reports_bad_input_in_one_line(digits_input, tmp_path, capsys):
    from neurodeploy.cli import main

    out = tmp_path / "s"
    args = ["sweep", str(MODEL), "-i", str(digits_input), "--param", "target=loihi2-emu", "--param", "quant.vth=5,50", "-o", str(out)]
    assert main(["-q", *args]) == 0
    pts = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["params"]["quant.vth"] for p in pts] == [5, 50] and pts[0]["metrics"] != pts[1]["metrics"]
    capsys.readouterr()
    for bad, what in ((["--param", "device.bogus=1"], "unknown device parameter 'bogus'"),
                      (["--param", "target=loihi9"], "unknown target 'loihi9'"),
                      (["--param", "p=1"], "unknown parameter 'p'"),
                      (["--param", "target=rram", "--address", "x:1"], "--address joins a Ray cluster"),
                      (["--param", "target=rram", "--resume"], "holds no sweep")):
        o = tmp_path / "bad"
        assert main(["sweep", str(MODEL), "-i", str(digits_input), *bad, "-o", str(o)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and what in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert not o.exists() or not any(o.iterdir())
    assert main(args) == 2 and "pass --resume" in capsys.readouterr().err
    assert main(["-q", *args, "--resume"]) == 0  # nothing left to do: same summary
    assert json.loads((out / "sweep.json").read_text())["points"] == pts
