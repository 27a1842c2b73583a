"""Write (and read) lava-dl's netx HDF5 network format (``.net``) for a LoihiProgram.

Follows the reader ``lava/lib/dl/netx/hdf5.py`` + ``blocks/process.py`` of lava-dl 0.6.0
(whose own ``export_hdf5`` fails with h5py 3.16). The format is a *sequential* stack::

    /layer/0   type "input", shape [n_in] (a dense first layer) or [C, H, W] (a conv one)
    /layer/k   type "dense" | "dense_rec"
               shape [n], weight (n, n_prev) int, [weight_rec (n, n)], [bias (n,) int],
               [delay (n, n_prev) int], neuron/{type "CUBA", iDecay, vDecay, vThMant,
               refDelay, gradedSpike}
    /layer/k   type "conv"
               shape [C', H', W'], weight (C', C/groups, kH, kW) int (torch layout),
               stride, padding, dilation [H, W], groups, [bias (C',) per channel, or
               (W', H', C') per neuron — lava-dl's own layout], neuron/{...}
    /layer/k   type "flatten" (before a dense layer fed by a conv layer: lava-dl flattens
               its (W, H, C) output in (C, H, W) C-order, our flat order)

netx turns a CUBA neuron into ``LIF(du=iDecay−1, dv=vDecay, vth=vThMant, bias_mant=bias,
bias_exp=6)``, a dense layer into ``Dense``/``DelayDense`` with the stored integer weights at
exponent 0 (it rescales them with ``optimize_weight_bits``, which is exact for integers) and a
conv layer into Lava's ``Conv`` with the kernel as stored (flipped and permuted to Lava's
(C', kW, kH, C/g) as :func:`.lava._lava_kernel` does; no exponent, 24-bit output). So a
Program is expressible when it is a chain (each population fed by the previous one,
optionally by itself), every ``weight_exp`` is 0 (compile with ``weight_exp="zero"``), and
``bias_exp`` is 6. A kernel synapse (``Synapse.is_kernel``) is written as a conv layer,
never unrolled; what a netx conv layer cannot hold (delays, a recurrent synapse, an output
that could wrap at 24 bits, a dense source) is refused naming the synapse. Pooling and
flatten are already folded into the synapses by quantize (lava-dl cannot read ``pool``
layers). Readouts (non-spiking) are written as CUBA neurons with ``vThMant = 2^17 − 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ...errors import InputError, UnsupportedError
from ...graph.io import write_atomic
from .program import LoihiProgram, Population, Synapse, conv_kernel
from .quantize import BIAS_EXP, VTH_MAX

CONV_WRAP = 1 << 23  # lava's PyConvModelFixed clamps its output to 24 bits (lava.proc.conv.utils.signed_clamp)


@dataclass
class Layer:
    """One netx layer: a population with its forward (and recurrent) synapse.

    ``kernel``: the conv kernel (C', C/g, kH, kW) of a conv layer, else None; ``shape``: the
    layer's netx shape ((C', H', W') or (n,)); ``flatten``: a flatten layer precedes it."""

    pop: Population
    fwd: Synapse
    rec: Synapse | None
    kernel: np.ndarray | None
    shape: tuple[int, ...]
    flatten: bool = False

    @property
    def type(self) -> str:
        return "conv" if self.kernel is not None else ("dense_rec" if self.rec is not None else "dense")


def chain(program: LoihiProgram) -> list[Layer]:
    """The populations in netx order as :class:`Layer` s, or raise UnsupportedError saying
    which population or synapse netx cannot hold and why."""
    if len(program.inputs) != 1:
        raise UnsupportedError(f"netx: needs exactly one input, the program has {len(program.inputs)}")
    prev = next(iter(program.inputs))
    out: list[Layer] = []
    for p in program.populations:
        _check_population(program, p)
        fwd, rec = _synapses(program, p, prev)
        kernel = _kernel(fwd)
        if kernel is not None:
            _check_conv(program, fwd, rec, out[-1] if out else None)
            shape = tuple(int(v) for v in fwd.conv["out_shape"])
        elif fwd.is_kernel:  # pragma: no cover - a kernel synapse always has its kernel
            raise UnsupportedError(f"netx: synapse '{fwd.name}' is a kernel without conv geometry")
        else:
            shape = (p.n,)
        out.append(Layer(p, fwd, rec, kernel, shape, flatten=bool(out) and out[-1].kernel is not None
                         and kernel is None))
        prev = p.name
    if not out:
        raise UnsupportedError("netx: the program has no neuron population")
    return out


def _check_population(program: LoihiProgram, p: Population) -> None:
    if p.role == "bias":
        fed = sorted({s.dst for s in program.synapses if s.src == p.name})
        raise UnsupportedError(
            f"netx: population(s) {', '.join(fed)} take their bias through Loihi's bias neuron (a synaptic bias "
            "into a decaying CubaLIF/CubaLI current, or compile option bias='synapse'); netx's CUBA layers hold "
            "only a bias into v")
    if p.bias_exp != BIAS_EXP:
        raise UnsupportedError(f"netx: population '{p.name}' has bias_exp {p.bias_exp}; netx uses {BIAS_EXP}")
    if not p.spiking and p is not program.populations[-1]:
        raise UnsupportedError(f"netx: non-spiking population '{p.name}' is not the last layer")
    if int(p.du) + 1 < 1:
        raise UnsupportedError(f"netx: population '{p.name}' has du {p.du}")


def _synapses(program: LoihiProgram, p: Population, prev: str) -> tuple[Synapse, Synapse | None]:
    """(forward synapse from ``prev``, recurrent synapse or None) of a chain population."""
    syns = program.incoming(p.name)
    fwd = [s for s in syns if s.src == prev]
    rec = [s for s in syns if s.src == p.name]
    split = [s.name for s in syns if s.name.endswith((":exc", ":inh"))]
    if split:
        raise UnsupportedError(
            f"netx: synapse(s) {', '.join(split)} hold a mixed-sign matrix as excitatory + inhibitory parts "
            "(weight_sign 'split', the default with weight_exp 'auto'); a netx layer holds one matrix: compile with "
            "weight_exp='zero' (--weight-exp zero, the netx-compatible lowering) or weight_sign='mixed'")
    if len(fwd) != 1 or len(rec) > 1 or len(fwd) + len(rec) != len(syns):
        srcs = ", ".join(sorted({s.src for s in syns}))
        raise UnsupportedError(
            f"netx: population '{p.name}' is fed by {srcs or 'nothing'}; netx files are a sequential chain "
            f"(each layer fed once by '{prev}', optionally by itself)")
    for s in fwd + rec:
        if s.weight_exp != 0:
            raise UnsupportedError(f"netx: synapse '{s.name}' has weight_exp {s.weight_exp}; netx stores integer "
                                   "weights at exponent 0: compile with weight_exp='zero'")
    if rec and rec[0].delays is not None:
        raise UnsupportedError(f"netx: recurrent synapse '{rec[0].name}' has delays; netx cannot store them")
    return fwd[0], (rec[0] if rec else None)


def _kernel(s: Synapse) -> np.ndarray | None:
    """The synapse's conv kernel (stored, or read off a matrix that is exactly one), else None."""
    if s.conv is None:
        return None
    return np.asarray(s.weights) if s.is_kernel else conv_kernel(np.asarray(s.weights), s.conv)


def _check_conv(program: LoihiProgram, s: Synapse, rec: Synapse | None, before: Layer | None) -> None:
    """Refuse what a netx conv layer (lava-dl's ``create_conv`` → Lava ``Conv``) cannot hold."""
    why = None
    if s.delays is not None:
        why = "it has delays (lava-dl's conv layers have none: create_conv ignores 'delay')"
    elif rec is not None:
        why = f"its population also has the recurrent synapse '{rec.name}' (netx has no recurrent conv layer)"
    elif s.row_bounds()[2] >= CONV_WRAP:
        why = "its |W| row sum can reach 2^23 (Lava's Conv wraps its output at 24 bits, the program does not)"
    elif before is not None and before.shape != tuple(int(v) for v in s.conv["in_shape"]):
        why = (f"it reads '{before.pop.name}' as {tuple(s.conv['in_shape'])}, but that netx layer has shape "
               f"{before.shape} (lava-dl gives a conv layer its previous layer's shape)")
    elif before is None and int(np.prod(s.conv["in_shape"])) != program.size(s.src):
        why = f"its input shape {tuple(s.conv['in_shape'])} does not match input '{s.src}'"
    if why is not None:
        raise UnsupportedError(f"netx: conv synapse '{s.name}' into '{s.dst}' cannot be a netx conv layer: {why}; "
                               "netx files keep convolutions as kernels, never unrolled")


def export_netx(program: LoihiProgram, path) -> Path:
    """Write ``program`` as a lava-dl netx ``.net`` file (atomically)."""
    layers = chain(program)
    in_name, in_shape = next(iter(program.inputs.items()))
    first = layers[0]
    shape0 = first.fwd.conv["in_shape"] if first.kernel is not None else [int(np.prod(in_shape))]

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["generator"] = "neurodeploy"
            f.attrs["dt"] = program.dt
            lay = f.create_group("layer")
            g0 = lay.create_group("0")
            g0.create_dataset("type", data=np.array([b"input"]))
            g0.create_dataset("shape", data=np.asarray(shape0, np.int64))
            g0.attrs["name"] = in_name
            k = 1
            for layer in layers:
                if layer.flatten:
                    lay.create_group(str(k)).create_dataset("type", data=np.array([b"flatten"]))
                    k += 1
                _write_layer(lay.create_group(str(k)), layer)
                k += 1

    return write_atomic(path, writer)


def _write_layer(g: h5py.Group, layer: Layer) -> None:
    p, fwd = layer.pop, layer.fwd
    g.attrs["name"] = p.name
    g.attrs["spiking"] = bool(p.spiking)
    g.attrs["kind"] = p.kind
    g.attrs["shape_nd"] = np.asarray(p.shape, np.int64)
    g.create_dataset("type", data=np.array([layer.type.encode()]))
    g.create_dataset("shape", data=np.asarray(layer.shape, np.int64))
    if layer.kernel is not None:
        g.create_dataset("weight", data=np.asarray(layer.kernel, np.int64))
        for key in ("stride", "padding", "dilation"):
            g.create_dataset(key, data=np.asarray(fwd.conv[key], np.int64))
        g.create_dataset("groups", data=np.int64(fwd.conv["groups"]))
    else:
        g.create_dataset("weight", data=np.asarray(fwd.dense(), np.int64))
        if fwd.delays is not None:
            g.create_dataset("delay", data=np.asarray(fwd.delays, np.int64))
    if layer.rec is not None:
        g.create_dataset("weight_rec", data=np.asarray(layer.rec.dense(), np.int64))
    if np.any(p.bias_mant):
        g.create_dataset("bias", data=_bias(layer))
    nrn = g.create_group("neuron")
    nrn.create_dataset("type", data=np.array([b"CUBA"]))
    nrn.create_dataset("iDecay", data=np.int64(p.du + 1))
    nrn.create_dataset("vDecay", data=np.int64(p.dv))
    nrn.create_dataset("vThMant", data=np.int64(p.vth if p.spiking else VTH_MAX))
    nrn.create_dataset("refDelay", data=np.int64(1))
    nrn.create_dataset("gradedSpike", data=np.bool_(False))


def _bias(layer: Layer) -> np.ndarray:
    """The bias mantissas as lava-dl reads them: (n,) for a dense layer; for a conv layer one
    per channel (C',) when constant over each channel, else per neuron in Lava's (W', H', C')."""
    b = np.asarray(layer.pop.bias_mant, np.int64)
    if layer.kernel is None:
        return b.reshape(-1)
    chw = b.reshape(layer.shape)
    flat = chw.reshape(chw.shape[0], -1)
    if np.all(flat == flat[:, :1]):
        return flat[:, 0].copy()
    return np.ascontiguousarray(chw.transpose(2, 1, 0))


def read_netx(path) -> list[dict]:
    """Layers of a netx file as dicts (integers as stored, except a conv layer's per-neuron
    bias, which lava-dl stores in (W, H, C) and is returned in our (C, H, W)). Supports
    input, dense, dense_rec, conv and flatten layers with CUBA neurons; a last entry
    ``{"type": "_dt", "dt": ...}`` when the file says its time step."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        f = h5py.File(p, "r")
    except OSError:
        raise InputError(f"{p}: not a readable netx/HDF5 file") from None
    with f:
        if "layer" not in f:
            raise InputError(f"{p}: not a netx network (no 'layer' group)")
        lay = f["layer"]
        out = [_read_layer(lay[k], int(k)) for k in sorted(lay.keys(), key=int)]
        d_attr = f.attrs.get("dt")
    return out if d_attr is None else out + [{"type": "_dt", "dt": float(d_attr)}]


def _text(v) -> str:
    v = v[0] if np.ndim(v) else v
    return v.decode() if isinstance(v, bytes) else str(v)


def _read_layer(g: h5py.Group, index: int) -> dict:
    d = {"index": index, "type": _text(g["type"][()]), "name": g.attrs.get("name", f"layer{index}")}
    if isinstance(d["name"], bytes):
        d["name"] = d["name"].decode()
    for key in ("shape", "weight", "weight_rec", "bias", "delay", "stride", "padding", "dilation", "groups"):
        if key in g:
            d[key] = np.asarray(g[key][()])
    if d["type"] == "conv" and "bias" in d and d["bias"].ndim == 3:
        d["bias"] = d["bias"].transpose(2, 1, 0)  # lava-dl's (W, H, C) → (C, H, W)
    for key in ("spiking", "kind", "shape_nd"):
        if key in g.attrs:
            v = g.attrs[key]
            d[key] = v.decode() if isinstance(v, bytes) else v
    if "neuron" in g:
        n = g["neuron"]
        d["neuron"] = {"type": _text(n["type"][()])}
        for key in ("iDecay", "vDecay", "vThMant", "refDelay"):
            if key in n:
                d["neuron"][key] = int(np.asarray(n[key][()]).reshape(-1)[0])
    return d


def _to_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(n, steps) in our flat (C, H, W) order → lava-dl's port ``shape`` ((W, H, C) or (n,))."""
    if len(shape) == 1:
        return x
    return x.reshape(*shape[::-1], x.shape[-1]).transpose(2, 1, 0, 3)


def _from_lava(a: np.ndarray) -> np.ndarray:
    """A sink's (*shape, steps) → (steps, n) in our flat (C, H, W) order."""
    return (a.T if a.ndim == 2 else a.transpose(3, 2, 1, 0)).reshape(a.shape[-1], -1).copy()


def _run_netx_inproc(path: str, x: np.ndarray, tag: str, readback: str = "var"):
    import shutil
    import tempfile

    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from .lava import _recorders

    steps = x.shape[1]
    net = Network(net_config=str(path))
    data = _to_lava(x, tuple(net.inp.shape))
    src = Source(data=np.ascontiguousarray(data).astype(np.int32 if tag == "fixed_pt" else np.float64))
    src.s_out.connect(net.inp)
    rdir = tempfile.mkdtemp(prefix="nd-netx-") if readback == "file" else None
    cfg: dict = dict(select_tag=tag)
    sinks = []
    for i, layer in enumerate(net.layers):
        if rdir is None:
            s = Sink(shape=layer.out.shape, buffer=steps)
        else:
            s = _recorders()["SpikeRecord"](shape=layer.out.shape, steps=steps, path=f"{rdir}/{i}.npy")
        layer.out.connect(s.a_in)
        sinks.append(s)
    if rdir is not None:
        cfg["exception_proc_model_map"] = {s: _recorders()[("SpikeRecord", tag)] for s in sinks}
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(**cfg))
        if rdir is None:
            return [_from_lava(np.asarray(s.data.get())) for s in sinks]
        return [_from_lava(np.moveaxis(np.load(f"{rdir}/{i}.npy"), 0, -1)) for i in range(len(sinks))]
    finally:
        try:
            net.stop()
        except Exception:  # noqa: BLE001
            pass
        if rdir is not None:
            shutil.rmtree(rdir, ignore_errors=True)


def run_netx(path, x: np.ndarray, tag: str = "fixed_pt", timeout: float | None = None,
             readback: str = "var") -> list[np.ndarray]:
    """Load ``path`` with lava-dl's own ``lava.lib.dl.netx.hdf5.Network`` and run one sample
    ``x`` (n_in, steps) of 0/1, our flat (C, H, W) order, through Lava. Returns each layer's
    spikes (steps, n) in our flat order. Bounded by a timeout (the simulation runs in its own
    process group). ``readback``: "var" (Lava's RingBuffer, read with Var.get) or "file"
    (:func:`.lava._recorders`, for large layers)."""
    from .lava import READBACKS, _lava, default_timeout, run_isolated

    if readback not in READBACKS:
        raise InputError(f"readback must be one of {', '.join(READBACKS)}, got {readback!r}")
    _lava()  # import Lava here, before the fork (its runtime sets the start method once, at import)
    x = np.asarray(x)
    budget = timeout if timeout is not None else default_timeout(x.shape[1], 8)
    return run_isolated(_run_netx_inproc, (str(path), x, tag, readback), budget, f"running netx network {path}")
