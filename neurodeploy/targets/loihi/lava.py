"""Lower a :class:`~.program.LoihiProgram` to real Lava processes and run them.

Each population becomes a ``lava.proc.lif.process.LIF``, each synapse a
``lava.proc.dense.process.Dense`` (``DelayDense`` when it has delays); inputs come from
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

import numpy as np
import torch

from ...errors import InputError, NeurodeployError, UnsupportedError
from ..base import RunResult, as_inputs
from .emulator import check_binary, declared_lag
from .program import LoihiProgram

TAGS = ("fixed_pt", "floating_pt")


def _lava():
    try:
        import lava.magma.core.run_conditions as rc  # noqa: F401
        import lava.magma.core.run_configs as rcfg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnsupportedError(f"target 'lava' needs lava-nc (Python 3.10): {exc}") from None
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, DelayDense=DelayDense, Sink=Sink,
                Source=Source, LIF=LIF, Monitor=Monitor)


def build(program: LoihiProgram, x_sample: dict[str, np.ndarray], steps: int, tag: str, probe_v=()):
    """Build the Lava processes for one sample. ``x_sample[name]``: (n, steps) 0/1.
    Returns (processes dict, sinks, monitors)."""
    L = _lava()
    fixed = tag == "fixed_pt"
    procs: dict[str, object] = {}
    for name, shape in program.inputs.items():
        data = x_sample[name].astype(np.int32 if fixed else np.float64)
        procs[name] = L["Source"](data=data)
    for p in program.populations:
        if fixed:
            kw = dict(du=int(p.du), dv=int(p.dv), vth=int(p.vth), bias_mant=np.asarray(p.bias_mant, np.int32),
                      bias_exp=int(p.bias_exp))
        else:
            kw = dict(du=float(p.du_f), dv=float(p.dv_f), vth=float(p.vth_f), bias_mant=np.asarray(p.bias_f, np.float64),
                      bias_exp=0)
        procs[p.name] = L["LIF"](shape=(p.n,), **kw)
    for i, s in enumerate(program.synapses):
        w = np.asarray(s.weights, np.int32) if fixed else np.asarray(s.weights_f, np.float64)
        kw = dict(weights=w)
        if fixed:
            kw.update(weight_exp=int(s.weight_exp), num_weight_bits=8)
        if s.delays is not None:
            syn = L["DelayDense"](delays=np.asarray(s.delays, dtype=int), max_delay=s.max_delay, **kw)
        else:
            syn = L["Dense"](**kw)
        procs[f"syn{i}"] = syn
        procs[s.src].s_out.connect(syn.s_in)
        syn.a_out.connect(procs[s.dst].a_in)
    sinks, monitors = {}, {}
    for p in program.populations:
        if p.spiking:
            sinks[p.name] = L["Sink"](shape=(p.n,), buffer=steps)
            procs[p.name].s_out.connect(sinks[p.name].a_in)
        if not p.spiking or p.name in probe_v:
            mon = L["Monitor"]()
            mon.probe(procs[p.name].v, steps)
            monitors[p.name] = mon
    return procs, sinks, monitors


def _run_inproc(program, x_sample, steps, tag, probe_v):
    """Build, run, read and stop (in ``finally``) one sample in this OS process."""
    L = _lava()
    procs, sinks, monitors = build(program, x_sample, steps, tag, probe_v)
    anchor = next(iter(procs.values()))
    try:
        anchor.run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](select_tag=tag))
        spk = {k: np.asarray(s.data.get()).T.copy() for k, s in sinks.items()}
        vs = {}
        for k, m in monitors.items():
            data = m.get_data()
            vs[k] = np.asarray(data[procs[k].name]["v"]).reshape(steps, -1).copy()
        return spk, vs
    finally:
        try:
            anchor.stop()
        except Exception:  # noqa: BLE001 - the runtime may not have started
            pass


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
               probe_v=(), timeout: float | None = None, isolate: bool = True):
    """Run one sample in Lava. Returns ``(spikes {pop: (steps, n)}, v {pop: (steps, n)})``.

    With ``isolate`` (default) it runs through :func:`run_isolated`, bounded by ``timeout``
    seconds (default 60 s + 50 ms per step and process)."""
    _lava()  # fail early, in this process, if lava is missing
    budget = timeout if timeout is not None else default_timeout(steps, len(program.populations) + len(program.synapses))
    if not isolate:
        try:
            return _run_inproc(program, x_sample, steps, tag, probe_v)
        except Exception as exc:
            raise NeurodeployError(f"lava: running {steps} steps failed: {type(exc).__name__}: {exc}") from exc
    return run_isolated(_run_inproc, (program, x_sample, steps, tag, tuple(probe_v)), budget, f"running {steps} steps")


class LavaProgram:
    """A LoihiProgram run through Lava's CPU simulator, sample by sample."""

    target = "lava"

    def __init__(self, program: LoihiProgram, select_tag: str = "fixed_pt", timeout: float | None = None):
        if select_tag not in TAGS:
            raise InputError(f"select_tag must be one of {', '.join(TAGS)}, got {select_tag!r}")
        self.program = program
        self.select_tag = select_tag
        self.timeout = timeout

    def run(self, x, record=None, record_states: bool = False, progress=None, **kw) -> RunResult:
        prog = self.program
        inputs = as_inputs(x, list(prog.inputs), prog.inputs, torch.float32, "cpu")
        check_binary(inputs)
        batch, steps = next(iter(inputs.values())).shape[:2]
        names = [p.name for p in prog.populations]
        if record in (None, (), []):
            rec = []
        elif record == "all":
            rec = list(names)
        else:
            rec = [record] if isinstance(record, str) else list(record)
            for r in rec:
                if r not in names:
                    raise InputError(f"cannot record node '{r}' on lava: neuron nodes are {', '.join(names)}")
        probe_v = rec if record_states else []
        spikes = {p: [] for p in names}
        vs = {p: [] for p in names}
        t0 = time.perf_counter()
        for b in range(batch):
            xs = {k: v[b].reshape(steps, -1).numpy().T for k, v in inputs.items()}
            spk, v = run_sample(prog, xs, steps, self.select_tag, probe_v, self.timeout)
            for p in names:
                spikes[p].append(spk.get(p))
                vs[p].append(v.get(p))
            if progress is not None:
                progress(b + 1, batch)
        wall = time.perf_counter() - t0

        def value(pop, b_list_s, b_list_v, as_state=False):
            if pop.spiking and not as_state:
                a = np.stack(b_list_s).astype(np.float32)
            else:
                a = (np.stack(b_list_v).astype(np.float64) / np.asarray(pop.scale)).astype(np.float32)
            return torch.as_tensor(a.reshape(batch, steps, *pop.shape))

        outputs = {o: value(prog.pop(pn), spikes[pn], vs[pn]) for o, pn in prog.outputs.items()}
        records = {r: value(prog.pop(r), spikes[r], vs[r]) for r in rec}
        states = {r: value(prog.pop(r), spikes[r], vs[r], True) for r in probe_v}
        counts = {}
        for p in prog.populations:
            c = {"neuron_updates": p.n * batch * steps}
            if p.spiking:
                c["spikes"] = int(np.sum(spikes[p.name]))
            counts[p.name] = c
        for s in prog.synapses:
            src = spikes[s.src] if s.src not in prog.inputs else [xs_.reshape(steps, -1).numpy() for xs_ in inputs[s.src]]
            fan = (np.asarray(s.weights) != 0).sum(0)
            ev = int(sum(((np.asarray(a) != 0) @ fan).sum() for a in src))
            c = counts.setdefault(s.name, {})
            c["synaptic_events"] = c.get("synaptic_events", 0) + ev
            c["dense_synops"] = c.get("dense_synops", 0) + int(s.weights.size) * batch * steps
        return RunResult(outputs=outputs, records=records, states=states, counts=counts, target="lava", dt=prog.dt,
                         batch=int(batch), steps=int(steps),
                         info={"select_tag": self.select_tag, "wall_s": wall,
                               "lag": declared_lag(prog)})

    def save(self, path):
        return self.program.save(path)

    @classmethod
    def load(cls, path, select_tag: str = "fixed_pt") -> "LavaProgram":
        return cls(LoihiProgram.load(path), select_tag)


class LavaTarget:
    """Target "lava": the quantized program run by Lava's own process models."""

    name = "lava"

    def compile(self, graph, hardware=None, select_tag: str = "fixed_pt", timeout: float | None = None,
                **options) -> LavaProgram:
        from .emulator import EmulatorTarget

        prog = EmulatorTarget().compile(graph, hardware, **options)
        prog.target = "lava"
        return LavaProgram(prog, select_tag, timeout)
