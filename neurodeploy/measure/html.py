"""The self-contained HTML page of a report (``report.html``): figures embedded as base64
PNG, every number read from the report's JSON (and the runs' records for rasters)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

from . import plots
from .format import fmt_si, pct as _pct

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
    parts.append(_calibration(report.get("calibration")))

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
            fmt_si(s["energy_per_inference_J"], "J"), fmt_si(s.get("dynamic_energy_per_inference_J"), "J"),
            fmt_si(s["latency_per_inference_s"], "s"),
            _e(s.get("hardware") or "—"),
        ]
        if compare:
            row += [_pct(s["spike_match"]), _e(json.dumps(lag) if lag is not None else "—")]
        rows.append(row)
    parts.append("<h2>Summary</h2>")
    head = ["target", "status", "accuracy", "spikes / sample", "energy / inference (total)", "dynamic energy / inference",
            "latency / inference", "hardware profile"]
    if compare:
        head += ["spike-train match vs reference", "lag (steps)"]
    parts.append(_table(head, rows, num_from=2, cls="summary"))
    parts.append('<p class="small">Total energy = dynamic (the counted events priced on the profile) + static '
                 "(leakage over the modelled run time); the dynamic part is shown apart so targets compare on both.</p>")
    if report["kind"] == "compare":
        parts.append('<p class="small">Spike-train match compares target step t+lag with reference step t; the lag is '
                     "the target's declared delivery delay (Lava's Dense delivers one step late) and is shown, not hidden.</p>")
        acc = {e["target"]: e["metrics"]["accuracy"] for e in ok}
        if any(v is not None for v in acc.values()):
            parts.append("<h2>Accuracy by target</h2>" + _img(plots.accuracy_bars(acc), "accuracy by target"))

    parts.append(_diagnostics(report))
    if report.get("attribution"):
        parts.append(_attribution(report["attribution"]))

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
                         + (f" ({lat.get('cores')} cores, {lat.get('tiles')} tiles, barrier {fmt_si(lat.get('barrier_per_step_s'), 's')})" if lat.get("cores") is not None else "")
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
            if not ag or e["target"] == report["reference"]:
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
    for label, key in (("repairs applied at load", "repairs"), ("assumed (the file cannot say)", "assumptions")):
        if g.get(key):
            parts.append(f"<p>{_e(label)}:</p><ul>" + "".join(f"<li>{_e(a)}</li>" for a in g[key]) + "</ul>")
    parts.append(_table(["node", "type", "input", "output", "parameters"],
                        [[_e(n["name"]), _e(n["type"]), _e(tuple(n["input_shape"])), _e(tuple(n["output_shape"])), f'<span class="small">{_e(n.get("params_text", ""))}</span>'] for n in g["nodes"]], num_from=99))
    for e in ok:
        if e.get("quantization") or e.get("mapping"):
            parts.append(f"<h3>{_e(e['target'])}: quantization / mapping</h3><pre class=\"small\">{_e(json.dumps({'quantization': e.get('quantization'), 'mapping': e.get('mapping')}, indent=1)[:4000])}</pre>")
    parts.append('<h2 class="small">Image check</h2><pre id="img-check">(filled in by the page\'s script when images load)</pre>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + _e(title) + "</title><style>" + _CSS
            + "</style></head><body>" + "\n".join(parts) + "<script>" + _SCRIPT + "</script></body></html>")


def _diagnostics(report: dict) -> str:
    """The Diagnostics section: the model's (for this input) and each run's."""
    rows = [["(model)", _e(d["code"]), _e(d["node"] or "—"), _e(d["message"])] for d in report.get("diagnostics") or []]
    for e in report["targets"]:
        rows += [[_e(e["target"]), _e(d["code"]), _e(d["node"] or "—"), _e(d["message"])] for d in e.get("diagnostics") or []]
    if not rows:
        return '<h2>Diagnostics</h2><p class="small">none: no diagnostic of the model or of any run (docs/frontends.md)</p>'
    return ("<h2>Diagnostics</h2><p>What the model or a run shows that usually means a silently wrong result "
            "(docs/frontends.md):</p>" + _table(["where", "code", "node", "message"], rows, num_from=99, cls="diagnostics"))


def _calibration(cal: dict | None) -> str:
    """Where the data-dependent settings (ADC ranges) came from; flagged when the evaluated
    samples calibrated them (``--calibrate-on-eval``)."""
    if not cal:
        return ""
    text = f"calibration data: {cal['source']} ({cal['samples']} samples)"
    if cal["disjoint"]:
        return f'<p class="small calibration">{_e(text)}, disjoint from the evaluated samples</p>'
    return (f'<p class="error calibration"><b>not disjoint</b>: {_e(text)}; the hardware model saw the samples it is '
            "scored on, so the accuracy is optimistic</p>")


def _attribution(a: dict) -> str:
    """The "Where the accuracy goes" section of ``profile --attribute``: bars and table."""
    from .attribution import COLUMNS, caption, table

    rows = [[_e(c) for c in r] for r in table(a)]
    return ("<h2>Where the accuracy goes</h2><p>" + _e(caption(a)) + "</p>"
            + _img(plots.attribution_bars(a), "accuracy cost of each non-ideality")
            + _table(COLUMNS, rows, num_from=1, cls="attribution"))


def _mem(m) -> str:
    if not m or "total_bytes" not in m:
        return "—"
    return f"{m['total_bytes']:.0f} B (weights {m.get('weights_bytes', 0):.0f} B, state {m.get('state_bytes', 0):.0f} B)"
