"""Fan-out of a NIR synapse node's input elements: how many outputs read each one (the
factor of the protocol's synaptic counts, docs/protocol.md). Graph structure only, so
targets and measurement share it."""

from __future__ import annotations

import nir
import numpy as np
import torch
import torch.nn.functional as F

from .normalize import _pair


def fanout(node, in_shape, device="cpu", nonzero_only: bool = False) -> torch.Tensor:
    """Per input element (shape ``in_shape``, float64): how many outputs of the NIR synapse
    ``node`` read it. ``nonzero_only`` counts only connections with a nonzero weight."""
    w = np.asarray(node.weight)
    if isinstance(node, (nir.Affine, nir.Linear)):
        if nonzero_only:
            return torch.as_tensor((w != 0).sum(0).astype(np.float64), device=device)
        return torch.full((w.shape[1],), float(w.shape[0]), dtype=torch.float64, device=device)
    nd = 1 if isinstance(node, nir.Conv1d) else 2
    ones_w = torch.as_tensor((w != 0) if nonzero_only else np.ones_like(w), dtype=torch.float64, device=device)
    pad = node.padding if isinstance(node.padding, str) else _pair(node.padding, nd)
    x = torch.ones((1, *in_shape), dtype=torch.float64, device=device, requires_grad=True)
    fn = F.conv1d if nd == 1 else F.conv2d
    with torch.enable_grad():
        y = fn(x, ones_w, None, stride=_pair(node.stride, nd), padding=pad, dilation=_pair(node.dilation, nd),
               groups=int(node.groups))
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0].detach()
