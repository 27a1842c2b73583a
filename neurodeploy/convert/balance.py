"""Spike-rate balancing of a reset-to-zero network (the Loihi construction, docs/convert.md).

A neuron reset to zero throws away the charge above threshold at every spike, so it fires
below ``activation / λ`` and the shortfall compounds layer after layer. Balancing — in the
spirit of Sengupta et al. 2019's Spike-Norm, which sets thresholds layer by layer from SNN
simulations of calibration data — visits the IF populations in topological order and
multiplies each one's input gain ``r`` (equivalently, divides its threshold) by

    mean rate of the rate network on the calibration set / mean rate the SNN actually fires

with all earlier layers already balanced, ``iterations`` times. One scalar per layer, from
calibration data only; the factors are reported in ``Conversion.balance``.
"""

from __future__ import annotations

import nir
import numpy as np
import torch


def _with_gains(graph, gains: dict):
    from ..graph import load

    nodes = dict(graph.nir.nodes)
    for n, f in gains.items():
        nd = nodes[n]
        nodes[n] = nir.IF(r=np.asarray(nd.r, np.float32) * np.float32(f), v_threshold=nd.v_threshold, v_reset=nd.v_reset)
    return load(nir.NIRGraph(nodes=nodes, edges=list(graph.nir.edges), metadata=dict(graph.nir.metadata)),
                dt=graph.dt, reset=graph.reset)


def balance(graph, x_enc: torch.Tensor, targets: dict[str, float], iterations: int = 3):
    """``graph`` with every IF's gain balanced; returns (graph, {IF node: factor}).

    ``x_enc``: encoded calibration inputs (N, T, *shape); ``targets``: the rate network's
    mean rate of each IF population on the same samples."""
    from ..targets.reference import ReferenceProgram

    gains = {n: 1.0 for n in targets}
    g = graph
    for n in [m for m in graph.order if m in targets]:
        for _ in range(iterations):
            fired = float(ReferenceProgram(g).run(x_enc, record=[n]).records[n].mean())
            if fired <= 0 or targets[n] <= 0:
                break
            gains[n] *= targets[n] / fired
            g = _with_gains(graph, gains)
    return g, gains
