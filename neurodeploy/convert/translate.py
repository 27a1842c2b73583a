"""ONNX nodes → spiking graph specs (:class:`~.builder.Builder`), one handler per op.

Units. Every ONNX tensor is a :class:`~.builder.Ref`: ``value ≈ scale × Σ outputs(srcs)``.
A weighted op (Conv, Gemm, MatMul) absorbs its input's scale into its weights, so its output
is in ANN units (scale 1). A ReLU becomes an IF population (threshold 1, reset by
subtraction or to zero) with ``r = scale_in / (λ·dt)``: it fires at rate ``value / λ``, so
its spike train has scale λ, the normalization of that activation (a percentile of it on
the calibration set, times the threshold ratio k of reset-to-zero conversion). Pools,
Flatten and channel Concat pass scales through unchanged; a residual Add brings both
branches to ANN units with ``Scale`` nodes. See docs/convert.md.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from . import fold
from .builder import Builder, Ref

SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "AveragePool", "GlobalAveragePool",
             "Flatten", "Reshape", "BatchNormalization", "Concat", "Identity")
#: folded to constants when they only compute shapes (torch's ``x.view(x.size(0), -1)``)
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze")


class Translator:
    def __init__(self, model, lam: dict, *, dt: float, ratio: float, input_scale: float, spiking_input: bool):
        self.m, self.lam, self.dt, self.ratio = model, lam, dt, ratio
        self.b = Builder()
        self.consts = dict(model.consts)  # plus the folded shape arithmetic
        self.refs: dict[str, Ref] = {}
        self.clip_rate: dict[str, float] = {}  # IF node -> the rate of its Clip ceiling
        self.if_scale: dict[str, float] = {}  # IF node -> λ (ANN units per spike per step)
        inp = self.b.add("input", "input", shape=model.input_shape)
        self.refs[model.input] = Ref((inp,), float(input_scale), tuple(model.input_shape), nonneg=spiking_input)

    # ---- helpers ----------------------------------------------------------------------
    def where(self, node) -> str:
        return f"{self.m.path}: node '{node.name}' ({node.op})"

    def refuse(self, node, why: str):
        raise UnsupportedError(f"{self.where(node)}: {why}")

    def ref(self, node, i: int = 0) -> Ref:
        name = node.inputs[i]
        if name not in self.refs:
            self.refuse(node, f"input '{name}' is a constant or unknown; only data tensors are converted")
        return self.refs[name]

    def const(self, node, i: int, required: bool = True):
        name = node.inputs[i] if i < len(node.inputs) else ""
        if name in self.consts:
            return np.asarray(self.consts[name], dtype=np.float64)
        if name and name in self.refs:
            self.refuse(node, f"input {i} ('{name}') must be a constant (initializer)")
        if required:
            self.refuse(node, f"input {i} is missing")
        return None

    def set(self, node, ref: Ref):
        self.refs[node.outputs[0]] = ref

    def single_use(self, node, i: int = 0) -> bool:
        t = node.inputs[i]
        return t != self.m.output and len(self.m.consumers(t)) == 1

    def linear(self, x: Ref, base: str) -> Ref:
        """``x`` with only linear nodes as sources (neurons/inputs go through a Scale)."""
        if all(self.b.is_linear(s) for s in x.srcs):
            return x
        n = self.b.add("scale", base + "_scale", x.srcs, scale=np.full(x.shape, x.scale))
        return Ref((n,), 1.0, x.shape, x.nonneg, depth=x.depth)

    def parts(self, node, x: Ref) -> tuple[Ref, ...]:
        return x.parts if x.parts is not None else (x,)

    def aligned(self, refs, base: str) -> list[Ref]:
        """``refs`` about to be summed, the shallower ones through a NIR Delay of the depth
        difference: every path into the sum then has the same lag on Loihi (one step per
        synapse); the reference sees a constant rate delayed, which changes no rate."""
        depth = max(r.depth for r in refs)
        out = []
        for i, r in enumerate(refs):
            if r.depth < depth:
                d = self.b.add("delay", f"{base}_delay{i}", r.srcs, delay=np.full(r.shape, (depth - r.depth) * self.dt))
                r = r.with_(srcs=(d,), depth=depth)
            out.append(r)
        return out

    def each(self, node, fn) -> None:
        """Apply ``fn(part) -> Ref`` to every concat part of the input (or the input)."""
        x = self.ref(node)
        outs = tuple(fn(p) for p in self.parts(node, x))
        self.set(node, outs[0] if x.parts is None else _concat(outs))

    def run(self):
        check_ops(self.m)
        for node in self.m.nodes:
            HANDLERS[node.op](self, node)
        self.readout()
        return self.b

    def readout(self):
        out = self.refs[self.m.output]
        if out.parts is not None:
            raise UnsupportedError(f"{self.m.path}: the graph output is a Concat; convert needs one readout tensor")
        x = self.linear(out, "readout")
        n = self.b.add("i", "readout", x.srcs, r=x.scale / self.dt, shape=x.shape)
        self.b.add("output", "output", (n,), shape=x.shape)


def check_ops(model) -> None:
    """UnsupportedError naming the first node whose op has no conversion."""
    for node in model.nodes:
        if node.op not in HANDLERS:
            raise UnsupportedError(f"{model.path}: node '{node.name}' ({node.op}): op {node.op} is not supported by convert "
                                   f"(supported: {', '.join(SUPPORTED)}, and {', '.join(SHAPE_OPS)} on shapes; MaxPool: see docs/convert.md)")


def _concat(parts) -> Ref:
    flat = tuple(q for p in parts for q in (p.parts if p.parts is not None else (p,)))
    shape = (sum(p.shape[0] for p in flat), *flat[0].shape[1:])
    return Ref((), float("nan"), shape, all(p.nonneg for p in flat), parts=flat, depth=max(p.depth for p in flat))


def _ints(v, n, default):
    return tuple(int(a) for a in v) if v is not None else (default,) * n


def _sym_pads(t, node, k, s, d, in_hw):
    a = node.attrs
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return (0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-h // si) - 1) * si + (ki - 1) * di + 1 - h, 0) for h, ki, si, di in zip(in_hw, k, s, d)]
        if any(v % 2 for v in total):
            t.refuse(node, f"auto_pad {auto} needs asymmetric padding {total}, which NIR cannot express")
        return tuple(v // 2 for v in total)
    pads = _ints(a.get("pads"), 4, 0)
    if pads[:2] != pads[2:]:
        t.refuse(node, f"asymmetric pads {list(pads)} are not supported (NIR pads symmetrically)")
    return pads[:2]


def _out_hw(in_hw, k, s, p, d=(1, 1)):
    from nir.ir.utils import calculate_conv_output

    return tuple(int(v) for v in calculate_conv_output(in_hw, p, d, k, s))


# ---- weighted ops ---------------------------------------------------------------------
def conv(t: Translator, node):
    x, W = t.ref(node), t.const(node, 1)
    B = t.const(node, 2, required=False)
    if W.ndim != 4 or len(x.shape) != 3:
        t.refuse(node, f"only 2-d convolutions are supported (weight of rank {W.ndim})")
    a = node.attrs
    k, s, d = W.shape[2:], _ints(a.get("strides"), 2, 1), _ints(a.get("dilations"), 2, 1)
    g = int(a.get("group", 1))
    pad = _sym_pads(t, node, k, s, d, x.shape[1:])
    parts = t.aligned(t.parts(node, x), node.name)
    if len(parts) > 1 and g != 1:
        t.refuse(node, "a grouped convolution of a Concat is not supported")
    B = np.zeros(W.shape[0]) if B is None else B
    names, c0 = [], 0
    for i, p in enumerate(parts):
        w = W if len(parts) == 1 else W[:, c0:c0 + p.shape[0]]
        c0 += p.shape[0]
        names.append(t.b.add("conv", node.name, p.srcs, weight=w * p.scale, bias=B if i == 0 else 0 * B,
                             stride=s, padding=pad, dilation=d, groups=g, in_hw=p.shape[1:]))
    shape = (int(W.shape[0]), *_out_hw(x.shape[1:], k, s, pad, d))
    t.set(node, Ref(tuple(names), 1.0, shape, producer=names[0] if len(names) == 1 else None, depth=x.depth))


def _affine(t: Translator, node, x: Ref, W: np.ndarray, bias: np.ndarray):
    if len(x.shape) != 1:
        t.refuse(node, f"input of shape {x.shape}: flatten it first (Flatten)")
    names, c0 = [], 0
    parts = t.aligned(t.parts(node, x), node.name)
    for i, p in enumerate(parts):
        w = W if len(parts) == 1 else W[:, c0:c0 + p.shape[0]]
        c0 += p.shape[0]
        names.append(t.b.add("affine", node.name, p.srcs, weight=w * p.scale, bias=bias if i == 0 else 0 * bias))
    t.set(node, Ref(tuple(names), 1.0, (int(W.shape[0]),), producer=names[0] if len(names) == 1 else None, depth=x.depth))


def gemm(t: Translator, node):
    a = node.attrs
    if a.get("transA", 0):
        t.refuse(node, "transA=1 is not supported")
    x, B = t.ref(node), t.const(node, 1)
    C = t.const(node, 2, required=False)
    W = float(a.get("alpha", 1.0)) * (B if a.get("transB", 0) else B.T)
    bias = np.zeros(W.shape[0]) if C is None else float(a.get("beta", 1.0)) * np.broadcast_to(C, (1, W.shape[0])).reshape(-1)
    _affine(t, node, x, W, bias)


def matmul(t: Translator, node):
    B = t.const(node, 1)
    if B.ndim != 2:
        t.refuse(node, f"a constant right-hand side of rank {B.ndim} is not supported (need a 2-d weight)")
    _affine(t, node, t.ref(node), B.T, np.zeros(B.shape[1]))


def batchnorm(t: Translator, node):
    x = t.ref(node)
    if x.producer is None or not t.single_use(node):
        t.refuse(node, "BatchNormalization is folded into the Conv/Gemm that feeds it only; none feeds it alone here")
    g, beta, mean, var = (t.const(node, i) for i in (1, 2, 3, 4))
    k = g / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    spec = t.b.specs[x.producer]
    spec["weight"] = spec["weight"] * k.reshape(-1, *([1] * (spec["weight"].ndim - 1)))
    spec["bias"] = (spec["bias"] - mean) * k + beta
    t.set(node, x)


def add(t: Translator, node):
    names = node.inputs
    if any(n in t.consts for n in names):
        i = 0 if names[0] in t.refs else 1
        return _add_bias(t, node, t.ref(node, i), t.const(node, 1 - i), i)
    x, y = t.ref(node, 0), t.ref(node, 1)
    if x.parts is not None or y.parts is not None:
        t.refuse(node, "Add of a Concat is not supported")
    if x.shape != y.shape:
        t.refuse(node, f"Add of shapes {x.shape} and {y.shape}: broadcasting is not supported")
    branches = []
    for tag, r in (("a", x), ("b", y)):
        if r.scale != 1.0 or not all(t.b.is_linear(s) for s in r.srcs) or (branches and set(r.srcs) & set(branches[0].srcs)):
            r = Ref((t.b.add("scale", f"{node.name}_{tag}", r.srcs, scale=np.full(r.shape, r.scale)),), 1.0, r.shape, r.nonneg, depth=r.depth)
        branches.append(r)
    a, b = t.aligned(branches, node.name)
    t.set(node, Ref(a.srcs + b.srcs, 1.0, x.shape, x.nonneg and y.nonneg, depth=a.depth))


def _add_bias(t: Translator, node, x: Ref, c: np.ndarray, i: int):
    if x.producer is None or not t.single_use(node, i):
        t.refuse(node, "Add of a constant is folded into the bias of the Conv/Gemm/MatMul that feeds it only; none feeds it alone here")
    spec = t.b.specs[x.producer]
    n_out = spec["bias"].shape[0]
    per = np.broadcast_to(c, (1, *x.shape)).reshape(n_out, -1) if c.size > 1 else np.full((n_out, 1), float(c.reshape(-1)[0]))
    if not np.all(per == per[:, :1]):
        t.refuse(node, f"Add of a constant of shape {c.shape} that varies within a channel is not a bias")
    spec["bias"] = spec["bias"] + per[:, 0]
    t.set(node, x)


# ---- activations ----------------------------------------------------------------------
def _activation(t: Translator, node, ceiling: float | None):
    lam = float(t.lam[node.outputs[0]])
    if ceiling is not None:
        lam = min(lam, ceiling)
    lam_eff = lam * t.ratio

    def one(x: Ref) -> Ref:
        if x.nonneg and ceiling is None:
            return x  # ReLU of a non-negative tensor (spikes, their pools) is the identity
        if ceiling is not None and ceiling >= x.scale and len(x.srcs) == 1 and t.b.kind(x.srcs[0]) == "if":
            return x  # a spike train at rate ≤ 1 never exceeds its scale
        x = t.linear(x, node.name)
        n = t.b.add("if", node.name, x.srcs, r=x.scale / (lam_eff * t.dt), shape=x.shape)
        t.if_scale[n] = lam_eff
        if ceiling is not None:
            t.clip_rate[n] = ceiling / lam_eff
        return Ref((n,), lam_eff, x.shape, nonneg=True, depth=x.depth + 1)

    t.each(node, one)


def relu(t: Translator, node):
    _activation(t, node, None)


def clip(t: Translator, node):
    a = node.attrs
    lo = t.const(node, 1, required=False) if len(node.inputs) > 1 and node.inputs[1] else a.get("min")
    hi = t.const(node, 2, required=False) if len(node.inputs) > 2 and node.inputs[2] else a.get("max")
    if lo is None or float(np.asarray(lo).reshape(-1)[0]) != 0.0:
        t.refuse(node, f"only Clip(0, a) (a ReLU with a ceiling) is supported, got min={None if lo is None else float(np.asarray(lo).reshape(-1)[0])}")
    _activation(t, node, None if hi is None else float(np.asarray(hi).reshape(-1)[0]))


# ---- shape ops ------------------------------------------------------------------------
def _pool(t: Translator, node, x: Ref, k, s, pad, include_pad: bool) -> Ref:
    import torch
    import torch.nn.functional as F

    out = Ref((), x.scale, (x.shape[0], *_out_hw(x.shape[1:], k, s, pad)), x.nonneg, depth=x.depth)
    if pad == (0, 0) or include_pad:
        n = t.b.add("avgpool", node.name, x.srcs, kernel=k, stride=s, padding=pad)
        return out.with_(srcs=(n,))
    n = t.b.add("sumpool", node.name, x.srcs, kernel=k, stride=s, padding=pad)
    ones = torch.ones((1, 1, *x.shape[1:]), dtype=torch.float64)
    count = F.avg_pool2d(ones, k, s, pad, divisor_override=1)[0, 0].numpy()
    sc = t.b.add("scale", node.name + "_count", (n,), scale=np.broadcast_to(1.0 / count, out.shape).copy())
    return out.with_(srcs=(sc,))


def average_pool(t: Translator, node):
    a = node.attrs
    k = tuple(int(v) for v in a["kernel_shape"])
    s = _ints(a.get("strides"), 2, 1)
    x = t.ref(node)
    if len(x.shape) != 3 or len(k) != 2:
        t.refuse(node, "only 2-d average pooling is supported")
    pad = _sym_pads(t, node, k, s, (1, 1), x.shape[1:])
    if a.get("ceil_mode", 0):
        floor_hw = _out_hw(x.shape[1:], k, s, pad)
        ceil_hw = tuple(-(-(h + 2 * p - kk) // ss) + 1 for h, p, kk, ss in zip(x.shape[1:], pad, k, s))
        if floor_hw != ceil_hw:
            t.refuse(node, "ceil_mode=1 changes the output size here; NIR pools round down")
    t.each(node, lambda p: _pool(t, node, p, k, s, pad, bool(a.get("count_include_pad", 0))))


def global_average_pool(t: Translator, node):
    x = t.ref(node)
    if len(x.shape) != 3:
        t.refuse(node, f"input of shape {x.shape}: only (C, H, W) is supported")
    hw = tuple(x.shape[1:])
    t.each(node, lambda p: _pool(t, node, p, hw, hw, (0, 0), True))


def _flatten_ref(t: Translator, node, x: Ref) -> Ref:
    if len(x.shape) == 1:
        return x
    n = t.b.add("flatten", node.name, x.srcs, in_shape=x.shape)
    return x.with_(srcs=(n,), shape=(int(np.prod(x.shape)),), producer=None)


def flatten(t: Translator, node):
    if int(node.attrs.get("axis", 1)) != 1:
        t.refuse(node, f"axis={node.attrs.get('axis')}: only a flatten after the batch axis (axis=1) is supported")
    t.each(node, lambda p: _flatten_ref(t, node, p))


def reshape(t: Translator, node):
    x, shape = t.ref(node), t.const(node, 1).astype(np.int64)
    n = int(np.prod(x.shape))
    ok_batch = (0, -1, 1) if t.m.batch in (1, None) else (0, -1, t.m.batch)
    if not (len(shape) == 2 and shape[0] in ok_batch and shape[1] in (-1, n)):
        t.refuse(node, f"Reshape to {shape.tolist()} is not a flatten to (batch, {n})")
    t.each(node, lambda p: _flatten_ref(t, node, p))


def concat(t: Translator, node):
    refs = [t.ref(node, i) for i in range(len(node.inputs))]
    rank = len(refs[0].shape) + 1
    axis = int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if axis != 1:
        t.refuse(node, f"Concat along axis {axis}: only the channel/feature axis (1) is exact")
    if any(r.shape[1:] != refs[0].shape[1:] for r in refs):
        t.refuse(node, "Concat of inputs whose other dimensions differ")
    t.set(node, _concat(refs))


def identity(t: Translator, node):
    t.set(node, t.ref(node))


def concat_any(t: Translator, node):
    """Concat of data tensors (channel parts) or of shape constants (folded)."""
    if all(i in t.consts for i in node.inputs):
        return fold.concat(t, node)
    concat(t, node)


HANDLERS = {
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batchnorm, "Add": add,
    "Relu": relu, "Clip": clip, "AveragePool": average_pool, "GlobalAveragePool": global_average_pool,
    "Flatten": flatten, "Reshape": reshape, "Concat": concat_any, "Identity": identity,
    "Shape": fold.shape, "Gather": fold.gather, "Unsqueeze": fold.unsqueeze,
}
