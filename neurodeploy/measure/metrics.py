"""Metrics computed from a RunResult alone (measurement never knows which target ran)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..graph.fanout import fanout

READOUTS = ("spikes", "membrane", "auto")


def predict(output: torch.Tensor, readout: str = "spikes") -> np.ndarray:
    """Class per sample from an output (batch, time, classes).

    ``spikes``: the class with the most spikes (ties → lowest index); ``membrane``: the class
    whose output (a non-spiking readout's potential) is largest at its maximum over time.
    """
    if readout not in ("spikes", "membrane"):
        raise InputError(f"readout must be 'spikes' or 'membrane', got {readout!r}")
    out = output.detach().float().cpu()
    if out.ndim != 3:
        out = out.reshape(out.shape[0], out.shape[1], -1)
    score = out.sum(1) if readout == "spikes" else out.max(1).values
    return score.argmax(1).numpy()


def is_binary(output: torch.Tensor) -> bool:
    return bool(((output == 0) | (output == 1)).all())


def check_labels(labels, classes: int | None, where: str = "labels") -> np.ndarray:
    """Labels as int64: whole numbers (an integer array, or floats equal to integers) in
    [0, classes). Anything else is an InputError naming the first offending sample."""
    y = np.asarray(labels)
    if y.dtype.kind not in "iub" and y.dtype.kind != "f":
        raise InputError(f"{where}: labels 'y' must be integer class indices, got dtype {y.dtype}")
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise InputError(f"{where}: labels 'y' must be integer class indices; sample {bad[0]} has {y[bad[0]]!r}")
    yi = y.astype(np.int64)
    hi = classes if classes is not None else None
    bad = np.flatnonzero((yi < 0) | (yi >= hi if hi is not None else False))
    if bad.size:
        raise InputError(f"{where}: label {yi[bad[0]]} of sample {bad[0]} is out of range: the model's output has "
                         f"{hi} classes (labels 0..{hi - 1})" if hi is not None else
                         f"{where}: label {yi[bad[0]]} of sample {bad[0]} is negative")
    return yi


def accuracy(result, labels, readout: str = "auto") -> float:
    """Fraction of samples whose predicted class equals the label. ``auto`` reads spike
    counts when the output is binary and the membrane maximum otherwise."""
    out = result.output if hasattr(result, "output") else result
    classes = int(np.prod(out.shape[2:])) if out.ndim >= 3 else None
    y = check_labels(labels, classes)
    if len(y) != out.shape[0]:
        raise InputError(f"{len(y)} labels for {out.shape[0]} samples")
    if readout == "auto":
        readout = "spikes" if is_binary(out) else "membrane"
    return float((predict(out, readout) == y).mean())


# --------------------------------------------------------------------------------------
# activity metrics
#
# Everything below reads a RunResult (counts, records, outputs). A Graph, when given, only
# supplies structure (shapes, which node feeds which, weights for NeuroBench's nonzero-
# weight rule); it never changes what the target reported.

#: NIR node types whose output is a binary spike train
_SPIKING = ("IF", "LIF", "CubaLIF", "Threshold")


def _per(result) -> int:
    """Samples × steps of a run (the denominator of per-step rates)."""
    return max(int(result.batch) * int(result.steps), 1)


def _neurons(result, node, graph=None) -> int | None:
    if graph is not None and node in graph.shapes:
        return int(np.prod(graph.shapes[node]))
    if node in result.records:
        return int(np.prod(result.records[node].shape[2:]))
    nu = result.counts.get(node, {}).get("neuron_updates")
    if nu:
        return int(nu) // _per(result)
    return None


def spiking_nodes(result, graph=None) -> list[str]:
    """Nodes that emit spikes: those the target counted spikes for (graph order if known)."""
    names = [n for n, c in result.counts.items() if "spikes" in c]
    if graph is not None:
        order = {n: i for i, n in enumerate(graph.order)}
        names.sort(key=lambda n: order.get(n, len(order)))
    return names


def spike_counts(result, graph=None) -> dict[str, dict]:
    """Per spiking node: total spikes, spikes per sample, neurons and the rate in
    spikes / neuron / step (averaged over samples)."""
    out = {}
    for n in spiking_nodes(result, graph):
        s = int(result.counts[n]["spikes"])
        neurons = _neurons(result, n, graph)
        rate = s / (neurons * _per(result)) if neurons else None
        out[n] = {
            "spikes": s,
            "spikes_per_sample": s / max(result.batch, 1),
            "neurons": neurons,
            "rate": rate,
        }
    return out


def activation_sparsity(result, graph=None) -> dict:
    """NeuroBench's activation sparsity: zero activations / all activations over the
    spiking layers' outputs, all steps and samples. Exact from ``records`` when a node was
    recorded (counts nonzero elements, so graded spikes are handled); else from the spike
    count (binary spikes: nonzero elements = spikes)."""
    layers = {}
    zeros = total = 0
    for n in spiking_nodes(result, graph):
        if n in result.records and result.records[n].numel():
            r = result.records[n]
            nz, tot = int(torch.count_nonzero(r)), int(r.numel())
            method = "records"
        else:
            neurons = _neurons(result, n, graph)
            if not neurons:
                continue
            nz, tot = int(result.counts[n]["spikes"]), neurons * _per(result)
            method = "counts"
        layers[n] = {"sparsity": (tot - nz) / tot if tot else 0.0, "nonzero": nz, "activations": tot, "method": method}
        zeros += tot - nz
        total += tot
    return {"sparsity": zeros / total if total else 0.0, "layers": layers}


def _source_values(result, graph, node, inputs):
    """The input arriving at ``node`` at every step, (batch, time, *in_shape), rebuilt from
    recorded outputs of its predecessors (recurrent edges shifted by one step), or None."""
    parts = []
    for a in graph.predecessors(node):
        if inputs is not None and a in inputs:
            v = torch.as_tensor(np.asarray(inputs[a]), dtype=torch.float32)
        elif a in result.records and result.records[a].numel():
            v = result.records[a].detach().float().cpu()
        else:
            return None
        if (a, node) in graph.delayed:
            v = torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)
        parts.append(v)
    if not parts:
        return None
    x = parts[0]
    for p in parts[1:]:
        x = x + p
    return x


def _binary_source(graph, node) -> bool | None:
    """Whether ``node``'s input is a spike train, judged from the graph structure."""
    seen = set()
    stack = list(graph.predecessors(node))
    kinds = []
    while stack:
        a = stack.pop()
        if a in seen:
            continue
        seen.add(a)
        t = type(graph.nodes[a]).__name__
        if t in ("Flatten", "Output"):
            stack.extend(graph.predecessors(a))
        else:
            kinds.append(t)
    if not kinds:
        return None
    if any(k == "Input" for k in kinds):
        return None  # depends on the data
    # one spiking source: spikes; sums of several spike trains or non-spiking sources: graded
    return len(kinds) == 1 and kinds[0] in _SPIKING


def synaptic_ops(result, graph=None, inputs=None) -> dict:
    """Synaptic operations with NeuroBench's definitions (``neurobench.metrics.workload.
    SynapticOperations``), per sample (summed over steps, divided by samples):

    * **Dense**: every input element × every connection it has (zero weights and zero
      inputs included) — the work of hardware without sparsity support;
    * **Effective_ACs / Effective_MACs**: only nonzero input × nonzero weight pairs; a
      layer's effective ops are ACs when its input takes only values in {-1, 0, 1} (spikes)
      and MACs otherwise. Biases are not synaptic operations.

    With a Graph and the layer's input available (recorded predecessor outputs or
    ``inputs`` for Input nodes) the effective count is exact (zero weights excluded, as
    NeuroBench does). Otherwise it is the target's ``synaptic_events`` count (nonzero input
    × full fan-out: zero weights included, an upper bound); ``method`` says which.
    """
    layers = {}
    samples = max(int(result.batch), 1)
    tot = {"Effective_ACs": 0.0, "Effective_MACs": 0.0, "Dense": 0.0}
    for n, c in result.counts.items():
        if "synaptic_events" not in c and "dense_synops" not in c:
            continue
        effective = float(c.get("synaptic_events", 0))
        dense = float(c.get("dense_synops", 0))
        method = "counts"
        binary = None
        if graph is not None and n in graph.nodes:
            x = _source_values(result, graph, n, inputs)
            if x is not None:
                binary = bool(((x == 0) | (x == 1) | (x == -1)).all())
                fan = fanout(graph.nodes[n], graph.input_shape(n), nonzero_only=True)
                effective = float(((x != 0).to(torch.float64) * fan).sum())
                method = "exact"
            else:
                binary = _binary_source(graph, n)
        if binary is None:
            binary = True
            method += " (input assumed binary)"
        kind = "AC" if binary else "MAC"
        layers[n] = {
            "effective": effective / samples,
            "dense": dense / samples,
            "kind": kind,
            "method": method,
            "target_synaptic_events": int(c.get("synaptic_events", 0)),
        }
        tot["Effective_ACs" if binary else "Effective_MACs"] += effective / samples
        tot["Dense"] += dense / samples
    return {**tot, "layers": layers}


def neuron_updates(result) -> dict:
    """Neuron state updates per node (all samples and steps) and per sample; targets that
    count ``neuron_updates_active`` get the active/inactive split."""
    layers = {}
    for n, c in result.counts.items():
        if "neuron_updates" not in c:
            continue
        d = {"updates": int(c["neuron_updates"]), "per_sample": c["neuron_updates"] / max(result.batch, 1)}
        if "neuron_updates_active" in c:
            d["active"] = int(c["neuron_updates_active"])
        layers[n] = d
    total = sum(d["updates"] for d in layers.values())
    return {"total": total, "per_sample": total / max(result.batch, 1), "layers": layers}


def resolve_readout(result, readout: str) -> str:
    if readout not in READOUTS:
        raise InputError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    if readout == "auto":
        return "spikes" if is_binary(result.output) else "membrane"
    return readout


def compute_metrics(result, graph=None, labels=None, readout: str = "spikes", inputs=None) -> dict:
    """All activity metrics of one run, JSON-ready (see docs/report-schema.md)."""
    d = {
        "samples": int(result.batch),
        "steps": int(result.steps),
        "dt": float(result.dt),
        "spikes": {"total": result.total("spikes"), "per_sample": result.total("spikes") / max(result.batch, 1), "layers": spike_counts(result, graph)},
        "activation_sparsity": activation_sparsity(result, graph),
        "synaptic_ops": synaptic_ops(result, graph, inputs),
        "neuron_updates": neuron_updates(result),
        "event_totals": result.totals(),
        "accuracy": None,
        "readout": None,
    }
    if len(result.outputs) == 1:
        ro = resolve_readout(result, readout)
        d["readout"] = ro
        pred = predict(result.output, ro)
        d["predictions"] = pred.tolist()
        if labels is not None:
            d["accuracy"] = accuracy(result, labels, ro)
    return d
