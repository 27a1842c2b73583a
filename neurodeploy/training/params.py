"""The trainable parameters of a Graph (weights and biases of its synapse nodes) and the
Graph with new values for them.

Fine-tuning changes only synaptic weights and biases (Affine, Linear, Conv1d, Conv2d);
neuron parameters (τ, r, thresholds, resets) stay as loaded. ``with_params`` builds NIR
nodes through their constructors (``dataclasses.replace``) and, for the graph that is
saved, normalizes the rebuilt NIR graph again (nested subgraphs kept nested).
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np

from ..graph.graph import SYNAPSE_TYPES

#: the trainable fields of each synapse type
FIELDS = {nir.Affine: ("weight", "bias"), nir.Linear: ("weight",), nir.Conv1d: ("weight", "bias"),
          nir.Conv2d: ("weight", "bias")}


def trainable(graph) -> dict[str, dict[str, np.ndarray]]:
    """{synapse node: {field: array}} of every synapse node of ``graph`` (flat names)."""
    return {n: {f: np.asarray(getattr(graph.nodes[n], f)) for f in FIELDS[type(graph.nodes[n])]}
            for n in graph.order if isinstance(graph.nodes[n], SYNAPSE_TYPES)}


def _new_node(node, values: dict):
    kw = {f: np.asarray(v, dtype=np.asarray(getattr(node, f)).dtype).reshape(np.shape(getattr(node, f)))
          for f, v in values.items()}
    return dataclasses.replace(node, **kw)


def with_flat_params(graph, values: dict[str, dict]):
    """A Graph sharing ``graph``'s structure with the synapse parameters ``values`` in its
    flat view (cheap: no normalization; its ``nir`` is the old one, so it is for compiling
    and running, not for saving — use :func:`with_params` for that)."""
    nodes = dict(graph.nodes)
    for n, v in values.items():
        nodes[n] = _new_node(nodes[n], v)
    return dataclasses.replace(graph, nodes=nodes)


def _replace_nested(g: nir.NIRGraph, values: dict, prefix: str = "") -> nir.NIRGraph:
    nodes = {}
    for name, node in g.nodes.items():
        flat = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            node = _replace_nested(node, values, flat + ".")
        elif flat in values:
            node = _new_node(node, values[flat])
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(g.edges), metadata=dict(getattr(g, "metadata", {}) or {}))


def with_params(graph, values: dict[str, dict]):
    """The normalized Graph ``graph`` with synapse parameters ``values`` ({flat node:
    {field: array}}), ready for :func:`neurodeploy.save`."""
    from ..graph.normalize import normalize

    new = _replace_nested(graph.nir, values)
    new.metadata = {**dict(graph.nir.metadata or {}), "dt": graph.dt, "reset": graph.reset}
    return normalize(new, dt=graph.dt, reset=graph.reset, source=graph.source)
