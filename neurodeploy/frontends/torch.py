"""Generic torch frontend through nirtorch, for modules of plain torch layers.

Maps torch.nn.Linear → Affine/Linear, Conv1d/Conv2d, AvgPool2d, Flatten; anything else must
be handled by a framework frontend (norse, snnTorch) or a user-supplied ``extractor``.
"""

from __future__ import annotations

import numpy as np


def _extract(module):
    import nir
    import torch

    if isinstance(module, torch.nn.Linear):
        w = module.weight.detach().cpu().numpy()
        if module.bias is None:
            return nir.Linear(weight=w)
        return nir.Affine(weight=w, bias=module.bias.detach().cpu().numpy())
    if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
        cls = nir.Conv1d if isinstance(module, torch.nn.Conv1d) else nir.Conv2d
        bias = module.bias.detach().cpu().numpy() if module.bias is not None else np.zeros(module.out_channels, np.float32)
        pad = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        kw = dict(stride=module.stride, padding=pad, dilation=module.dilation)
        if cls is nir.Conv1d:
            kw = {k: (v if isinstance(v, str) else v[0]) for k, v in kw.items()}
        return cls(input_shape=None, weight=module.weight.detach().cpu().numpy(), groups=module.groups, bias=bias, **kw)
    if isinstance(module, torch.nn.AvgPool2d):
        k = module.kernel_size
        s = module.stride if module.stride is not None else k
        return nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(module.padding))
    if isinstance(module, torch.nn.Flatten):
        return nir.Flatten(input_type=None, start_dim=module.start_dim, end_dim=module.end_dim)
    return None


def from_torch(module, sample, *, dt=None, reset=None, extractor=None, model_name="torch"):
    import nirtorch

    from ..graph.normalize import normalize

    graph = nirtorch.extract_nir_graph(module, extractor or _extract, sample, model_name=model_name)
    return normalize(graph, dt=dt, reset=reset, source=f"torch:{type(module).__name__}")
