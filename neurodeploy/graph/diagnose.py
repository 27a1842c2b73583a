"""Diagnostics at load: what in a Graph will make a run silently useless or differ from the
framework it came from. Each is a :class:`Diagnostic` ``(code, node, message)``:

* ``unstable-step``: a time constant with ``dt/τ > 1`` — forward Euler overshoots the fixed
  point (oscillates; diverges for ``dt/τ ≥ 2``). ``dt/τ = 1`` (no memory, snnTorch's β = 0)
  is exact and not reported.
* ``cannot-spike``: no neuron of a spiking layer can reach its threshold: from the weights
  and a bound on the input (spike inputs: 0..1; with ``x`` given, its per-element range),
  the largest membrane potential the layer can reach (``r·drive + v_leak`` for leaky
  models) stays at or below threshold, or — with ``steps`` given — the fastest neuron needs
  more steps than the run has (IF: ``θ / (dt·r·drive)``). Layers fed only by such layers
  are silent too and reported in turn. A Sinabs/NIR IF with ``r = 1`` at ``dt = 1e-3`` is
  the classic case (``load(..., framework="sinabs")`` reads ``r`` per step).
* ``dt-mismatch``: the graph runs at another dt than its exporter's convention
  (``metadata["exporter_dt"]``, e.g. a norse cell's own ``dt``): the discretisation differs
  from the framework's own simulation.
* load warnings recorded by the quirk repairs (``metadata["load_warnings"]``, e.g.
  ``snntorch-reset``, ``norse-v-init``, ``output-type``);
* after a run (:func:`diagnose_run`): ``dead-layer`` (no spike) and ``saturated-layer``
  (≥ 95 % of neuron-steps spike), from the run's event counts.

The bounds are upper bounds (every weight at its worst sign): a layer reported cannot spike
on any input within the bound; one not reported may still stay silent on a given input.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import nir
import numpy as np

from ..errors import GraphError
from .graph import SPIKING_TYPES
from .normalize import _listed


@dataclass(frozen=True)
class Diagnostic:
    code: str
    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: node '{self.node}': {self.message}" if self.node else f"{self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "node": self.node, "message": self.message}


def diagnose(graph, steps: int | None = None, x=None) -> list[Diagnostic]:
    """All diagnostics of ``graph``; ``steps``/``x``: the run's length and input, if known."""
    out = [Diagnostic(*(w.split("\t", 2) + ["", ""])[:3]) for w in _listed(dict(graph.metadata), "load_warnings")]
    out += _unstable(graph) + _dt_mismatch(graph) + _silent(graph, steps, x)
    return out


def _unstable(graph) -> list[Diagnostic]:
    out = []
    for name in graph.neuron_nodes():
        node = graph.nodes[name]
        for p in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, p):
                ratio = graph.dt / float(np.min(getattr(node, p)))
                if ratio > 1 + 1e-6:
                    out.append(Diagnostic("unstable-step", name, f"dt/{p} = {ratio:.3g} > 1 (dt = {graph.dt:g} s, "
                                          f"{p} ≥ {float(np.min(getattr(node, p))):.3g} s): forward Euler overshoots"
                                          + (" and diverges" if ratio >= 2 else "")))
    return out


def _dt_mismatch(graph) -> list[Diagnostic]:
    meta = dict(graph.metadata)
    ref = meta.get("exporter_dt")
    if ref is None or math.isclose(float(ref), graph.dt, rel_tol=1e-9):
        return []
    who = meta.get("exporter", "the exporter")
    return [Diagnostic("dt-mismatch", "", f"{who} integrates this model with dt = {float(ref):g} s; the graph runs at "
                       f"dt = {graph.dt:g} s, so its dynamics differ from {who}'s own simulation")]


# --- reachability of threshold ---------------------------------------------------------
def _input_bounds(graph, name, x):
    shape = graph.shapes[name]
    if isinstance(x, dict):
        x = x.get(name)
    if x is None:
        return np.zeros(shape), np.ones(shape)
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)  # no float64 copy of the input
    a = a.reshape(-1, *shape)
    return a.min(0).astype(np.float64), a.max(0).astype(np.float64)


def _linear_bounds(node, lo, hi):
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight, np.float64)
        wp, wn = np.clip(w, 0, None), np.clip(w, None, 0)
        b = np.asarray(getattr(node, "bias", 0.0), np.float64)
        return wp @ lo.reshape(-1) + wn @ hi.reshape(-1) + b, wp @ hi.reshape(-1) + wn @ lo.reshape(-1) + b
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        axes = tuple(range(1, lo.ndim))
        lo_c, hi_c = np.minimum(lo.min(axis=axes), 0), np.maximum(hi.max(axis=axes), 0)  # padding adds zeros
        w = np.asarray(node.weight, np.float64)
        red = tuple(range(2, w.ndim))
        wp, wn = np.clip(w, 0, None).sum(red), np.clip(w, None, 0).sum(red)  # (out, in/groups)
        g = node.groups
        lo_g, hi_g = lo_c.reshape(g, -1), hi_c.reshape(g, -1)
        wp, wn = wp.reshape(g, -1, wp.shape[1]), wn.reshape(g, -1, wn.shape[1])
        top = np.einsum("goi,gi->go", wp, hi_g) + np.einsum("goi,gi->go", wn, lo_g)
        bot = np.einsum("goi,gi->go", wp, lo_g) + np.einsum("goi,gi->go", wn, hi_g)
        per_channel = lambda v: (v.reshape(-1) + node.bias).reshape(-1, *(1,) * (lo.ndim - 1))  # noqa: E731
        return per_channel(bot), per_channel(top)
    return None


def _stateless_bounds(node, lo, hi, out_shape):
    """Per-element output bounds of a non-neuron node (None: not a stateless node)."""
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k = float(np.prod(node.kernel_size)) if isinstance(node, nir.SumPool2d) else 1.0
        lo_c, hi_c = lo.min(axis=(1, 2)) * k, hi.max(axis=(1, 2)) * k
        return (np.broadcast_to(np.minimum(lo_c, 0)[:, None, None], out_shape),
                np.broadcast_to(np.maximum(hi_c, 0)[:, None, None], out_shape))
    if isinstance(node, nir.Scale):
        s = np.asarray(node.scale, np.float64)
        return np.minimum(s * lo, s * hi), np.maximum(s * lo, s * hi)
    if isinstance(node, nir.Threshold):
        return np.zeros(out_shape), np.ones(out_shape)
    if isinstance(node, (nir.Flatten, nir.Delay, nir.Output, nir.Input)):
        return lo.reshape(out_shape), hi.reshape(out_shape)
    return None


def _peak(node, hi_drive, dt):
    """Largest reachable membrane value and fewest steps to it from v = 0 (per neuron)."""
    if isinstance(node, (nir.I, nir.IF)):
        per_step = dt * np.asarray(node.r, np.float64) * hi_drive
        peak = np.where(per_step > 0, np.inf, 0.0)
        return peak, per_step
    w_in = np.asarray(getattr(node, "w_in", 1.0), np.float64)
    tau = np.asarray(getattr(node, "tau", getattr(node, "tau_mem", 1.0)), np.float64)
    return np.asarray(node.r, np.float64) * w_in * hi_drive + np.asarray(node.v_leak, np.float64), np.minimum(dt / tau, 1)


def _steps_to(node, peak, rate):
    """Fewest steps for ``v`` to pass threshold (inf when it never does)."""
    thr = np.asarray(node.v_threshold, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(node, nir.IF):
            k = np.where(rate > 0, np.ceil(thr / rate), np.inf)
        else:
            frac = np.where(peak > thr, 1 - thr / np.where(peak > 0, peak, 1), 1.0)
            k = np.where(peak > thr, np.ceil(np.log(np.clip(frac, 1e-300, 1)) / np.log(np.clip(1 - rate, 1e-300, 1))), np.inf)
    return np.where(thr < 0, 1, np.maximum(k, 1))


def _neuron(name, node, lo, hi, graph, steps, out):
    if not isinstance(node, SPIKING_TYPES) or isinstance(node, nir.Threshold):
        peak, _ = _peak(node, hi, graph.dt)
        low, _ = _peak(node, lo, graph.dt)
        return np.minimum(np.minimum(low, peak), 0), np.maximum(np.maximum(low, peak), 0)
    peak, rate = _peak(node, hi, graph.dt)
    k = _steps_to(node, peak, rate)
    fastest = float(np.min(k))
    if math.isinf(fastest):
        thr = float(np.min(node.v_threshold))
        out.append(Diagnostic("cannot-spike", name, f"no neuron can reach threshold: the membrane stays ≤ "
                              f"{float(np.max(peak)):.3g} (threshold ≥ {thr:.3g}) for any input within the bound"))
    elif steps is not None and fastest > steps:
        hint = (" (an IF with r = 1 written per step, as Sinabs does? load with framework='sinabs', "
                "--framework sinabs)" if isinstance(node, nir.IF) and np.all(node.r == 1) else "")
        out.append(Diagnostic("cannot-spike", name, f"no neuron can reach threshold within the run's {steps} steps: "
                              f"the fastest needs {fastest:.0f} at dt = {graph.dt:g} s{hint}"))
    else:
        return np.zeros(graph.shapes[name]), np.ones(graph.shapes[name])
    return np.zeros(graph.shapes[name]), np.zeros(graph.shapes[name])


def _silent(graph, steps, x) -> list[Diagnostic]:
    bounds = {n: (np.zeros(graph.shapes[n]), np.ones(graph.shapes[n])) for n in graph.order
              if isinstance(graph.nodes[n], SPIKING_TYPES)}  # recurrent sources: any spike pattern
    out: list[Diagnostic] = []
    for name in graph.order:
        node = graph.nodes[name]
        if isinstance(node, nir.Input):
            bounds[name] = _input_bounds(graph, name, x)
            continue
        preds = [p for p in graph.predecessors(name) if p in bounds]
        in_shape = graph.input_shape(name)
        lo = sum((bounds[p][0].reshape(in_shape) for p in preds), np.zeros(in_shape))
        hi = sum((bounds[p][1].reshape(in_shape) for p in preds), np.zeros(in_shape))
        lin = _linear_bounds(node, lo, hi)
        if lin is not None:
            shape = graph.shapes[name]
            bounds[name] = tuple(np.broadcast_to(v, shape) if v.ndim > 1 else v.reshape(shape) for v in lin)
            continue
        st = _stateless_bounds(node, lo, hi, graph.shapes[name])
        bounds[name] = st if st is not None else _neuron(name, node, lo, hi, graph, steps, out)
    return out


# --- seen in a run -------------------------------------------------------------------------
SATURATED = 0.95  # fraction of neuron-steps spiking above which a layer carries no information


def diagnose_run(graph, result) -> list[Diagnostic]:
    """``dead-layer`` (no spike at all) and ``saturated-layer`` (≥ 95 % of neuron-steps
    spike) for every spiking node, from the run's event counts."""
    out = []
    for name in graph.order:
        c = result.counts.get(name, {})
        if not isinstance(graph.nodes[name], SPIKING_TYPES) or not c.get("neuron_updates"):
            continue
        rate = float(c.get("spikes", 0)) / float(c["neuron_updates"])
        where = f"{result.batch} samples × {result.steps} steps"
        if rate == 0:
            out.append(Diagnostic("dead-layer", name, f"no neuron spiked in the run ({where})"))
        elif rate >= SATURATED:
            out.append(Diagnostic("saturated-layer", name, f"{rate:.1%} of neuron-steps spiked ({where})"))
    return out


# --- printing ----------------------------------------------------------------------------
_SHOWN: set = set()


def warn_once(graph, quiet: bool = False, strict: bool = False, steps: int | None = None, x=None,
              result=None, file=None) -> list[Diagnostic]:
    """Print each diagnostic of ``graph`` (and of a run's ``result``) once per process as
    ``warning: …`` on stderr (nothing when ``quiet``); with ``strict`` raise GraphError
    instead. Returns them all."""
    if x is not None and steps is None:
        steps = int(np.shape(next(iter(x.values())) if isinstance(x, dict) else x)[1])
    found = diagnose(graph, steps=steps, x=x) + (diagnose_run(graph, result) if result is not None else [])
    if strict and found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise GraphError(f"{graph.source + ': ' if graph.source else ''}{found[0]}{more} [--strict]")
    for d in found:
        key = (graph.source, str(d))
        if not quiet and key not in _SHOWN:
            print(f"warning: {d}", file=file or sys.stderr)
            _SHOWN.add(key)
    return found
