"""A JSON-ready summary of a Graph: nodes, shapes, neuron/synapse counts, parameters."""

from __future__ import annotations

import nir
import numpy as np

from .graph import NEURON_TYPES, SYNAPSE_TYPES
from .normalize import FLOAT_PARAMS


def _range(a: np.ndarray) -> str:
    lo, hi = float(np.min(a)), float(np.max(a))
    return f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"


def summarize(graph, steps: int | None = None) -> dict:
    """Nodes, counts and parameters, plus the repairs applied at load and the diagnostics
    (:mod:`.diagnose`; ``steps``: the run length to check reachability of threshold for)."""
    from .diagnose import diagnose
    from .normalize import _listed

    nodes = []
    neurons = synapses = nonzero = 0
    for name in graph.order:
        node = graph.nodes[name]
        params = {}
        for p in FLOAT_PARAMS.get(type(node), ()):
            a = np.asarray(getattr(node, p))
            params[p] = {"shape": list(a.shape), "min": float(a.min()) if a.size else None, "max": float(a.max()) if a.size else None}
        if isinstance(node, NEURON_TYPES):
            neurons += int(np.prod(graph.shapes[name]))
        if isinstance(node, SYNAPSE_TYPES):
            synapses += int(node.weight.size)
            nonzero += int(np.count_nonzero(node.weight))
        text = ", ".join(
            f"{p}={_range(np.asarray(getattr(node, p)))}" if p != "weight" else f"weight{tuple(np.shape(node.weight))}"
            for p in FLOAT_PARAMS.get(type(node), ())
        )
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            text += f", stride={node.stride}, padding={node.padding}, groups={node.groups}"
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            text = f"kernel={tuple(node.kernel_size)}, stride={tuple(node.stride)}, padding={tuple(node.padding)}"
        nodes.append({
            "name": name,
            "type": type(node).__name__,
            "input_shape": list(graph.input_shape(name)),
            "output_shape": list(graph.shapes[name]),
            "params": params,
            "params_text": text,
        })
    return {
        "dt": graph.dt,
        "reset": graph.reset,
        "inputs": {n: list(graph.shapes[n]) for n in graph.inputs},
        "outputs": {n: list(graph.shapes[n]) for n in graph.outputs},
        "nodes": nodes,
        "edges": [list(e) for e in graph.edges],
        "recurrent_edges": sorted([list(e) for e in graph.delayed]),
        "neurons": neurons,
        "synapses": synapses,
        "synapses_nonzero": nonzero,
        "repairs": _listed(dict(graph.metadata), "repairs"),
        "assumptions": _listed(dict(graph.metadata), "assumptions"),
        "diagnostics": [d.to_dict() for d in diagnose(graph, steps=steps)],
    }
