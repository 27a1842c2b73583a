"""Parameter sweeps: a grid of target, hardware, device and quantization parameters ×
seeds, one evaluation per task, on a local process pool (default) or on Ray.

* Grid parameters (``name=v1,v2,...``): ``target``, ``hardware`` (profile names or .toml),
  ``device.<field>`` (an RRAM :class:`~neurodeploy.targets.rram.device.DeviceConfig`
  field over the hardware profile's values), ``quant.<option>`` (Loihi quantization:
  ``weight_exp``, ``vth``, ``vth_max``) and ``option.<name>`` (any other compile option).
  The grid is their Cartesian product; every point runs with seeds ``0 … seeds-1`` (the
  compile seed of targets that take one: RRAM programming and read noise).
* The built-in evaluation (:func:`evaluate_model`) compiles and runs a model on an input
  file and returns what ``neurodeploy profile`` reports for it (accuracy, spikes, energy
  and latency per inference). Any importable ``fn(params, seed, context) -> {name: number}``
  can be swept instead.
* Every evaluation runs in a worker process, single-threaded, so numbers do not depend on
  the backend or the number of workers. A failed task is retried once, then recorded as
  failed with its error — never dropped.
* Results go to ``OUT/results.jsonl`` as each task finishes (one JSON line per task), so
  an interrupted sweep resumes (``resume=True``) with the tasks not yet done; the summary
  ``OUT/sweep.json`` (mean and std over seeds per point) is written when all are done.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from .options import typed

PREFIXES = ("device.", "quant.", "option.")
NAMES = ("target", "hardware")
QUANT_OPTIONS = ("weight_exp", "vth", "vth_max")
RESULTS, SPEC, SUMMARY = "results.jsonl", "spec.json", "sweep.json"


# ------------------------------------------------------------------------------ the grid
def parse_param(text: str) -> tuple[str, list]:
    """``name=v1,v2,...`` → (name, typed values); ``device.*`` typed by the DeviceConfig field."""
    name, sep, vals = text.partition("=")
    name = name.strip()
    if not sep or not vals.strip() or not name:
        raise InputError(f"--param {text!r}: expected name=v1,v2,... (e.g. device.read_noise=0,0.02 or target=rram,loihi2-emu)")
    if name not in NAMES and not any(name.startswith(p) and len(name) > len(p) for p in PREFIXES):
        raise InputError(f"--param {text!r}: unknown parameter {name!r} (use target, hardware, device.<field>, quant.<option> or option.<name>)")
    if name.startswith("device."):
        from .targets.rram.lsm import parse_param as device_param

        try:
            return name, device_param(f"{name[7:]}={vals}")[1]
        except InputError as exc:
            raise InputError(str(exc).replace(repr(f"{name[7:]}={vals}"), repr(text))) from None
    if name.startswith("quant.") and name[6:] not in QUANT_OPTIONS:
        raise InputError(f"--param {text!r}: unknown quantization option {name[6:]!r} (known: {', '.join(QUANT_OPTIONS)})")
    values = [typed(v.strip()) for v in vals.split(",")]
    if name == "target":
        from .targets.base import REGISTRY

        bad = [v for v in values if v not in REGISTRY]
        if bad:
            raise InputError(f"--param {text!r}: unknown target {bad[0]!r} (choose from {', '.join(REGISTRY)})")
    return name, values


def make_grid(params: dict[str, list]) -> list[dict]:
    """The Cartesian product of the parameter values, in the order given."""
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


@dataclass(frozen=True)
class Task:
    point: int
    params: dict
    seed: int

    @property
    def key(self) -> str:
        return json.dumps({"params": self.params, "seed": self.seed}, sort_keys=True)


# ------------------------------------------------------------------------------ evaluation
_LOADED: dict = {}


def _load(context: dict):
    """(graph, x, y, x_train) of the context's model and input file (``x_train``: the
    calibration split, or None), loaded once per worker."""
    key = (context["model"], context["input"])
    if key not in _LOADED:
        import numpy as np

        from . import load

        data = np.load(context["input"], allow_pickle=False)
        _LOADED[key] = (load(context["model"]), data["x"], data["y"] if "y" in data.files else None,
                        data["x_train"] if "x_train" in data.files else None)
    return _LOADED[key]


def compile_args(params: dict, seed: int, context: dict) -> tuple[str, Any, dict]:
    """(target, hardware profile, compile options) of one grid point and seed; the profile
    prices the run and goes to compile() only where the target compiles for its kind."""
    from .measure.report import load_hardware
    from .targets.base import get_target
    from .testing.session import takes_option

    target = params.get("target", context.get("target", "reference"))
    profile = load_hardware(get_target(target), params.get("hardware", context.get("hardware")))
    options = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(("quant.", "option."))}
    device = {k[7:]: v for k, v in params.items() if k.startswith("device.")}
    if device:
        if not takes_option(target, "config"):
            raise InputError(f"device.* parameters set a device configuration; target {target!r} has none")
        from .targets.rram.device import DeviceConfig

        options["config"] = DeviceConfig.from_profile(profile, **device)
    if takes_option(target, "seed"):
        options["seed"] = int(seed)
    return target, profile, options


def evaluate_model(params: dict, seed: int, context: dict) -> dict:
    """Compile and run the context's model at one grid point; the numbers ``neurodeploy
    profile`` reports: accuracy (with labels), spikes, energy and latency per inference."""
    import torch

    from . import compile as nd_compile
    from .measure.calibration import Calibration, run_options
    from .measure.report import target_entry
    from .testing.session import compiles_for

    torch.set_num_threads(1)
    graph, x, y, x_train = _load(context)
    target, profile, options = compile_args(params, seed, context)
    program = nd_compile(graph, target, hardware=profile if compiles_for(target, profile) else None, **options)
    cal = None if x_train is None else Calibration(x_train, "the input file's x_train", True)
    result = program.run(x, record="all", **run_options(program.describe(), cal, target))  # never calibrates on x
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    e = target_entry(target, program, result, graph, profile, labels=y, readout=context.get("readout", "auto"), inputs=inputs)
    return {
        "accuracy": e["metrics"]["accuracy"], "spikes_per_sample": e["metrics"]["spikes"]["per_sample"],
        "energy_per_inference_J": (e.get("energy") or {}).get("per_inference_J"),
        "latency_per_inference_s": (e.get("latency") or {}).get("per_inference_s"),
    }


def resolve(fn) -> Callable:
    """A callable from itself or from ``"module:function"``."""
    if callable(fn):
        return fn
    import importlib

    mod, sep, attr = str(fn).partition(":")
    try:
        f = getattr(importlib.import_module(mod), attr) if sep else None
    except (ImportError, AttributeError) as exc:
        raise InputError(f"--eval {fn!r}: cannot import it ({type(exc).__name__}: {exc})") from None
    if not callable(f):
        raise InputError(f"--eval {fn!r}: expected module:function naming a callable")
    return f


def call(fn, params: dict, seed: int, context: dict) -> dict:
    """Run one task in a worker: ``{"status": "ok", "metrics"}``, ``{"status": "error",
    "error"}``, or ``{"status": "interrupted"}`` (KeyboardInterrupt in the evaluation)."""
    try:
        metrics = resolve(fn)(params, seed, context)
        return {"status": "ok", "metrics": {k: (None if v is None else float(v)) for k, v in metrics.items()}}
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except Exception as exc:  # reported with the point, never fatal to the sweep
        return {"status": "error", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def fn_name(fn) -> str:
    return fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"


# ------------------------------------------------------------------------------ results on disk
class Store:
    """``OUT/spec.json`` (what is swept) and ``OUT/results.jsonl`` (one line per finished
    task, appended and flushed as it finishes). A fresh sweep needs a new or empty OUT; a
    resumed one the same spec. A truncated last line (a killed writer) is ignored."""

    def __init__(self, out, spec: dict, resume: bool):
        self.dir = Path(out)
        self.path = self.dir / RESULTS
        if self.dir.exists() and not self.dir.is_dir():
            raise InputError(f"{self.dir}: output path exists and is not a directory")
        if resume:
            self._check_spec(spec)
        elif self.dir.exists() and any(self.dir.iterdir()):
            hint = ": pass --resume to continue that sweep" if self.path.exists() else ""
            raise InputError(f"{self.dir}: output directory exists and is not empty{hint}")
        else:
            from .graph.io import write_json

            self.dir.mkdir(parents=True, exist_ok=True)
            write_json(self.dir / SPEC, spec)
        self.done = self._read()

    def _check_spec(self, spec: dict) -> None:
        if not (self.dir / SPEC).exists():
            raise InputError(f"--resume: {self.dir} holds no sweep ({SPEC} not found)")
        old = json.loads((self.dir / SPEC).read_text())
        diff = [k for k in sorted(set(old) | set(spec)) if old.get(k) != spec.get(k)]
        if diff:
            raise InputError(f"--resume: {self.dir} holds a different sweep ({diff[0]}: {old.get(diff[0])!r} there, "
                             f"{spec.get(diff[0])!r} now)")

    def _read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        lines = self.path.read_text().splitlines()
        out = {}
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break  # the last task was being written when the sweep stopped
                raise InputError(f"{self.path}: line {i + 1} is not JSON") from None
            out[rec["key"]] = rec
        return out

    def append(self, rec: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[rec["key"]] = rec


# ------------------------------------------------------------------------------ backends
class LocalBackend:
    """A pool of fresh (spawned) worker processes."""

    def __init__(self, workers: int):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self._new = lambda: ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.pool = self._new()

    def submit(self, *args):
        return self.pool.submit(call, *args)

    def wait(self, handles) -> list[tuple[Any, dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out = []
        for h in done:
            try:
                out.append((h, h.result()))
            except BrokenProcessPool:  # a worker died (killed, out of memory): fresh pool, the task is retried
                out.append((h, {"status": "error", "error": "worker process died"}))
        if len(out) and any(r.get("error") == "worker process died" for _, r in out):
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new()
        return out

    def close(self, abort: bool = False) -> None:
        """Wait for the workers; ``abort``: stop them now (an interrupt must not leave
        evaluations running behind the user's back)."""
        if abort:
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=not abort, cancel_futures=True)


class RayBackend:
    """One Ray task per evaluation: on the cluster at ``address``, else a local instance
    with ``workers`` CPUs (shut down again at the end)."""

    def __init__(self, workers: int, address: str | None):
        try:
            import ray
        except ImportError:
            raise InputError("--backend ray needs the 'ray' package: pip install 'neurodeploy[distributed]'") from None
        self.ray, self.started = ray, not ray.is_initialized()
        if self.started:
            import sys

            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}} if address is None else None
            try:
                self._init(address, workers, env)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise InputError(f"--address {address!r}: cannot join the Ray cluster ({str(exc).splitlines()[0]})") from None
        self.remote = ray.remote(num_cpus=1, max_retries=0)(call)

    def _init(self, address, workers, env, attempts: int = 2):
        """ray.init; a local instance whose raylet misses Ray's fixed 30 s start-up wait (a
        loaded machine) is shut down and started once more."""
        for attempt in range(attempts):
            try:
                self.ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                              log_to_driver=False, runtime_env=env)
                return
            except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this one
                if address is not None or "timed out during startup" not in str(exc) or attempt + 1 == attempts:
                    raise
                self.ray.shutdown()

    def submit(self, *args):
        return self.remote.remote(*args)

    def wait(self, handles) -> list[tuple[Any, dict]]:
        done, _ = self.ray.wait(list(handles), num_returns=1)
        out = []
        for h in done:
            try:
                out.append((h, self.ray.get(h)))
            except Exception as exc:  # the worker died
                out.append((h, {"status": "error", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}))
        return out

    def close(self, abort: bool = False) -> None:
        if self.started:
            self.ray.shutdown()


def check_backend(name: str, address: str | None) -> None:
    """Refuse a bad backend choice before anything is written."""
    import importlib.util

    if name not in ("local", "ray"):
        raise InputError(f"--backend {name!r}: choose local or ray")
    if name == "local" and address is not None:
        raise InputError("--address joins a Ray cluster: use it with --backend ray")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        raise InputError("--backend ray needs the 'ray' package: pip install 'neurodeploy[distributed]'")


def make_backend(name: str, workers: int | None = None, address: str | None = None):
    check_backend(name, address)
    workers = workers or min(2, os.cpu_count() or 1)
    return LocalBackend(workers) if name == "local" else RayBackend(workers, address)


# ------------------------------------------------------------------------------ the driver
def run_sweep(evaluate, params: dict[str, list], seeds: int = 1, *, out, context: dict | None = None,
              backend: str = "local", workers: int | None = None, address: str | None = None,
              resume: bool = False, retries: int = 1, progress=None) -> dict:
    """Evaluate every grid point × seed (see the module docstring); returns the summary
    written to ``out/sweep.json``. Raises KeyboardInterrupt when interrupted (the tasks
    done so far are kept for ``resume=True``)."""
    if int(seeds) < 1:
        raise InputError(f"--seeds must be >= 1, got {seeds}")
    context = dict(context or {})
    fn = fn_name(evaluate)
    spec = {"evaluate": fn, "params": params, "seeds": int(seeds), "context": context}
    tasks = [Task(i, p, s) for i, p in enumerate(make_grid(params)) for s in range(int(seeds))]
    check_backend(backend, address)
    store = Store(out, json.loads(json.dumps(spec)), resume)
    todo = [t for t in tasks if store.done.get(t.key, {}).get("status") != "ok"]
    be = make_backend(backend, workers, address)
    n_done = len(tasks) - len(todo)
    if progress:
        progress(n_done, len(tasks))
    try:
        pending = {be.submit(fn, t.params, t.seed, context): (t, 1) for t in todo}
        while pending:
            interrupted = None
            for h, res in be.wait(pending):  # a batch comes back in any order: keep every finished task first
                t, attempt = pending.pop(h)
                if res["status"] == "interrupted":
                    interrupted = interrupted or t
                    continue
                if res["status"] == "error" and attempt <= retries:
                    pending[be.submit(fn, t.params, t.seed, context)] = (t, attempt + 1)
                    continue
                store.append({"key": t.key, "point": t.point, "params": t.params, "seed": t.seed, "attempts": attempt, **res})
                n_done += 1
                if progress:
                    progress(n_done, len(tasks))
            if interrupted is not None:
                raise KeyboardInterrupt(f"evaluation of {interrupted.key} was interrupted")
    except BaseException:
        be.close(abort=True)
        raise
    be.close()
    return summarize(store, tasks, spec)


def summarize(store: Store, tasks: list[Task], spec: dict) -> dict:
    """Mean and std over seeds of every metric per point; failed tasks listed with their
    error. Written atomically to ``sweep.json``."""
    import numpy as np

    from .graph.io import write_json

    points: dict[int, dict] = {}
    for t in tasks:
        rec = store.done[t.key]
        p = points.setdefault(t.point, {"params": t.params, "seeds": [], "values": {}, "failed": []})
        if rec["status"] != "ok":
            p["failed"].append({"seed": t.seed, "error": rec.get("error"), "attempts": rec["attempts"]})
            continue
        p["seeds"].append(t.seed)
        for k, v in rec["metrics"].items():
            p["values"].setdefault(k, []).append(v)
    for p in points.values():
        vals = p.pop("values")
        p["metrics"] = {k: {"values": v, "mean": _stat(np.mean, v), "std": _stat(np.std, v)} for k, v in vals.items()}
    summary = {**spec, "tasks": len(tasks), "failed": sum(len(p["failed"]) for p in points.values()),
               "points": [points[i] for i in sorted(points)]}
    write_json(store.dir / SUMMARY, summary)
    return summary


def _stat(f, v):
    return None if any(x is None for x in v) else float(f(v))
