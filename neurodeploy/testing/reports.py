"""Reports of the plugin's checks (``--nd-report DIR``).

Every check of a test gets a directory ``DIR/<test>/<k>-<check>/`` holding the
measurement layer's ``report.json`` (schema of docs/report-schema.md) and ``report.html``
(:func:`neurodeploy.measure.report.write_report`), and ``check.json`` (what was asserted,
the numbers, passed or not, the failure message). ``DIR/index.html`` and
``DIR/index.json`` list every test with its outcome and checks. A check with no run
(``assert_fits``) writes only ``check.json``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
from pathlib import Path

from .session import current


def slug(test_id: str) -> str:
    """A file-system-safe directory name for a test id."""
    import hashlib

    s = re.sub(r"[^A-Za-z0-9._-]+", "_", test_id).strip("_")
    return s if len(s) <= 100 else s[:80] + "-" + hashlib.blake2b(test_id.encode(), digest_size=6).hexdigest()


def check(name: str, ok: bool, message, values: dict, *, graph=None, x=None, labels=None, readout="auto",
          runs: dict | None = None, reference=None) -> dict:
    """Record one check in the session; with a report directory, write its files."""
    from ..measure.report import jsonable

    s = current()
    test = s.current_test or "outside-a-test"
    entry = {"check": name, "passed": bool(ok), "message": message, "values": jsonable(values),
             "targets": [r.get("label", t) for t, r in (runs or {}).items()]}
    if s.report_dir is not None:
        k = len(s.checks.get(test, [])) + 1
        d = s.report_dir / slug(test) / f"{k}-{name}"
        if runs:
            _write_report(d, graph, x, labels, readout, runs, reference, values.get("calibration"))
            entry["report"] = str((d / "report.html").relative_to(s.report_dir))
        from ..graph.io import write_json

        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "check.json", {"test": test, **entry})
        entry["check_json"] = str((d / "check.json").relative_to(s.report_dir))
    s.record_check(entry)
    return entry


def _entry(t: str, r: dict, graph, x, labels, readout) -> dict:
    """The report entry of one run: the measurement layer's, with the check's aligned
    accuracy and the padding/lag it used."""
    from ..measure.report import jsonable, target_entry

    e = r.get("entry")
    if e is None:
        inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 and "pad" not in r else None
        e = target_entry(t, r["program"], r["result"], graph, r["profile"], readout=readout, inputs=inputs)
    e = dict(e, info=dict(e.get("info") or {}))
    if "accuracy" in r:
        e["metrics"] = dict(e["metrics"], accuracy=r["accuracy"])
        e["info"]["accuracy_window"] = (f"input padded with {r['pad']} silent step(s); accuracy over the input's "
                                        f"{int(r['result'].steps) - r['pad']} steps read {r['lag']} step(s) late (declared lag)")
    if "agreement" in r:
        e["agreement"] = jsonable(r["agreement"])
    return jsonable(e)


def _summary_row(e: dict) -> dict:
    m, ag = e.get("metrics") or {}, e.get("agreement") or {}
    return {
        "target": e["target"], "status": e["status"], "reason": e.get("reason", ""), "accuracy": m.get("accuracy"),
        "spikes_per_sample": (m.get("spikes") or {}).get("per_sample"),
        "energy_per_inference_J": (e.get("energy") or {}).get("per_inference_J"),
        "dynamic_energy_per_inference_J": (e.get("energy") or {}).get("dynamic_per_inference_J"),
        "latency_per_inference_s": (e.get("latency") or {}).get("per_inference_s"),
        "hardware": (e.get("hardware") or {}).get("name"), "spike_match": ag.get("spike_match"),
        "lag": ag["lag"] if ag else (e.get("description") or {}).get("lag"),
    }


def _write_report(d: Path, graph, x, labels, readout, runs: dict, reference, calibration=None) -> None:
    from .. import __version__
    from ..graph.summary import summarize
    from ..measure.report import jsonable, render_html, write_report
    from ..measure.schema import SCHEMA_ID, SCHEMA_VERSION, check as check_schema

    entries = [_entry(t, r, graph, x, labels, readout) for t, r in runs.items()]
    res0 = next(iter(runs.values()))["result"]
    report = jsonable({
        "schema": SCHEMA_ID, "schema_version": SCHEMA_VERSION, "kind": "compare" if reference else "profile",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "neurodeploy_version": __version__,
        "inputs": {"model": current().current_test or "model", "input": "array passed to the assertion",
                   "samples": int(res0.batch), "steps": int(res0.steps), "dt": float(graph.dt), "reset": graph.reset,
                   "labels": labels is not None, "readout": readout, "raster_sample": 0},
        "graph": summarize(graph), "targets": entries, "reference": reference,
        "summary": [_summary_row(e) for e in entries],
        **({"calibration": calibration} if calibration is not None else {}),
    })
    check_schema(report)
    write_report(d, report, render_html(report, {t: r["result"] for t, r in runs.items()}))


def write_index(report_dir, session) -> Path:
    """``index.json`` and ``index.html``: every test, its outcome and its checks."""
    from ..graph.io import write_atomic, write_json

    d = Path(report_dir)
    tests = [{"test": t, "outcome": session.outcomes.get(t, "unknown"), "checks": session.checks.get(t, [])}
             for t in list(dict.fromkeys([*session.outcomes, *session.checks])) if session.checks.get(t)]
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "index.json", {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "tests": tests})
    write_atomic(d / "index.html", lambda tmp: Path(tmp).write_text(_index_html(tests), encoding="utf-8"))
    return d / "index.html"


def _index_html(tests: list[dict]) -> str:
    e = html.escape
    rows = []
    for t in tests:
        for i, c in enumerate(t["checks"]):
            link = f'<a href="{e(c["report"])}">report</a>' if c.get("report") else f'<a href="{e(c["check_json"])}">check.json</a>'
            status = "passed" if c["passed"] else "failed"
            rows.append(f'<tr><td>{e(t["test"]) if i == 0 else ""}</td><td class="{e(t["outcome"])}">{e(t["outcome"]) if i == 0 else ""}'
                        f'</td><td>{e(c["check"])}</td><td>{e(", ".join(c["targets"]))}</td><td class="{status}">{status}</td>'
                        f'<td>{e(c["message"] or json.dumps(c["values"])[:300])}</td><td>{link}</td></tr>')
    n_fail = sum(1 for t in tests if t["outcome"] == "failed")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>neurodeploy test reports</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;font-size:.9em}"
            "td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}.failed{color:#a33}.passed{color:#262}"
            f"</style></head><body><h1>neurodeploy test reports</h1><p>{len(tests)} test(s) with hardware checks, {n_fail} failed</p>"
            "<table><thead><tr><th>test</th><th>outcome</th><th>check</th><th>targets</th><th>result</th><th>details</th>"
            "<th>files</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></body></html>")
