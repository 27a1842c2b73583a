"""The converted graph read as the ANN it stands for: every IF population replaced by its
rate, ``clip(dt·r·u, 0, cap)``, the readout by its per-step increment ``dt·r·u``.

With ``saturate=False`` the only caps are Clip ceilings, and the result must equal
onnxruntime's output to float precision: :func:`verify` refuses the conversion otherwise
(so a translation error can never pass silently). With ``saturate=True`` every rate is also
capped at one spike per step: that is the network the SNN approaches as T grows, and its
accuracy is the ceiling the normalization (percentile clipping) leaves.
"""

from __future__ import annotations

import nir
import numpy as np
import torch

from ..errors import NeurodeployError
from ..targets.ops import build_op


def rate_ann(graph, x_rate: torch.Tensor, clip_rate: dict, saturate: bool, every: bool = False):
    """The output (or, with ``every``, the dict of every node's value) of the rate network."""
    vals = {}
    for n in graph.order:
        node = graph.nodes[n]
        preds = graph.predecessors(n)
        if isinstance(node, nir.Input):
            vals[n] = x_rate
            continue
        u = vals[preds[0]]
        for p in preds[1:]:
            u = u + vals[p]
        if isinstance(node, nir.Delay):  # a constant rate is unchanged by a delay
            vals[n] = u
        elif isinstance(node, (nir.IF, nir.I)):
            k = torch.as_tensor(np.asarray(node.r, np.float64) * graph.dt)
            y = u * k
            if isinstance(node, nir.IF):
                cap = min(clip_rate.get(n, np.inf), 1.0 if saturate else np.inf)
                y = torch.clamp(y, 0.0, cap)
            vals[n] = y
        else:
            vals[n] = build_op(n, graph, torch.float64, "cpu")(u)
    return vals if every else vals[graph.outputs[0]]


def verify(graph, x_rate: torch.Tensor, clip_rate: dict, ort_out: np.ndarray, path: str) -> float:
    """Max |rate-ANN − onnxruntime| relative to onnxruntime's range; refuses above 1e-4."""
    with torch.no_grad():
        mine = rate_ann(graph, x_rate.double(), clip_rate, saturate=False).numpy()
    ref = np.asarray(ort_out, np.float64).reshape(mine.shape)
    err = float(np.abs(mine - ref).max() / (np.abs(ref).max() + 1e-12))
    if not err <= 1e-4:
        raise NeurodeployError(f"{path}: the converted graph computes a different function than onnxruntime "
                               f"(relative error {err:.2e} on the calibration set); please report this model")
    return err
