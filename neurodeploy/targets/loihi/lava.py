"""Lower a :class:`~.program.LoihiProgram` to real Lava processes and run them.

Each population becomes a ``lava.proc.lif.process.LIF``; each synapse (see :func:`lower`)
a ``lava.proc.conv.process.Conv`` when it is a convolution Lava's Conv model computes
exactly (its populations then take Lava's (W, H, C) shape, our CHW order is permuted on
the way in and back on the way out), a ``lava.proc.sparse.process.Sparse`` /
``DelaySparse`` when it is large and mostly zero, else a ``lava.proc.dense.process.Dense``
(``DelayDense`` when it has delays); inputs come from
``lava.proc.io.source.RingBuffer``, spikes go to ``lava.proc.io.sink.RingBuffer`` and
membrane potentials of non-spiking readouts (and recorded states) are read with
``lava.proc.monitor.process.Monitor``. Runs use ``Loihi2SimCfg(select_tag="fixed_pt")``
(bit-accurate models) or ``"floating_pt"`` (the un-rounded float twins of the same
parameters). Lava's CPU simulator runs one OS process per Lava process (~4–6 ms/step), so
samples run one after the other, each with fresh processes (state reset).

Every run is bounded by a timeout and the runtime is stopped in ``finally``; Lava
exceptions and hangs become :class:`~neurodeploy.errors.NeurodeployError`. Lava is imported
only inside these functions.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError, NeurodeployError, UnsupportedError
from ..base import RunResult, as_inputs, check_options
from .counts import LoihiCounts, add_counts, stored_fanout
from .emulator import check_binary, record_list
from .program import LoihiProgram, conv_kernel, declared_lag, hardware_constant, loop_delays

TAGS = ("fixed_pt", "floating_pt")


def _lava():
    try:
        import lava.magma.core.run_conditions as rc  # noqa: F401
        import lava.magma.core.run_configs as rcfg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnsupportedError(f"target 'lava' needs lava-nc (Python 3.10): {exc}") from None
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse

    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, DelayDense=DelayDense, Sink=Sink,
                Source=Source, LIF=LIF, Monitor=Monitor, Conv=Conv, Sparse=Sparse, DelaySparse=DelaySparse)


# ---------------------------------------------------------------------------------------
# readback through files: Lava's Var.get sends one element per message (~50 µs each)
# ---------------------------------------------------------------------------------------
READBACKS = ("var", "file")
_RECORDERS: dict = {}


def _recorders() -> dict:
    """Two Lava processes (defined at first use: Lava is imported only here) that keep what
    they see each step and ``np.save`` it (steps, *shape) to ``path`` at the last step:
    ``SpikeRecord`` (an InPort, as lava.proc.io.sink.RingBuffer) and ``VarRecord`` (a RefPort
    read in the post-management phase, as lava.proc.monitor's Monitor does). Their models
    are given to the run config per instance (``exception_proc_model_map``), so Lava's
    model search never scans this package. Returns {name: class, (name, tag): model}."""
    if _RECORDERS:
        return _RECORDERS
    from lava.magma.core.decorator import implements, requires
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyRefPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, RefPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class SpikeRecord(AbstractProcess):
        def __init__(self, *, shape, steps: int, path: str):
            super().__init__(shape=shape, steps=steps, path=path)
            self.a_in = InPort(shape=shape)

    class VarRecord(AbstractProcess):
        def __init__(self, *, var, steps: int, path: str):
            super().__init__(shape=var.shape, steps=steps, path=path)
            self.ref = RefPort(var.shape)
            self.ref.connect_var(var)

    class _Keep(PyLoihiProcessModel):
        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.kept = []

        def keep(self, a) -> None:
            self.kept.append(np.array(a, copy=True))
            if self.time_step == int(self.proc_params["steps"]):
                path = str(self.proc_params["path"])
                np.save(path + ".tmp.npy", np.stack(self.kept))
                os.replace(path + ".tmp.npy", path)

    models = {}
    for tag, dtype in (("fixed_pt", np.int32), ("floating_pt", float)):
        @implements(proc=SpikeRecord, protocol=LoihiProtocol)
        @requires(CPU)
        class PySpikeRecord(_Keep):
            a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, dtype)

            def run_spk(self) -> None:
                self.keep(self.a_in.recv())

        @implements(proc=VarRecord, protocol=LoihiProtocol)
        @requires(CPU)
        class PyVarRecord(_Keep):
            ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, dtype)

            def post_guard(self) -> bool:
                return True

            def run_post_mgmt(self) -> None:
                self.keep(self.ref.read())

        models[("SpikeRecord", tag)], models[("VarRecord", tag)] = PySpikeRecord, PyVarRecord
    _RECORDERS.update(models)
    _RECORDERS.update(SpikeRecord=SpikeRecord, VarRecord=VarRecord)
    return _RECORDERS


# ---------------------------------------------------------------------------------------
# lowering plan: which Lava process for which synapse, and the Lava shape of every node
# ---------------------------------------------------------------------------------------
CONV_WRAP = 1 << 23  # PyConvModelFixed wraps its output to 24 bits (utils.signed_clamp)
SPARSE_DENSITY = 0.1
SPARSE_MIN_ENTRIES = 1 << 20


@dataclass
class SynapseLowering:
    """How one Program synapse becomes one Lava process."""

    index: int
    name: str
    process: str  # "Conv", "Sparse", "DelaySparse", "Dense", "DelayDense"
    reason: str
    kwargs: dict = field(repr=False, default_factory=dict)  # constructor arguments, Lava order


@dataclass
class Lowering:
    """The Lava processes of a Program: per synapse the process (:class:`SynapseLowering`),
    per input and population its Lava shape and the permutation from Lava's flat order
    (C-order of that shape) to ours (``perm[k]`` = our flat index of Lava's element k;
    None: same order)."""

    tag: str
    shapes: dict[str, tuple[int, ...]]
    perms: dict[str, np.ndarray | None]
    synapses: list[SynapseLowering]

    def processes(self) -> dict[str, str]:
        """{synapse name: Lava process class}."""
        return {s.name: s.process for s in self.synapses}

    def to_lava(self, name: str, a: np.ndarray, axis: int = 0) -> np.ndarray:
        """Reorder axis ``axis`` of ``a`` from our flat order to Lava's."""
        p = self.perms.get(name)
        return a if p is None else np.take(a, p, axis=axis)

    def from_lava(self, name: str, a: np.ndarray, axis: int = -1) -> np.ndarray:
        """Reorder axis ``axis`` of ``a`` from Lava's flat order back to ours."""
        p = self.perms.get(name)
        if p is None:
            return a
        return np.take(a, np.argsort(p), axis=axis)


def _whc_perm(chw: tuple[int, int, int]) -> np.ndarray:
    C, H, W = chw
    return np.arange(C * H * W).reshape(C, H, W).transpose(2, 1, 0).reshape(-1)


def _lava_kernel(k: np.ndarray) -> np.ndarray:
    """torch (C_out, C_in/g, kh, kw) cross-correlation kernel → Lava's Conv weight
    (C_out, kx, ky, C_in/g): Lava convolves (scipy ``convolve2d``, flipped kernel) over
    (x, y) = (w, h)."""
    return np.ascontiguousarray(k[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def lower(program: LoihiProgram, tag: str = "fixed_pt", conv: bool = True, sparse_density: float = SPARSE_DENSITY,
          sparse_min_entries: int = SPARSE_MIN_ENTRIES) -> Lowering:
    """Choose the Lava process of every synapse and the layout of every node.

    * ``Conv`` (``lava.proc.conv``) for a synapse with conv geometry (``Synapse.conv``) whose
      kernel Lava's model computes exactly: no delays; in ``fixed_pt`` weight_exp 0
      (``PyConvModelFixed`` ignores weight_exp) and no possible 24-bit wrap of its output
      (largest row sum of |W| < 2^23). Its source and destination then take Lava's (W, H, C)
      shape (a node touched by two convs of different shapes keeps the first one's).
    * ``Sparse`` / ``DelaySparse`` (scipy CSR) for matrices with at most ``sparse_density``
      nonzero weights and at least ``sparse_min_entries`` entries (below ~10^6 entries
      scipy's column slicing is slower than numpy's in Lava's CPU models); 0/None disables.
    * ``Dense`` / ``DelayDense`` otherwise.
    """
    if tag not in TAGS:
        raise InputError(f"select_tag must be one of {', '.join(TAGS)}, got {tag!r}")
    from scipy.sparse import csr_matrix  # a lava-nc dependency

    fixed = tag == "fixed_pt"
    wbits = hardware_constant(program, "weight_bits", "Lava's num_weight_bits") if fixed else None
    if not fixed and any(s.weights_f is None for s in program.synapses):
        raise InputError("floating_pt needs the float weights (weights_f) of every synapse; this program has none")
    layout: dict[str, tuple[int, int, int]] = {}  # node → our (C, H, W) for Lava's (W, H, C)
    kinds: dict[int, tuple[str, str]] = {}
    kernels: dict[int, np.ndarray] = {}
    for i, s in enumerate(program.synapses):
        if s.conv is None:
            continue
        why = None
        w = np.asarray(s.weights) if fixed else np.asarray(s.weights_f)
        if not conv:
            why = "conv lowering disabled"
        elif s.delays is not None:
            why = "delays (Lava's Conv has none)"
        elif fixed and s.weight_exp != 0:
            why = f"weight_exp = {s.weight_exp} (Lava's PyConvModelFixed ignores weight_exp)"
        elif fixed and s.row_bounds()[2] >= CONV_WRAP:
            why = "|W| row sum ≥ 2^23 (Lava's Conv wraps at 24 bits, Dense at 32)"
        else:
            k = w if s.is_kernel else conv_kernel(w, s.conv, rtol=0.0 if fixed else 1e-12)
            if k is None:
                why = "the matrix is not exactly this convolution"
            else:
                cin, cout = tuple(s.conv["in_shape"]), tuple(s.conv["out_shape"])
                if layout.get(s.src, cin) != cin or layout.get(s.dst, cout) != cout or (s.src == s.dst and cin != cout):
                    why = "its source or destination already has another Conv layout"
                else:
                    layout[s.src], layout[s.dst] = cin, cout
                    kernels[i] = k
                    kinds[i] = ("Conv", "convolution")
        if why is not None:
            kinds[i] = ("", f"conv geometry, not lowered to Conv: {why}")
    shapes: dict[str, tuple[int, ...]] = {}
    perms: dict[str, np.ndarray | None] = {}
    for name in [*program.inputs, *(p.name for p in program.populations)]:
        if name in layout:
            C, H, W = layout[name]
            shapes[name], perms[name] = (W, H, C), _whc_perm(layout[name])
        else:
            shapes[name], perms[name] = (program.size(name),), None
    out: list[SynapseLowering] = []
    for i, s in enumerate(program.synapses):
        proc, reason = kinds.get(i, ("", ""))
        if proc == "Conv":
            geo = s.conv
            kw = dict(weight=_lava_kernel(kernels[i]).astype(np.int32 if fixed else np.float64),
                      input_shape=shapes[s.src], padding=tuple(geo["padding"][::-1]), stride=tuple(geo["stride"][::-1]),
                      dilation=tuple(geo["dilation"][::-1]), groups=int(geo["groups"]))
            if fixed:
                kw.update(weight_exp=0, num_weight_bits=wbits)
            out.append(SynapseLowering(i, s.name, "Conv", reason, kw))
            continue
        w = np.asarray(s.dense(), np.int32) if fixed else np.asarray(s.dense(float_twin=True), np.float64)
        w = _reorder(w, perms[s.dst], perms[s.src])
        size = int(w.size)
        density = np.count_nonzero(w) / size if size else 1.0
        sparse = bool(sparse_density) and size >= (sparse_min_entries or 0) and density <= sparse_density
        note = f"{100 * density:.1f} % nonzero of {size} entries"
        reason = f"{reason}; {note}" if reason else note
        kw = {}
        if fixed:
            kw.update(weight_exp=int(s.weight_exp), num_weight_bits=wbits)
        if s.delays is not None:
            d = _reorder(np.asarray(s.delays, np.int64), perms[s.dst], perms[s.src])
            kw.update(max_delay=int(s.max_delay))
            if sparse:
                kw.update(weights=csr_matrix(w), delays=csr_matrix(np.where(w != 0, d, 0).astype(int)))
                out.append(SynapseLowering(i, s.name, "DelaySparse", reason, kw))
            else:
                kw.update(weights=w, delays=d.astype(int))
                out.append(SynapseLowering(i, s.name, "DelayDense", reason, kw))
        elif sparse:
            kw.update(weights=csr_matrix(w))
            out.append(SynapseLowering(i, s.name, "Sparse", reason, kw))
        else:
            kw.update(weights=w)
            out.append(SynapseLowering(i, s.name, "Dense", reason, kw))
    return Lowering(tag=tag, shapes=shapes, perms=perms, synapses=out)


def _reorder(w: np.ndarray, p_dst, p_src) -> np.ndarray:
    if p_dst is not None:
        w = w[p_dst]
    if p_src is not None:
        w = w[:, p_src]
    return np.ascontiguousarray(w)


def build(program: LoihiProgram, x_sample: dict[str, np.ndarray], steps: int, tag: str, probe_v=(),
          plan: Lowering | None = None, sink=(), record_dir: str | None = None):
    """Build the Lava processes for one sample. ``x_sample[name]``: (n, steps) 0/1 in our
    (CHW) flat order. ``plan``: :func:`lower`'s result (computed with defaults if None).
    Spikes are read from every spiking population and from the populations in ``sink``,
    by ``lava.proc.io.sink.RingBuffer`` and ``Monitor`` — or, with ``record_dir``, by the
    recorders of :func:`_recorders` writing ``<record_dir>/<pop>.s.npy`` / ``.v.npy``.
    Returns (processes dict, sinks, monitors); synapse ``i`` is ``processes[f"syn{i}"]``."""
    L = _lava()
    plan = plan if plan is not None else lower(program, tag)
    procs: dict[str, object] = {}
    for name in program.inputs:
        data = plan.to_lava(name, x_sample[name].astype(np.int32 if tag == "fixed_pt" else np.float64), axis=0)
        procs[name] = L["Source"](data=np.ascontiguousarray(data.reshape(*plan.shapes[name], steps)))
    for p in program.populations:
        procs[p.name] = L["LIF"](shape=plan.shapes[p.name], **_lif_kwargs(p, plan, tag))
    for sl in plan.synapses:
        s = program.synapses[sl.index]
        syn = L[sl.process](**sl.kwargs)
        procs[f"syn{sl.index}"] = syn
        out_port, in_port = procs[s.src].s_out, procs[s.dst].a_in
        if sl.process != "Conv":  # a matrix: flat ports, through virtual reshapes where needed
            if len(plan.shapes[s.src]) > 1:
                out_port = out_port.flatten()
            a_out = syn.a_out if len(plan.shapes[s.dst]) == 1 else syn.a_out.reshape(plan.shapes[s.dst])
        else:
            a_out = syn.a_out
        out_port.connect(syn.s_in)
        a_out.connect(in_port)
    sinks, monitors = {}, {}
    for p in program.populations:
        if p.spiking or p.name in sink:
            if record_dir is None:
                sinks[p.name] = L["Sink"](shape=plan.shapes[p.name], buffer=steps)
            else:
                sinks[p.name] = _recorders()["SpikeRecord"](shape=plan.shapes[p.name], steps=steps,
                                                           path=os.path.join(record_dir, f"{p.name}.s.npy"))
            procs[p.name].s_out.connect(sinks[p.name].a_in)
        if not p.spiking or p.name in probe_v:
            if record_dir is None:
                monitors[p.name] = L["Monitor"]()
                monitors[p.name].probe(procs[p.name].v, steps)
            else:
                monitors[p.name] = _recorders()["VarRecord"](var=procs[p.name].v, steps=steps,
                                                            path=os.path.join(record_dir, f"{p.name}.v.npy"))
    return procs, sinks, monitors


def _lif_kwargs(p, plan: Lowering, tag: str) -> dict:
    """The Lava LIF parameters of population ``p`` (bias in Lava's layout)."""
    fixed = tag == "fixed_pt"
    bias = np.asarray(p.bias_mant, np.int32) if fixed else np.asarray(p.bias_f, np.float64)
    bias = np.ascontiguousarray(plan.to_lava(p.name, bias).reshape(plan.shapes[p.name]))
    if fixed:
        return dict(du=int(p.du), dv=int(p.dv), vth=int(p.vth), bias_mant=bias, bias_exp=int(p.bias_exp))
    return dict(du=float(p.du_f), dv=float(p.dv_f), vth=float(p.vth_f), bias_mant=bias, bias_exp=0)


def _run_inproc(program, x_sample, steps, tag, probe_v, plan=None, sink=(), readback="var"):
    """Build, run, read and stop (in ``finally``) one sample in this OS process.
    ``readback``: "var" (Lava's RingBuffer / Monitor, read with ``Var.get``) or "file" (the
    recorders of :func:`_recorders`, read from a temporary directory)."""
    import shutil
    import tempfile

    L = _lava()
    plan = plan if plan is not None else lower(program, tag)
    rdir = tempfile.mkdtemp(prefix="nd-lava-") if readback == "file" else None
    procs, sinks, monitors = build(program, x_sample, steps, tag, probe_v, plan, sink, record_dir=rdir)
    anchor = next(iter(procs.values()))
    cfg = dict(select_tag=tag)
    if rdir is not None:
        rec = _recorders()
        cfg["exception_proc_model_map"] = {r: rec[(type(r).__name__, tag)] for r in [*sinks.values(), *monitors.values()]}
    try:
        anchor.run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](**cfg))
        if rdir is None:
            spk = {k: np.asarray(s.data.get()).reshape(-1, steps).T for k, s in sinks.items()}
            vs = {k: np.asarray(m.get_data()[procs[k].name]["v"]).reshape(steps, -1) for k, m in monitors.items()}
        else:
            spk = {k: _recorded(rdir, f"{k}.s.npy", steps) for k in sinks}
            vs = {k: _recorded(rdir, f"{k}.v.npy", steps) for k in monitors}
        return ({k: plan.from_lava(k, a).copy() for k, a in spk.items()},
                {k: plan.from_lava(k, a).copy() for k, a in vs.items()})
    finally:
        try:
            anchor.stop()
        except Exception:  # noqa: BLE001 - the runtime may not have started
            pass
        if rdir is not None:
            shutil.rmtree(rdir, ignore_errors=True)


def _recorded(rdir: str, name: str, steps: int) -> np.ndarray:
    path = os.path.join(rdir, name)
    if not os.path.exists(path):
        raise NeurodeployError(f"lava: the recorder of {name[:-6]} wrote nothing after {steps} steps")
    return np.load(path).reshape(steps, -1)


def _child(conn, fn, args):  # pragma: no cover - runs in a fork
    os.setsid()  # own process group: the parent can kill Lava's runtime processes with it
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        os._exit(0)


def run_isolated(fn, args: tuple, timeout: float, what: str):
    """Call ``fn(*args)`` in a forked child in its own process group and return its
    (picklable) result. After ``timeout`` seconds the whole group (the child and Lava's
    runtime processes) is killed and a NeurodeployError raised, so a hung Lava simulation
    never hangs the caller; an exception in the child becomes a NeurodeployError too."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args), daemon=False)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise NeurodeployError(
                f"lava: {what} did not finish within {timeout:g} s (Lava's simulator hung or is too slow; "
                "pass timeout=... to allow more); its processes were killed"
            )
        try:
            status, payload = parent.recv()
        except EOFError:
            raise NeurodeployError(f"lava: {what}: the simulation process died (exit code {proc.exitcode})") from None
        if status != "ok":
            raise NeurodeployError(f"lava: {what} failed: {payload}")
        return payload
    finally:
        parent.close()
        proc.join(5.0)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: Lava's leftovers
        except (ProcessLookupError, PermissionError):
            pass
        proc.join(5.0)


def default_timeout(steps: int, n_procs: int) -> float:
    return 60.0 + 0.05 * steps * (2 + n_procs)


def run_sample(program: LoihiProgram, x_sample: dict[str, np.ndarray], steps: int, tag: str = "fixed_pt",
               probe_v=(), timeout: float | None = None, isolate: bool = True, plan: Lowering | None = None,
               sink=(), readback: str = "var"):
    """Run one sample in Lava. Returns ``(spikes {pop: (steps, n)}, v {pop: (steps, n)})``
    in our (CHW) flat neuron order, whatever layout the Lava processes had (spikes of the
    spiking populations and of those in ``sink``).

    With ``isolate`` (default) it runs through :func:`run_isolated`, bounded by ``timeout``
    seconds (default 60 s + 50 ms per step and process). ``plan``: :func:`lower`'s result
    (default: ``lower(program, tag)``). ``readback``: "var" reads Lava's RingBuffer and
    Monitor with ``Var.get`` (one message per element, ~50 µs each on a 2-core CPU: most of
    a large net's run); "file" records the same values with :func:`_recorders` and reads them
    from files (``test_file_readback_equals_lavas_own_sinks``)."""
    if readback not in READBACKS:
        raise InputError(f"readback must be one of {', '.join(READBACKS)}, got {readback!r}")
    _lava()  # fail early, in this process, if lava is missing
    plan = plan if plan is not None else lower(program, tag)
    budget = timeout if timeout is not None else default_timeout(steps, len(program.populations) + len(program.synapses))
    args = (program, x_sample, steps, tag, tuple(probe_v), plan, tuple(sink), readback)
    if not isolate:
        try:
            return _run_inproc(*args)
        except Exception as exc:
            raise NeurodeployError(f"lava: running {steps} steps failed: {type(exc).__name__}: {exc}") from exc
    return run_isolated(_run_inproc, args, budget, f"running {steps} steps")


class LavaProgram:
    """A LoihiProgram run through Lava's CPU simulator, sample by sample.

    ``conv``, ``sparse_density``, ``sparse_min_entries``: which synapses use Lava's
    ``Conv`` and ``Sparse`` processes (see :func:`lower`); ``lowering()`` says which
    process each synapse became and why. ``readback``: how spikes and potentials come back
    (:func:`run_sample`)."""

    target = "lava"
    #: run options beyond the protocol's record / record_states / progress: none
    run_options: dict[str, str] = {}

    def __init__(self, program: LoihiProgram, select_tag: str = "fixed_pt", timeout: float | None = None,
                 conv: bool = True, sparse_density: float | None = SPARSE_DENSITY,
                 sparse_min_entries: int = SPARSE_MIN_ENTRIES, readback: str = "var"):
        if select_tag not in TAGS:
            raise InputError(f"select_tag must be one of {', '.join(TAGS)}, got {select_tag!r}")
        if readback not in READBACKS:
            raise InputError(f"readback must be one of {', '.join(READBACKS)}, got {readback!r}")
        self.readback = readback
        self.program = program
        self.select_tag = select_tag
        self.timeout = timeout
        self.conv = conv
        self.sparse_density = sparse_density
        self.sparse_min_entries = sparse_min_entries
        self._plan: Lowering | None = None
        self._counter: LoihiCounts | None = None

    @property
    def graph(self):
        return self.program.graph

    @property
    def mapping(self):
        return self.program.mapping

    def lowering(self) -> Lowering:
        """The Lava process of every synapse and the Lava shape of every node (cached)."""
        if self._plan is None:
            self._plan = lower(self.program, self.select_tag, self.conv, self.sparse_density or 0.0,
                               self.sparse_min_entries)
        return self._plan

    def counter(self) -> LoihiCounts:
        if self._counter is None:
            self._counter = LoihiCounts(self.program)
        return self._counter

    def run(self, x, record=None, record_states: bool = False, progress=None, **options) -> RunResult:
        """Run sample by sample in Lava (fresh processes each); counts as the emulator's
        (:mod:`.counts`), from the spikes Lava's processes emitted."""
        check_options(f"{self.target} run", options, self.run_options)
        prog = self.program
        inputs = as_inputs(x, list(prog.inputs), prog.inputs, torch.float32, "cpu")
        check_binary(inputs)
        batch, steps = (int(d) for d in next(iter(inputs.values())).shape[:2])
        rec = record_list(prog, record, self.target)
        probe_v = [r for r in rec if r not in prog.inputs] if record_states else []
        pops = {p.name for p in prog.populations}
        sink = sorted({s.src for s in prog.synapses if s.src in pops} | (set(self.counter().feeders) & pops))
        t0 = time.perf_counter()
        samples = []
        for b in range(batch):
            xs = {k: v[b].reshape(steps, -1).numpy().T for k, v in inputs.items()}
            samples.append(run_sample(prog, xs, steps, self.select_tag, probe_v, self.timeout,
                                      plan=self.lowering(), sink=sink, readback=self.readback))
            if progress is not None:
                progress(b + 1, batch)
        wall = time.perf_counter() - t0
        spikes = {p: [smp[0].get(p) for smp in samples] for p in pops}
        vs = {p: [smp[1].get(p) for smp in samples] for p in pops}
        outputs = {o: _value(prog.pop(pn), spikes[pn], vs[pn], batch, steps) for o, pn in prog.outputs.items()}
        records = {r: inputs[r].clone() if r in prog.inputs else _value(prog.pop(r), spikes[r], vs[r], batch, steps)
                   for r in rec}
        states = {r: _value(prog.pop(r), spikes[r], vs[r], batch, steps, True) for r in probe_v}
        counts = self._counts(inputs, samples, batch, steps)
        return RunResult(outputs=outputs, records=records, states=states, counts=counts, target=self.target,
                         dt=prog.dt, batch=batch, steps=steps,
                         info={"select_tag": self.select_tag, "wall_s": wall, "lag": declared_lag(prog),
                               "readout_spikes": int(sum(np.sum(a) for p in prog.populations if not p.spiking
                                                         for a in spikes[p.name] if a is not None)),
                               "processes": self.lowering().processes(),
                               **({"loop_delays": loop_delays(prog)} if loop_delays(prog) else {})})

    def _counts(self, inputs, samples, batch: int, steps: int) -> dict:
        """The protocol counts of the run, sample by sample (:mod:`.counts`)."""
        prog, counter = self.program, self.counter()
        fan = stored_fanout(prog)
        synapse: dict = {}
        spikes = {p.name: 0 for p in prog.populations}
        stored = [0] * len(prog.synapses)
        for b, (spk, _) in enumerate(samples):
            src = {k: v[b].reshape(steps, -1).numpy() for k, v in inputs.items()}
            src.update({k: np.asarray(a, np.float32) for k, a in spk.items()})
            add_counts(synapse, counter.synapses({f: torch.as_tensor(src[f][None]) for f in counter.feeders}, 1, steps))
            for p in prog.populations:
                spikes[p.name] += int(np.sum(spk[p.name])) if p.name in spk else 0
            for i, s in enumerate(prog.synapses):
                stored[i] += int(round(float((src[s.src] != 0).sum(0) @ fan[i])))
        return counter.assemble(batch, steps, synapse, spikes, stored)

    def describe(self) -> dict:
        from .describe import describe_program

        opts = {**self.program.options, "select_tag": self.select_tag, "timeout": self.timeout, "conv": self.conv,
                "sparse_density": self.sparse_density, "sparse_min_entries": self.sparse_min_entries,
                "readback": self.readback}
        return describe_program(self.program, self.target, self.run_options, opts,
                                resources={"processes": self.lowering().processes()})

    def save(self, path):
        return self.program.save(path)

    @classmethod
    def load(cls, path, select_tag: str = "fixed_pt", **kw) -> "LavaProgram":
        return cls(LoihiProgram.load(path), select_tag, **kw)


def _value(pop, b_list_s, b_list_v, batch, steps, as_state=False) -> torch.Tensor:
    """(batch, steps, *shape) spikes of a spiking population, else its v in NIR units."""
    if pop.spiking and not as_state:
        a = np.stack(b_list_s).astype(np.float32)
    else:
        a = (np.stack(b_list_v).astype(np.float64) / np.asarray(pop.scale)).astype(np.float32)
    return torch.as_tensor(a.reshape(batch, steps, *pop.shape))


def __getattr__(name):  # LavaTarget lives in .target (kept importable from here)
    if name == "LavaTarget":
        from .target import LavaTarget

        return LavaTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
