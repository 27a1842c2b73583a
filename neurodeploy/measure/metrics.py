"""Metrics computed from a RunResult alone (measurement never knows which target ran)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

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


def accuracy(result, labels, readout: str = "auto") -> float:
    """Fraction of samples whose predicted class equals the label. ``auto`` reads spike
    counts when the output is binary and the membrane maximum otherwise."""
    out = result.output if hasattr(result, "output") else result
    y = np.asarray(labels).reshape(-1)
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
#: state variables (membrane v, synaptic current i) of each neuron type
STATE_VARS = {"I": 1, "IF": 1, "LI": 1, "LIF": 1, "CubaLI": 2, "CubaLIF": 2}


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


def _nonzero_fanout(node, in_shape) -> torch.Tensor:
    """Per input element: the number of nonzero-weight connections it feeds (NeuroBench's
    binarized-layer rule)."""
    import nir
    import torch.nn.functional as F

    w = torch.as_tensor(np.asarray(node.weight) != 0, dtype=torch.float64)
    if isinstance(node, (nir.Affine, nir.Linear)):
        return w.sum(0)
    from ..graph.normalize import _pair

    nd = 1 if isinstance(node, nir.Conv1d) else 2
    pad = node.padding if isinstance(node.padding, str) else _pair(node.padding, nd)
    x = torch.ones((1, *in_shape), dtype=torch.float64, requires_grad=True)
    fn = F.conv1d if nd == 1 else F.conv2d
    y = fn(x, w, None, stride=_pair(node.stride, nd), padding=pad, dilation=_pair(node.dilation, nd), groups=int(node.groups))
    (g,) = torch.autograd.grad(y.sum(), x)
    return g[0].detach()


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
                fan = _nonzero_fanout(graph.nodes[n], graph.input_shape(n)).to(torch.float64)
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


def memory_footprint(program, graph=None, *, weight_bytes: float | None = None, state_bytes: float | None = None) -> dict:
    """Bytes a compiled Program needs: synaptic weights (and biases) plus neuron state.

    A Program may report its own (``program.memory_footprint()`` returning a dict with
    ``weights_bytes`` and ``state_bytes``); that is used as is. Otherwise it is computed
    from the Program's graph: every weight/bias element × ``weight_bytes`` and every neuron
    state variable (v, and i for Cuba models) × ``state_bytes``. Defaults: the element size
    of the Program's dtype (float32: 4) for float targets; Loihi targets 1 byte per weight
    (8-bit mantissa) and 3 bytes per state variable (24-bit); RRAM targets the float dtype
    for both, plus ``cells`` = 2 per weight (differential pair) for the crossbar."""
    fn = getattr(program, "memory_footprint", None)
    if callable(fn):
        d = dict(fn())
        d.setdefault("total_bytes", d.get("weights_bytes", 0) + d.get("state_bytes", 0))
        d.setdefault("method", "reported by the program")
        return d
    graph = getattr(program, "graph", None) or graph
    if graph is None:
        raise InputError("memory_footprint: the program has no graph; pass graph=")
    import nir

    from ..graph.graph import NEURON_TYPES, SYNAPSE_TYPES

    target = str(getattr(program, "target", ""))
    dtype = getattr(program, "dtype", torch.float32)
    itemsize = torch.tensor([], dtype=dtype).element_size() if isinstance(dtype, torch.dtype) else 4
    extra = {}
    if target.startswith("loihi") or target == "lava":
        wb, sb = 1.0, 3.0
        method = "graph: 8-bit weights, 24-bit neuron state (Loihi fixed point)"
    elif target == "rram":
        wb, sb = float(itemsize), float(itemsize)
        method = (f"graph: weights in the program dtype ({itemsize} bytes; on the crossbar each weight is a differential "
                  "pair of cells, counted in 'cells'), digital neuron state in the program dtype")
    else:
        wb, sb = float(itemsize), float(itemsize)
        method = f"graph: {itemsize}-byte weights and state"
    wb = wb if weight_bytes is None else float(weight_bytes)
    sb = sb if state_bytes is None else float(state_bytes)
    weights = 0
    states = 0
    layers = {}
    for n in graph.order:
        node = graph.nodes[n]
        w = s = 0
        if isinstance(node, SYNAPSE_TYPES):
            w = int(np.asarray(node.weight).size)
            if isinstance(node, (nir.Affine, nir.Conv1d, nir.Conv2d)):
                w += int(np.asarray(node.bias).size)
        if isinstance(node, NEURON_TYPES):
            s = int(np.prod(graph.shapes[n])) * STATE_VARS.get(type(node).__name__, 1)
        if w or s:
            layers[n] = {"weights": w, "state_vars": s, "bytes": w * wb + s * sb}
        weights += w
        states += s
    if target == "rram":
        extra["cells"] = 2 * sum(int(np.asarray(graph.nodes[n].weight).size) for n in graph.order if isinstance(graph.nodes[n], SYNAPSE_TYPES))
    return {
        "weights": weights,
        "state_vars": states,
        "weights_bytes": weights * wb,
        "state_bytes": states * sb,
        "total_bytes": weights * wb + states * sb,
        "bytes_per_weight": wb,
        "bytes_per_state_var": sb,
        "method": method,
        "layers": layers,
        **extra,
    }


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
