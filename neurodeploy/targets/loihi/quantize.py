r"""Quantize a float Graph into a :class:`~.program.LoihiProgram` (Lava fixed-point).

Lava's bit-accurate models (``lava/proc/lif/models.py: AbstractPyLifModelFixed``,
``lava/proc/dense/models.py: PyDenseModelBitAcc``) compute, per step::

    a_in = Σ_dense ((W_mant @ s) << weight_exp)          # Dense sends this one step later
    u    = trunc(u·(4096 − (du+1)) / 4096) + (a_in << 6)  # wrapped to 24 bits
    v    = trunc(v·(4096 − dv) / 4096) + u + (bias_mant << bias_exp)   # clipped to ±(2^23−1)
    s    = v > (vth << 6);  v[s] = 0

NIR's forward-Euler ODEs (docs/semantics.md) map onto it with a per-neuron state scale
``scale_i`` (integer units of v per NIR unit); ``α = dt/τ``:

* CubaLIF / CubaLI: ``u = scale·α_mem·r·I``, so the synaptic weight into neuron i is
  ``scale_i·α_mem·r·α_syn·w_in·W_ij`` (in units of v, i.e. ``<< 6`` of a_in),
  ``du + 1 = round(α_syn·4096)``, ``dv = round(α_mem·4096)``, bias ``scale·α_mem·v_leak``;
* LIF / LI: ``du = 4095`` (current cleared each step), weights ``scale·α·r·W``, bias
  ``scale·α·(r·b + v_leak)`` (b: synaptic bias of an Affine/Conv);
* IF / I: ``dv = 0``, weights ``scale·dt·r·W``, bias ``scale·dt·r·b``.

Spiking populations use ``scale_i = 64·vth/θ_i`` (per-neuron thresholds become per-neuron
scales; reset to 0 is scale-free). ``vth`` is chosen so that the largest incoming weight
fills the 8-bit mantissa at ``weight_exp = 0``; each synapse then takes the smallest
exponent that holds its weights. Non-spiking readouts get ``vth = 2^17 − 1`` and one scale.

Every chain of linear nodes (Affine, Linear, Conv1d/2d, SumPool2d, AvgPool2d, Flatten,
Scale, Delay) between two neuron nodes (or an Input and a neuron node) is folded into one
dense weight matrix per delay; NIR Delay nodes become DelayDense delays (0..the profile's ``max_delay`` steps).
When such a chain is a convolution (Conv1d/Conv2d, SumPool2d/AvgPool2d and Flatten in a
row) and the quantized matrix is exactly the unrolled convolution, the synapse also keeps
the geometry (``Synapse.conv``) so that the Lava lowering can use Lava's ``Conv`` process.
"""

from __future__ import annotations

import math

import nir
import numpy as np
import torch

from ...errors import InputError, UnsupportedError
from ...graph.graph import NEURON_TYPES
from ..ops import build_op
from ...graph.normalize import _pair
from .program import LoihiProgram, Population, Synapse, conv_kernel, conv_taps

DECAY_UNITY = 4096
VTH_MAX = (1 << 17) - 1
BIAS_MANT_MAX = 4095
BIAS_MANT_MIN = -4096
BIAS_EXP = 6  # as lava-dl netx uses for every CUBA neuron (bias_mant << 6)
WEIGHT_EXP_RANGE = (-8, 7)
WMAX = 254  # largest |mantissa| representable in every sign mode

LINEAR = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten, nir.Scale)


# ---------------------------------------------------------------------------------------
# Lava's weight storage (lava/utils/weightutils.py), re-implemented in numpy
def sign_mode(w: np.ndarray) -> str:
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def lava_weights(w: np.ndarray) -> np.ndarray:
    """What PyDenseModelBitAcc does to its weights on the first step (clip to 8 bits in the
    sign mode, drop the LSB in mixed mode). Idempotent on what :func:`quantize_weights`
    returns."""
    w = np.asarray(w).astype(np.int64)
    mode = sign_mode(w)
    if mode == "inhibitory":
        return -np.clip(-w, 0, 255)
    if mode == "excitatory":
        return np.clip(w, 0, 255)
    w = np.clip(w, -256, 255)
    return (w >> 1) << 1


def quantize_weights(w_eff: np.ndarray, exp_range=WEIGHT_EXP_RANGE, fixed_exp: int | None = None):
    """Mantissas and exponent for float weights ``w_eff`` (in a_in units). Returns
    ``(mant, exp, clipped)``."""
    amax = float(np.abs(w_eff).max()) if w_eff.size else 0.0
    if fixed_exp is not None:
        exp = fixed_exp
    elif amax == 0:
        exp = 0
    else:
        exp = int(math.ceil(math.log2(amax / (WMAX + 0.49))))  # rounds to ≤ 254 in every sign mode
        exp = min(max(exp, exp_range[0]), exp_range[1])
    x = w_eff / 2.0**exp
    mixed = w_eff.size and w_eff.min() < 0 < w_eff.max()
    mant = 2 * np.rint(x / 2) if mixed else np.rint(x)
    lo, hi = (-256, 254) if mixed else ((-255, 0) if (w_eff.size and w_eff.max() <= 0) else (0, 255))
    clipped = int(((mant < lo) | (mant > hi)).sum())
    mant = np.clip(mant, lo, hi).astype(np.int64)
    return lava_weights(mant), exp, clipped


# ---------------------------------------------------------------------------------------
def _linear_apply(graph, name, x: torch.Tensor) -> torch.Tensor:
    """Apply the linear part (no bias) of node ``name`` to a batch ``x`` (k, *in_shape)."""
    node = graph.nodes[name]
    if isinstance(node, (nir.Affine, nir.Linear)):
        return x @ torch.as_tensor(np.asarray(node.weight, np.float64)).T
    op = build_op(name, graph, torch.float64, "cpu")
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return op._conv(x, op.weight, None)
    return op(x)


def _bias_of(graph, name, b_in: np.ndarray | None) -> np.ndarray | None:
    """Propagate a constant (bias) through node ``name``."""
    node = graph.nodes[name]
    in_shape = graph.input_shape(name)
    own = None
    if isinstance(node, nir.Affine):
        own = np.asarray(node.bias, np.float64)
    elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
        own = np.broadcast_to(np.asarray(node.bias, np.float64).reshape(-1, *([1] * (len(in_shape) - 1))),
                              graph.shapes[name]).copy()
        if not np.any(own):
            own = None
    out = None
    if b_in is not None:
        out = _linear_apply(graph, name, torch.as_tensor(b_in.reshape(1, *in_shape))).numpy()[0]
    if own is not None:
        out = own if out is None else out + own
    return out


class _Identity:
    """The identity map of ``n`` source elements, viewed in ``shape``: what :func:`_propagate`
    starts from, built as a matrix only when a node needs one (a Linear/Affine applied to it
    is just its weight: no n_src × n_src identity for a wide flattened source)."""

    def __init__(self, n: int, shape):
        self.n, self.shape = n, tuple(int(d) for d in shape)

    def apply(self, graph, name):
        node = graph.nodes[name]
        if isinstance(node, nir.Flatten):
            return _Identity(self.n, graph.shapes[name])
        if isinstance(node, (nir.Affine, nir.Linear)) and self.shape == (self.n,):
            return torch.as_tensor(np.asarray(node.weight, np.float64)).T
        return _linear_apply(graph, name, _dense(self))


def _dense(w):
    return torch.eye(w.n, dtype=torch.float64).reshape(w.n, *w.shape) if isinstance(w, _Identity) else w


def _propagate(graph, src: str, step_of: dict, skip=()):
    """Signals from source ``src`` (an Input or neuron node) through the linear nodes
    (except the successors in ``skip``: convolution chains kept as kernels).

    Returns ``{neuron_or_output: {delay: W (n_src, *shape)}}`` plus the nodes passed."""
    reached: dict[str, dict[int, torch.Tensor]] = {}
    via: dict[str, list[str]] = {}
    frontier = [(src, b) for b in graph.successors(src) if b not in skip]
    if not frontier:
        return reached, via
    n_src = int(np.prod(graph.shapes[src]))
    vals: dict[str, dict[int, torch.Tensor]] = {}
    passed: dict[str, list[str]] = {}
    eye = _Identity(n_src, graph.shapes[src])

    def add(acc: dict, val: dict):
        for k, w in val.items():
            acc[k] = _dense(acc[k]) + _dense(w) if k in acc else w

    # process linear nodes in topological order
    order = {n: i for i, n in enumerate(graph.order)}
    pending = set()
    for _, b in frontier:
        pending.add(b)
    while pending:
        name = min(pending, key=lambda n: order[n])
        pending.discard(name)
        node = graph.nodes[name]
        val: dict[int, torch.Tensor] = {}
        names: list[str] = []
        for p in graph.predecessors(name):
            if p == src:
                add(val, {0: eye})
            elif p in vals:
                add(val, vals[p])
                names += passed[p]
            elif p in pending and not isinstance(graph.nodes[p], NEURON_TYPES + (nir.Input,)):
                raise UnsupportedError(f"node '{name}': cycle through linear nodes without a neuron cannot be mapped to Loihi")
        if isinstance(node, NEURON_TYPES) or isinstance(node, nir.Output):
            add(reached.setdefault(name, {}), {k: _dense(w) for k, w in val.items()})
            via.setdefault(name, [])
            via[name] += [n for n in names if n not in via[name]]
            continue
        if isinstance(node, nir.Delay):
            d = step_of[name].reshape(-1)
            new: dict[int, torch.Tensor] = {}
            for k, w in val.items():
                w = _dense(w)
                wf = w.reshape(n_src, -1)
                for dv in np.unique(d):
                    mask = torch.as_tensor(d == dv, dtype=torch.float64)
                    add(new, {k + int(dv): (wf * mask).reshape(w.shape)})
            val = new
        elif isinstance(node, LINEAR):
            val = {k: w.apply(graph, name) if isinstance(w, _Identity) else _linear_apply(graph, name, w)
                   for k, w in val.items()}
        else:
            raise UnsupportedError(f"node '{name}' ({type(node).__name__}) cannot be mapped to Loihi")
        vals[name] = val
        passed[name] = names + [name]
        for b in graph.successors(name):
            pending.add(b)
    return reached, via


def _bias_into(graph, dst: str) -> tuple[np.ndarray | None, list[str]]:
    """Constant input reaching neuron ``dst`` from Affine/Conv biases upstream (through
    linear nodes only)."""
    memo: dict[str, np.ndarray | None] = {}

    def const(name):
        if name in memo:
            return memo[name]
        node = graph.nodes[name]
        if isinstance(node, NEURON_TYPES + (nir.Input,)):
            return None
        memo[name] = None  # cycle guard
        acc = None
        for p in graph.predecessors(name):
            c = const(p)
            if c is not None:
                acc = c if acc is None else acc + c
        out = acc if isinstance(node, nir.Delay) else _bias_of(graph, name, acc)
        memo[name] = out
        return out

    total = None
    for p in graph.predecessors(dst):
        c = const(p)
        if c is not None:
            total = c if total is None else total + c
    return (None if total is None else total.reshape(-1)), [k for k, v in memo.items() if v is not None]


LAVA_CONV_MAX = 127  # Lava's Conv stores kernel size, stride, padding, dilation, groups as int8


def _axis_params(graph, name):
    """Per spatial axis (h, w): (kernel, stride, padding, dilation) of a Conv/Pool node, the
    channel connectivity ("conv", groups) or ("depthwise", None), and the number of spatial
    dims (1 or 2); None when Lava's Conv cannot express it (asymmetric 'same' padding)."""
    node = graph.nodes[name]
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        ks = tuple(int(k) for k in np.asarray(node.weight).shape[2:])
        st, dl = _pair(node.stride, nd), _pair(node.dilation, nd)
        pad = node.padding
        if isinstance(pad, str):
            if pad == "valid":
                pd = (0,) * nd
            else:  # 'same': torch pads total d·(k−1), the odd one on the right
                tot = [d * (k - 1) for k, d in zip(ks, dl)]
                if any(t % 2 for t in tot):
                    return None
                pd = tuple(t // 2 for t in tot)
        else:
            pd = _pair(pad, nd)
        axes = list(zip(ks, st, pd, dl))
        if nd == 1:
            axes = [(1, 1, 0, 1)] + axes
        return axes, ("conv", int(node.groups)), nd
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        ks, st, pd = (_pair(v, 2) for v in (node.kernel_size, node.stride, node.padding))
        return [(k, s_, p, 1) for k, s_, p in zip(ks, st, pd)], ("depthwise", None), 2
    return None


def _conv_geometry(graph, src: str, dst: str, via: list[str]) -> dict | None:
    """The geometry of one Lava ``Conv`` equal to the chain ``src → via → dst`` when it is a
    simple path of Conv1d/Conv2d/SumPool2d/AvgPool2d nodes, optionally followed by Flatten
    nodes (a reshape of the CHW order). The composition of several layers is a candidate:
    :func:`~.program.conv_kernel` decides whether the quantized matrix is really that
    convolution."""
    if not via:
        return None
    path = [src, *via]
    for a, b in zip(path, path[1:]):
        if graph.predecessors(b) != [a]:
            return None
    if via[-1] not in graph.predecessors(dst):
        return None
    core = list(via)
    while core and isinstance(graph.nodes[core[-1]], nir.Flatten):
        core.pop()
    if not core or any(isinstance(graph.nodes[n], nir.Flatten) for n in core):
        return None
    # per axis, input position of output o, tap t: S·o − P + offs[t]
    S, P, offs = [1, 1], [0, 0], [[0], [0]]
    kinds, dims = [], set()
    for name in core:
        prm = _axis_params(graph, name)
        if prm is None:
            return None
        axes, kind, nd = prm
        kinds.append(kind)
        dims.add(nd)
        for a, (k, s_, p, d) in enumerate(axes):
            offs[a] = sorted({S[a] * d * j + o for j in range(k) for o in offs[a]})
            P[a] = S[a] * p + P[a]
            S[a] = S[a] * s_
    if len(dims) != 1:
        return None
    in_shape = tuple(int(v) for v in graph.input_shape(core[0]))
    out_shape = tuple(int(v) for v in graph.shapes[core[-1]])
    if dims == {1}:
        if len(in_shape) != 2 or len(out_shape) != 2:
            return None
        in_shape, out_shape = (in_shape[0], 1, in_shape[1]), (out_shape[0], 1, out_shape[1])
    if len(in_shape) != 3 or len(out_shape) != 3:
        return None
    if int(np.prod(in_shape)) != int(np.prod(graph.shapes[src])) or int(np.prod(out_shape)) != int(np.prod(graph.shapes[dst])):
        return None
    kernel, dil = [], []
    for a in range(2):
        nz = [o for o in offs[a] if o]
        d = math.gcd(*nz) if nz else 1
        dil.append(d)
        kernel.append(offs[a][-1] // d + 1)
    convs = [k for k in kinds if k[0] == "conv"]
    groups = in_shape[0] if not convs else (convs[0][1] if len(convs) == 1 else 1)
    if in_shape[0] % groups or out_shape[0] % groups:
        return None
    if not convs and in_shape[0] != out_shape[0]:
        return None
    for a, n_out in ((0, out_shape[1]), (1, out_shape[2])):  # Lava's output_shape formula
        if (in_shape[1 + a] + 2 * P[a] - dil[a] * (kernel[a] - 1) - 1) // S[a] + 1 != n_out:
            return None
    if max(*kernel, *S, *P, *dil, groups) > LAVA_CONV_MAX:
        return None
    return {"in_shape": list(in_shape), "out_shape": list(out_shape), "kernel": kernel, "stride": list(S),
            "padding": list(P), "dilation": dil, "groups": int(groups)}


CONV_CHAIN = (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten)


def _same_map(graph, via: list[str], geom: dict, kern: np.ndarray, seed: int = 0) -> bool:
    """Whether the chain ``via`` (with its own padding) equals the convolution ``kern`` /
    ``geom`` on the whole input: both are linear, so they agree on random inputs (float64,
    to rounding) only if they are the same map; padding of a later layer (zeros where the
    composite would read the earlier layers' values) or a pooling that drops a border
    row shows up as a difference of the order of a weight."""
    import torch.nn.functional as F

    x = torch.as_tensor(np.random.default_rng(seed).standard_normal((2, *graph.input_shape(via[0]))))
    y = x
    for name in via:
        y = _linear_apply(graph, name, y)
    C, H, W = geom["in_shape"]
    z = F.conv2d(x.reshape(2, C, H, W), torch.as_tensor(kern, dtype=torch.float64), None,
                 stride=tuple(geom["stride"]), padding=tuple(geom["padding"]), dilation=tuple(geom["dilation"]),
                 groups=int(geom["groups"]))
    y, z = y.reshape(2, -1), z.reshape(2, -1)
    scale = float(np.abs(kern).sum(axis=(1, 2, 3)).max(initial=0.0)) * float(x.abs().max())
    if y.shape != z.shape:
        return False
    return y.numel() == 0 or float((y - z).abs().max()) <= 1e-9 * max(scale, 1e-300)


def _chain_kernel(graph, core: list[str], geom: dict) -> np.ndarray | None:
    """The float kernel (C_out, C_in/g, kh, kw) of the chain ``core`` (Conv/Pool nodes) with
    composite geometry ``geom``: the chain applied (without padding) to every impulse on one
    receptive field. None when it is not one kernel of that geometry."""
    import torch.nn.functional as F

    C, Co, g = geom["in_shape"][0], geom["out_shape"][0], int(geom["groups"])
    (kh, kw), (dh, dw) = geom["kernel"], geom["dilation"]
    R = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    one_d = isinstance(graph.nodes[core[0]], nir.Conv1d)
    n = C * R[0] * R[1]
    x = torch.eye(n, dtype=torch.float64).reshape(n, C, *((R[1],) if one_d else R))
    for name in core:
        node = graph.nodes[name]
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            nd = 1 if one_d else 2
            fn = F.conv1d if one_d else F.conv2d
            x = fn(x, torch.as_tensor(np.asarray(node.weight, np.float64)), None, stride=_pair(node.stride, nd),
                   dilation=_pair(node.dilation, nd), groups=int(node.groups))
        else:
            x = F.avg_pool2d(x, _pair(node.kernel_size, 2), _pair(node.stride, 2),
                             divisor_override=1 if isinstance(node, nir.SumPool2d) else None)
    if x.shape[1] != Co or int(np.prod(x.shape[2:])) != 1:
        return None
    full = x.reshape(C, R[0], R[1], Co).permute(3, 0, 1, 2).numpy()  # (Co, C, Rh, Rw)
    k = full[:, :, ::dh, ::dw]
    cgi, cgo = C // g, Co // g
    grp = np.arange(Co)[:, None] // cgo * cgi + np.arange(cgi)[None, :]  # (Co, cgi) input channels
    kern = np.take_along_axis(k, grp[:, :, None, None], 1)
    rebuilt = np.zeros_like(full)
    rebuilt[:, :, ::dh, ::dw][np.arange(Co)[:, None], grp] = kern
    return kern if np.array_equal(rebuilt, full) else None


def _kernel_chains(graph, src: str) -> dict[str, tuple[str, list[str], dict, np.ndarray]]:
    """Convolution chains out of ``src`` kept as kernels: {first node: (dst neuron, via,
    geometry, float kernel)} for every successor that starts a simple path of Conv/Pool
    nodes (then Flatten nodes) into one neuron node that is exactly one convolution: the
    kernel is the chain's response on one receptive field, checked against the chain on
    the whole input (:func:`_same_map`); any other chain is folded into a matrix."""
    out = {}
    for b in graph.successors(src):
        via, n = [], b
        while isinstance(graph.nodes[n], CONV_CHAIN) and len(graph.successors(n)) == 1:
            via.append(n)
            n = graph.successors(n)[0]
        if not via or not isinstance(graph.nodes[n], NEURON_TYPES) or (src, b) in graph.delayed:
            continue
        core = [m for m in via if not isinstance(graph.nodes[m], nir.Flatten)]
        geom = _conv_geometry(graph, src, n, via) if core else None
        kern = _chain_kernel(graph, core, geom) if geom is not None else None
        if kern is not None and _same_map(graph, via, geom, kern):
            out[b] = (n, via, geom, kern)
    return out


def _per_channel(v: np.ndarray, channels: int) -> np.ndarray | None:
    """``v`` (per neuron, CHW order) as one value per channel, or None if it varies within one."""
    m = np.asarray(v, np.float64).reshape(channels, -1)
    return m[:, 0].copy() if np.all(m == m[:, :1]) else None


def _unroll(kern: np.ndarray, geom: dict) -> np.ndarray:
    """The (n_dst, n_src) matrix of kernel ``kern`` with geometry ``geom``."""
    dst, src, tap, _ = conv_taps(geom)
    m = np.zeros((int(np.prod(geom["out_shape"])), int(np.prod(geom["in_shape"]))))
    m[dst, src] = kern.reshape(-1)[tap]
    return m


def _one(values: np.ndarray, name: str, what: str, rounding) -> tuple[int, float]:
    ints = np.unique(rounding(values))
    if ints.size > 1:
        raise UnsupportedError(
            f"node '{name}': {what} differs between neurons ({np.unique(values)[:4].tolist()}...); "
            "Lava's LIF has one decay per population"
        )
    return int(ints[0]), float(values.reshape(-1)[0])


def _neuron_model(graph, name: str):
    """Per-neuron gains and Lava decays of neuron node ``name``."""
    node = graph.nodes[name]
    dt = graph.dt
    n = int(np.prod(graph.shapes[name]))
    f = lambda a: np.broadcast_to(np.asarray(a, np.float64), graph.shapes[name]).reshape(-1)  # noqa: E731
    kind = type(node).__name__
    rep = {}
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        a_syn, a_mem = dt / f(node.tau_syn), dt / f(node.tau_mem)
        du_eff, du_f = _one(np.clip(np.rint(a_syn * DECAY_UNITY), 1, DECAY_UNITY), name, "tau_syn", np.rint)
        dv, dv_f = _one(np.clip(np.rint(a_mem * DECAY_UNITY), 0, DECAY_UNITY - 1), name, "tau_mem", np.rint)
        du = du_eff - 1
        rep["du_error"] = float(np.abs((du + 1) / DECAY_UNITY - a_syn).max())
        rep["dv_error"] = float(np.abs(dv / DECAY_UNITY - a_mem).max())
        du_frac, dv_frac = float(a_syn[0]), float(a_mem[0])
        gain = a_mem * f(node.r) * a_syn * f(node.w_in)
        # a synaptic bias is expressible only when u is cleared every step (u = input)
        bias_gain = a_mem * f(node.r) * f(node.w_in) if du == DECAY_UNITY - 1 else None
        leak = a_mem * f(node.v_leak)
    elif isinstance(node, (nir.LIF, nir.LI)):
        a = dt / f(node.tau)
        dv, _ = _one(np.clip(np.rint(a * DECAY_UNITY), 0, DECAY_UNITY - 1), name, "tau", np.rint)
        du = DECAY_UNITY - 1
        rep["dv_error"] = float(np.abs(dv / DECAY_UNITY - a).max())
        du_frac, dv_frac = 1.0, float(a[0])
        gain = a * f(node.r)
        bias_gain = gain
        leak = a * f(node.v_leak)
    else:  # IF, I
        dv, du = 0, DECAY_UNITY - 1
        du_frac, dv_frac = 1.0, 0.0
        gain = dt * f(node.r)
        bias_gain = gain
        leak = np.zeros(n)
    if dv_frac > 1.0:
        rep["warning"] = f"dt/tau_mem = {dv_frac:.3g} > 1 (unstable Euler step); clamped to dv = 4095"
    spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
    theta = f(node.v_threshold) if spiking else None
    if spiking:
        if np.any(f(node.v_reset) != 0):
            raise UnsupportedError(f"node '{name}': v_reset = {float(f(node.v_reset)[0])} ≠ 0; Loihi's LIF resets to 0")
        if np.any(theta <= 0):
            raise UnsupportedError(f"node '{name}': v_threshold ≤ 0; Loihi's threshold is unsigned")
    return dict(kind=kind, du=int(du), dv=int(dv), du_f=du_frac, dv_f=dv_frac, gain=gain, bias_gain=bias_gain,
                leak=leak, spiking=spiking, theta=theta, report=rep)


def _delay_steps(graph, max_delay: int | None, profile: str) -> dict[str, np.ndarray]:
    """Steps of every Delay node, checked against the profile's ``max_delay``."""
    step_of = {}
    for n in graph.order:
        if isinstance(graph.nodes[n], nir.Delay):
            d = np.rint(np.asarray(graph.nodes[n].delay, np.float64) / graph.dt).astype(np.int64)
            if max_delay is None:
                raise UnsupportedError(f"node '{n}' (Delay): hardware profile '{profile}' has no max_delay, "
                                       "so synaptic delays cannot be checked")
            if d.max(initial=0) > max_delay:
                raise UnsupportedError(f"node '{n}' (Delay): {int(d.max())} steps > {max_delay}, the maximum "
                                       f"synaptic delay of hardware profile '{profile}' (max_delay)")
            step_of[n] = d
    return step_of


def _rows(w: np.ndarray, per_neuron: np.ndarray) -> np.ndarray:
    """``w`` with each destination neuron's row times ``per_neuron``: a matrix (n_dst, n_src)
    row by row, a kernel (C_out, …) channel by channel (the values are one per channel)."""
    if w.ndim == 4:
        return w * _per_channel(per_neuron, w.shape[0])[:, None, None, None]
    return w * np.asarray(per_neuron)[:, None]


def _synapse_report(src, mant, e, clipped, w_a, dl, via, convolution: bool) -> dict:
    """The quantization report of one synapse (a kernel's entries are its taps)."""
    err = mant * 2.0**e - w_a
    rms_w = float(np.sqrt(np.mean(w_a**2))) if w_a.size else 0.0
    return {
        "source": src, "weight_exp": int(e), "sign_mode": sign_mode(mant), "shape": list(mant.shape),
        "nonzero": int((mant != 0).sum()), "clipped_weights": clipped,
        "rms_weight_error": float(np.sqrt(np.mean(err**2))) if err.size else 0.0,
        "relative_rms_weight_error": float(np.sqrt(np.mean(err**2)) / rms_w) if rms_w > 0 else 0.0,
        "max_delay": int(dl.max()) if dl is not None and dl.size else 0, "folded_nodes": list(via),
        "convolution": convolution,
    }


# ---------------------------------------------------------------------------------------
# lags, loops and biases (issue 11)
BIAS_NEURON = "loihi_bias"  # the always-spiking neuron whose synapses carry biases into u
BIAS_PART_MAX = 255  # |mantissa| of one bias synapse (excitatory or inhibitory: 8 bits)
BIAS_SYN_MAX = BIAS_PART_MAX * (1 << WEIGHT_EXP_RANGE[1]) + (1 << WEIGHT_EXP_RANGE[1]) - 1  # hi + lo, a_in units


def _forward(graph, src: str, dst: str) -> bool:
    """A forward edge (NIR: the same step); else a back edge (NIR: the previous step)."""
    return src in graph.inputs or graph.order.index(src) < graph.order.index(dst)


def _loop_path(graph, incoming: dict, dst: str, src: str) -> list[str]:
    """The loop closed by the back edge ``src → dst``: ``[dst, …, src, dst]`` along forward
    synapses (just ``[src, dst]`` when ``src`` is not reachable from ``dst``)."""
    succ: dict[str, list[str]] = {}
    for d, ins in incoming.items():
        for s_, *_ in ins:
            if s_ in incoming and _forward(graph, s_, d):
                succ.setdefault(s_, []).append(d)
    prev, todo = {dst: None}, [dst]
    while todo and src not in prev:
        a = todo.pop(0)
        for b in succ.get(a, []):
            if b not in prev:
                prev[b], _ = a, todo.append(b)
    if src not in prev:
        return [src, dst]
    path, k = [], src
    while k is not None:
        path.append(k)
        k = prev[k]
    return path[::-1] + [dst]


def _equalize_lags(graph, neurons, incoming, max_delay, profile, allow_loop_delay):
    """Every path into a neuron node lags equally: lag(dst) = max over forward synapses of
    lag(src) + 1 (inputs 0, a node without forward inputs 1); each synapse's delays grow by
    ``lag(dst) − lag(src) − 1`` (forward) or ``lag(dst) − lag(src)`` (back edge, NIR's one
    step). A back edge that would need a negative delay closes a loop slower on Loihi than
    in NIR: UnsupportedError, unless ``allow_loop_delay`` (then reported). Rewrites the
    delay buckets of ``incoming`` in place (a kernel needing a delay is unrolled);
    returns ({node: lag}, {(dst, j): added delay}, [loops])."""
    lag = {i: 0 for i in graph.inputs}
    for dst in neurons:
        lag[dst] = max((lag[s_] + 1 for s_, *_ in incoming[dst] if _forward(graph, s_, dst)), default=1)
    pad, loops = {}, []
    for dst in neurons:
        for j, (src, mats, via, geom) in enumerate(incoming[dst]):
            need = lag[dst] - lag[src] - (1 if _forward(graph, src, dst) else 0)
            if need < 0:
                path = _loop_path(graph, incoming, dst, src)
                loop = {"loop": path, "synapse": via[-1] if via else f"{src}->{dst}", "extra_delay": -need,
                        "loihi_delay": 1 - need, "nir_delay": 1}
                if not allow_loop_delay:
                    raise UnsupportedError(
                        f"loop {' → '.join(path)}: on Loihi every synapse adds a step, so a spike takes {1 - need} "
                        f"steps around it instead of NIR's 1 ({-need} extra step(s), back edge '{loop['synapse']}'); "
                        "compile with allow_loop_delay=True (neurodeploy compile --allow-loop-delay) to accept the "
                        "extra delay")
                loops.append(loop)
                continue
            if need == 0:
                continue
            if geom is not None:
                mats, geom = {0: _unroll(mats[0], geom)}, None
            top = max(mats) + need
            if max_delay is None or top > max_delay:
                lim = f"> {max_delay}, the maximum synaptic delay of" if max_delay is not None else "but"
                raise UnsupportedError(
                    f"node '{dst}': its input from '{src}' needs a synaptic delay of {top} steps so that every path "
                    f"into '{dst}' lags equally ({lag[dst]} steps) {lim} hardware profile '{profile}'"
                    + (" (max_delay)" if max_delay is not None else " has no max_delay"))
            incoming[dst][j] = (src, {k + need: w for k, w in mats.items()}, via, geom)
            pad[(dst, j)] = need
    return lag, pad, loops


def _bias_parts(m: dict, bias_in, route: str) -> tuple[np.ndarray, np.ndarray]:
    """(v part, u part) of a population's constant input, NIR-normalized: the v part is
    Lava's ``bias_mant`` (on from step 0), the u part goes through the bias neuron's
    synapses (from the population's lag on). A synaptic bias into a decaying current
    (CubaLIF/CubaLI, tau_syn > dt) can only enter u; with ``route="synapse"`` every bias
    of a population whose u is cleared each step does too (exact after the lag)."""
    v, u = m["leak"].copy(), np.zeros_like(m["leak"])
    if bias_in is not None and np.any(bias_in != 0):
        if m["bias_gain"] is None or route == "synapse":
            u = m["gain"] * bias_in
        else:
            v = v + m["bias_gain"] * bias_in
    if route == "synapse" and m["du"] == DECAY_UNITY - 1:
        u, v = u + v, np.zeros_like(v)
    return v, u


def _bias_split(B: np.ndarray, zero_exp: bool) -> tuple[list[tuple[np.ndarray, int]], int]:
    """Integer biases ``B`` (a_in units) as bias-neuron synapses that sum to them exactly:
    per sign (excitatory / inhibitory, so every 8-bit mantissa value is usable) a coarse
    part ``hi << e`` and the remainder at exponent 0. Returns ([(mantissas, exp)], clipped)."""
    parts, clipped = [], 0
    for sign in (1, -1):
        P = np.maximum(sign * B, 0)
        if not P.any():
            continue
        top = int(P.max())
        e = 0 if zero_exp else min(WEIGHT_EXP_RANGE[1], max(0, math.ceil(math.log2((top + 1) / (BIAS_PART_MAX + 1)))))
        hi = np.minimum(P >> e, BIAS_PART_MAX)
        lo = P - (hi << e)
        clipped += int((lo > BIAS_PART_MAX).sum())
        parts.append((sign * hi, e))
        if lo.any():
            parts.append((sign * np.minimum(lo, BIAS_PART_MAX), 0))
    return parts, clipped


def _bias_synapses(dst: str, u_bias, scale, start: int, nodes, zero_exp: bool, max_delay, profile):
    """The synapses from the bias neuron into ``dst`` (its u part ``u_bias``, NIR-normalized)
    and their report. The bias neuron spikes at every step from step 0 and a synapse
    delivers one step later, so a delay of ``start − 1`` makes the constant reach u at
    steps start, start+1, … — exactly the steps at which ``dst`` runs NIR's steps 0, 1, …"""
    n = u_bias.shape[0]
    B = np.rint(scale * u_bias / 64.0).astype(np.int64)
    parts, clipped = _bias_split(B, zero_exp)
    d = start - 1
    if parts and d > 0 and (max_delay is None or d > max_delay):
        raise UnsupportedError(f"node '{dst}': its bias must start at step {start} (its lag), a synaptic delay of {d} "
                               f"steps from the bias neuron, beyond hardware profile '{profile}''s max_delay ({max_delay})")
    syns, rep = [], {}
    for k, (mant, e) in enumerate(parts):
        w_f = (scale * u_bias)[:, None] if k == 0 else np.zeros((n, 1))
        name = f"{dst}.bias" if k == 0 else f"{dst}.bias#{k}"
        syns.append(Synapse(name=name, src=BIAS_NEURON, dst=dst, weights=mant[:, None].astype(np.int64),
                            weight_exp=int(e), delays=np.full((n, 1), d, np.int64) if d > 0 else None,
                            weights_f=w_f, nodes=tuple(nodes), lag_delay=max(d, 0)))
        rep[name] = {"weight_exp": int(e), "sign_mode": sign_mode(mant), "nonzero": int((mant != 0).sum())}
    err = sum((mt.astype(np.float64) * 2.0**e for mt, e in parts), np.zeros(n)) - scale * u_bias / 64.0
    return syns, {"route": "bias neuron → u", "start_step": int(start), "delay": max(d, 0), "synapses": rep,
                  "clipped": clipped, "rms_error": float(np.sqrt(np.mean(err**2)) * 64.0 / float(np.mean(scale)))
                  if n else 0.0}


def _sign_parts(w_v: np.ndarray, weight_sign: str, fixed_exp: int | None):
    """([(name suffix, weights)], exponent to use or None): the matrix itself, or with
    ``weight_sign="split"`` a mixed-sign matrix as an excitatory and an inhibitory synapse at
    the exponent the mixed matrix would get (every 8-bit mantissa value usable where Lava's
    mixed sign mode keeps only even ones: one more bit, the same flooring of the sums and the
    same nonzero synapses)."""
    if weight_sign != "split" or sign_mode(w_v) != "mixed":
        return [("", w_v)], fixed_exp
    e = quantize_weights(w_v / 64.0, fixed_exp=fixed_exp)[1]
    return [(":exc", np.maximum(w_v, 0.0)), (":inh", np.minimum(w_v, 0.0))], e


def _bias_neuron() -> Population:
    """One neuron that spikes at every step: v = 0 + bias 1 > vth 0, reset to 0."""
    return Population(name=BIAS_NEURON, kind="bias", shape=(1,), spiking=True, du=DECAY_UNITY - 1, dv=0, vth=0,
                      bias_mant=np.ones(1, np.int64), bias_exp=0, scale=np.ones(1), du_f=1.0, dv_f=0.0,
                      bias_f=np.ones(1), vth_f=0.0, role="bias")


def _early_bias(pops, lag) -> dict[str, int]:
    """{population: steps} whose Lava bias (``bias_mant``, on from step 0) leads the layer's
    lagged input: the NIR reference starts both together. Said as a warning, never silently
    (``bias="synapse"`` starts a bias that a current can carry at the lag instead)."""
    early = {p.name: int(lag[p.name]) for p in pops
             if p.name in lag and int(lag[p.name]) > 0 and np.any(np.asarray(p.bias_mant) != 0)}
    if early:
        import warnings

        where = ", ".join(f"'{n}' ({k} step(s))" for n, k in early.items())
        warnings.warn(f"loihi: Lava's bias acts from step 0, ahead of the lagged input of {where}: the first steps "
                      "differ from the NIR reference; bias='synapse' (--compile-option bias=synapse) starts the bias "
                      "at the lag where a synaptic current can carry it", stacklevel=3)
    return early


def quantize(graph, *, weight_exp: str = "auto", vth: int | None = None, vth_max: int = 1 << 13,
             max_delay: int | None = None, profile: str = "", bias: str = "auto",
             allow_loop_delay: bool = False, weight_sign: str = "auto") -> LoihiProgram:
    """Quantize ``graph`` for Loihi 2. ``weight_exp``: "auto" (per-synapse exponent for the
    most precision) or "zero" (exponent 0 everywhere, as lava-dl netx files need).
    ``max_delay``: the hardware profile's (``profile``) longest synaptic delay in steps
    (needed only when the graph has Delay nodes).
    ``vth``: force the threshold mantissa of every spiking population (otherwise a graph
    metadata entry ``loihi_vth:<node>``, as the netx frontend writes, fixes it per node).
    ``bias``: "auto" (a bias into a decaying current through the bias neuron, every other
    one as Lava's v bias) or "synapse" (every bias the current can carry through the bias
    neuron: exact after the lag). ``allow_loop_delay``: accept loops that take more steps
    on Loihi than in NIR (reported in ``report["loops"]``) instead of refusing them.
    ``weight_sign``: "mixed" (one synapse per matrix, Lava's mixed sign mode: even
    mantissas), "split" (a mixed-sign matrix as excitatory + inhibitory synapses: one
    more bit of weight precision, the same nonzero synapses; convolution kernels stay mixed)
    or "auto" (default: "split", except "mixed" with ``weight_exp="zero"``, the netx-compatible
    lowering, since a netx layer holds one matrix)."""
    if weight_exp not in ("auto", "zero"):
        raise UnsupportedError(f"weight_exp must be 'auto' or 'zero', got {weight_exp!r}")
    if bias not in ("auto", "synapse"):
        raise InputError(f"bias must be 'auto' or 'synapse', got {bias!r}")
    if weight_sign not in ("auto", "mixed", "split"):
        raise InputError(f"weight_sign must be 'auto', 'mixed' or 'split', got {weight_sign!r}")
    if weight_sign == "auto":
        weight_sign = "mixed" if weight_exp == "zero" else "split"
    neurons = [n for n in graph.order if isinstance(graph.nodes[n], NEURON_TYPES)]
    if graph.reset == "subtract" and any(isinstance(graph.nodes[n], (nir.LIF, nir.CubaLIF, nir.IF)) for n in neurons):
        raise UnsupportedError("reset 'subtract' is not supported: Loihi 2's LIF resets v to 0 (use reset='zero')")
    for n in graph.order:
        node = graph.nodes[n]
        if isinstance(node, nir.Threshold):
            raise UnsupportedError(f"node '{n}' (Threshold): a stateless threshold has no Loihi LIF equivalent")
    step_of = _delay_steps(graph, max_delay, profile)
    # ---- fold linear chains ----------------------------------------------------------
    sources = list(graph.inputs) + neurons
    incoming: dict[str, list] = {n: [] for n in neurons}
    outputs: dict[str, str] = {}
    for src in sources:
        chains = _kernel_chains(graph, src)
        reached, via = _propagate(graph, src, step_of, skip=set(chains))
        for dst, cvia, geom, kern in chains.values():
            incoming[dst].append((src, {0: kern}, cvia, geom))
        for dst, buckets in reached.items():
            if isinstance(graph.nodes[dst], nir.Output):
                if via[dst] or src in graph.inputs:
                    raise UnsupportedError(
                        f"output '{dst}' is fed by {'/'.join(via[dst]) or src}, not by a neuron node: "
                        "Loihi can only output spikes or membrane potentials of neurons"
                    )
                outputs[dst] = src
                continue
            n_dst = int(np.prod(graph.shapes[dst]))
            n_src = int(np.prod(graph.shapes[src]))
            mats = {k: w.reshape(n_src, n_dst).T.numpy() for k, w in sorted(buckets.items())}
            incoming[dst].append((src, mats, via[dst], None))
    model = {n: _neuron_model(graph, n) for n in neurons}
    for dst in neurons:  # a kernel needs one gain (and threshold) per output channel, else unroll
        m = model[dst]
        for i, (src, mats, via, geom) in enumerate(incoming[dst]):
            if geom is not None and (_per_channel(m["gain"], geom["out_shape"][0]) is None or (
                    m["spiking"] and _per_channel(m["theta"], geom["out_shape"][0]) is None)):
                incoming[dst][i] = (src, {0: _unroll(mats[0], geom)}, via, None)
    lag, pad, loops = _equalize_lags(graph, neurons, incoming, max_delay, profile, allow_loop_delay)
    # ---- per population: scale, vth, bias, synapses ----------------------------------
    pops, syns, report = [], [], {"layers": {}, "options": {"weight_exp": weight_exp, "bias": bias,
                                                             "weight_sign": weight_sign,
                                                             "allow_loop_delay": bool(allow_loop_delay)}}
    for dst in neurons:
        m = model[dst]
        n = int(np.prod(graph.shapes[dst]))
        bias_in, bias_nodes = _bias_into(graph, dst)
        bias_rel, u_bias = _bias_parts(m, bias_in, bias)
        # float weights/bias in NIR-normalized units (before the state scale)
        rel_w = [{k: _rows(w, m["gain"]) for k, w in mats.items()} for _, mats, _, _ in incoming[dst]]
        wmax = max((float(np.abs(w).max()) for d in rel_w for w in d.values() if w.size), default=0.0)
        if m["spiking"]:
            inv_theta = 1.0 / m["theta"]
            wmax_t = max((float(np.abs(_rows(w, inv_theta)).max()) for d in rel_w for w in d.values()
                          if w.size), default=0.0)
            bmax_t = float(np.abs(bias_rel * inv_theta).max()) if n else 0.0
            hint = graph.metadata.get(f"loihi_vth:{dst}")  # set by the netx frontend
            if vth is not None:
                v_th = int(vth)
            elif hint is not None:
                v_th = int(hint)
            else:
                cands = [vth_max]
                if wmax_t > 0:
                    cands.append(WMAX / wmax_t)
                if bmax_t > 0:
                    cands.append(BIAS_MANT_MAX / bmax_t)
                if np.any(u_bias):
                    cands.append(BIAS_SYN_MAX / float(np.abs(u_bias * inv_theta).max()))
                v_th = int(max(1, min(VTH_MAX, math.floor(min(cands) * (1 + 1e-6)))))
            scale = 64.0 * v_th * inv_theta  # v_int per NIR unit
        else:
            v_th = VTH_MAX
            cands = [1e30]
            if wmax > 0:
                cands.append(WMAX * 64.0 / wmax)
            bmax = float(np.abs(bias_rel).max()) if n else 0.0
            if bmax > 0:
                cands.append(BIAS_MANT_MAX * 64.0 / bmax)
            if np.any(u_bias):
                cands.append(BIAS_SYN_MAX * 64.0 / float(np.abs(u_bias).max()))
            s = max(min(cands), 1e-12)
            scale = np.full(n, s)
        bias_v = scale * bias_rel  # v_int units
        bias_mant_f = bias_v / 2.0**BIAS_EXP
        bias_mant = np.clip(np.rint(bias_mant_f), BIAS_MANT_MIN, BIAS_MANT_MAX).astype(np.int64)
        bias_clipped = int(((bias_mant_f < BIAS_MANT_MIN - 0.5) | (bias_mant_f > BIAS_MANT_MAX + 0.5)).sum())
        pops.append(Population(
            name=dst, kind=m["kind"], shape=tuple(graph.shapes[dst]), spiking=m["spiking"], du=m["du"], dv=m["dv"],
            vth=int(v_th), bias_mant=bias_mant, bias_exp=BIAS_EXP, scale=scale, du_f=m["du_f"], dv_f=m["dv_f"],
            bias_f=bias_v, vth_f=64.0 * v_th,
        ))
        layer = {"kind": m["kind"], "neurons": n, "du": m["du"], "dv": m["dv"], "vth": int(v_th),
                 "spiking": m["spiking"], "bias_exp": BIAS_EXP, "bias_clipped": bias_clipped,
                 "bias_rms_error": float(np.sqrt(np.mean((bias_mant * 2.0**BIAS_EXP - bias_v) ** 2)) / float(np.mean(scale)))
                 if n else 0.0, "synapses": {}}
        layer.update(m["report"])
        for j, (src, mats, via, geom) in enumerate(incoming[dst]):
            if geom is not None:  # a convolution chain: quantize and keep its kernel
                w_v = _rows(rel_w[j][0], scale)
                mant, e, clipped = quantize_weights(w_v / 64.0, fixed_exp=0 if weight_exp == "zero" else None)
                syns.append(Synapse(name=via[-1], src=src, dst=dst, weights=mant, weight_exp=int(e), weights_f=w_v,
                                    nodes=tuple(via), conv=geom, lag_delay=pad.get((dst, j), 0)))
                layer["synapses"][via[-1]] = _synapse_report(src, mant, e, clipped, w_v / 64.0, None, via, True)
                continue
            # split (dst, src) pairs that carry weight in several delay buckets into
            # several synapses (Lava's DelayDense has one delay per synapse)
            used = np.zeros((n, int(np.prod(graph.shapes[src]))), dtype=np.int64)
            groups: list[tuple[np.ndarray, np.ndarray]] = []
            for k, w in rel_w[j].items():
                nz = w != 0
                if not nz.any():
                    continue
                level = used * nz
                for g in range(int(level.max()) + 1 if nz.any() else 0):
                    sel = nz & (level == g)
                    if not sel.any():
                        continue
                    while len(groups) <= g:
                        groups.append((np.zeros_like(w), np.zeros(w.shape, np.int64)))
                    groups[g][0][sel] = w[sel]
                    groups[g][1][sel] = k
                used += nz
            if not groups:
                groups = [(np.zeros((n, int(np.prod(graph.shapes[src])))), np.zeros((n, int(np.prod(graph.shapes[src]))), np.int64))]
            base = via[-1] if via else f"{src}->{dst}"
            for gi, (w_rel, dl) in enumerate(groups):
              parts, e_fix = _sign_parts(w_rel * scale[:, None], weight_sign, 0 if weight_exp == "zero" else None)
              for suffix, w_v in parts:  # v_int units  # noqa: E111
                w_a = w_v / 64.0  # a_in units (before << 6)
                mant, e, clipped = quantize_weights(w_a, fixed_exp=e_fix)
                name = (base if gi == 0 else f"{base}#{gi}") + suffix
                has_delay = bool(dl.any())
                geom = None
                if not has_delay and len(groups) == 1 and not suffix:
                    geom = _conv_geometry(graph, src, dst, list(via))
                    if geom is not None and conv_kernel(mant, geom) is None:
                        geom = None  # e.g. per-position thresholds: not one kernel
                syns.append(Synapse(name=name, src=src, dst=dst, weights=mant, weight_exp=int(e),
                                    delays=dl if has_delay else None, weights_f=w_v, nodes=tuple(via), conv=geom,
                                    lag_delay=pad.get((dst, j), 0)))
                layer["synapses"][name] = _synapse_report(src, mant, e, clipped, w_a, dl, via, geom is not None)
        layer["lag"] = int(lag[dst])
        if np.any(u_bias):
            bsyn, layer["bias"] = _bias_synapses(dst, u_bias, scale, lag[dst], bias_nodes, weight_exp == "zero",
                                                 max_delay, profile)
            syns += bsyn
        report["layers"][dst] = layer
    # outputs fed directly by neurons
    for o in graph.outputs:
        if o not in outputs:
            preds = graph.predecessors(o)
            raise UnsupportedError(f"output '{o}' is fed by {', '.join(preds) or 'nothing'}, not by a neuron node")
    if any(s.src == BIAS_NEURON for s in syns):
        if BIAS_NEURON in graph.nodes:
            raise UnsupportedError(f"node '{BIAS_NEURON}': the name of Loihi's bias neuron; rename the node")
        pops.insert(0, _bias_neuron())
    report["lags"] = {k: int(v) for k, v in lag.items()}
    report["early_bias"] = _early_bias(pops, lag)
    report["loops"] = loops
    report["totals"] = {
        "populations": len(pops), "synapses": len(syns), "neurons": int(sum(p.n for p in pops)),
        "clipped_weights": int(sum(s["clipped_weights"] for lay in report["layers"].values() for s in lay["synapses"].values())),
    }
    return LoihiProgram(
        dt=graph.dt, inputs={i: tuple(graph.shapes[i]) for i in graph.inputs}, populations=pops, synapses=syns,
        outputs=outputs, report=report, options={"weight_exp": weight_exp, "vth": vth, "vth_max": vth_max,
                                                 "bias": bias, "allow_loop_delay": bool(allow_loop_delay),
                                                 "weight_sign": weight_sign},
    )
