"""Synaptic event counts by the protocol's definitions (docs/protocol.md), shared by every
target so that a count means the same number everywhere.

For a NIR synapse node (Affine, Linear, Conv1d, Conv2d) with input ``x`` (batch, time,
*in_shape):

* ``dense_synops`` = MACs of the operation as written: Σ over input elements of their
  fan-out (a Linear: n_in × n_out; a Conv: its kernel MACs, never an unrolled matrix),
  × batch × steps;
* ``synaptic_events`` = Σ over (sample, step, input element) with ``x ≠ 0`` of that
  element's fan-out in the NIR operation (zero weights included: the operation as written).

A target that runs the NIR graph step by step (reference, rram) counts ``x`` as it goes. A
target that folds stateless nodes into its synapses (Loihi: Flatten/Scale/pooling/chained
linear nodes folded into one matrix) rebuilds each NIR synapse node's input from the
outputs of its *feeders* (the Input and neuron nodes whose outputs reach it through
stateless nodes only) with :class:`SynapseInputs`, under NIR's time semantics (a recurrent
edge carries the previous step), so the count is the NIR definition applied to that
target's own activity.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch

from ..graph.fanout import fanout
from ..graph.graph import NEURON_TYPES, SPIKING_TYPES, SYNAPSE_TYPES


def synapse_counts(fan: torch.Tensor, nonzero: torch.Tensor | None, batch: int, steps: int) -> dict[str, int]:
    """The protocol counts of one synapse node from its per-input-element fan-out and the
    number of (sample, step) pairs each input element was nonzero."""
    ev = 0 if nonzero is None else int(round(float((nonzero.reshape(-1).to(fan) * fan.reshape(-1)).sum())))
    return {"synaptic_events": ev, "dense_synops": int(round(float(fan.sum()))) * int(batch) * int(steps)}


def neuron_counts(graph, node: str, batch: int, steps: int, spikes: int | None) -> dict[str, int]:
    """``neuron_updates`` (neurons × steps × batch) and, for spiking nodes, ``spikes``."""
    c: dict[str, int] = {}
    if isinstance(graph.nodes[node], NEURON_TYPES):
        c["neuron_updates"] = int(np.prod(graph.shapes[node])) * int(batch) * int(steps)
    if isinstance(graph.nodes[node], SPIKING_TYPES):
        c["spikes"] = int(spikes or 0)
    return c


def is_source(graph, node: str) -> bool:
    """Input and neuron nodes: what a folding target keeps as a population or input."""
    return isinstance(graph.nodes[node], (nir.Input, *NEURON_TYPES))


@dataclass
class _Path:
    node: str
    feeders: tuple[tuple[str, int], ...]  # (source, recurrent edges on the way: 0 or 1)
    direct: bool  # input = a reshape of one feeder's output


class SynapseInputs:
    """Rebuilds the input of every NIR synapse node of ``graph`` from its feeders' outputs
    and counts its protocol events (for targets that fold stateless nodes)."""

    def __init__(self, graph):
        self.graph = graph
        self.fan = {n: fanout(graph.nodes[n], graph.input_shape(n)) for n in graph.synapse_nodes()}
        self.paths = {n: self._path(n) for n in graph.synapse_nodes()}

    def _path(self, node: str) -> _Path:
        g = self.graph
        feeders: dict[tuple[str, int], None] = {}
        direct = True
        stack = [(a, int((a, node) in g.delayed)) for a in g.predecessors(node)]
        if len(stack) != 1:
            direct = False
        while stack:
            a, d = stack.pop()
            if is_source(g, a):
                feeders[(a, d)] = None
                continue
            preds = g.predecessors(a)
            if not isinstance(g.nodes[a], nir.Flatten) or len(preds) != 1:
                direct = False
            stack.extend((p, d + int((p, a) in g.delayed)) for p in preds)
        return _Path(node, tuple(feeders), direct and len(feeders) == 1)

    def feeders(self) -> set[str]:
        return {f for p in self.paths.values() for f, _ in p.feeders}

    def counts(self, values: dict[str, torch.Tensor], batch: int, steps: int) -> dict[str, dict[str, int]]:
        """``values[source]``: (batch, steps, *shape or n) outputs of every feeder."""
        out = {}
        for n, p in self.paths.items():
            fan = self.fan[n].to(next(iter(values.values())).device) if values else self.fan[n]
            out[n] = synapse_counts(fan, self.nonzero(p, values, steps), batch, steps)
        return out

    def nonzero(self, p: _Path, values: dict[str, torch.Tensor], steps: int) -> torch.Tensor | None:
        """Per input element of ``p.node``: the (sample, step) pairs it is nonzero."""
        if p.direct:
            (src, d), = p.feeders
            v = values[src]
            v = v[:, : steps - d] if d else v
            return (v != 0).reshape(-1, self.fan[p.node].numel()).sum(0, dtype=torch.float64)
        x = self.rebuild(p.node, values, steps)
        return (x != 0).reshape(-1, self.fan[p.node].numel()).sum(0, dtype=torch.float64)

    def rebuild(self, node: str, values: dict[str, torch.Tensor], steps: int) -> torch.Tensor:
        """(batch, steps, *in_shape) input of ``node`` under NIR semantics, evaluating the
        stateless nodes between it and its feeders in float64 over all steps at once."""
        from .ops import build_op

        g = self.graph
        memo: dict[str, torch.Tensor] = {}

        def out(a: str) -> torch.Tensor:
            if a in memo:
                return memo[a]
            if is_source(g, a):
                v = values[a]
                y = v.to(torch.float64).reshape(v.shape[0], v.shape[1], *g.shapes[a])
            elif isinstance(g.nodes[a], nir.Delay):
                y = _delayed(inp(a), g.nodes[a], g.dt)
            else:
                x = inp(a)
                b, t = x.shape[:2]
                op = build_op(a, g, torch.float64, str(x.device))
                op.reset(b * t)
                y = op(x.reshape(b * t, *x.shape[2:]))
                y = y.reshape(b, t, *y.shape[1:])
            memo[a] = y
            return y

        def inp(a: str) -> torch.Tensor:
            total = None
            for p in g.predecessors(a):
                y = out(p)
                if (p, a) in g.delayed:
                    y = torch.cat([torch.zeros_like(y[:, :1]), y[:, :-1]], 1)
                total = y if total is None else total + y
            return total

        return inp(node)


def _delayed(x: torch.Tensor, node, dt: float) -> torch.Tensor:
    """``y[:, t] = x[:, t − d]`` per element (zeros before), d = round(delay / dt), as
    :class:`.ops.Delay` does step by step."""
    d = torch.as_tensor(np.rint(np.asarray(node.delay, np.float64) / dt).astype(np.int64), device=x.device)
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device).reshape(1, steps, *([1] * d.ndim)) - d
    pad = torch.cat([torch.zeros_like(x[:, :1]), x], 1)  # index 0: the zeros before the start
    idx = (t.clamp(min=-1) + 1).expand(x.shape[0], *t.shape[1:])
    return torch.gather(pad, 1, idx.expand_as(x))


def count_nodes(graph) -> list[str]:
    """The nodes that carry counts, in graph order: synapses, neurons, spiking nodes."""
    return [n for n in graph.order if isinstance(graph.nodes[n], SYNAPSE_TYPES + NEURON_TYPES + SPIKING_TYPES)]
