"""Agreement of a target's run with the reference run on the same input.

Spike trains are compared per recorded spiking node after shifting the target by its
declared lag: Lava's Dense delivers at t+1 what it computed at t, so a target whose
``RunResult.info["lag"]`` (the same dict as ``Program.describe()["lag"]``) gives node n a lag
of L is compared as
``target[:, t + L]`` against ``reference[:, t]`` over the steps both cover. The lag is part
of the result (``lag``), never applied silently.
"""

from __future__ import annotations

import numpy as np
import torch


def synaptic_depth(graph) -> dict[str, int]:
    """Per node: the number of synaptic nodes on the longest feed-forward path from an
    input (recurrent edges excluded) — the lag a target accumulates when every synapse
    delivers one step late, as Lava's Dense does."""
    from ..graph.graph import SYNAPSE_TYPES

    depth: dict[str, int] = {}
    for n in graph.order:
        preds = [a for a in graph.predecessors(n) if (a, n) not in graph.delayed and a in depth]
        d = max((depth[a] for a in preds), default=0)
        depth[n] = d + (1 if isinstance(graph.nodes[n], SYNAPSE_TYPES) else 0)
    return depth


def declared_lag(info: dict, graph=None, layers=()) -> tuple[int | dict, str]:
    """The lag a target declares in ``info["lag"]`` ({node: steps}, or one int for every node).

    A target that declares only some nodes' lag (its outputs', say) gets
    per-layer lags from the graph's synaptic depth, used only when they agree with every
    declared output lag; otherwise the declared output lags are used and other layers get
    0. The returned text says which rule applied."""
    info = info or {}
    lag = info.get("lag")
    if lag is None:
        return 0, "no lag declared"
    if not isinstance(lag, dict):
        return int(lag), "declared (info.lag)"
    declared = {str(k): v for k, v in lag.items() if v is not None}
    if graph is not None and declared:
        depth = synaptic_depth(graph)
        if all(k in depth and depth[k] == int(v) for k, v in declared.items()):
            out = {n: depth[n] for n in layers if n in depth}
            out.update({k: int(v) for k, v in declared.items()})
            return out, "per layer from the graph's synaptic depth (one step per synapse), which matches the target's declared output lag (info.lag)"
    out = {k: int(v) for k, v in declared.items()}
    missing = [n for n in layers if n not in out]
    if not missing:
        return out, "declared per layer (info.lag)"
    return out, f"declared by the target (info.lag); layers without a declared lag ({', '.join(missing)}) compared without lag"


def _lag_of(lag, node: str) -> int:
    if isinstance(lag, dict):
        return int(lag.get(node, 0))
    return int(lag or 0)


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation; 1.0 for identical vectors, None when undefined (constant)."""
    if a.size == 0:
        return None
    if np.array_equal(a, b):
        return 1.0
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def agreement(ref, tgt, graph=None) -> dict:
    """Per-layer and overall agreement of ``tgt`` with ``ref`` (both RunResults with
    records of the same nodes). Returns JSON-ready numbers:

    * ``lag``: the lag applied (int, or {node: int});
    * ``spike_match``: fraction of (sample, aligned step, neuron) spike entries that are
      equal, over all compared layers; ``layers[n]["spike_match"]`` per layer;
    * ``layers[n]["count_correlation"]``: Pearson correlation of per-neuron spike counts
      (summed over samples and aligned steps), None when undefined (a constant count);
    * ``first_divergence``: the earliest aligned reference step at which any layer differs,
      and the first such layer in graph order (None if the trains are identical).
    """
    order = list(graph.order) if graph is not None else list(ref.records)
    spiking = {n for n, c in ref.counts.items() if "spikes" in c}
    common = [n for n in order if n in ref.records and n in tgt.records and n in spiking and ref.records[n].numel()]
    missing = sorted(n for n in spiking if n not in tgt.records or n not in ref.records)
    lag, lag_rule = declared_lag(tgt.info, graph, common)
    ref_lag, ref_rule = declared_lag(ref.info, graph, common)
    if ref_lag:  # comparing two lagged targets: only their difference matters
        if isinstance(lag, dict) or isinstance(ref_lag, dict):
            keys = set(lag if isinstance(lag, dict) else {}) | set(ref_lag if isinstance(ref_lag, dict) else {}) | set(common)
            lag = {k: _lag_of(lag, k) - _lag_of(ref_lag, k) for k in keys}
        else:
            lag = int(lag) - int(ref_lag)
        lag_rule += f"; relative to the reference run's own lag ({ref_rule})"
    layers = {}
    equal = total = 0
    first = None
    for n in common:
        L = _lag_of(lag, n)
        r = ref.records[n].detach().float().cpu()
        t = tgt.records[n].detach().float().cpu()
        # every reference step whose lagged target step exists (a run padded with silent
        # steps covers the whole reference window)
        steps = min(r.shape[1], t.shape[1] - L) if L >= 0 else min(r.shape[1] + L, t.shape[1])
        if steps <= 0 or r.shape[0] != t.shape[0] or r.shape[2:] != t.shape[2:]:
            layers[n] = {"lag": L, "compared_steps": 0, "spike_match": None, "count_correlation": None,
                         "note": f"shapes differ or lag too long: reference {tuple(r.shape)}, target {tuple(t.shape)}"}
            continue
        if L >= 0:
            ra, ta = r[:, :steps], t[:, L:L + steps]
        else:
            ra, ta = r[:, -L:-L + steps], t[:, :steps]
        same = ra == ta
        eq, tot = int(same.sum()), int(same.numel())
        equal += eq
        total += tot
        diff_steps = (~same).reshape(same.shape[0], steps, -1).any(2).any(0)
        div = int(torch.nonzero(diff_steps)[0, 0]) if bool(diff_steps.any()) else None
        rc = ra.sum((0, 1)).reshape(-1).numpy()
        tc = ta.sum((0, 1)).reshape(-1).numpy()
        layers[n] = {
            "lag": L,
            "compared_steps": steps,
            "spike_match": eq / tot if tot else None,
            "count_correlation": _corr(rc, tc),
            "spikes_reference": int(rc.sum()),
            "spikes_target": int(tc.sum()),
            "first_divergent_step": div,
        }
        if div is not None and (first is None or div < first["step"]):
            first = {"step": div, "layer": n, "target_step": div + L}
    out = {
        "lag": lag,
        "lag_note": ("target step t+lag compared with reference step t (Lava's Dense delivers one step late); " if lag else "") + lag_rule,
        "spike_match": equal / total if total else None,
        "layers": layers,
        "first_divergence": first,
        "identical": first is None and bool(common),
        "compared_layers": common,
    }
    if missing:
        out["not_compared"] = missing
    return out
