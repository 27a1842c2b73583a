"""Shape arithmetic folded to constants: torch's ``x.view(x.size(0), -1)`` with a dynamic
batch exports Shape → Gather → Unsqueeze → Concat → Reshape. The batch dimension is -1,
which the Reshape handler reads as "the batch"; on data tensors these ops are refused."""

from __future__ import annotations

import numpy as np


def _fold(t, node, value) -> None:
    t.consts[node.outputs[0]] = np.asarray(value)


def shape(t, node):
    x = t.ref(node)
    if x.parts is not None and len(x.shape) != 1:
        t.refuse(node, "Shape of a Concat")
    start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
    _fold(t, node, np.array([-1, *x.shape], np.int64)[start:end])


def _const_inputs(t, node) -> list:
    if any(i in t.refs for i in node.inputs if i):
        t.refuse(node, f"{node.op} of a data tensor is not supported (only shape arithmetic on constants is folded)")
    return [t.const(node, i) if node.inputs[i] else None for i in range(len(node.inputs))]


def gather(t, node):
    data, idx = _const_inputs(t, node)[:2]
    _fold(t, node, np.take(data.astype(np.int64), idx.astype(np.int64), axis=int(node.attrs.get("axis", 0))))


def unsqueeze(t, node):
    vals = _const_inputs(t, node)
    axes = vals[1] if len(vals) > 1 and vals[1] is not None else node.attrs.get("axes")
    out = vals[0].astype(np.int64)
    for a in sorted(int(v) for v in np.asarray(axes).reshape(-1)):
        out = np.expand_dims(out, a if a >= 0 else a + out.ndim + 1)
    _fold(t, node, out)


def concat(t, node):
    vals = _const_inputs(t, node)
    _fold(t, node, np.concatenate([v.astype(np.int64) for v in vals], axis=int(node.attrs.get("axis", 0))))
