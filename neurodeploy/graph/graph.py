"""The normalized graph every target compiles: a NIR graph with explicit time semantics.

A :class:`Graph` is built by :func:`neurodeploy.graph.normalize.normalize` and is not meant
to be constructed by hand. It holds

* ``nir``: the normalized ``nir.NIRGraph`` (nested subgraphs kept as given, every parameter a
  numpy array broadcast to its node's shape, every input/output type set, batch dimensions
  stripped) — this is what :func:`neurodeploy.save` writes;
* ``nodes`` / ``edges``: the *flat execution view*: nested subgraphs inlined under dotted
  names (``sub.lif``), their internal Input/Output nodes removed by rewiring;
* ``order``: a topological order of the flat view in which every edge goes forward except
  the ``delayed`` edges, which carry the source's output of the previous time step;
* ``shapes``: the output shape (without batch) of every flat node;
* ``dt`` (seconds) and ``reset`` ("zero" or "subtract").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import nir

RESET_MODES = ("zero", "subtract")

#: NIR node types that hold state across time steps (may close a recurrent cycle).
STATEFUL_TYPES = (nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF, nir.Delay)
#: NIR node types that emit spikes.
SPIKING_TYPES = (nir.IF, nir.LIF, nir.CubaLIF, nir.Threshold)
#: NIR node types that are neurons (have membrane state).
NEURON_TYPES = (nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF)
#: NIR node types that are synapses (weights).
SYNAPSE_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)


@dataclass(frozen=True)
class Graph:
    """A validated, normalized NIR graph with explicit ``dt`` and reset mode."""

    nir: nir.NIRGraph
    dt: float
    reset: str
    nodes: Mapping[str, nir.NIRNode]
    edges: tuple[tuple[str, str], ...]
    order: tuple[str, ...]
    delayed: frozenset[tuple[str, str]]
    shapes: Mapping[str, tuple[int, ...]]
    source: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "shapes", MappingProxyType(dict(self.shapes)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # --- structure ---------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        """Names of the top-level Input nodes, in order."""
        return [n for n in self.order if isinstance(self.nodes[n], nir.Input)]

    @property
    def outputs(self) -> list[str]:
        """Names of the top-level Output nodes, in order."""
        return [n for n in self.order if isinstance(self.nodes[n], nir.Output)]

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def input_shape(self, name: str) -> tuple[int, ...]:
        """Shape (without batch) arriving at node ``name``."""
        node = self.nodes[name]
        if isinstance(node, nir.Input):
            return self.shapes[name]
        preds = self.predecessors(name)
        return self.shapes[preds[0]] if preds else ()

    def neuron_nodes(self) -> list[str]:
        return [n for n in self.order if isinstance(self.nodes[n], NEURON_TYPES)]

    def synapse_nodes(self) -> list[str]:
        return [n for n in self.order if isinstance(self.nodes[n], SYNAPSE_TYPES)]

    def with_time(self, dt: float | None = None, reset: str | None = None) -> "Graph":
        """A copy with another dt or reset mode (validated as on load). The NIR graph's
        metadata says the new values too, so :func:`neurodeploy.save` writes them."""
        import copy

        from .normalize import check_dt, check_reset

        dt = check_dt(self.dt if dt is None else dt, self.source)
        reset = check_reset(self.reset if reset is None else reset)
        meta = {**dict(self.metadata), "dt": dt, "reset": reset}
        g = copy.copy(self.nir)  # shallow: nodes are shared and never mutated
        g.metadata = dict(meta)
        return Graph(
            nir=g,
            dt=dt,
            reset=reset,
            nodes=self.nodes,
            edges=self.edges,
            order=self.order,
            delayed=self.delayed,
            shapes=self.shapes,
            source=self.source,
            metadata=meta,
        )

    def __repr__(self) -> str:
        kinds = {}
        for n in self.nodes.values():
            kinds[type(n).__name__] = kinds.get(type(n).__name__, 0) + 1
        summary = ", ".join(f"{k}×{v}" for k, v in sorted(kinds.items()))
        return f"Graph({summary}; dt={self.dt:g} s, reset={self.reset!r})"
