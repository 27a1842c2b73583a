"""Profile and compare runs, and write their reports: ``report.json`` (schema in
:mod:`.schema`, documented in docs/report-schema.md) and a self-contained ``report.html``.

``profile_run`` runs one target; ``compare_runs`` runs several and measures each one's
agreement with the reference. Both return ``(report, results)``; ``write_report`` writes
both files atomically (temporary names renamed only when both are complete).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import InputError, NeurodeployError
from . import plots
from .compare import agreement
from .metrics import compute_metrics, memory_footprint
from .schema import SCHEMA_ID, SCHEMA_VERSION, check

#: hardware profile used for each target's energy/latency when none is given
DEFAULT_HARDWARE = {"reference": "loihi2", "loihi2-emu": "loihi2", "lava": "loihi2", "rram": "rram_40nm"}
#: targets whose compile() takes a torch device
DEVICE_TARGETS = ("reference", "loihi2-emu", "rram")


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


def _summary_of(obj) -> dict | None:
    """A JSON summary of a Program part (quantization, mapping) if it offers one."""
    if obj is None:
        return None
    for attr in ("summary", "to_dict"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return jsonable(fn())
            except Exception:  # a summary is optional decoration, never fatal
                pass
    if isinstance(obj, dict):
        return jsonable(obj)
    return {"repr": str(obj)[:500]}


def fmt_si(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if v == 0:
        return f"0 {unit}"
    for p, s in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(v) >= p:
            return f"{v / p:.4g} {s}{unit}"
    return f"{v:.3g} {unit}"


def _pct(v):
    return "—" if v is None else f"{100 * v:.2f} %"


# ------------------------------------------------------------------------------ running
def load_hardware(target: str, hardware):
    from ..hardware import load_profile

    if hardware is None:
        name = DEFAULT_HARDWARE.get(target)
        return load_profile(name) if name else None
    if isinstance(hardware, str):
        return load_profile(hardware)
    return hardware


def run_target(name: str, graph, x, *, hardware=None, device: str = "cpu", progress=None, record="all"):
    """Compile ``graph`` for target ``name`` and run ``x``; returns (program, result)."""
    from ..targets.base import get_target

    tgt = get_target(name)
    compile_hw = hardware if (hardware is None or name == "reference" or _fits(name, hardware)) else None
    import inspect

    try:
        takes_device = "device" in inspect.signature(tgt.compile).parameters
    except (TypeError, ValueError):
        takes_device = name in DEVICE_TARGETS
    options = {"device": device} if takes_device else {}
    if not takes_device and str(device) != "cpu":
        raise InputError(f"target {name!r} has no device option (asked for {device!r})")
    program = tgt.compile(graph, hardware=compile_hw, **options)
    result = program.run(x, record=record, progress=progress)
    return program, result


def _fits(target: str, profile) -> bool:
    kind = getattr(profile, "kind", None)
    return (kind == "rram") == (target == "rram")


def target_entry(name, program, result, graph, profile, *, labels=None, readout="spikes", inputs=None) -> dict:
    """The report entry of one successful run."""
    from ..hardware.energy import estimate_energy
    from ..hardware.latency import cores_from_mapping, estimate_latency

    metrics = compute_metrics(result, graph, labels=labels, readout=readout, inputs=inputs)
    metrics.pop("predictions", None)
    mapping_obj = (getattr(program, "mapping", None) or getattr(getattr(program, "program", None), "mapping", None)
                   or (result.info or {}).get("mapping"))
    mapping_cores = None
    notes = []
    if mapping_obj is not None:
        try:
            mapping_cores = cores_from_mapping(mapping_obj)
        except InputError as exc:
            notes.append(f"mapping not used for latency: {exc}")
    energy = latency = None
    if profile is not None:
        latency = estimate_latency(result, profile, graph, mapping_cores)
        energy = estimate_energy(result, profile, graph, latency=latency)
        if notes:
            latency["assumptions"] += notes
    try:
        memory = memory_footprint(program, graph)
    except NeurodeployError as exc:
        memory = {"error": str(exc)}
    quant = (result.info or {}).get("quantization")
    if quant is None:
        q = getattr(program, "quantization", None)
        fn = getattr(program, "quantization_summary", None)
        quant = fn() if callable(fn) else q
    if quant is None:  # the Loihi programs keep their quantization report in .report
        inner = getattr(program, "program", program)
        rep = getattr(inner, "report", None)
        quant = rep if isinstance(rep, dict) and rep else None
    info = {k: v for k, v in (result.info or {}).items() if k not in ("quantization", "mapping")}
    return {
        "target": name,
        "status": "ok",
        "hardware": jsonable(profile.to_dict()) if profile is not None else None,
        "metrics": jsonable(metrics),
        "energy": jsonable(energy),
        "latency": jsonable(latency),
        "memory": jsonable(memory),
        "quantization": _summary_of(quant),
        "mapping": _summary_of(mapping_obj) if mapping_obj is not None else None,
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


def _row_lag(e: dict, ag: dict):
    """The lag shown for a target: what the agreement applied (compare), what the target
    declared (profile), nothing for targets that did not run."""
    if ag:
        return ag["lag"]
    if e["status"] != "ok":
        return None
    info = e.get("info") or {}
    return info.get("lag_steps", info.get("lag", 0))


def _summary_row(e: dict) -> dict:
    m = e.get("metrics") or {}
    ag = e.get("agreement") or {}
    return {
        "target": e["target"],
        "status": e["status"],
        "reason": e.get("reason", ""),
        "accuracy": m.get("accuracy"),
        "spikes_per_sample": (m.get("spikes") or {}).get("per_sample"),
        "energy_per_inference_J": (e.get("energy") or {}).get("per_inference_J"),
        "latency_per_inference_s": (e.get("latency") or {}).get("per_inference_s"),
        "hardware": (e.get("hardware") or {}).get("name"),
        "spike_match": ag.get("spike_match"),
        "lag": _row_lag(e, ag),
    }


def _check_sample(sample: int, x):
    if not 0 <= int(sample) < int(np.shape(x)[0]):
        raise InputError(f"--sample {sample} is out of range: the input has {np.shape(x)[0]} samples")


def profile_run(model, input_path, graph, x, labels=None, *, target="reference", hardware=None, readout="spikes",
                device="cpu", sample=0, progress=None):
    """Run one target and build its report. Returns (report, {target: result})."""
    _check_sample(sample, x)
    profile = load_hardware(target, hardware)
    if profile is not None and not _fits(target, profile) and target != "reference":
        raise InputError(f"hardware profile '{profile.name}' is a {profile.kind} profile; target '{target}' needs a "
                         f"{'rram' if target == 'rram' else 'loihi'} profile")
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    program, result = run_target(target, graph, x, hardware=profile, device=device, progress=progress)
    entry = target_entry(target, program, result, graph, profile, labels=labels, readout=readout, inputs=inputs)
    report = _header("profile", model, input_path, graph, x, labels, readout, sample)
    report["targets"] = [entry]
    report["reference"] = None
    report["summary"] = [_summary_row(entry)]
    report = jsonable(report)
    check(report)
    return report, {target: result}


def compare_runs(model, input_path, graph, x, labels=None, *, targets: Sequence[str] = ("reference",), hardware=None,
                 readout="spikes", device="cpu", sample=0, progress_factory: Callable | None = None):
    """Run every target, measure each against the reference. ``hardware``: {target: profile
    name/path/profile} (missing targets get :data:`DEFAULT_HARDWARE`). A target that cannot
    be loaded is ``skipped`` with the reason; one that fails to compile or run is ``error``
    with the reason. Returns (report, {target: result})."""
    from contextlib import nullcontext

    _check_sample(sample, x)
    targets = list(dict.fromkeys(targets))
    if "reference" not in targets:
        targets.insert(0, "reference")
    hardware = dict(hardware or {})
    profiles = {t: load_hardware(t, hardware.get(t)) for t in targets}  # bad profiles fail before running
    for t, p in profiles.items():
        if p is not None and t != "reference" and not _fits(t, p):
            raise InputError(f"hardware profile '{p.name}' is a {p.kind} profile; target '{t}' needs a {'rram' if t == 'rram' else 'loihi'} profile")
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 else None
    results, entries = {}, []
    for t in targets:
        ctx = progress_factory(t) if progress_factory else nullcontext(None)
        try:
            from ..targets.base import get_target

            get_target(t)
        except InputError as exc:
            if t == "reference":
                raise
            entries.append({"target": t, "status": "skipped", "reason": str(exc)})
            continue
        try:
            with ctx as cb:
                program, result = run_target(t, graph, x, hardware=profiles[t], device=device, progress=cb)
        except Exception as exc:  # one target failing must not hide the others
            if t == "reference":
                raise
            entries.append({"target": t, "status": "error", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
            continue
        results[t] = result
        entries.append(target_entry(t, program, result, graph, profiles[t], labels=labels, readout=readout, inputs=inputs))
    ref = results["reference"]
    for e in entries:
        if e["status"] == "ok":
            e["agreement"] = jsonable(agreement(ref, results[e["target"]], graph))
    report = _header("compare", model, input_path, graph, x, labels, readout, sample)
    report["targets"] = entries
    report["reference"] = "reference"
    report["summary"] = [_summary_row(e) for e in entries]
    report = jsonable(report)
    check(report)
    return report, results


# ------------------------------------------------------------------------------ HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.skipped,.error{color:#a33}.ok{color:#262}.small{font-size:.8em;color:#555}img{max-width:100%;border:1px solid #eee}
pre#img-check{font-size:.7em;color:#777}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, out = [];
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-natural-width', String(imgs[i].naturalWidth));
    out.push((imgs[i].alt || ('img' + i)) + ': naturalWidth=' + imgs[i].naturalWidth);
  }
  var el = document.getElementById('img-check');
  if (el) { el.textContent = out.join('\\n'); el.setAttribute('data-checked', String(imgs.length)); }
});
"""


def _e(v) -> str:
    return html.escape(str(v))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], num_from: int = 1, cls: str = "") -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            klass = ' class="num"' if i >= num_from else ""
            cells.append(f"<td{klass}>{c}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return f'<p class="small">({_e(alt)}: nothing to plot)</p>'
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{b64}"><figcaption class="small">{_e(alt)}</figcaption></figure>'


def render_html(report: dict, results: dict) -> str:
    """The self-contained HTML page of a report (figures embedded as base64 PNG)."""
    inp = report["inputs"]
    ok = [e for e in report["targets"] if e["status"] == "ok"]
    title = f"neurodeploy {report['kind']}: {Path(inp['model']).name}"
    parts = [f"<h1>{_e(title)}</h1>"]
    parts.append('<p class="small">' + _e(
        f"model {inp['model']} · input {inp['input']} · {inp['samples']} samples × {inp['steps']} steps · dt {inp['dt']:g} s · "
        f"reset {inp['reset']} · readout {inp['readout']} · created {report['created']} · neurodeploy {report['neurodeploy_version']} · "
        f"schema {report['schema']} {report['schema_version']}") + "</p>")

    # summary
    rows = []
    compare = report["kind"] == "compare"
    for s in report["summary"]:
        status = f'<span class="{_e(s["status"])}">{_e(s["status"])}</span>'
        if s.get("reason"):
            status += f'<br><span class="small">{_e(s["reason"])}</span>'
        lag = s.get("lag")
        row = [
            _e(s["target"]), status, _pct(s["accuracy"]),
            "—" if s["spikes_per_sample"] is None else f"{s['spikes_per_sample']:.1f}",
            fmt_si(s["energy_per_inference_J"], "J"), fmt_si(s["latency_per_inference_s"], "s"),
            _e(s.get("hardware") or "—"),
        ]
        if compare:
            row += [_pct(s["spike_match"]), _e(json.dumps(lag) if lag is not None else "—")]
        rows.append(row)
    parts.append("<h2>Summary</h2>")
    head = ["target", "status", "accuracy", "spikes / sample", "energy / inference", "latency / inference", "hardware profile"]
    if compare:
        head += ["spike-train match vs reference", "lag (steps)"]
    parts.append(_table(head, rows, num_from=2, cls="summary"))
    if report["kind"] == "compare":
        parts.append('<p class="small">Spike-train match compares target step t+lag with reference step t; the lag is '
                     "the target's declared delivery delay (Lava's Dense delivers one step late) and is shown, not hidden.</p>")
        acc = {e["target"]: e["metrics"]["accuracy"] for e in ok}
        if any(v is not None for v in acc.values()):
            parts.append("<h2>Accuracy by target</h2>" + _img(plots.accuracy_bars(acc), "accuracy by target"))

    # per-layer spikes
    parts.append("<h2>Spikes per layer</h2>")
    per_target = {e["target"]: {n: d["spikes_per_sample"] for n, d in e["metrics"]["spikes"]["layers"].items()} for e in ok}
    parts.append(_img(plots.layer_counts(per_target), "spikes per sample by layer"))
    for e in ok:
        m = e["metrics"]
        rows = []
        for n, d in m["spikes"]["layers"].items():
            sp = m["activation_sparsity"]["layers"].get(n, {})
            rows.append([_e(n), str(d["neurons"]), f"{d['spikes_per_sample']:.2f}",
                         "—" if d["rate"] is None else f"{d['rate']:.4f}", "—" if not sp else f"{sp['sparsity']:.4f}"])
        parts.append(f"<h3>{_e(e['target'])}</h3>")
        parts.append(_table(["layer", "neurons", "spikes / sample", "rate (spikes/neuron/step)", "activation sparsity"], rows))
        so = m["synaptic_ops"]
        srows = [[_e(n), _e(d["kind"]), f"{d['effective']:.1f}", f"{d['dense']:.1f}", _e(d["method"])] for n, d in so["layers"].items()]
        srows.append(["<b>total</b>", "", f"ACs {so['Effective_ACs']:.1f} / MACs {so['Effective_MACs']:.1f}", f"{so['Dense']:.1f}", ""])
        parts.append(_table(["synaptic layer", "AC/MAC", "effective ops / sample", "dense ops / sample", "method"], srows))
        parts.append(f'<p class="small">activation sparsity {m["activation_sparsity"]["sparsity"]:.4f} · neuron updates / sample '
                     f'{m["neuron_updates"]["per_sample"]:.1f} · memory {_e(_mem(e.get("memory")))}</p>')

    # rasters
    parts.append(f"<h2>Spike rasters (sample {inp.get('raster_sample', 0)})</h2>")
    for e in ok:
        res = results.get(e["target"])
        if res is None:
            continue
        layers = list(e["metrics"]["spikes"]["layers"])
        parts.append(_img(plots.raster(res.records, layers, inp.get("raster_sample", 0), inp["dt"], f"{e['target']}: sample {inp.get('raster_sample', 0)}"),
                          f"spike raster {e['target']}"))

    # energy
    parts.append("<h2>Energy</h2>")
    with_energy = [e for e in ok if e.get("energy")]
    if report["kind"] == "compare" and with_energy:
        groups = {f"{e['target']} ({e['energy']['profile']})": {k: v / max(inp['samples'], 1) for k, v in e["energy"]["by_kind"].items()} for e in with_energy}
        parts.append(_img(plots.energy_stacked(groups, title="energy per inference by event kind"), "energy per inference by target and event kind"))
    for e in with_energy:
        en = e["energy"]
        parts.append(f"<h3>{_e(e['target'])} on {_e(en['profile'])}</h3>")
        groups = {lay: {k: v / max(inp['samples'], 1) for k, v in d.items()} for lay, d in en["by_layer"].items()}
        parts.append(_img(plots.energy_stacked(groups, title="energy per inference by layer"), f"energy by layer {e['target']}"))
        parts.append(f"<p>total {fmt_si(en['total_J'], 'J')} for {inp['samples']} samples · per inference {fmt_si(en['per_inference_J'], 'J')} "
                     f"(dynamic {fmt_si(en['dynamic_per_inference_J'], 'J')}, static {fmt_si(en['static_J'] / max(inp['samples'], 1), 'J')})</p>")
        used: dict[str, set] = {}
        for t in en["terms"]:
            used.setdefault(t["kind"], set()).add(f"{t['constant']} ({t['confidence']})")
        kinds = [[_e(k), fmt_si(v / max(inp['samples'], 1), "J"), f"{100 * v / en['total_J']:.1f} %" if en["total_J"] else "—",
                  f'<span class="small">{_e(", ".join(sorted(used.get(k, ()))))}</span>'] for k, v in en["by_kind"].items()]
        parts.append(_table(["event kind", "energy / inference", "share", "profile constant (confidence)"], kinds, num_from=1))
        lat = e.get("latency") or {}
        if lat:
            parts.append(f"<p>latency: {fmt_si(lat['per_step_s'], 's')} per step, {fmt_si(lat['per_inference_s'], 's')} per inference"
                         + (f" ({lat.get('cores')} cores, {lat.get('tiles')} tiles, barrier {fmt_si(lat.get('barrier_per_step_s'), 's')})" if lat.get("model") == "loihi" else "")
                         + "</p>")
        consts = dict(en["constants"])
        consts.update(lat.get("constants", {}))
        crow = [[_e(k), f"{c['value']:g}", _e(c["unit"]), _e(c["confidence"]), f'<span class="small">{_e(c["source"])}</span>'] for k, c in consts.items()]
        parts.append("<details><summary>profile constants used (with sources)</summary>" + _table(["constant", "value", "unit", "confidence", "source"], crow, num_from=1) + "</details>")
        assum = en["assumptions"] + lat.get("assumptions", [])
        parts.append("<details><summary>assumptions</summary><ul>" + "".join(f"<li>{_e(a)}</li>" for a in assum) + "</ul></details>")

    # agreement
    if report["kind"] == "compare":
        parts.append("<h2>Agreement with the reference</h2>")
        for e in ok:
            ag = e.get("agreement")
            if not ag or e["target"] == "reference":
                continue
            fd = ag["first_divergence"]
            parts.append(f"<h3>{_e(e['target'])}</h3><p>lag {_e(json.dumps(ag['lag']))} step(s) ({_e(ag['lag_note'])}); spike-train match "
                         f"{_pct(ag['spike_match'])}; first divergence: "
                         + (_e(f"step {fd['step']} (target step {fd['target_step']}) in layer {fd['layer']}") if fd else "none") + "</p>")
            rows = [[_e(n), str(d["lag"]), str(d["compared_steps"]), _pct(d["spike_match"]),
                     "—" if d.get("count_correlation") is None else f"{d['count_correlation']:.4f}",
                     str(d.get("spikes_reference", "—")), str(d.get("spikes_target", "—")),
                     "—" if d.get("first_divergent_step") is None else str(d["first_divergent_step"])] for n, d in ag["layers"].items()]
            parts.append(_table(["layer", "lag", "steps compared", "spike match", "count correlation", "spikes (ref)", "spikes (target)", "first divergent step"], rows))

    # graph
    g = report["graph"]
    parts.append("<h2>Graph</h2>")
    parts.append(f"<p>{g['neurons']} neurons, {g['synapses']} synapses ({g.get('synapses_nonzero', '?')} nonzero)</p>")
    parts.append(_table(["node", "type", "input", "output", "parameters"],
                        [[_e(n["name"]), _e(n["type"]), _e(tuple(n["input_shape"])), _e(tuple(n["output_shape"])), f'<span class="small">{_e(n.get("params_text", ""))}</span>'] for n in g["nodes"]], num_from=99))
    for e in ok:
        if e.get("quantization") or e.get("mapping"):
            parts.append(f"<h3>{_e(e['target'])}: quantization / mapping</h3><pre class=\"small\">{_e(json.dumps({'quantization': e.get('quantization'), 'mapping': e.get('mapping')}, indent=1)[:4000])}</pre>")
    parts.append('<h2 class="small">Image check</h2><pre id="img-check">(filled in by the page\'s script when images load)</pre>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + _e(title) + "</title><style>" + _CSS
            + "</style></head><body>" + "\n".join(parts) + "<script>" + _SCRIPT + "</script></body></html>")


def _mem(m) -> str:
    if not m or "total_bytes" not in m:
        return "—"
    return f"{m['total_bytes']:.0f} B (weights {m.get('weights_bytes', 0):.0f} B, state {m.get('state_bytes', 0):.0f} B)"


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
