"""Small, pure edits of a flat ``nir.NIRGraph`` used by the frontends and quirk repairs.

Every function returns a new graph (nodes dict and edge list copied; nodes shared unless
replaced), so the caller's graph is never mutated.
"""

from __future__ import annotations

import copy

import nir
import numpy as np


def clone(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A new graph with the same node objects; node dicts (nested graphs too), edges and metadata copied."""
    g = copy.copy(graph)
    g.nodes = {k: clone(v) if isinstance(v, nir.NIRGraph) else v for k, v in graph.nodes.items()}
    g.edges = [tuple(e) for e in graph.edges]
    g.metadata = dict(getattr(graph, "metadata", None) or {})
    return g


def walk(graph: nir.NIRGraph, prefix: str = ""):
    """Yield ``(dotted_name, node, parent_graph, local_name)`` for every non-graph node."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            yield from walk(node, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", node, graph, name


def with_params(node: nir.NIRNode, **params) -> nir.NIRNode:
    """A shallow copy of ``node`` with some parameters replaced."""
    new = copy.copy(node)
    for k, v in params.items():
        setattr(new, k, v)
    return new


def add_loop(graph: nir.NIRGraph, name: str, loop: nir.NIRNode, suffix: str, into: str | None = None) -> nir.NIRGraph:
    """Feed ``name``'s output back through ``loop`` into ``into`` (default ``name``); the
    edge leaving the stateful node carries the previous step's output (docs/semantics.md)."""
    g = clone(graph)
    node_name = f"{name}.{suffix}"
    g.nodes[node_name] = loop
    g.edges += [(name, node_name), (node_name, into or name)]
    return g


def insert_before(graph: nir.NIRGraph, name: str, pre: nir.NIRNode, suffix: str) -> nir.NIRGraph:
    """Put ``pre`` (named ``name.suffix``) on every edge into ``name``."""
    g = clone(graph)
    pre_name = f"{name}.{suffix}"
    g.edges = [(a, pre_name if b == name else b) for a, b in g.edges] + [(pre_name, name)]
    g.nodes[pre_name] = pre
    return g


def bypass(graph: nir.NIRGraph, name: str) -> nir.NIRGraph:
    """Remove node ``name`` and connect its inputs to its outputs (an identity layer)."""
    g = clone(graph)
    ins = [a for a, b in g.edges if b == name]
    outs = [b for a, b in g.edges if a == name]
    g.edges = [e for e in g.edges if name not in e] + [(a, b) for a in ins for b in outs]
    del g.nodes[name]
    return g


def as_numpy(value, dtype=np.float64):
    """A torch tensor, number or array as a numpy array (float64 unless told)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype)
