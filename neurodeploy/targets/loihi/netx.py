"""Write (and read) lava-dl's netx HDF5 network format (``.net``) for a LoihiProgram.

Follows the reader ``lava/lib/dl/netx/hdf5.py`` + ``utils.py`` of lava-dl 0.6.0 (whose own
``export_hdf5`` fails with h5py 3.16). The format is a *sequential* stack::

    /layer/0   type "input", shape [n_in]
    /layer/k   type "dense" | "dense_rec"
               shape [n], weight (n, n_prev) int, [weight_rec (n, n)], [bias (n,) int],
               [delay (n, n_prev) int], neuron/{type "CUBA", iDecay, vDecay, vThMant,
               refDelay, gradedSpike}

netx turns a CUBA neuron into ``LIF(du=iDecay−1, dv=vDecay, vth=vThMant, bias_mant=bias,
bias_exp=6)`` and a dense layer into ``Dense``/``DelayDense`` with the stored integer
weights at exponent 0 (it rescales them with ``optimize_weight_bits``, which is exact for
integers). So a Program is expressible when it is a chain (each population fed by the
previous one, optionally by itself), every ``weight_exp`` is 0 (compile with
``weight_exp="zero"``), and ``bias_exp`` is 6. Readouts (non-spiking) are written as CUBA
neurons with ``vThMant = 2^17 − 1``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ...errors import InputError, UnsupportedError
from ...graph.io import write_atomic
from .program import LoihiProgram
from .quantize import BIAS_EXP, VTH_MAX


def chain(program: LoihiProgram) -> list:
    """The populations in netx order with their (forward, recurrent) synapses, or raise
    UnsupportedError saying why the program is not a netx chain."""
    if len(program.inputs) != 1:
        raise UnsupportedError(f"netx: needs exactly one input, the program has {len(program.inputs)}")
    prev = next(iter(program.inputs))
    out = []
    for p in program.populations:
        if p.role == "bias":
            fed = sorted({s.dst for s in program.synapses if s.src == p.name})
            raise UnsupportedError(
                f"netx: population(s) {', '.join(fed)} take their bias through Loihi's bias neuron (a synaptic bias "
                "into a decaying CubaLIF/CubaLI current, or compile option bias='synapse'); netx's CUBA layers hold "
                "only a bias into v")
        syns = program.incoming(p.name)
        fwd = [s for s in syns if s.src == prev]
        rec = [s for s in syns if s.src == p.name]
        other = [s for s in syns if s not in fwd and s not in rec]
        if len(fwd) != 1 or len(rec) > 1 or other:
            srcs = ", ".join(sorted({s.src for s in syns}))
            raise UnsupportedError(
                f"netx: population '{p.name}' is fed by {srcs or 'nothing'}; netx files are a sequential chain "
                f"(each layer fed once by '{prev}', optionally by itself)"
            )
        for s in fwd + rec:
            if s.weight_exp != 0:
                raise UnsupportedError(
                    f"netx: synapse '{s.name}' has weight_exp {s.weight_exp}; netx stores integer weights at "
                    "exponent 0: compile with weight_exp='zero'"
                )
        if rec and rec[0].delays is not None:
            raise UnsupportedError(f"netx: recurrent synapse '{rec[0].name}' has delays; netx cannot store them")
        if p.bias_exp != BIAS_EXP:
            raise UnsupportedError(f"netx: population '{p.name}' has bias_exp {p.bias_exp}; netx uses {BIAS_EXP}")
        if not p.spiking and p is not program.populations[-1]:
            raise UnsupportedError(f"netx: non-spiking population '{p.name}' is not the last layer")
        if int(p.du) + 1 < 1:
            raise UnsupportedError(f"netx: population '{p.name}' has du {p.du}")
        out.append((p, fwd[0], rec[0] if rec else None))
        prev = p.name
    if not out:
        raise UnsupportedError("netx: the program has no neuron population")
    return out


def export_netx(program: LoihiProgram, path) -> Path:
    """Write ``program`` as a lava-dl netx ``.net`` file (atomically)."""
    layers = chain(program)
    in_name, in_shape = next(iter(program.inputs.items()))
    n_in = int(np.prod(in_shape))

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["generator"] = "neurodeploy"
            f.attrs["dt"] = program.dt
            lay = f.create_group("layer")
            g0 = lay.create_group("0")
            g0.create_dataset("type", data=np.array([b"input"]))
            g0.create_dataset("shape", data=np.array([n_in]))
            g0.attrs["name"] = in_name
            for k, (p, fwd, rec) in enumerate(layers, start=1):
                g = lay.create_group(str(k))
                g.attrs["name"] = p.name
                g.attrs["spiking"] = bool(p.spiking)
                g.attrs["kind"] = p.kind
                g.attrs["shape_nd"] = np.asarray(p.shape, np.int64)
                g.create_dataset("type", data=np.array([b"dense_rec" if rec is not None else b"dense"]))
                g.create_dataset("shape", data=np.array([p.n]))
                g.create_dataset("weight", data=np.asarray(fwd.dense(), np.int64))
                if rec is not None:
                    g.create_dataset("weight_rec", data=np.asarray(rec.dense(), np.int64))
                if np.any(p.bias_mant):
                    g.create_dataset("bias", data=np.asarray(p.bias_mant, np.int64))
                if fwd.delays is not None:
                    g.create_dataset("delay", data=np.asarray(fwd.delays, np.int64))
                nrn = g.create_group("neuron")
                nrn.create_dataset("type", data=np.array([b"CUBA"]))
                nrn.create_dataset("iDecay", data=np.int64(p.du + 1))
                nrn.create_dataset("vDecay", data=np.int64(p.dv))
                nrn.create_dataset("vThMant", data=np.int64(p.vth if p.spiking else VTH_MAX))
                nrn.create_dataset("refDelay", data=np.int64(1))
                nrn.create_dataset("gradedSpike", data=np.bool_(False))

    return write_atomic(path, writer)


def read_netx(path) -> list[dict]:
    """Layers of a netx file as dicts (integers as stored). Supports input, dense,
    dense_rec and flatten layers with CUBA neurons."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    try:
        f = h5py.File(p, "r")
    except OSError:
        raise InputError(f"{p}: not a readable netx/HDF5 file") from None
    out = []
    with f:
        if "layer" not in f:
            raise InputError(f"{p}: not a netx network (no 'layer' group)")
        lay = f["layer"]
        keys = sorted(lay.keys(), key=int)
        for k in keys:
            g = lay[k]
            t = g["type"][()]
            t = (t[0] if np.ndim(t) else t)
            t = t.decode() if isinstance(t, bytes) else str(t)
            d = {"index": int(k), "type": t, "name": g.attrs.get("name", f"layer{k}")}
            if isinstance(d["name"], bytes):
                d["name"] = d["name"].decode()
            for key in ("shape", "weight", "weight_rec", "bias", "delay"):
                if key in g:
                    d[key] = np.asarray(g[key][()])
            for key in ("spiking", "kind", "shape_nd"):
                if key in g.attrs:
                    v = g.attrs[key]
                    d[key] = v.decode() if isinstance(v, bytes) else v
            if "neuron" in g:
                n = g["neuron"]
                nt = n["type"][()]
                nt = (nt[0] if np.ndim(nt) else nt)
                nd = {"type": nt.decode() if isinstance(nt, bytes) else str(nt)}
                for key in ("iDecay", "vDecay", "vThMant", "refDelay"):
                    if key in n:
                        nd[key] = int(np.asarray(n[key][()]).reshape(-1)[0])
                d["neuron"] = nd
            out.append(d)
        d_attr = f.attrs.get("dt")
    return out if d_attr is None else out + [{"type": "_dt", "dt": float(d_attr)}]


def _run_netx_inproc(path: str, x: np.ndarray, tag: str):
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    steps = x.shape[1]
    net = Network(net_config=str(path))
    src = Source(data=x.astype(np.int32 if tag == "fixed_pt" else np.float64))
    src.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        s = Sink(shape=layer.out.shape, buffer=steps)
        layer.out.connect(s.a_in)
        sinks.append(s)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        return [np.asarray(s.data.get()).T.copy() for s in sinks]
    finally:
        try:
            net.stop()
        except Exception:  # noqa: BLE001
            pass


def run_netx(path, x: np.ndarray, tag: str = "fixed_pt", timeout: float | None = None) -> list[np.ndarray]:
    """Load ``path`` with lava-dl's own ``lava.lib.dl.netx.hdf5.Network`` and run one sample
    ``x`` (n_in, steps) of 0/1 through Lava. Returns each layer's spikes (steps, n).
    Bounded by a timeout (the simulation runs in its own process group)."""
    from .lava import default_timeout, run_isolated

    x = np.asarray(x)
    budget = timeout if timeout is not None else default_timeout(x.shape[1], 8)
    return run_isolated(_run_netx_inproc, (str(path), x, tag), budget, f"running netx network {path}")
