"""The Loihi 2 Program: integer parameters of Lava's fixed-point LIF and Dense models.

A Program is pure data (running it is :mod:`.emulator`'s and :mod:`.lava`'s job): a set of *populations* (one Lava ``LIF`` process each) and *synapses* (one
Lava ``Dense`` / ``DelayDense`` process each, or ``Sparse`` / ``DelaySparse`` / ``Conv``,
which compute the same integers: see :func:`.lava.lower`) between them, plus the network
inputs. It is
what :mod:`.quantize` produces from a Graph and what :mod:`.emulator`, :mod:`.lava` and
:mod:`.netx` consume. Every integer follows Lava's ``PyLifModelBitAcc`` /
``PyDenseModelBitAcc`` conventions (lava-nc 0.10.0):

* population: ``du``, ``dv`` (12-bit; effective current decay ``(du+1)/4096``, voltage
  decay ``dv/4096``), ``vth`` (17-bit; spikes when ``v > vth << 6``), per-neuron
  ``bias_mant`` (13-bit signed) with ``bias_exp`` (``bias = bias_mant << bias_exp``);
* synapse: ``weights`` (n_dst, n_src) 8-bit mantissas as Lava stores them (mixed sign:
  even values in [-256, 254]), ``weight_exp`` (accumulated input shifted by it), optional
  ``delays`` (n_dst, n_src) in extra steps (0..the profile's ``max_delay``) for ``DelayDense``, and optional
  ``conv`` geometry when the matrix is exactly a 2-D convolution of the source (see
  :func:`conv_kernel`; the Lava lowering then uses ``lava.proc.conv`` instead of the
  unrolled matrix). A convolution chain is stored as its kernel: ``weights`` (and
  ``weights_f``) then hold the (C_out, C_in/g, kh, kw) kernel (``Synapse.is_kernel``),
  never the unrolled matrix; ``shape``, ``row_bounds``, ``fanout`` and (for small layers
  only) ``dense()`` give the matrix's view of it.

Float twins (``*_f``) hold the same quantities *before* rounding, in the same units; they
are what Lava's ``floating_pt`` models run. ``scale`` (per neuron) converts membrane
potentials back to NIR units: ``v_nir = v_int / scale``.

The Program keeps the NIR ``graph`` it was quantized from (its counts are keyed by that
graph's nodes, docs/protocol.md) and ``hardware``: the profile constants it was compiled
against ({"profile", "weight_bits", "state_bits", "delay_bits", "max_delay"}, those the
profile has). ``save`` writes ``graph.nir`` beside ``program.json`` / ``program.npz``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError

#: version 2: the NIR graph (graph.nir) and the hardware constants are saved with the program
FORMAT_VERSION = 2


@dataclass
class Population:
    """One Lava LIF process (a NIR neuron node, flattened to ``n`` neurons)."""

    name: str  # NIR node name
    kind: str  # NIR type: LIF, CubaLIF, IF, LI, CubaLI, I
    shape: tuple[int, ...]
    spiking: bool  # False: non-spiking readout (vth at max, output is v)
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # int64 (n,)
    bias_exp: int
    scale: np.ndarray  # float64 (n,): v_int per NIR unit of v
    du_f: float = 0.0  # float decay of u (fraction), (du+1)/4096 before rounding
    dv_f: float = 0.0
    bias_f: np.ndarray | None = None  # float (n,) in v_int units
    vth_f: float = 0.0  # float threshold in v_int units (vth << 6 before rounding)
    #: "neuron" (a NIR neuron node) or "bias": the one always-spiking neuron (not a NIR node)
    #: whose synapses carry the biases into u (see :mod:`.quantize`, "Biases")
    role: str = "neuron"

    @property
    def n(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Synapse:
    """One Lava synapse process ``src → dst``: Dense (DelayDense when ``delays`` is set), or
    its Sparse / Conv equivalent in the Lava lowering."""

    name: str
    src: str  # input node name or population name
    dst: str  # population name
    weights: np.ndarray  # int64 (n_dst, n_src), Lava-stored mantissas
    weight_exp: int
    delays: np.ndarray | None = None  # int64 (n_dst, n_src) extra steps, or None
    weights_f: np.ndarray | None = None  # float (n_dst, n_src) in a_in units << 6 (v units)
    nodes: tuple[str, ...] = ()  # NIR nodes folded into this synapse
    # conv geometry (CHW / (h, w) order, torch conventions) when ``weights`` is exactly a
    # convolution: {"in_shape": [C, H, W], "out_shape": [C', H', W'], "kernel": [kh, kw],
    # "stride": [sh, sw], "padding": [ph, pw], "dilation": [dh, dw], "groups": g}
    conv: dict | None = None
    #: steps added to every delay of this synapse so that all paths into ``dst`` lag
    #: equally (part of ``delays``; a synapse from the bias neuron: its start step)
    lag_delay: int = 0

    @property
    def max_delay(self) -> int:
        return int(self.delays.max()) if self.delays is not None and self.delays.size else 0

    @property
    def is_kernel(self) -> bool:
        """True when ``weights`` holds a conv kernel (C_out, C_in/g, kh, kw), not a matrix."""
        return self.conv is not None and np.ndim(self.weights) == 4

    @property
    def shape(self) -> tuple[int, int]:
        """(n_dst, n_src) of the matrix this synapse computes (never built for a kernel)."""
        if self.is_kernel:
            return int(np.prod(self.conv["out_shape"])), int(np.prod(self.conv["in_shape"]))
        return tuple(int(d) for d in np.shape(self.weights))

    def dense(self, float_twin: bool = False) -> np.ndarray:
        """The (n_dst, n_src) matrix (``weights``, or ``weights_f`` with ``float_twin``);
        for a kernel synapse it is unrolled here, so only for small layers (netx, Dense)."""
        w = self.weights_f if float_twin else self.weights
        if w is None or not self.is_kernel:
            return w
        dst, src, tap, _ = conv_taps(self.conv)
        m = np.zeros(self.shape, dtype=np.asarray(w).dtype)
        m[dst, src] = np.asarray(w).reshape(-1)[tap]
        return m

    def row_bounds(self) -> tuple[int, int, int]:
        """(largest row sum of positive weights, of |negative| weights, of |weights|) over
        the destination neurons; for a kernel the sums over one output channel's taps (a
        bound: border neurons have fewer taps). Cached (the weights of a program are fixed)."""
        key = (id(self.weights), np.shape(self.weights))
        got = self.__dict__.get("_bounds")
        if got is not None and got[0] == key:
            return got[1]
        w = np.asarray(self.weights, np.int64)
        w = w.reshape(w.shape[0], -1) if w.ndim else w.reshape(1, 1)
        if w.size == 0:
            b = (0, 0, 0)
        else:
            b = (int(np.where(w > 0, w, 0).sum(1).max()), int(np.where(w < 0, -w, 0).sum(1).max()),
                 int(np.abs(w).sum(1).max()))
        self.__dict__["_bounds"] = (key, b)
        return b

    def fanout(self) -> np.ndarray:
        """Per source element: its nonzero stored weights (float64, (n_src,))."""
        if not self.is_kernel:
            return (np.asarray(self.weights) != 0).sum(0).astype(np.float64)
        dst, src, tap, _ = conv_taps(self.conv)
        nz = (np.asarray(self.weights).reshape(-1) != 0)[tap]
        return np.bincount(src[nz], minlength=self.shape[1]).astype(np.float64)


@dataclass
class LoihiProgram:
    """A quantized network for Loihi 2 (run by the emulator; lowered to Lava or netx)."""

    dt: float
    inputs: dict[str, tuple[int, ...]]  # input node → shape
    populations: list[Population]
    synapses: list[Synapse]
    outputs: dict[str, str]  # Output node → population name
    report: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    mapping: dict[str, Any] | None = None
    target: str = "loihi2-emu"
    graph: Any = None  # the NIR Graph quantized into this program (None for hand-built programs)
    hardware: dict[str, Any] = field(default_factory=dict)  # profile constants compiled against

    # --- lookup -----------------------------------------------------------------------
    def pop(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def size(self, name: str) -> int:
        if name in self.inputs:
            return int(np.prod(self.inputs[name]))
        return self.pop(name).n

    def incoming(self, pop: str) -> list[Synapse]:
        return [s for s in self.synapses if s.dst == pop]

    # --- persistence ------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta: dict[str, Any] = {
            "format": "neurodeploy.loihi2.program", "version": FORMAT_VERSION,
            "dt": self.dt, "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": self.outputs, "report": self.report, "options": self.options,
            "mapping": self.mapping, "hardware": self.hardware, "target": self.target,
            "reset": self.graph.reset if self.graph is not None else None, "populations": [], "synapses": [],
        }
        arrays: dict[str, np.ndarray] = {}
        for i, p in enumerate(self.populations):
            d = {k: v for k, v in asdict(p).items() if not isinstance(v, np.ndarray) and v is not None}
            d["shape"] = list(p.shape)
            meta["populations"].append(d)
            arrays[f"pop{i}.bias_mant"] = np.asarray(p.bias_mant, np.int64)
            arrays[f"pop{i}.scale"] = np.asarray(p.scale, np.float64)
            if p.bias_f is not None:
                arrays[f"pop{i}.bias_f"] = np.asarray(p.bias_f, np.float64)
        for i, s in enumerate(self.synapses):
            sd = {"name": s.name, "src": s.src, "dst": s.dst, "weight_exp": s.weight_exp, "nodes": list(s.nodes)}
            if s.conv is not None:
                sd["conv"] = s.conv
            if s.lag_delay:
                sd["lag_delay"] = int(s.lag_delay)
            meta["synapses"].append(sd)
            arrays[f"syn{i}.weights"] = np.asarray(s.weights, np.int64)
            if s.delays is not None:
                arrays[f"syn{i}.delays"] = np.asarray(s.delays, np.int64)
            if s.weights_f is not None:
                arrays[f"syn{i}.weights_f"] = np.asarray(s.weights_f, np.float64)
        return meta, arrays

    def save(self, path) -> Path:
        """Write ``program.json`` + ``program.npz`` (+ ``graph.nir``) into directory ``path``
        (each file atomically)."""
        from ...graph import save as save_graph
        from ...graph.io import write_json, write_npz

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.to_arrays()
        if self.graph is not None:
            save_graph(self.graph, d / "graph.nir")
        write_npz(d / "program.npz", arrays)
        write_json(d / "program.json", meta, indent=1, default=_jsonable)
        return d

    @classmethod
    def load(cls, path) -> "LoihiProgram":
        d = Path(path)
        if not (d / "program.json").exists() or not (d / "program.npz").exists():
            raise InputError(f"{d}: not a Loihi program directory (needs program.json and program.npz)")
        try:
            meta = json.loads((d / "program.json").read_text())
            arrays = dict(np.load(d / "program.npz"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{d}: unreadable Loihi program ({exc})") from None
        if meta.get("format") != "neurodeploy.loihi2.program":
            raise InputError(f"{d}/program.json: not a neurodeploy Loihi 2 program")
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(f"{d}/program.json: Loihi program format version {meta.get('version')}, this version "
                             f"reads {FORMAT_VERSION} (programs now keep their NIR graph): re-compile the model")
        pops = []
        for i, pd in enumerate(meta["populations"]):
            pd = dict(pd)
            pd["shape"] = tuple(pd["shape"])
            pops.append(Population(**pd, bias_mant=arrays[f"pop{i}.bias_mant"], scale=arrays[f"pop{i}.scale"],
                                   bias_f=arrays.get(f"pop{i}.bias_f")))
        syns = []
        for i, sd in enumerate(meta["synapses"]):
            syns.append(Synapse(name=sd["name"], src=sd["src"], dst=sd["dst"], weight_exp=int(sd["weight_exp"]),
                                weights=arrays[f"syn{i}.weights"], delays=arrays.get(f"syn{i}.delays"),
                                weights_f=arrays.get(f"syn{i}.weights_f"), nodes=tuple(sd.get("nodes", ())),
                                conv=_conv_meta(sd.get("conv")), lag_delay=int(sd.get("lag_delay", 0))))
        return cls(dt=float(meta["dt"]), inputs={k: tuple(v) for k, v in meta["inputs"].items()},
                   populations=pops, synapses=syns, outputs=dict(meta["outputs"]), report=meta.get("report", {}),
                   options=meta.get("options", {}), mapping=meta.get("mapping"), target=meta.get("target", "loihi2-emu"),
                   graph=_load_graph(d, meta), hardware=dict(meta.get("hardware") or {}))

    def __repr__(self) -> str:
        return (f"LoihiProgram({len(self.populations)} populations, {len(self.synapses)} synapses, "
                f"{sum(p.n for p in self.populations)} neurons, dt={self.dt:g} s)")


def _load_graph(d: Path, meta: dict):
    if not (d / "graph.nir").exists():
        return None  # a hand-built program saved without a graph
    from ...graph import load

    return load(d / "graph.nir", dt=float(meta["dt"]), reset=meta.get("reset") or "zero")


def hardware_constant(program: LoihiProgram, key: str, why: str) -> int:
    """``program.hardware[key]`` (a profile constant), or an InputError naming it."""
    if key not in program.hardware:
        prof = program.hardware.get("profile")
        where = f"hardware profile '{prof}'" if prof else "this program (built without a hardware profile)"
        raise InputError(f"{where} has no {key}: needed for {why}")
    return int(program.hardware[key])


def bias_sources(program: LoihiProgram) -> set[str]:
    """Names of the bias neurons (populations that are no NIR node)."""
    return {p.name for p in program.populations if p.role == "bias"}


def lags(program: LoihiProgram) -> dict[str, int | None]:
    """Steps by which each population lags the NIR reference: 1 + ``lag_delay`` more than
    its sources per forward synapse (a back edge, source at or after the destination,
    carries NIR's previous step and sets no lag); 1 for a population without forward
    inputs; None if paths of different lag meet (a hand-built program: :mod:`.quantize`
    equalizes them). Bias neurons are no NIR node and set no lag."""
    order = {p.name: i for i, p in enumerate(program.populations)}
    bias = bias_sources(program)
    lag: dict[str, set] = {i: {0} for i in program.inputs}
    for p in program.populations:
        if p.name in bias:
            continue
        s: set = set()
        fed = False
        for syn in program.incoming(p.name):
            if syn.src in bias:
                continue
            if syn.src in program.inputs or order[syn.src] < order[p.name]:
                fed = True
                s |= {x + 1 + int(syn.lag_delay) for x in lag.get(syn.src, {None}) if x is not None}
        lag[p.name] = s if fed and s else ({None} if fed else {1})
    return {k: (next(iter(v)) if len(v) == 1 else None) for k, v in lag.items() if k not in program.inputs}


def declared_lag(program: LoihiProgram) -> dict[str, int | None]:
    """``RunResult.info["lag"]`` and ``describe()["lag"]`` of the Loihi targets: the steps by
    which every neuron node and Output node trails the NIR reference (an Input: 0) — one step
    per synapse on the path (Lava's Dense sends at t+1 what it accumulated at t), plus the
    delays compile inserted so that every path into a node lags equally (an integer for
    every node of a compiled program; None only where a hand-built program's paths
    disagree). The per-layer entries keep :func:`neurodeploy.measure.compare.declared_lag`
    right where NIR's own synaptic depth differs from the Dense count."""
    lg = lags(program)
    out: dict[str, int | None] = {o: lg.get(pn) for o, pn in program.outputs.items()}
    out.update({k: v for k, v in lg.items() if k not in out and v is not None})
    return out


def loop_delays(program: LoihiProgram) -> list[dict]:
    """The loops whose delay on Loihi exceeds NIR's (compiled with ``allow_loop_delay``):
    [{"loop": [nodes], "synapse": back edge, "extra_delay": steps}] (``report["loops"]``)."""
    return [dict(d) for d in (program.report or {}).get("loops", [])]


CONV_KEYS = ("in_shape", "out_shape", "kernel", "stride", "padding", "dilation", "groups")


def _conv_meta(d) -> dict | None:
    if d is None:
        return None
    try:
        out = {k: [int(v) for v in d[k]] for k in CONV_KEYS if k != "groups"}
        out["groups"] = int(d["groups"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"program.json: malformed conv geometry {d!r}") from None
    return out


def conv_taps(conv: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every valid tap of the convolution ``conv``: ``(dst, src, tap, n_taps)`` with flat
    CHW indices into the (n_dst, n_src) matrix and flat indices into the torch-layout
    kernel (C_out, C_in/groups, kh, kw). No (dst, src) pair occurs twice."""
    C, H, W = conv["in_shape"]
    Co, Ho, Wo = conv["out_shape"]
    kh, kw = conv["kernel"]
    (sh, sw), (ph, pw), (dh, dw) = conv["stride"], conv["padding"], conv["dilation"]
    g = int(conv["groups"])
    cgi, cgo = C // g, Co // g
    yy = np.arange(Ho)[:, None] * sh - ph + np.arange(kh)[None, :] * dh  # (Ho, kh)
    xx = np.arange(Wo)[:, None] * sw - pw + np.arange(kw)[None, :] * dw  # (Wo, kw)
    vy, vx = (yy >= 0) & (yy < H), (xx >= 0) & (xx < W)
    y, i, x, j = np.nonzero(vy[:, :, None, None] & vx[None, None, :, :])  # valid spatial taps
    o, ci = np.divmod(np.arange(Co * cgi), cgi)  # (out channel, in channel within its group)
    c = (o // cgo) * cgi + ci
    dst = (o[:, None] * Ho + y[None, :]) * Wo + x[None, :]
    src = (c[:, None] * H + yy[y, i][None, :]) * W + xx[x, j][None, :]
    tap = ((o[:, None] * cgi + ci[:, None]) * kh + i[None, :]) * kw + j[None, :]
    return dst.reshape(-1), src.reshape(-1), tap.reshape(-1), Co * cgi * kh * kw


def conv_kernel(matrix: np.ndarray, conv: dict, rtol: float = 0.0) -> np.ndarray | None:
    """The kernel (C_out, C_in/groups, kh, kw), torch layout, of which ``matrix`` (n_dst,
    n_src; CHW flat order on both sides) is the unrolled convolution with geometry
    ``conv``, or None when it is not exactly one (different values for one tap at
    different positions, or weight outside the taps). ``rtol`` > 0 accepts float values
    that agree to that relative tolerance (of the largest weight)."""
    Ci, Co = conv["in_shape"][0], conv["out_shape"][0]
    g = int(conv["groups"])
    n_src, n_dst = int(np.prod(conv["in_shape"])), int(np.prod(conv["out_shape"]))
    m = np.asarray(matrix)
    if m.shape != (n_dst, n_src) or g < 1 or Ci % g or Co % g:
        return None
    dst, src, tap, n_taps = conv_taps(conv)
    vals = m[dst, src]
    k = np.zeros(n_taps, dtype=m.dtype)
    k[tap] = vals
    if rtol > 0:
        tol = rtol * (float(np.abs(m).max()) if m.size else 0.0)
        same = bool(np.all(np.abs(k[tap] - vals) <= tol))
    else:
        same = bool(np.array_equal(k[tap], vals))
    if not same or int(np.count_nonzero(m)) != int(np.count_nonzero(vals)):
        return None
    kh, kw = conv["kernel"]
    return k.reshape(Co, Ci // g, kh, kw)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
