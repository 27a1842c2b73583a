"""The protocol's event counts (docs/protocol.md) of a Loihi run, keyed by NIR nodes.

A Loihi program folds Flatten, Scale, pooling and chained linear nodes into one weight
matrix per (source, destination) population pair, so its synapses are not NIR nodes. The
counts are still the NIR definitions applied to Loihi's own activity:

* every NIR synapse node gets ``synaptic_events`` and ``dense_synops`` from
  :class:`~neurodeploy.targets.counting.SynapseInputs`, which rebuilds the node's input
  from the spikes of its *feeders* (Input nodes: the input spikes; neuron nodes: the
  population's spikes) under NIR's time semantics;
* every neuron node gets ``neuron_updates`` and, when it is a spiking node, ``spikes``
  (:func:`~neurodeploy.targets.counting.neuron_counts`);
* ``stored_synaptic_events`` (an extra kind): per folded synapse, Σ over input spikes of
  the spiking source's *nonzero* stored weights — the synaptic operations Loihi performs —
  reported under the last NIR synapse node folded into it (summed when several folded
  synapses end in one node; a chain with no synapse node, e.g. pooling only, has none).

Counts are additive over samples, so both Loihi targets count chunk by chunk (emulator)
or sample by sample (Lava) and sum.
"""

from __future__ import annotations

import numpy as np
import torch

from ...graph.graph import SYNAPSE_TYPES
from ..counting import SynapseInputs, count_nodes, neuron_counts
from .program import LoihiProgram

#: feeder elements (batch × steps × width) SynapseInputs works on at once; a larger
#: chunk is counted in sub-batches (the counts are additive over samples)
COUNT_BLOCK = 1 << 24


class LoihiCounts:
    """Protocol counts of runs of ``program`` (see the module docstring)."""

    def __init__(self, program: LoihiProgram):
        self.program = program
        g = program.graph
        self.synapse_inputs = SynapseInputs(g) if g is not None else None
        #: Input and population names whose spikes the synapse counts need
        self.feeders = sorted(self.synapse_inputs.feeders()) if g is not None else []
        #: synapse index → NIR synapse node its stored_synaptic_events go under (or None)
        self.stored_key = {i: _last_synapse_node(g, s.nodes) for i, s in enumerate(program.synapses)}

    def synapses(self, values: dict[str, torch.Tensor], batch: int, steps: int) -> dict[str, dict[str, int]]:
        """{NIR synapse node: {synaptic_events, dense_synops}} of ``batch`` samples whose
        feeder spikes are ``values[feeder]`` ((batch, steps, n))."""
        if self.synapse_inputs is None:
            return {}
        width = max([int(np.prod(v.shape[2:])) for v in values.values()] + [1])
        step = max(1, COUNT_BLOCK // max(1, steps * width))
        total: dict[str, dict[str, int]] = {}
        for b0 in range(0, max(batch, 1), step):
            b1 = min(b0 + step, batch)
            part = self.synapse_inputs.counts({k: v[b0:b1] for k, v in values.items()}, b1 - b0, steps)
            add_counts(total, part)
        return total

    def assemble(self, batch: int, steps: int, synapse: dict, spikes: dict[str, int],
                 stored: list[int]) -> dict[str, dict[str, int]]:
        """The RunResult counts in graph order: ``synapse`` from :meth:`synapses` (summed
        over chunks), ``spikes`` {population: spikes}, ``stored[i]`` the stored synaptic
        events of folded synapse i."""
        prog, g = self.program, self.program.graph
        if g is None:  # a hand-built program: its populations only
            return {p.name: neuron_counts_of(p, batch, steps, spikes[p.name]) for p in prog.populations}
        counts: dict[str, dict[str, int]] = {}
        pops = {p.name for p in prog.populations}
        for n in count_nodes(g):
            if n in synapse:
                counts[n] = dict(synapse[n])
            elif n in pops:
                counts[n] = neuron_counts(g, n, batch, steps, spikes[n])
        for i, key in self.stored_key.items():
            if key is not None:
                c = counts.setdefault(key, {})
                c["stored_synaptic_events"] = c.get("stored_synaptic_events", 0) + int(stored[i])
        return counts


def neuron_counts_of(pop, batch: int, steps: int, spikes: int) -> dict[str, int]:
    """Counts of a population of a program without a graph (spiking populations count spikes)."""
    c = {"neuron_updates": pop.n * batch * steps}
    if pop.spiking:
        c["spikes"] = int(spikes)
    return c


def stored_fanout(program: LoihiProgram) -> list[np.ndarray]:
    """Per folded synapse: per source element, its nonzero stored weights (float64)."""
    return [s.fanout() for s in program.synapses]


def add_counts(total: dict, part: dict) -> dict:
    """``total[node][kind] += part[node][kind]`` (in place; returns ``total``)."""
    for n, c in part.items():
        t = total.setdefault(n, {})
        for k, v in c.items():
            t[k] = t.get(k, 0) + int(v)
    return total


def _last_synapse_node(graph, nodes) -> str | None:
    if graph is None:
        return None
    syn = [n for n in nodes if n in graph.nodes and isinstance(graph.nodes[n], SYNAPSE_TYPES)]
    return syn[-1] if syn else None
