"""Profile and compare runs, and write their reports: ``report.json`` (schema in
:mod:`.schema`, documented in docs/report-schema.md) and a self-contained ``report.html``.

``profile_run`` runs one target; ``compare_runs`` runs several and measures each one's
agreement with the reference. Both return ``(report, results)``; ``write_report`` writes
both files atomically (temporary names renamed only when both are complete).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import InputError, UnsupportedError
from ..targets.base import REFERENCE
from .compare import agreement
from .format import fmt_si  # noqa: F401  (re-exported: the CLI, testing and sweeps format with it)
from .html import render_html  # noqa: F401  (re-exported for callers of write_report)
from .metrics import compute_metrics
from .schema import SCHEMA_ID, SCHEMA_VERSION, check
from .calibration import run_options
from .window import run_windowed


# ------------------------------------------------------------------------------ helpers
def jsonable(obj: Any, max_list: int = 256) -> Any:
    """Plain JSON types from numpy/torch/dataclass-ish values; large arrays become
    ``{"shape", "dtype"}``; non-finite floats become None."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.size <= max_list:
            return jsonable(obj.tolist())
        return {"shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, dict) or hasattr(obj, "items"):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
        if len(items) > max_list:
            return {"length": len(items)}
        return [jsonable(v) for v in items]
    if isinstance(obj, Path):
        return str(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    return str(obj)


# ------------------------------------------------------------------------------ running
def load_hardware(tgt, hardware):
    """The profile that prices ``tgt``'s runs: ``hardware`` (a name, a .toml path or a
    HardwareProfile), else the target's ``default_hardware``; checked against the kinds the
    target compiles for (a target with none, like the reference, is priced on any)."""
    from ..hardware import load_profile
    from ..hardware.profiles import PRICED_KINDS

    if hardware is None:
        profile = load_profile(tgt.default_hardware) if tgt.default_hardware else None
    else:
        profile = load_profile(hardware) if isinstance(hardware, (str, Path)) else hardware
    if profile is not None and profile.kind not in PRICED_KINDS:
        raise UnsupportedError(f"hardware profile '{profile.name}' is a {profile.kind} baseline: it prices no "
                               f"target's runs (use a {' or '.join(PRICED_KINDS)} profile; docs/profiles.md)")
    if profile is not None and tgt.hardware_kinds and profile.kind not in tgt.hardware_kinds:
        raise InputError(f"hardware profile '{profile.name}' is a {profile.kind} profile; target '{tgt.name}' needs a "
                         f"{' or '.join(tgt.hardware_kinds)} profile")
    return profile


def applies(tgt, profile) -> bool:
    """Whether a profile given for "every target of its kind" applies to ``tgt``: its kind is
    one the target compiles for, or (a target that compiles for none) its default's kind."""
    from ..hardware import load_profile

    kinds = tgt.hardware_kinds or ((load_profile(tgt.default_hardware).kind,) if tgt.default_hardware else ())
    return profile.kind in kinds


def device_options(tgt, device) -> dict:
    """``{"device": device}`` for a target that declares a device option; a CPU-only target
    asked for another device is an error."""
    if "device" in tgt.compile_options:
        return {"device": device}
    if str(device) != "cpu":
        raise InputError(f"--device {device}: target '{tgt.name}' has no device option (it runs on the CPU)")
    return {}


def target_options(tgt, device, device_params=None, compile_options=None) -> dict:
    """Compile options from the CLI: the device, ``device_params`` where the target
    declares that option (an error where it does not), and ``compile_options`` (each one
    the target declares; ``--compile-option KEY=VALUE``)."""
    opts = device_options(tgt, device)
    for key, value in (compile_options or {}).items():
        if key not in tgt.compile_options or key in ("device", "device_params"):
            raise InputError(f"--compile-option {key}: target '{tgt.name}' has no such compile option "
                             f"(it declares: {', '.join(k for k in tgt.compile_options if k not in ('device', 'device_params'))})")
        opts[key] = value
    if device_params:
        if "device_params" not in tgt.compile_options:
            raise InputError(f"--device-param: target '{tgt.name}' takes no device parameters")
        opts["device_params"] = dict(device_params)
    return opts


def run_target(name: str, graph, x, *, hardware=None, device: str = "cpu", progress=None, record="all",
               pad_lag: bool = True, device_params=None, calibration=None, compile_options=None):
    """Compile ``graph`` for target ``name`` and run ``x``; returns (program, result). The
    profile goes to compile() only when the target compiles for its kind. With ``pad_lag``
    a target whose outputs lag is run on ``x`` plus that many silent steps and its outputs
    are read at their lag (:mod:`.window`)."""
    from ..targets.base import get_target

    tgt = get_target(name)
    profile = load_hardware(tgt, hardware)
    compile_hw = profile if profile is not None and profile.kind in tgt.hardware_kinds else None
    program = tgt.compile(graph, hardware=compile_hw, **target_options(tgt, device, device_params, compile_options))
    description = program.describe()
    cal_opts = run_options(description, calibration, name)  # calibration data never evaluated unless asked
    result = run_windowed(lambda xp: program.run(xp, record=record, progress=progress, **cal_opts),
                          description, graph, x, pad_lag)
    return program, result


def price(result, profile, description: dict, graph) -> tuple[dict | None, dict | None]:
    """(energy, latency) of a run on ``profile`` (None, None without a profile)."""
    from ..hardware.energy import estimate_energy
    from ..hardware.latency import estimate_latency

    if profile is None:
        return None, None
    latency = estimate_latency(result, profile, description, graph)
    return estimate_energy(result, profile, description, graph, latency=latency), latency


def build_report(kind: str, model, input_path, graph, x, entries: list[dict], *, labels=None, readout="spikes",
                 sample=0, reference: str | None = None, calibration=None) -> dict:
    """A complete, schema-checked report from target entries (see :func:`target_entry`);
    ``calibration`` (a :class:`.calibration.Calibration`) is recorded as its source, size
    and whether it is disjoint from the evaluated samples."""
    from ..graph.diagnose import diagnose

    report = _header(kind, model, input_path, graph, x, labels, readout, sample)
    report["targets"] = entries
    report["reference"] = reference
    report["summary"] = [_summary_row(e, graph.outputs) for e in entries]
    report["diagnostics"] = [d.to_dict() for d in diagnose(graph, steps=int(np.shape(x)[1]), x=x)]
    if calibration is not None:
        report["calibration"] = calibration.record()
    report = jsonable(report)
    check(report)
    return report


def target_entry(name, program, result, graph, profile, *, labels=None, readout="spikes", inputs=None) -> dict:
    """The report entry of one successful run: metrics of the RunResult, the Program's
    description, energy and latency priced on ``profile``, the run's diagnostics."""
    from ..graph.diagnose import diagnose_run

    description = jsonable(program.describe())
    metrics = compute_metrics(result, graph, labels=labels, readout=readout, inputs=inputs)
    metrics.pop("predictions", None)
    energy, latency = price(result, profile, description, graph)
    info = {k: v for k, v in (result.info or {}).items() if k not in ("quantization", "mapping")}
    return {
        "target": name,
        "status": "ok",
        "hardware": jsonable(profile.to_dict()) if profile is not None else None,
        "metrics": jsonable(metrics),
        "energy": jsonable(energy),
        "latency": jsonable(latency),
        "memory": description.get("memory"),
        "quantization": description.get("quantization"),
        "mapping": description.get("mapping"),
        "description": description,
        "diagnostics": [d.to_dict() for d in diagnose_run(graph, result)],
        "info": jsonable(info),
    }


def _header(kind, model, input_path, graph, x, labels, readout, sample) -> dict:
    from .. import __version__
    from ..graph.summary import summarize

    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "neurodeploy_version": __version__,
        "inputs": {
            "model": str(model), "input": str(input_path),
            "samples": int(np.shape(x)[0]), "steps": int(np.shape(x)[1]),
            "dt": float(graph.dt), "reset": graph.reset,
            "labels": labels is not None, "readout": readout, "raster_sample": int(sample),
        },
        "graph": jsonable(summarize(graph)),
    }


def _row_lag(e: dict, ag: dict, outputs: Sequence[str]):
    """The lag shown for a target: what the agreement applied (compare), the outputs' lag
    the target describes (profile), nothing for targets that did not run."""
    if ag:
        return ag["lag"]
    if e["status"] != "ok":
        return None
    lag = (e.get("description") or {}).get("lag") or {}
    return {o: lag.get(o, 0) for o in outputs}


def _summary_row(e: dict, outputs: Sequence[str] = ()) -> dict:
    m = e.get("metrics") or {}
    ag = e.get("agreement") or {}
    return {
        "target": e["target"],
        "status": e["status"],
        "reason": e.get("reason", ""),
        "accuracy": m.get("accuracy"),
        "spikes_per_sample": (m.get("spikes") or {}).get("per_sample"),
        "energy_per_inference_J": (e.get("energy") or {}).get("per_inference_J"),
        "dynamic_energy_per_inference_J": (e.get("energy") or {}).get("dynamic_per_inference_J"),
        "latency_per_inference_s": (e.get("latency") or {}).get("per_inference_s"),
        "hardware": (e.get("hardware") or {}).get("name"),
        "spike_match": ag.get("spike_match"),
        "lag": _row_lag(e, ag, outputs),
    }


def check_labels(labels, graph, where) -> None:
    """Labels must be whole numbers in [0, classes) of the graph's single output."""
    if labels is None:
        return
    from .metrics import check_labels as check

    out = graph.outputs[0] if len(graph.outputs) == 1 else None
    check(labels, int(np.prod(graph.shapes[out])) if out is not None else None, str(where))


def _check_sample(sample: int, x):
    if not 0 <= int(sample) < int(np.shape(x)[0]):
        raise InputError(f"--sample {sample} is out of range: the input has {np.shape(x)[0]} samples")


def profile_run(model, input_path, graph, x, labels=None, *, target=REFERENCE, hardware=None, readout="spikes",
                device="cpu", sample=0, progress=None, pad_lag: bool = True, device_params=None, calibration=None,
                compile_options=None):
    """Run one target and build its report (``pad_lag``: see :func:`run_target`). Returns
    (report, {target: result})."""
    from ..targets.base import get_target

    _check_sample(sample, x)
    check_labels(labels, graph, input_path)
    profile = load_hardware(get_target(target), hardware)  # a bad profile fails before running
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    program, result = run_target(target, graph, x, hardware=profile, device=device, progress=progress, pad_lag=pad_lag,
                                 device_params=device_params, calibration=calibration, compile_options=compile_options)
    entry = target_entry(target, program, result, graph, profile, labels=labels, readout=readout, inputs=inputs)
    return build_report("profile", model, input_path, graph, x, [entry], labels=labels, readout=readout,
                        sample=sample, calibration=calibration), {target: result}


def _declared(tgt, options) -> dict:
    """The subset of ``options`` that ``tgt`` declares."""
    return {k: v for k, v in (options or {}).items() if k in tgt.compile_options}


def compare_runs(model, input_path, graph, x, labels=None, *, targets: Sequence[str] = (REFERENCE,), hardware=None,
                 readout="spikes", device="cpu", sample=0, progress_factory: Callable | None = None, pad_lag: bool = True,
                 device_params=None, calibration=None, compile_options=None):
    """Run every target, measure each against the reference. ``compile_options`` go to
    every target that declares them (one no target declares is an error). ``hardware``: {target: profile
    name/path/profile} (missing targets get the target's ``default_hardware``). A target that
    cannot be loaded is ``skipped`` with the reason; one that fails to compile, run or be
    priced is ``error`` with the reason. Returns (report, {target: result})."""
    from contextlib import nullcontext

    from ..targets.base import get_target

    _check_sample(sample, x)
    check_labels(labels, graph, input_path)
    targets = list(dict.fromkeys(targets))
    if REFERENCE not in targets:
        targets.insert(0, REFERENCE)
    hardware = dict(hardware or {})
    loaded, entries = {}, {}
    for t in targets:
        try:
            loaded[t] = get_target(t)
        except InputError as exc:
            if t == REFERENCE:
                raise
            entries[t] = {"target": t, "status": "skipped", "reason": str(exc)}
    profiles = {t: load_hardware(tgt, hardware.get(t)) for t, tgt in loaded.items()}  # bad profiles fail before running
    unused = set(compile_options or {}) - {k for tgt in loaded.values() for k in tgt.compile_options}
    if unused:
        raise InputError(f"--compile-option {sorted(unused)[0]}: none of the targets ({', '.join(loaded)}) declares it")
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    results = {}
    for t in loaded:
        ctx = progress_factory(t) if progress_factory else nullcontext(None)
        try:
            with ctx as cb:
                program, result = run_target(t, graph, x, hardware=profiles[t], device=device, progress=cb, pad_lag=pad_lag,
                                             device_params=device_params if "device_params" in loaded[t].compile_options else None,
                                             calibration=calibration,
                                             compile_options=_declared(loaded[t], compile_options))
            entries[t] = target_entry(t, program, result, graph, profiles[t], labels=labels, readout=readout, inputs=inputs)
        except Exception as exc:  # one target failing must not hide the others
            if t == REFERENCE:
                raise
            entries[t] = {"target": t, "status": "error", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            continue
        results[t] = result
    ref = results[REFERENCE]
    ordered = [entries[t] for t in targets]
    for e in ordered:
        if e["status"] == "ok":
            e["agreement"] = jsonable(agreement(ref, results[e["target"]], graph))
    return build_report("compare", model, input_path, graph, x, ordered, labels=labels, readout=readout, sample=sample,
                        reference=REFERENCE, calibration=calibration), results


# ------------------------------------------------------------------------------ files
def write_report(outdir, report: dict, html_text: str) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``outdir``: both go to temporary
    names first and are renamed only when both are complete."""
    from ..graph.io import atomic_path

    d = Path(outdir)
    if d.exists() and not d.is_dir():
        raise InputError(f"{d}: output path exists and is not a directory")
    existed = d.exists()
    j, h = d / "report.json", d / "report.html"
    tmps = []
    try:
        tj = atomic_path(j, ".json")
        tmps.append(tj)
        tj.write_text(json.dumps(report, indent=1, allow_nan=False))
        th = atomic_path(h, ".html")
        tmps.append(th)
        th.write_text(html_text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for t in tmps:
            os.chmod(t, 0o666 & ~umask)
        os.replace(tj, j)
        os.replace(th, h)
    except BaseException as exc:
        for t in tmps:
            t.unlink(missing_ok=True)
        if not existed:
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise InputError(f"{d}: cannot write the report ({exc.strerror or exc})") from None
        raise
    return j, h
