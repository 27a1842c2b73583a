"""Memory a compiled program needs, from the graph's structure: every synaptic weight and
bias element, and every neuron state variable (v; and i for the Cuba models)."""

from __future__ import annotations

import nir
import numpy as np

from ..graph.graph import NEURON_TYPES, SYNAPSE_TYPES

#: state variables of each neuron type (membrane v; synaptic current i for Cuba models)
STATE_VARS = {nir.I: 1, nir.IF: 1, nir.LI: 1, nir.LIF: 1, nir.CubaLI: 2, nir.CubaLIF: 2}


def weight_elements(node) -> int:
    """Stored weight (and bias) elements of a NIR synapse node, as written."""
    w = int(np.asarray(node.weight).size)
    if isinstance(node, (nir.Affine, nir.Conv1d, nir.Conv2d)):
        w += int(np.asarray(node.bias).size)
    return w


def graph_memory(graph, weight_bytes: float, state_bytes: float, method: str, **extra) -> dict:
    """Bytes for weights and neuron state, per node and in total."""
    layers, weights, states = {}, 0, 0
    for n in graph.order:
        node = graph.nodes[n]
        w = weight_elements(node) if isinstance(node, SYNAPSE_TYPES) else 0
        s = int(np.prod(graph.shapes[n])) * STATE_VARS[type(node)] if isinstance(node, NEURON_TYPES) else 0
        if w or s:
            layers[n] = {"weights": w, "state_vars": s, "bytes": w * weight_bytes + s * state_bytes}
        weights += w
        states += s
    return {
        "weights": weights, "state_vars": states,
        "weights_bytes": weights * weight_bytes, "state_bytes": states * state_bytes,
        "total_bytes": weights * weight_bytes + states * state_bytes,
        "bytes_per_weight": float(weight_bytes), "bytes_per_state_var": float(state_bytes),
        "method": method, "layers": layers, **extra,
    }
