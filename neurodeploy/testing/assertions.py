"""Assertions for hardware-simulator tests. Each compiles (once per session, see
:mod:`.session`), runs, measures with :mod:`neurodeploy.measure`, and on failure raises an
``AssertionError`` whose message says what differs, by how much, and where.

Lag is handled as the measurement layer does (:mod:`neurodeploy.measure.compare`): a Loihi
target delivers each synapse one step late, so its outputs trail the reference by a
declared number of steps. Spike trains are compared after shifting by that lag; accuracy
runs every target on the input padded with enough silent steps and reads each output over
the same window (the input's steps, shifted by the target's declared output lag).
Energy and latency are priced on the input as given (the steps a chip would run).

With ``--nd-report DIR`` every check also writes its report (:mod:`.reports`).
"""

from __future__ import annotations

from . import reports
from .session import current

__all__ = ["assert_spikes_match", "assert_accuracy_within", "assert_fits", "assert_energy_below", "assert_latency_below"]


def _steps(x) -> int:
    v = next(iter(x.values())) if isinstance(x, dict) else x
    return int(v.shape[1])


def _pad(x, n: int):
    """``x`` followed by ``n`` silent (all-zero) steps."""
    import numpy as np

    if isinstance(x, dict):
        return {k: _pad(v, n) for k, v in x.items()}
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return np.concatenate([a, np.zeros((a.shape[0], n, *a.shape[2:]), a.dtype)], 1) if n else a


def output_lag(result, graph) -> int:
    """Steps by which the single Output node of ``result`` trails the reference, as the
    target declares it (``info["lag"]``, as in ``Program.describe()``); refused when undefined."""
    from ..errors import UnsupportedError
    from ..measure.compare import declared_lag

    out = graph.outputs[0]
    raw = (result.info or {}).get("lag")
    if isinstance(raw, dict) and out in raw and raw[out] is None:
        raise UnsupportedError(f"{result.target}: output '{out}' has no single lag (paths of different length meet): "
                               "its accuracy window is undefined")
    lag, _ = declared_lag(result.info, graph, [out])
    return int(lag.get(out, 0)) if isinstance(lag, dict) else int(lag)


def aligned_output(s, graph, target, x, profile, seed, options, cal=None):
    """(program, result, window output, lag, padding): ``target``'s output over the input's
    steps, read ``lag`` steps later on the input padded with silent steps."""
    from ..measure.compare import synaptic_depth

    steps = _steps(x)
    pad = int(synaptic_depth(graph).get(graph.outputs[0], 0))
    prog, res = s.run(graph, target, _pad(x, pad), profile, seed, options, cal)
    lag = output_lag(res, graph)
    if lag > pad:  # a target that lags more than one step per synapse
        pad = lag
        prog, res = s.run(graph, target, _pad(x, pad), profile, seed, options, cal)
    return prog, res, res.output[:, lag:lag + steps], lag, pad


def _first(idx, n=8) -> str:
    idx = [int(i) for i in idx]
    return ", ".join(map(str, idx[:n])) + (", …" if len(idx) > n else "")


def _label(target, profile, seed) -> str:
    """``rram (rram_40nm, seed 0)``: the target, its profile and (if it takes one) its seed."""
    from .session import takes_option

    parts = [p for p in (getattr(profile, "name", None), f"seed {seed}" if takes_option(target, "seed") else None) if p]
    return f"{target} ({', '.join(parts)})" if parts else target


def assert_accuracy_within(model, x, y, target, tol_pp: float = 1.0, reference: str = "reference", *, hardware=None,
                           seed: int = 0, readout: str = "auto", options: dict | None = None, calibration=None,
                           calibrate_on_eval: bool = False):
    """|accuracy(target) − accuracy(reference)| ≤ ``tol_pp`` percentage points on (x, y).
    A target far *better* than the reference also fails: it usually means the two are not
    measured on the same window. ``calibration``: inputs a program that calibrates on data
    (RRAM ADC ranges) is calibrated on, or N (the first N samples of x, y held out and not
    checked); default ``--nd-calibration``; none → such a program is refused, unless
    ``calibrate_on_eval``. Returns {"target": acc, "reference": acc, "diff_pp": d,
    "calibration": {source, samples, disjoint}, ...}."""
    import numpy as np

    from ..measure.metrics import accuracy, predict, resolve_readout

    s = current()
    graph = s.graph(model)
    x, y, cal = s.calibration_for(x, np.asarray(y).reshape(-1), calibration, calibrate_on_eval)
    runs, acc, pred = {}, {}, {}
    for t, hw, sd, opt in ((reference, None, 0, None), (target, hardware, seed, options)):
        prof = s.profile(t, hw)
        prog, res, out, lag, pad = aligned_output(s, graph, t, x, prof, sd, opt, cal)
        ro = readout if readout != "auto" else resolve_readout(res, "auto")
        acc[t], pred[t] = accuracy(out, y, ro), predict(out, ro)
        runs[t] = dict(program=prog, result=res, profile=prof, lag=lag, pad=pad, accuracy=acc[t], label=_label(t, prof, sd))
    diff = 100 * (acc[target] - acc[reference])
    ok = abs(diff) <= tol_pp
    msg = None
    if not ok:
        lost = np.nonzero((pred[reference] == y) & (pred[target] != y))[0]
        won = np.nonzero((pred[reference] != y) & (pred[target] == y))[0]
        r, t = runs[reference], runs[target]
        msg = (f"accuracy of {t['label']} is {100 * acc[target]:.2f} % vs {100 * acc[reference]:.2f} % on {reference}: "
               f"{diff:+.2f} pp, outside ±{tol_pp:g} pp ({len(y)} samples, {ro} readout, {_steps(x)} steps; output read "
               f"{t['lag']} step(s) late on {target}, {r['lag']} on {reference}, as declared). "
               f"{len(lost)} sample(s) right on {reference} but wrong on {target}" + (f" (first: {_first(lost)})" if len(lost) else "")
               + f"; {len(won)} the other way" + (f" (first: {_first(won)})" if len(won) else ""))
    values = {"target": acc[target], "reference": acc[reference], "diff_pp": diff, "tol_pp": tol_pp,
              "calibration": _cal_record(runs, cal)}
    reports.check("assert_accuracy_within", ok, msg, values, graph=graph, x=x, labels=y, readout=ro, runs=runs,
                  reference=reference)
    if not ok:
        raise AssertionError(msg)
    return values


def _cal_record(runs: dict, cal) -> dict | None:
    """What calibrated the checked programs (None when none of them calibrates on data)."""
    needs = any(((r["program"].describe().get("calibration") or {}).get("needs_data")) for r in runs.values())
    return cal.record() if needs else None


def _divergence_detail(ag, res_a, res_b, a, b) -> str:
    """Where and how two runs first differ: step, layer, sample, neurons and both values."""
    fd = ag["first_divergence"]
    n, L = fd["layer"], ag["layers"][fd["layer"]]["lag"]
    ia, ib = (fd["step"], fd["step"] + L) if L >= 0 else (fd["step"] - L, fd["step"])
    ra = res_a.records[n][:, ia].reshape(res_a.records[n].shape[0], -1)
    rb = res_b.records[n][:, ib].reshape(ra.shape[0], -1)
    diff = ra != rb
    sample = int(diff.any(1).nonzero()[0, 0])
    neurons = diff[sample].nonzero()[:, 0][:8]
    va, vb = ra[sample, neurons].tolist(), rb[sample, neurons].tolist()
    d = ag["layers"][n]
    return (f"first divergence at step {ia} of {a} (step {ib} of {b}: lag {L}) in layer '{n}', sample {sample}, "
            f"neuron(s) [{_first(neurons.tolist())}]: {a} {_fmt(va)}, {b} {_fmt(vb)}; "
            f"layer '{n}' spikes {d['spikes_reference']} on {a} vs {d['spikes_target']} on {b} "
            f"over {d['compared_steps']} aligned steps")


def _fmt(v) -> str:
    return "[" + ", ".join(f"{float(e):g}" for e in v) + "]"


def assert_spikes_match(model, x, target_a, target_b, *, hardware_a=None, hardware_b=None, seed: int = 0,
                        options_a: dict | None = None, options_b: dict | None = None, min_match: float = 1.0,
                        calibration=None, calibrate_on_eval: bool = False):
    """The spike trains of every spiking layer agree (after the declared lag) between two
    targets — exactly by default, or on at least ``min_match`` of all (sample, step, neuron)
    entries. ``calibration``/``calibrate_on_eval`` as in :func:`assert_accuracy_within`.
    Returns the agreement (:func:`neurodeploy.measure.compare.agreement`)."""
    from ..measure.compare import agreement

    s = current()
    graph = s.graph(model)
    x, _, cal = s.calibration_for(x, None, calibration, calibrate_on_eval)
    runs = {}
    for t, hw, opt in ((target_a, hardware_a, options_a), (target_b, hardware_b, options_b)):
        prof = s.profile(t, hw)
        prog, res = s.run(graph, t, x, prof, seed, opt, cal)
        runs[t] = dict(program=prog, result=res, profile=prof, label=_label(t, prof, seed))
    ra, rb = runs[target_a]["result"], runs[target_b]["result"]
    ag = agreement(ra, rb, graph)
    runs[target_b]["agreement"] = ag
    bad = [n for n, d in ag["layers"].items() if d.get("spike_match") is None]
    match = ag["spike_match"]
    ok = bool(ag["compared_layers"]) and not bad and match is not None and (match >= min_match if min_match < 1 else ag["identical"])
    msg = None
    if not ok:
        head = f"spike trains of {runs[target_a]['label']} and {runs[target_b]['label']} differ"
        if not ag["compared_layers"]:
            msg = f"{head}: no spiking layer was recorded by both, nothing to compare ({', '.join(ag.get('not_compared', [])) or 'no spiking nodes'})"
        elif bad:
            msg = f"{head}: layer(s) {', '.join(bad)} cannot be compared ({ag['layers'][bad[0]].get('note', '')})"
        else:
            need = "identical" if min_match >= 1 else f"≥ {100 * min_match:g} %"
            msg = (f"{head}: {100 * match:.3f} % of spike entries match (needed {need}); "
                   + _divergence_detail(ag, ra, rb, target_a, target_b) + f"; lag rule: {ag['lag_note']}")
    reports.check("assert_spikes_match", ok, msg, {"spike_match": match, "lag": ag["lag"], "first_divergence": ag["first_divergence"],
                                                   "calibration": _cal_record(runs, cal)},
                  graph=graph, x=x, runs=runs, reference=target_a)
    if not ok:
        raise AssertionError(msg)
    return ag


def _lag_padded_run(s, graph, target, x, prof, seed, options, cal=None):
    """(program, result) as ``neurodeploy profile`` measures it: the input padded with the
    outputs' lag in silent steps, the outputs read at their lag (measure/window.py)."""
    from ..measure.window import run_windowed

    ran = {}

    def run(xp):
        ran["program"], res = s.run(graph, target, xp, prof, seed, options, cal)
        return res

    res = run_windowed(run, s.program(graph, target, prof, seed, options, x, cal).describe(), graph, x)
    return ran["program"], res


def _priced(model, x, target, hardware, seed, options, calibration=None, calibrate_on_eval=False):
    """(graph, runs, entry, calibration record) of one run of ``x`` priced on ``hardware``
    by the measurement layer (:func:`neurodeploy.measure.report.target_entry`)."""
    from ..errors import InputError
    from ..measure.report import target_entry

    s = current()
    graph = s.graph(model)
    prof = s.profile(target, hardware)
    if prof is None:
        raise InputError(f"{target}: no hardware profile to price the run on: pass hardware=")
    x, _, cal = s.calibration_for(x, None, calibration, calibrate_on_eval)
    prog, res = _lag_padded_run(s, graph, target, x, prof, seed, options, cal)
    inputs = {graph.inputs[0]: x} if len(graph.inputs) == 1 and "lag_padding" not in res.info else None
    entry = target_entry(target, prog, res, graph, prof, inputs=inputs)
    runs = {target: dict(program=prog, result=res, profile=prof, entry=entry, label=_label(target, prof, seed))}
    return graph, runs, entry, _cal_record(runs, cal)


def _top(d: dict, per: float, n: int = 3) -> str:
    from ..measure.report import fmt_si

    items = sorted(((k, v if isinstance(v, (int, float)) else sum(v.values())) for k, v in d.items()), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {fmt_si(v / per, 'J')}" for k, v in items[:n])


def assert_energy_below(model, x, target, hardware=None, *, joules: float, seed: int = 0, options: dict | None = None,
                       calibration=None, calibrate_on_eval: bool = False):
    """Modelled energy per inference (:mod:`neurodeploy.hardware.energy`) ≤ ``joules``
    (``calibration``/``calibrate_on_eval`` as in :func:`assert_accuracy_within`). Returns the report entry's ``energy``."""
    from ..measure.report import fmt_si

    graph, runs, entry, cal = _priced(model, x, target, hardware, seed, options, calibration, calibrate_on_eval)
    en = entry["energy"]
    e = en["per_inference_J"]
    ok = e <= joules
    msg = None
    if not ok:
        samples = max(int(runs[target]["result"].batch), 1)
        static = en.get("static_J", 0.0) / samples
        msg = (f"energy per inference of {runs[target]['label']} is {fmt_si(e, 'J')}, above the limit {fmt_si(joules, 'J')} "
               f"({e / joules:.3g}× the limit; {samples} samples × {_steps(x)} steps). Largest by event kind: "
               f"{_top(en.get('by_kind', {}), samples)}; by layer: {_top(en.get('by_layer', {}), samples)}; "
               f"static {fmt_si(static, 'J')} per inference")
    reports.check("assert_energy_below", ok, msg, {"per_inference_J": e, "limit_J": joules, "calibration": cal}, graph=graph, x=x, runs=runs)
    if not ok:
        raise AssertionError(msg)
    return en


def assert_latency_below(model, x, target, hardware=None, *, seconds: float, seed: int = 0, options: dict | None = None,
                       calibration=None, calibrate_on_eval: bool = False):
    """Modelled latency per inference (:mod:`neurodeploy.hardware.latency`) ≤ ``seconds``
    (``calibration``/``calibrate_on_eval`` as in :func:`assert_accuracy_within`). Returns the report entry's ``latency``."""
    from ..measure.report import fmt_si

    graph, runs, entry, cal = _priced(model, x, target, hardware, seed, options, calibration, calibrate_on_eval)
    lat = entry["latency"]
    t = lat["per_inference_s"]
    ok = t <= seconds
    msg = None
    if not ok:
        where = (f", {lat['cores']} cores on {lat.get('tiles')} tiles, barrier {fmt_si(lat.get('barrier_per_step_s'), 's')} per step"
                 if lat.get("cores") is not None else "")
        msg = (f"latency per inference of {runs[target]['label']} is {fmt_si(t, 's')}, above the limit {fmt_si(seconds, 's')} "
               f"({t / seconds:.3g}× the limit): {fmt_si(lat['per_step_s'], 's')} per step × {_steps(x)} steps{where}; "
               f"fewer steps or a faster step (fewer synaptic events on the busiest core/array) would bring it down")
    reports.check("assert_latency_below", ok, msg, {"per_inference_s": t, "limit_s": seconds, "calibration": cal}, graph=graph, x=x, runs=runs)
    if not ok:
        raise AssertionError(msg)
    return lat


def _loihi_fit(graph, prof, chips, target, s):
    """(ok, message, resources) of mapping ``graph`` onto ``chips`` Loihi chips."""
    from ..errors import FitError

    try:
        prog = s.program(graph, target, prof, options={"chips": int(chips)})
    except FitError as exc:
        return False, f"does not fit {chips} chip(s) of {prof.name}: {exc}", {"error": str(exc)}
    m = prog.describe()["mapping"]
    res = {"cores": m["cores"], "cores_available": int(chips) * m["cores_per_chip"], "chips_needed": m["chips"],
           "layers": {n: d["cores"] for n, d in m["layers"].items()}}
    return True, None, res


def _rram_fit(graph, prof, chips, s):
    """(ok, message, resources): crossbar tiles needed vs the arrays ``chips`` macros hold
    (``macro_capacity`` cells / (array_rows × array_cols) arrays per macro)."""
    from ..errors import UnsupportedError

    if "macro_capacity" not in prof:
        raise UnsupportedError(f"assert_fits: hardware profile '{prof.name}' has no macro_capacity: the arrays a chip "
                               "holds are unknown, so fit cannot be checked")
    rows, cols = int(prof.si("array_rows")), int(prof.si("array_cols"))
    per_macro = int(prof.si("macro_capacity") * 8) // (rows * cols)
    tiles = {n: int(xb["tiles"]) for n, xb in (s.program(graph, "rram", prof).describe()["crossbars"] or {}).items()}
    used, avail = sum(tiles.values()), int(chips) * per_macro
    res = {"tiles": used, "tiles_available": avail, "layers": tiles, "array": [rows, cols]}
    msg = None if used <= avail else (
        f"does not fit {chips} chip(s) of {prof.name}: needs {used} crossbar arrays of {rows}×{cols} cells ("
        + ", ".join(f"{n}: {k}" for n, k in tiles.items()) + f"), {chips} macro(s) hold {avail} "
        f"(macro_capacity {prof['macro_capacity'].value:g} {prof['macro_capacity'].unit} = {per_macro} array(s) each); "
        f"use chips={-(-used // max(per_macro, 1))} or fewer/smaller layers")
    return msg is None, msg, res


def assert_fits(model, hardware, chips: int = 1, *, target: str | None = None):
    """The model fits ``chips`` chips of ``hardware`` (a Loihi profile: cores mapped under
    the per-core limits; an RRAM profile: crossbar arrays vs the macro's capacity).
    Returns the resources used and available."""
    from ..hardware import load_profile

    s = current()
    graph = s.graph(model)
    prof = load_profile(hardware) if not hasattr(hardware, "kind") else hardware
    if prof.kind == "rram":
        ok, msg, res = _rram_fit(graph, prof, chips, s)
    else:
        ok, msg, res = _loihi_fit(graph, prof, chips, target or "loihi2-emu", s)
    msg = None if ok else f"model {msg}"
    reports.check("assert_fits", ok, msg, {"hardware": prof.name, "chips": chips, **res}, graph=graph)
    if not ok:
        raise AssertionError(msg)
    return res
