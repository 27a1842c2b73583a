"""Trace torch modules to NIR through nirtorch, and the plain torch layers every frontend shares.

:func:`trace` runs nirtorch's tracer with a node function that gets each leaf module and its
name; a module no frontend knows is refused naming it (never dropped silently). Plain torch
layers: Linear → Affine/Linear, Conv1d/Conv2d (with or without bias), AvgPool2d, Flatten;
Dropout (an identity at inference) removed; an eval-mode BatchNorm1d/2d folded into the
Linear/Conv before it.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np

from ..errors import UnsupportedError
from . import _edit

#: returned by a node function for a layer that is the identity at inference (Dropout)
DROP = "drop"


def torch_node(module):
    """The NIR node of a plain torch layer, :data:`DROP`, or None if it is not one."""
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
        if module.ceil_mode or not module.count_include_pad and np.any(module.padding):
            return None
        return nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(module.padding))
    if isinstance(module, torch.nn.Flatten):
        if module.start_dim == 0 or module.end_dim == 0:
            return None  # flattens the batch dimension
        # torch counts the batch dimension, NIR does not
        return nir.Flatten(input_type=None, start_dim=module.start_dim - (module.start_dim > 0),
                           end_dim=module.end_dim - (module.end_dim > 0))
    if isinstance(module, (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d)):
        return DROP
    if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
        return _batchnorm(module)
    return None


def _batchnorm(module) -> BatchNorm:
    if module.training or module.running_mean is None:
        raise UnsupportedError("a BatchNorm in training mode (or without running statistics) normalizes with batch "
                               "statistics: call module.eval() first")
    scale = 1 / np.sqrt(module.running_var.detach().cpu().numpy().astype(np.float64) + module.eps)
    if module.affine:
        scale = scale * module.weight.detach().cpu().numpy()
    shift = -module.running_mean.detach().cpu().numpy() * scale
    if module.affine:
        shift = shift + module.bias.detach().cpu().numpy()
    return BatchNorm(scale, shift)


class BatchNorm:
    """An eval-mode BatchNorm ``y = scale·x + shift`` (per channel), folded by :func:`fold`."""

    def __init__(self, scale, shift):
        self.scale, self.shift = scale, shift


def fold(graph, name: str, bn: BatchNorm):
    """Fold BatchNorm node ``name`` into the Linear/Conv that feeds it (and only it)."""
    preds = [a for a, b in graph.edges if b == name]
    src = graph.nodes.get(preds[0]) if len(preds) == 1 else None
    if not isinstance(src, (nir.Linear, nir.Affine, nir.Conv1d, nir.Conv2d)) or \
            [b for a, b in graph.edges if a == preds[0]] != [name]:
        raise UnsupportedError(f"module '{name}' (BatchNorm): only a BatchNorm right after a Linear or Conv layer "
                               "(and its only consumer) can be folded into it")
    w = np.asarray(src.weight, np.float64)
    s = bn.scale.reshape(-1, *(1,) * (w.ndim - 1))
    bias = np.asarray(getattr(src, "bias", np.zeros(w.shape[0])), np.float64)
    params = dict(weight=np.asarray(w * s, np.float32), bias=np.asarray(bias * bn.scale + bn.shift, np.float32))
    new = nir.Affine(**params) if isinstance(src, (nir.Linear, nir.Affine)) else _edit.with_params(src, **params)
    graph = _edit.clone(graph)
    graph.nodes[preds[0]] = new
    return _edit.bypass(graph, name)


def trace(module, sample, node_fn, *, model_name="model", ignore_submodules_of=()):
    """nirtorch-trace ``module`` on ``sample``; ``node_fn(leaf, name)`` gives each leaf's node.

    Returns the NIR graph with Dropout-like layers bypassed. A leaf without a node raises
    UnsupportedError naming the module and its type."""
    import nirtorch

    names = {id(m): n for n, m in module.named_modules()}
    dropped, folded = set(), {}

    def mapper(sub):
        name = names.get(id(sub), model_name) or model_name
        try:
            node = node_fn(sub, name)
        except UnsupportedError as exc:
            raise UnsupportedError(f"module '{name}' ({type(sub).__name__}): {exc}") from None
        if isinstance(node, BatchNorm):
            folded[name] = node
            return nir.Scale(scale=np.ones((), np.float32))
        if node is None:
            raise UnsupportedError(f"module '{name}' ({type(sub).__name__}) has no NIR equivalent that neurodeploy "
                                   "can run exactly; replace or remove it")
        if isinstance(node, str) and node == DROP:
            dropped.add(name)
            return nir.Scale(scale=np.ones((), np.float32))
        return node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        graph = nirtorch.extract_nir_graph(module, mapper, sample, model_name=model_name,
                                           ignore_submodules_of=list(ignore_submodules_of) or None)
    graph = _edit.clone(graph)
    for name in dropped:
        if name in graph.nodes:
            graph = _edit.bypass(graph, name)
    for name, bn in folded.items():
        if name in graph.nodes:
            graph = fold(graph, name, bn)
    return graph


def from_torch(module, sample, *, dt=None, reset=None, extractor=None, model_name="torch"):
    """A module of plain torch layers (or layers ``extractor(module)`` maps)."""
    from ..graph.normalize import normalize

    def node_fn(sub, name):
        node = extractor(sub) if extractor is not None else None
        return node if node is not None else torch_node(sub)

    graph = trace(module, sample, node_fn, model_name=model_name)
    return normalize(graph, dt=dt, reset=reset, source=f"torch:{type(module).__name__}")
