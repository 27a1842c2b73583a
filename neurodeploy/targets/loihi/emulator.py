"""Bit-exact, batched torch emulation of Lava's fixed-point LIF + Dense models.

Reproduces ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc`` / ``PyDelayDenseModelBitAcc``
(lava-nc 0.10.0) step for step, over a batch of samples, on CPU or CUDA:

* every synapse sends at step t what it accumulated at step t−1 (Lava's ``a_buff``), so a
  feed-forward chain of L synapses lags L steps behind the NIR reference; delays add
  ``d`` more steps (DelayDense ring buffer);
* the accumulated input is shifted by ``weight_exp`` (``<<`` or arithmetic ``>>``, i.e.
  floor), sent through an int32 channel, summed over synapses (int32), shifted ``<< 6``;
* current: ``u = trunc(u·(4095−du)/4096) + a``, then Lava's single 24-bit wrap;
  voltage: ``v = trunc(v·(4096−dv)/4096) + u + (bias_mant << bias_exp)`` clipped to
  ±(2^23−1); spike where ``v > vth << 6``; ``v = 0`` where spiked.

How it is computed (and why it is still exact)
----------------------------------------------

* **Population by population, not step by step.** Within one step a population only sees
  what the synapses accumulated at the previous step, so its whole trajectory depends on
  its sources' spikes at earlier steps only. The populations are grouped into strongly
  connected components (a recurrent layer, or a cycle of layers) and run in topological
  order; each group steps through time on its own, and every synapse from *outside* the
  group (inputs, earlier layers) into a population on the fast path is one batched GEMM
  over all steps and samples at once, shifted one step (plus its delays) in time. Only
  synapses inside a group (recurrence) and into checked populations are stepped.
* **Integers in floating point.** Spikes are 0/1 and mantissas are integers, so every
  partial sum of ``W @ s`` is an integer bounded by the largest row sum of ``|W|``; float32
  represents every integer of magnitude ≤ 2^24 exactly. Into a fast-path population that
  bound (times the ``2^(weight_exp+6)`` folded into the weights) is < 2^23: float32 GEMMs,
  float32 sums of several synapses and of the bias while the proven total is ≤ 2^24 (else
  float64). Into a checked population: float32 while the row sum is ≤ 2^24, else float64
  (exact to 2^53). The states ``u`` and ``v`` are float64 (every product ``u·(4095−du)``,
  ``v·(4096−dv)`` is an integer below 2^53), and multiplying by the exact binary fraction
  ``(4096−dv)/4096`` then truncating equals Lava's
  ``sign(x)·(|x| >> 12)``. Left shifts are multiplications by powers of two, right shifts
  ``floor(x·2^−k)`` (= arithmetic shift); spikes are ``clamp(v − vth·64, 0, 1)`` (integers)
  and the reset ``v − v·s``. On CPU, a group of fast-path populations whose bounds keep
  every value ≤ 2^24 and that has no stepped synapse runs :mod:`.cpu_step` instead: the same
  integers in float32 (about half the torch calls, no widening copies).
* **One GEMM per source.** Synapses from one source into one fast-path population with
  ``weight_exp ≥ 0`` and no delays are summed into one matrix (:func:`_merge_same_source`):
  an excitatory / inhibitory pair of ``weight_sign="split"`` costs one GEMM, not two.
* **Proven bounds skip checks.** Per population, static bounds on the input (largest row
  sums of the positive / negative weights of every incoming synapse, shifted) give: no
  int32 channel can wrap (the fast path: ``|a_in << 6| < 2^23``); ``|u| ≤ A·4096/(du+1)``,
  so the 24-bit current wrap is impossible when that is < 2^23; ``v`` stays within
  ``[−N, P]`` (``N = (U⁻+b⁻)·4096/dv``, ``P = min(vth<<6, (U⁺+b⁺)·4096/dv)``), so the
  ±(2^23−1) clip is impossible on a side where the bound holds. Checks that cannot happen
  are not computed (their event counts are 0); checks that can happen are computed and
  counted exactly. Populations without the int32 guarantee run the fully checked path
  (every int32 wrap of Lava's dtypes reproduced and counted).
* **CPU.** The batch is cut into chunks of at most :data:`CPU_CHUNK` samples (a chunk's
  per-step state stays in cache), at least one per worker thread, run by worker threads, each chunk on one thread: torch's intra-op
  pool is set to one thread during a run (and restored), because OpenMP's barriers stall
  for milliseconds whenever another process holds one of the cores. Chunk buffers are
  reused between chunks and runs (:func:`release_workspaces` frees them). Per-step records
  are time-major in memory (a step's slice is one block; the GEMMs read either layout), and
  the protocol's synapse counts of a node fed straight by one population or input are that
  feeder's spike column sums. Everything runs under ``torch.inference_mode``; the results
  are ordinary tensors.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np
import torch

from ...errors import InputError, UnsupportedError
from ..base import RunResult, as_inputs, check_options, record_set
from ..counting import synapse_counts
from . import cpu_step, fused
from .counts import LoihiCounts
from .program import LoihiProgram, declared_lag, lags  # noqa: F401  (lags: re-exported)

U_MAX, V_LIM = cpu_step.U_MAX, cpu_step.V_LIM  # Lava's 24-bit u wrap and v clip
F32_EXACT = 1 << 24  # every integer of magnitude ≤ 2^24 is a float32


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """int32 wrap of integer-valued tensors (int64, or float64 holding integers < 2^53)."""
    return torch.remainder(x + (1 << 31), 1 << 32) - (1 << 31)


def _shifted(x: int, e: int) -> int:
    # |floor(x·2^e)| ≤ |x| for integers and e < 0: the unshifted sum bounds it
    return x << e if e >= 0 else x


def gemm_dtype(program: LoihiProgram) -> torch.dtype:
    """The widest GEMM dtype a run of ``program`` uses (float64 only for a synapse whose
    largest row sum of |W| exceeds 2^24)."""
    return torch.float64 if any(_syn_dtype(s) == torch.float64 for s in program.synapses) else torch.float32


def _syn_dtype(s) -> torch.dtype:
    """float32 when every partial sum of ``W @ spikes`` is an exact float32 (|.| ≤ 2^24)."""
    return torch.float32 if s.row_bounds()[2] <= F32_EXACT else torch.float64


def _device(device) -> str:
    device = str(device or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return device


def check_binary(inputs: dict[str, torch.Tensor], ws=None) -> None:
    for k, t in inputs.items():
        # t − t·t is 0 exactly for t ∈ {0, 1}, also in floating point (fl(t·t) = t only for
        # t ∈ {0, 1}; ±inf and NaN give NaN or ±inf); one pass, then one min/max reduction
        if t.is_floating_point() and t.numel():
            tmp = ws.get(("check", k), t.shape, t.dtype) if ws is not None else torch.empty_like(t)
            lo, hi = torch.aminmax(torch.addcmul(t, t, t, value=-1, out=tmp))
            bad = not (float(lo) == 0.0 and float(hi) == 0.0)
        else:
            bad = bool(((t != 0) & (t != 1)).any())
        if bad:
            mask = (t != 0) & (t != 1)
            raise InputError(
                f"input '{k}': Loihi inputs are spikes; values must be 0 or 1 (got e.g. "
                f"{float(t[mask][0])}); encode the data first (RateEncoder)"
            )


# ---------------------------------------------------------------------------------------
# plan: per population / synapse constants, bounds and which checks are needed
# ---------------------------------------------------------------------------------------
class _Syn:
    __slots__ = ("idx", "syn", "src", "dst", "e", "delays", "L", "nd", "W", "gd", "act", "fan", "conv", "tot")


class _Pop:
    __slots__ = ("pop", "name", "n", "safe", "ustate", "cu", "cv", "mu", "mv", "decay_v", "th", "bias", "bias32",
                 "bias_max", "wrap", "clip_hi", "clip_lo", "f32", "scale", "incoming")


def _plan(program: LoihiProgram, dev: str):
    """Constants of every population and synapse, and the checks each population needs."""
    pops = program.populations
    P: dict[str, _Pop] = {}
    for p in pops:
        q = _Pop()
        q.pop, q.name, q.n = p, p.name, p.n
        bias = np.asarray(p.bias_mant, np.int64)
        bias = bias << p.bias_exp if p.bias_exp >= 0 else bias >> -p.bias_exp
        b_pos = int(max(bias.max(initial=0), 0))
        b_neg = int(max((-bias).max(initial=0), 0))
        # static bounds on what the synapses send (a_in units), summed over synapses
        a_pos = a_neg = bound = 0
        for s in program.incoming(p.name):
            pos, neg, tot = s.row_bounds()
            a_pos += _shifted(pos, s.weight_exp)
            a_neg += _shifted(neg, s.weight_exp)
            bound += _shifted(tot, s.weight_exp)
        # safe: |a_in << 6| < 2^23 and |bias| < 2^24, hence |u| < 2^23 after Lava's single
        # wrap, |u| < 2^24 before it and |v| < 2^31 before the clip: no int32 wrap anywhere
        q.safe = (bound << 6) < U_MAX and max(b_pos, b_neg) < (1 << 24)
        q.mu, q.mv = 4095 - p.du, 4096 - p.dv
        q.cu, q.cv = q.mu / 4096, q.mv / 4096  # exact binary fractions
        q.decay_v = p.dv != 0
        q.ustate = (not q.safe) or p.du != 4095  # du = 4095: u is just this step's input
        q.th = float(int(p.vth) << 6)
        q.bias = torch.as_tensor(bias.astype(np.float64), device=dev) if bias.any() else None
        q.bias_max = max(b_pos, b_neg)
        q.f32 = False
        q.scale = torch.as_tensor(np.asarray(p.scale, np.float64), device=dev)
        if q.safe:
            # u: |u_t| ≤ d·|u_{t−1}| + A  ⇒  |u| ≤ A / (1 − d) = A·4096/(du+1) while nothing wraps
            one_m_du = Fraction(p.du + 1, 4096)
            u_pos, u_neg = Fraction(a_pos << 6) / one_m_du, Fraction(a_neg << 6) / one_m_du
            q.wrap = not (u_pos <= U_MAX and u_neg < U_MAX)  # Lava wraps u > 2^23 and u ≤ −2^23
            if q.wrap:  # a wrap can put u anywhere in (−2^23, 2^23]
                u_pos = u_neg = Fraction(U_MAX)
            # v after the reset stays in [−N, P]; before the clip v ≤ c·P + U⁺ + b⁺, ≥ −(c·N + U⁻ + b⁻)
            c = Fraction(4096 - p.dv, 4096)
            th = Fraction(int(p.vth) << 6)
            if p.dv > 0:
                P_ = min(th, (u_pos + b_pos) / (1 - c))
                N_ = (u_neg + b_neg) / (1 - c)
            else:
                P_ = th
                N_ = Fraction(0) if u_neg + b_neg == 0 else None
            q.clip_hi = c * P_ + u_pos + b_pos > V_LIM
            q.clip_lo = N_ is None or c * N_ + u_neg + b_neg > V_LIM
            # float32 step (cpu_step.py): |v| ≤ V after the reset / clip (≤ th above, ≥ −N or
            # the clip below), and every partial sum c·|v| + |u| + |bias| ≤ 2^24
            V = max(th, Fraction(V_LIM) if N_ is None else min(N_, Fraction(V_LIM)))
            q.f32 = (0 <= q.mu < 4096 and 0 < q.mv <= 4096 and th <= V_LIM
                     and c * V + max(u_pos, u_neg) + q.bias_max <= F32_EXACT)
        else:
            q.wrap = q.clip_hi = q.clip_lo = True
        q.bias32 = q.bias.to(torch.float32) if q.bias is not None and q.f32 else None
        q.incoming = []
        P[p.name] = q
    S = []
    for s in program.synapses:
        w = np.asarray(s.weights, np.int64)
        q = _Syn()
        q.idx = len(S)
        q.syn, q.src, q.dst, q.e = s, s.src, s.dst, int(s.weight_exp)
        q.tot = s.row_bounds()[2] << (q.e + 6 if q.e >= 0 else 6)  # |W| row-sum bound, act units
        q.act = P[s.dst].safe  # safe destination: sends a_in << 6 (act units), else raw a_buff
        scale_exp = q.e + 6 if (q.act and q.e >= 0) else 0  # folded into the weights
        q.gd = torch.float32 if q.act else _syn_dtype(s)  # act: every partial sum < 2^23
        q.fan = torch.as_tensor(s.fanout(), device=dev)
        q.conv = _conv_args(s)
        if q.conv is not None:  # a kernel: one convolution, no matrix
            q.delays, q.L, q.nd = None, 1, s.shape[0]
            q.W = torch.as_tensor(w.astype(np.float64) * float(2 ** scale_exp), dtype=q.gd, device=dev)
            P[s.dst].incoming.append(q)
            S.append(q)
            continue
        if s.delays is None:
            mats, q.delays, q.L = [w], None, 1
        else:
            d = np.asarray(s.delays, np.int64)
            q.delays = [int(k) for k in np.unique(d) if np.any(np.where(d == k, w, 0))]
            mats = [np.where(d == k, w, 0) for k in q.delays]
            q.L = s.max_delay + 1
        q.nd = w.shape[0]
        W = np.concatenate([m.T for m in mats], 1) if mats else np.zeros((w.shape[1], 0), np.int64)
        q.W = torch.as_tensor(W.astype(np.float64) * float(2 ** scale_exp), dtype=q.gd, device=dev)
        P[s.dst].incoming.append(q)
        S.append(q)
    _merge_same_source(P)
    return P, S


def _merge_same_source(P) -> None:
    """One GEMM (or convolution) per source for the synapses into a fast-path population
    whose shifts are left shifts folded into the weights (``weight_exp ≥ 0``) and that have
    no delays: they add up before any rounding, ``Σ_k (W_k s)·2^(e_k+6) = (Σ_k W_k·2^(e_k+6)) s``,
    every partial sum below the sum of their |W| bounds (< 2^23 on the fast path). An
    excitatory / inhibitory pair (``weight_sign="split"``) is one matrix again. The program's
    synapses (``S``, their counts) are unchanged; only what the populations compute from."""
    for q in P.values():
        groups: dict = {}
        for s in q.incoming:
            if s.act and s.e >= 0 and s.delays is None:
                geo = None if s.conv is None else (s.conv[0], tuple(sorted(s.conv[1].items())))
                groups.setdefault((s.src, geo), []).append(s)
        for ss in groups.values():
            if len(ss) < 2:
                continue
            m = _Syn()
            m.idx, m.syn, m.src, m.dst, m.e = ("merged", ss[0].idx), None, ss[0].src, q.name, 0
            m.act, m.gd, m.fan, m.conv, m.delays, m.L, m.nd = True, torch.float32, None, ss[0].conv, None, 1, ss[0].nd
            m.W = ss[0].W.clone()
            for s in ss[1:]:
                m.W += s.W  # integers below 2^23: exact
            m.tot = sum(s.tot for s in ss)
            at = q.incoming.index(ss[0])
            q.incoming = [s for s in q.incoming if s not in ss]
            q.incoming.insert(at, m)


def _conv_args(s):
    """(in (C, H, W), conv2d keyword arguments) of a kernel synapse, else None."""
    if not s.is_kernel:
        return None
    if s.delays is not None:
        raise UnsupportedError(f"synapse '{s.name}': a convolution kernel with delays is not emulated")
    g = s.conv
    return tuple(g["in_shape"]), dict(stride=tuple(g["stride"]), padding=tuple(g["padding"]),
                                      dilation=tuple(g["dilation"]), groups=int(g["groups"]))


def _apply(q: _Syn, x: torch.Tensor) -> torch.Tensor:
    """What synapse ``q`` accumulates from source values ``x`` (k, n_src) in ``q.gd``: a GEMM,
    or for a kernel the convolution (exact under the same bound: every partial sum is an
    integer ≤ the kernel's |W| sum; TF32 is off, and on CUDA the result is rounded, which is
    a no-op for an exact algorithm and guards against cuDNN picking a transform-based one)."""
    x = x.to(q.gd)
    if q.conv is None:
        return x @ q.W
    shape, kw = q.conv
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        y = torch.nn.functional.conv2d(x.reshape(-1, *shape), q.W, None, **kw).reshape(x.shape[0], -1)
    return y.round_() if y.is_cuda else y


def plan_of(program: LoihiProgram, dev: str):
    """``(_plan, _blocks)`` of ``program`` on ``dev``, computed once and kept in the program
    (the proven bounds and the device weights do not change between runs; a program whose
    synapses or weights were replaced gets a new plan)."""
    key = (dev, tuple((id(s), id(s.weights), id(s.delays)) for s in program.synapses),
           tuple((id(p), p.du, p.dv, p.vth, id(p.bias_mant)) for p in program.populations))
    got = program.__dict__.get("_emulator_plan")
    if got is None or got[0] != key:
        got = program.__dict__["_emulator_plan"] = (key, (_plan(program, dev), _blocks(program)))
    return got[1]


def _blocks(program: LoihiProgram) -> list[list[str]]:
    """Strongly connected components of the population graph, in topological order."""
    names = [p.name for p in program.populations]
    idx = {n: i for i, n in enumerate(names)}
    n = len(names)
    reach = np.eye(n, dtype=bool)
    for s in program.synapses:
        if s.src in idx:
            reach[idx[s.src], idx[s.dst]] = True
    for k in range(n):  # transitive closure (populations are few)
        reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
    comp: dict[int, int] = {}
    members: list[list[int]] = []
    for i in range(n):
        if i not in comp:
            m = [j for j in range(n) if reach[i, j] and reach[j, i]]
            for j in m:
                comp[j] = len(members)
            members.append(m)
    # topological order of the condensation (Kahn), ties in program order
    succ = {b: set() for b in range(len(members))}
    indeg = {b: 0 for b in range(len(members))}
    for s in program.synapses:
        if s.src in idx:
            a, b = comp[idx[s.src]], comp[idx[s.dst]]
            if a != b and b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
    ready = sorted(b for b in indeg if indeg[b] == 0)
    out = []
    while ready:
        b = ready.pop(0)
        out.append([names[j] for j in members[b]])
        for c in sorted(succ[b]):
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
        ready.sort()
    return out


def _shift_act(r: torch.Tensor, e: int) -> torch.Tensor:
    """Accumulated sums → what a synapse into a safe population sends, in act units (<< 6).
    For e ≥ 0 the factor 2^(e+6) is already in the weights."""
    if e < 0:
        r.mul_(2.0 ** e).floor_().mul_(64.0)
    return r


def _shift_raw(r: torch.Tensor, e: int) -> torch.Tensor:
    """Accumulated sums → Lava's a_buff (float64, integer valued, not yet int32-wrapped)."""
    r = r.to(torch.float64)
    if e > 0:
        r.mul_(2.0 ** e)
    elif e < 0:
        r.mul_(2.0 ** e).floor_()
    return r


# ---------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------
#: samples per chunk on CPU: the per-step state of a chunk stays in the core's cache
CPU_CHUNK = 1024


class _Workspace:
    """Buffers reused across chunks and runs (on CPU, fresh multi-MB allocations are
    returned to the OS when freed and page-faulted in again: that costs more than the
    arithmetic). ``get`` hands out a tensor of the given shape/dtype for ``key``; entries
    not asked for during a run are dropped at its end."""

    def __init__(self, dev: str):
        self.dev = dev
        self.bufs: dict = {}
        self.used: set = set()

    def get(self, key, shape, dtype, zero: bool = False) -> torch.Tensor:
        shape = tuple(int(d) for d in shape)
        numel = int(np.prod(shape)) if shape else 1
        t = self.bufs.get(key)
        if t is None or t.dtype != dtype or t.numel() < numel:
            t = self.bufs[key] = torch.empty(numel, dtype=dtype, device=self.dev)
        self.used.add(key)
        out = t[:numel].view(shape)
        return out.zero_() if zero else out

    def prune(self) -> None:
        self.bufs = {k: v for k, v in self.bufs.items() if k in self.used}
        self.used = set()


_POOL: list[_Workspace] = []
_POOL_LOCK = threading.Lock()


def _take_workspaces(n: int, dev: str) -> list[_Workspace]:
    if dev != "cpu":  # the CUDA caching allocator already reuses memory
        return [_Workspace(dev) for _ in range(n)]
    with _POOL_LOCK:
        got = [_POOL.pop() for _ in range(min(n, len(_POOL)))]
    return got + [_Workspace(dev) for _ in range(n - len(got))]


def _give_back(ws: list[_Workspace], dev: str) -> None:
    if dev != "cpu":
        return
    for w in ws:
        w.prune()
    with _POOL_LOCK:
        _POOL.extend(ws)
        del _POOL[4:]  # keep a few (one per worker thread)


_THREADS = {"active": 0, "saved": 1}


class _OneIntraOpThread:
    """torch's intra-op pool at one thread while any CPU run is active (runs from several
    user threads at once restore the caller's setting only when the last one ends)."""

    def __enter__(self):
        with _POOL_LOCK:
            if _THREADS["active"] == 0:
                _THREADS["saved"] = torch.get_num_threads()
                torch.set_num_threads(1)
            _THREADS["active"] += 1
        return self

    def __exit__(self, *exc):
        with _POOL_LOCK:
            _THREADS["active"] -= 1
            if _THREADS["active"] == 0:
                torch.set_num_threads(_THREADS["saved"])
        return False


def release_workspaces() -> None:
    """Free the buffers the emulator keeps between runs."""
    with _POOL_LOCK:
        _POOL.clear()


#: run options of the emulator ({name: meaning}; any other is an InputError)
RUN_OPTIONS = {
    "device": "torch device: cpu | cuda[:i] (default: the compile-time device, else cpu)",
    "check_inputs": "check that the inputs are 0/1 spikes (default True)",
    "threads": "CPU worker threads, one chunk each (default: torch's intra-op thread count)",
    "chunk": "samples per chunk (default on CPU: the batch shared by the threads, at most 1024; CUDA: the whole batch)",
}


def record_list(program: LoihiProgram, record, target: str) -> list[str]:
    """Nodes to record (:func:`~neurodeploy.targets.base.record_set`; ``"all"`` = every
    neuron and spiking node): populations and inputs, the nodes left after folding."""
    if program.graph is None:  # a hand-built program: its populations and inputs
        names = [p.name for p in program.populations]
        rec = names if record == "all" else [] if record in (None, (), []) else \
            [record] if isinstance(record, str) else list(record)
        known = set(names) | set(program.inputs)
        bad = [r for r in rec if r not in known]
        if bad:
            raise InputError(f"--record: no node '{bad[0]}' (nodes: {', '.join(sorted(known))})")
        return rec
    rec = record_set(record, program.graph)
    names = {p.name for p in program.populations}
    for r in rec:
        if r not in names and r not in program.inputs:
            raise InputError(
                f"cannot record node '{r}' on {target}: only neuron nodes and inputs exist after quantization "
                f"(linear nodes are folded into synapses); neuron nodes: {', '.join(sorted(names))}"
            )
    return rec


def run_program(program: LoihiProgram, x, record=None, record_states: bool = False, progress=None, device=None,
                 check_inputs: bool = True, threads: int | None = None, chunk: int | None = None,
                 counter: LoihiCounts | None = None) -> RunResult:
    """Run ``program`` on a batch of spike trains ``x`` ((batch, time, *shape) of 0/1, or a
    dict of them per input). Bit-identical to Lava's fixed-point models; see the module
    docstring for how. Counts: :mod:`.counts` (``counter``: a cached :class:`LoihiCounts`).

    On CPU the batch is split into chunks of ``chunk`` samples (default: the batch shared
    evenly by the threads, at most 1024 samples a chunk, so a chunk's state stays in cache)
    run by ``threads`` worker threads (default: torch's intra-op thread
    count), each chunk single-threaded: torch's intra-op pool is set to one thread for the
    duration of the run (and restored), which avoids OpenMP's barrier stalls when the cores
    are shared with other processes."""
    dev = _device(device or program.options.get("device"))
    inputs = as_inputs(x, list(program.inputs), program.inputs, torch.float32, dev)
    batch, steps = (int(d) for d in next(iter(inputs.values())).shape[:2])
    rec = record_list(program, record, program.target)
    counter = counter if counter is not None else LoihiCounts(program)
    cpu = not dev.startswith("cuda")
    want_threads = max(1, int(threads) if threads is not None else torch.get_num_threads())
    if chunk is None:  # every worker thread gets a chunk (a batch ≤ 1024 is not one thread's)
        chunk = min(CPU_CHUNK, -(-max(batch, 1) // want_threads)) if cpu else max(batch, 1)
    chunk = max(1, int(chunk))
    bounds = [(b, min(b + chunk, batch)) for b in range(0, batch, chunk)] or [(0, 0)]
    n_threads = max(1, min(want_threads, len(bounds)))
    names = {p.name for p in program.populations}
    shape_of = {p.name: p.shape for p in program.populations}
    # results are allocated here (ordinary tensors); the chunks fill their slices
    want_value = set(program.outputs.values()) | {r for r in rec if r in names}
    want_state = {r for r in rec if r in names} if record_states else set()
    value_t = {n: torch.empty((batch, steps, *shape_of[n]), dtype=torch.float32, device=dev) for n in want_value}
    state_t = {n: torch.empty((batch, steps, *shape_of[n]), dtype=torch.float32, device=dev) for n in want_state}
    plan = plan_of(program, dev)

    def job(b0, b1, ws):
        xs = {k: v[b0:b1] for k, v in inputs.items()}
        if check_inputs:
            check_binary(xs, ws)
        return _run_chunk(*plan[0], plan[1], xs, b1 - b0, steps, want_value, want_state,
                          {n: t[b0:b1] for n, t in value_t.items()}, {n: t[b0:b1] for n, t in state_t.items()},
                          dev, ws, counter, binary=check_inputs)

    parts = _run_chunks(job, bounds, n_threads, dev, cpu, progress, steps)
    counts, info = _merge(program, counter, parts, batch, steps)
    info.update({"device": dev, "gemm_dtype": str(gemm_dtype(program)).replace("torch.", "")})
    if cpu:
        info.update({"threads": n_threads, "chunk": chunk})
    outputs = {o: value_t[pn] for o, pn in program.outputs.items()}
    records = {r: inputs[r].clone(memory_format=torch.contiguous_format) if r in program.inputs else value_t[r]
               for r in rec}
    _distinct(outputs, records)
    states = {r: state_t[r] for r in rec if r in want_state}
    return RunResult(outputs=outputs, records=records, states=states, counts=counts,
                     target=program.target, dt=program.dt, batch=batch, steps=steps, info=info)


def _run_chunks(job, bounds, n_threads, dev, cpu, progress, steps) -> list[dict]:
    """Run ``job(b0, b1, workspace)`` for every chunk, on ``n_threads`` worker threads."""
    wss = _take_workspaces(n_threads, dev)
    free_ws: queue.SimpleQueue = queue.SimpleQueue()
    for w in wss:
        free_ws.put(w)

    def one(b0, b1):
        ws = free_ws.get()
        try:
            with torch.inference_mode():
                return job(b0, b1, ws)
        finally:
            free_ws.put(ws)

    parts = []
    try:
        with _OneIntraOpThread() if cpu else contextlib.nullcontext():
            if n_threads > 1:
                with ThreadPoolExecutor(n_threads) as ex:
                    futs = [ex.submit(one, b0, b1) for b0, b1 in bounds]
                    for i, f in enumerate(futs):
                        parts.append(f.result())
                        if progress is not None:
                            progress(steps * (i + 1) // len(bounds), steps)
            else:
                for i, (b0, b1) in enumerate(bounds):
                    parts.append(one(b0, b1))
                    if progress is not None:
                        progress(steps * (i + 1) // len(bounds), steps)
    finally:
        _give_back(wss, dev)
    return parts


EVENTS = ("u_wrap_events", "v_saturation_events", "int32_wrap_events")


def _merge(program: LoihiProgram, counter: LoihiCounts, parts: list[dict], batch: int, steps: int):
    """Sum the chunks' counts: (RunResult counts keyed by NIR nodes, info with Loihi's own
    wrap/clip event counts, readout spikes and the lag)."""
    from .counts import add_counts

    spikes = {p.name: sum(c["spikes"][p.name] for c in parts) for p in program.populations}
    stored = [sum(c["syn_events"][i] for c in parts) for i in range(len(program.synapses))]
    synapse: dict = {}
    for c in parts:
        add_counts(synapse, c["synapse"])
    counts = counter.assemble(batch, steps, synapse, spikes, stored)
    info = {k: sum(c["ev"][k] for c in parts) for k in EVENTS}
    info["readout_spikes"] = sum(spikes[p.name] for p in program.populations if not p.spiking)
    info["lag"] = declared_lag(program)
    if (program.report or {}).get("loops"):  # compiled with allow_loop_delay: each loop's extra delay
        info["loop_delays"] = [dict(d) for d in program.report["loops"]]
    info["note"] = "Lava timing: each synapse delivers one step after its source fired"
    return counts, info


def _distinct(*dicts) -> None:
    """The same population as output and record: distinct tensors."""
    seen: set = set()
    for d in dicts:
        for k, t in d.items():
            if id(t) in seen:
                d[k] = t.clone()
            seen.add(id(t))


def _rows(a: torch.Tensor) -> torch.Tensor:
    """The (rows, n) matrix of a (batch, steps, n) tensor's elements, without a copy when it
    is batch-major or time-major in memory (a column sum does not care which)."""
    for m in (a, a.transpose(0, 1)):
        if m.is_contiguous():
            return m.view(-1, a.shape[-1])
    return a.reshape(-1, a.shape[-1])


def _record(ws, key, batch: int, steps: int, n: int, dtype, dev: str) -> torch.Tensor:
    """A (batch, steps, n) per-step record: time-major in memory on CPU (``[:, t]`` is one
    contiguous block, the layout the batched GEMMs read as well), batch-major on CUDA (the
    fused kernel's layout)."""
    if dev == "cpu":
        return ws.get(key, (steps, batch, n), dtype).transpose(0, 1)
    return ws.get(key, (batch, steps, n), dtype)


def _colsum(a: torch.Tensor, ws) -> torch.Tensor:
    """Column sums of 0/1 float32 values over all leading dims, exact: a float32 GEMV with a
    row of ones (every partial sum is an integer ≤ the row count ≤ 2^24), float64 beyond."""
    a = _rows(a)
    if a.shape[0] > F32_EXACT or a.dtype != torch.float32:
        return a.sum(0, dtype=torch.float64)
    ones = ws.get(("ones",), (1, a.shape[0]), torch.float32)
    ones.fill_(1.0)
    return torch.mm(ones, a)[0].to(torch.float64)


def _synapse_counts(counter, spk, cnt, binary, batch, steps, ws):
    """The protocol's synapse counts (:meth:`LoihiCounts.synapses`), taken from the column
    sums ``cnt`` where a synapse node's input is one feeder's 0/1 spikes (``binary``: the
    inputs were checked to be 0/1): its nonzero count per element is that column sum, less
    the last ``d`` steps when the path delays by ``d``; otherwise rebuilt by the counter."""
    si = counter.synapse_inputs
    if si is None:
        return {}
    out = {}
    for node, p in si.paths.items():
        (src, d), = p.feeders if p.direct else ((None, None),)
        if src is None or not (binary or src not in counter.program.inputs) or d >= steps:
            return counter.synapses({f: spk[f] for f in counter.feeders}, batch, steps)
        nz = cnt[src] - _colsum(spk[src][:, steps - d:], ws) if d else cnt[src]
        out[node] = synapse_counts(si.fan[node].to(nz.device), nz, batch, steps)
    return out


def _run_chunk(P, S, blocks, X, batch, steps, want_value, want_state, value_out, state_out, dev, ws, counter,
               binary=True):
    """One chunk of the batch: every block of populations in topological order. Fills
    ``value_out`` / ``state_out`` ((batch, steps, *shape) slices) and returns counts (the
    protocol's synapse counts from the feeders' spikes of this chunk, :mod:`.counts`)."""
    f64 = torch.float64
    # (batch, steps, n) float32 0/1 spikes of the inputs and of every population
    spk: dict[str, torch.Tensor] = {k: v.reshape(batch, steps, -1) for k, v in X.items()}
    vals: dict[str, torch.Tensor] = {}  # population → (batch, steps, n) v after reset
    ev = {"u_wrap_events": 0.0, "v_saturation_events": 0.0, "int32_wrap_events": 0.0}
    # spiking outputs / records are written straight into the result tensors
    for name, t in value_out.items():
        if P[name].pop.spiking:
            spk[name] = t.view(batch, steps, -1)

    def sent_all(s):
        """What synapse ``s`` (into a safe population) sends at steps 1..steps−1, in act
        units: its source's spikes at steps 0..steps−2 through one batched GEMM, as a
        (steps−1, batch, width) tensor (time-major; on CPU a view of a batch-major GEMM
        output when the source is batch-major in memory)."""
        width = s.nd if s.conv is not None else s.W.shape[1]
        src = spk[s.src]
        if s.conv is not None:  # batch-major convolution, written time-major
            r = ws.get(("mm", s.idx), (steps - 1, batch, width), s.gd)
            x = src[:, : steps - 1].reshape(batch * (steps - 1), -1)
            r.copy_(_apply(s, x).view(batch, steps - 1, -1).transpose(0, 1))
        elif dev != "cpu":  # CUDA: time-major, contiguous per step (the fused kernel's input)
            r = ws.get(("mm", s.idx), (steps - 1, batch, width), s.gd)
            torch.bmm(src.transpose(0, 1)[: steps - 1].to(s.gd), s.W.expand(steps - 1, -1, -1), out=r)
        elif src.transpose(0, 1).is_contiguous():  # a time-major record: one plain GEMM
            r = ws.get(("mm", s.idx), (steps - 1, batch, width), s.gd)
            rows = src.transpose(0, 1)[: steps - 1].reshape((steps - 1) * batch, src.shape[-1])
            torch.mm(rows.to(s.gd), s.W, out=r.view((steps - 1) * batch, width))
        else:  # batch-major (an input, a result tensor): every step in one plain GEMM
            rb = ws.get(("mm", s.idx), (batch, steps, width), s.gd)
            torch.mm(src.reshape(batch * steps, src.shape[-1]).to(s.gd), s.W, out=rb.view(batch * steps, width))
            r = rb.transpose(0, 1)[: steps - 1]
        return _shift_act(r, s.e)

    # populations whose v is needed: non-spiking values, recorded states
    keep = {n for n in want_value if not P[n].pop.spiking} | set(want_state)
    f32_ok = dev == "cpu" and steps <= F32_EXACT and cpu_step.enabled()
    cnt: dict[str, torch.Tensor] = {}  # column sums (spikes per element) the float32 step formed
    for block in blocks:
        inside = set(block)
        bp = [P[n] for n in block]
        pre = {}
        for q in bp:
            parts = [s for s in q.incoming if q.safe and s.src not in inside]
            D0 = Dr = None
            if parts and steps >= 2:
                # synapses from outside the block into a safe population: one GEMM over all
                # steps; float32 while |sum of the parts (+ bias)| ≤ 2^24 is proven
                A = sum(s.tot for s in parts)
                fold = not q.ustate and q.bias is not None  # the bias joins the input
                dt_ = torch.float32 if A + (q.bias_max if fold else 0) <= F32_EXACT else f64
                if len(parts) == 1 and parts[0].delays is None and dt_ == torch.float32:
                    Dr = sent_all(parts[0])
                else:
                    Dr = ws.get(("D", q.name), (steps - 1, batch, q.n), dt_, zero=True)
                    for s in parts:
                        r = sent_all(s)
                        if s.delays is None:
                            Dr += r
                        else:
                            for b, k in enumerate(s.delays):
                                if k < steps - 1:
                                    Dr[k:] += r[: steps - 1 - k, :, b * s.nd:(b + 1) * s.nd]
                if fold:
                    Dr += q.bias.to(dt_)
                    D0 = q.bias
            stepped = [s for s in q.incoming if not (q.safe and s.src not in inside)]
            pre[q.name] = (D0, Dr, stepped)
        cnt.update(_step_block(bp, pre, spk, vals, ev, steps, batch, dev, keep, ws, f32_ok))
    # ---- this chunk's results ------------------------------------------------------------
    cnt = {k: cnt[k] if k in cnt else _colsum(x, ws) for k, x in spk.items()}
    for name, t in [*((n, t) for n, t in value_out.items() if not P[n].pop.spiking), *state_out.items()]:
        # v in NIR units: v / scale in float64, rounded to float32 once
        torch.div(vals[name].to(f64), P[name].scale, out=t.view(batch, steps, -1))
    return {
        "synapse": _synapse_counts(counter, spk, cnt, binary, batch, steps, ws),
        "spikes": {name: int(round(float(c.sum()))) for name, c in cnt.items() if name in P},
        "syn_events": [int(round(float(cnt[s.src] @ s.fan))) for s in S],
        "ev": {k: int(round(v)) for k, v in ev.items()},
    }


def _step_block(bp, pre, spk, vals, ev, steps, batch, dev, keep, ws, f32_ok) -> dict[str, torch.Tensor]:
    """Allocate a block's records and step it: on the float32 CPU step (:mod:`.cpu_step`)
    where ``f32_ok`` and every population is proven float32-exact with all its input in a
    float32 GEMM (no stepped synapse), else :func:`_run_block`. Returns the spike column sums
    the float32 step formed."""
    for q in bp:
        if q.name not in spk:
            spk[q.name] = _record(ws, ("spk", q.name), batch, steps, q.n, torch.float32, dev)
    f32 = f32_ok and all(q.f32 and not pre[q.name][2] and (pre[q.name][1] is None or
                                                          pre[q.name][1].dtype == torch.float32) for q in bp)
    dt_ = torch.float32 if f32 else torch.float64
    for q in bp:
        if q.name in keep:
            vals[q.name] = _record(ws, ("vals", q.name, f32), batch, steps, q.n, dt_, dev)
    if f32:
        return cpu_step.run_block(bp, pre, spk, vals, ev, steps, batch, keep, ws)
    _run_block(bp, pre, spk, vals, ev, steps, batch, dev, keep, ws)
    return {}


def _run_block(bp, pre, spk, vals, ev, steps, batch, dev, keep, ws):
    """Step the populations of one block through time. ``pre[name] = (D0, Dr, stepped)``:
    what the synapses from outside send (``Dr[t − 1]`` at step t ≥ 1, ``D0`` at step 0:
    the folded bias) and the synapses that are stepped here (inside the block, or into a
    population on the checked path)."""
    f64, f32 = torch.float64, torch.float32
    stepped = [s for q in bp for s in pre[q.name][2]]
    buf = {}
    for s in stepped:
        dt_ = f32 if s.act else f64
        if s.delays is None:
            # ping-pong: step t reads buf[(t + 1) % 2] (written at t − 1), writes buf[t % 2]
            b2 = ws.get(("sent", s.idx), (2, batch, s.nd), dt_, zero=True)
            buf[id(s)] = [b2[0], b2[1]]
        else:
            buf[id(s)] = ws.get(("sent", s.idx), (s.L, batch, s.nd), dt_, zero=True)
    zeros = lambda n: torch.zeros((batch, n), dtype=f64, device=dev)  # noqa: E731
    u = {q.name: ws.get(("u", q.name), (batch, q.n), f64, zero=True) for q in bp if q.ustate}
    v = {q.name: ws.get(("v", q.name), (batch, q.n), f64, zero=True) for q in bp}
    tmp = {q.name: ws.get(("tmp", q.name), (batch, q.n), f64) for q in bp}
    wide = {q.name: ws.get(("wide", q.name), (batch, q.n), f64) for q in bp}

    def add(dst, a, name):
        """dst += a; a float32 input is widened into a reused buffer first (an in-place op
        on mixed dtypes would allocate a temporary every step)."""
        if a.dtype != f64:
            a = wide[name].copy_(a)
        dst.add_(a)

    keep_v = {q.name for q in bp if q.name in keep}
    wrap_cnt = {q.name: ws.get(("wrapc", q.name), (batch, q.n), f64, zero=True) for q in bp if q.safe and q.wrap}
    sat_cnt = {q.name: ws.get(("satc", q.name), (batch, q.n), f64, zero=True) for q in bp
               if q.safe and (q.clip_hi or q.clip_lo)}
    i32 = torch.zeros((), dtype=f64, device=dev)  # int32 wraps (checked path only)
    uw = torch.zeros((), dtype=f64, device=dev)
    sat = torch.zeros((), dtype=f64, device=dev)
    cur: dict[str, torch.Tensor] = {}
    fz = fused.available(dev)
    for t in range(steps):
        # ---- neurons -----------------------------------------------------------------
        for q in bp:
            name = q.name
            vv = v[name]
            D0, Dr, st_in = pre[name]
            if fz and q.safe and not st_in:  # the whole step in one CUDA kernel (bit-identical)
                bias = (D0 if t == 0 else None) if D0 is not None else q.bias
                fused.step(q, u.get(name), vv, Dr[t - 1] if Dr is not None and t else None, bias, spk[name][:, t],
                           vals[name][:, t] if name in keep_v else None, wrap_cnt.get(name), sat_cnt.get(name))
                continue
            if q.safe:
                if q.ustate:
                    uu = u[name]
                    uu.mul_(q.cu).trunc_()
                    if Dr is not None and t:
                        add(uu, Dr[t - 1], name)
                    for s in st_in:
                        add(uu, buf[id(s)][(t + 1) % 2] if s.delays is None else buf[id(s)][t % s.L], name)
                    if q.wrap:
                        # Lava's single wrap (u > 2^23 → u − 2^24, u ≤ −2^23 → u + 2^24); here
                        # |u| < 2^24, so k = floor((u + 2^23 − 1) / 2^24) ∈ {−1, 0, 1} is the wrap
                        k = torch.add(uu, U_MAX - 1, out=tmp[name]).mul_(1.0 / (2 * U_MAX)).floor_()
                        uu.add_(k, alpha=-2 * U_MAX)
                        wrap_cnt[name].addcmul_(k, k)
                if q.decay_v:
                    vv.mul_(q.cv).trunc_()
                if q.ustate:
                    vv.add_(u[name])
                else:
                    if Dr is not None:
                        if t:
                            add(vv, Dr[t - 1], name)
                        elif D0 is not None:
                            vv.add_(D0)
                    for s in st_in:
                        add(vv, buf[id(s)][(t + 1) % 2] if s.delays is None else buf[id(s)][t % s.L], name)
                if q.bias is not None and D0 is None:
                    vv.add_(q.bias)
                if q.clip_hi or q.clip_lo:  # events: v beyond ±(2^23 − 1), one side when the other is proven
                    cpu_step.clip_counted(vv, tmp[name], sat_cnt[name], q.clip_lo, q.clip_hi)
            else:
                # fully checked path: Lava's int32 arithmetic, every wrap reproduced and counted
                a_in = zeros(q.n)
                for s in st_in:
                    if s.delays is None:  # Dense: a_buff (int64) goes out through an int32 port
                        a = buf[id(s)][(t + 1) % 2]
                        w32 = _wrap32(a)
                        i32 += (w32 != a).sum(dtype=f64)
                        a_in = a_in + w32
                    else:  # DelayDense: a_buff is int32 already
                        a_in = a_in + buf[id(s)][t % s.L]
                a32 = _wrap32(a_in)
                act = a32 * 64
                act32 = _wrap32(act)
                dc = torch.trunc(u[name] * q.cu) + act32
                dc32 = _wrap32(dc)
                i32 += (a32 != a_in).sum(dtype=f64) + (act32 != act).sum(dtype=f64) + (dc32 != dc).sum(dtype=f64)
                wr = torch.where(dc32 > U_MAX, dc32 - 2 * U_MAX, dc32)
                wr = torch.where(wr <= -U_MAX, dc32 + 2 * U_MAX, wr)
                uw += (wr != dc32).sum(dtype=f64)
                u[name] = wr
                upd = (torch.trunc(vv * q.cv) if q.decay_v else vv) + wr
                if q.bias is not None:
                    upd = upd + q.bias
                upd32 = _wrap32(upd)
                i32 += (upd32 != upd).sum(dtype=f64)
                vc = upd32.clamp(-V_LIM, V_LIM)
                sat += (vc != upd32).sum(dtype=f64)
                vv.copy_(vc)
            # spike where v > vth << 6 (integers: clamp(v − th, 0, 1) is the 0/1 spike), reset to 0
            s_t = torch.sub(vv, q.th, out=tmp[name]).clamp_(0, 1)
            vv.addcmul_(vv, s_t, value=-1)
            spk[name][:, t].copy_(s_t)
            if name in keep_v:
                vals[name][:, t].copy_(vv)
        # ---- stepped synapses accumulate this step's spikes (sent next step) ---------
        cur.clear()
        for s in stepped:
            key = (s.src, s.gd)
            sf = cur.get(key)
            if sf is None:
                src = spk[s.src][:, t]
                sf = cur[key] = src.to(s.gd)
            st = buf[id(s)]
            if s.delays is None:
                out = st[t % 2]
                if s.conv is not None:
                    r = _apply(s, sf)
                    out.copy_(_shift_act(r, s.e) if s.act else _shift_raw(r, s.e))
                elif s.act:
                    torch.mm(sf, s.W, out=out)
                    _shift_act(out, s.e)
                else:
                    out.copy_(_shift_raw(torch.mm(sf, s.W), s.e))
            else:
                st[t % s.L].zero_()
                r = torch.mm(sf, s.W)
                r = _shift_act(r, s.e) if s.act else _shift_raw(r, s.e)
                for b, k in enumerate(s.delays):
                    slot = st[(t + k + 1) % s.L]
                    slot.add_(r[:, b * s.nd:(b + 1) * s.nd])
                    if not s.act:  # DelayDense's a_buff is int32: each addition wraps
                        w32 = _wrap32(slot)
                        i32 += (w32 != slot).sum(dtype=f64)
                        slot.copy_(w32)
    for c in wrap_cnt.values():
        uw += c.sum()
    for c in sat_cnt.values():
        sat += c.sum()
    ev["int32_wrap_events"] += float(i32)
    ev["u_wrap_events"] += float(uw)
    ev["v_saturation_events"] += float(sat)


@dataclass
class EmulatorProgram(LoihiProgram):
    """Target "loihi2-emu": a :class:`LoihiProgram` (the same data) that runs in this
    emulator and describes itself by the protocol (docs/protocol.md)."""

    @classmethod
    def of(cls, program: LoihiProgram) -> "EmulatorProgram":
        """The same program (shared arrays), runnable by the emulator."""
        return cls(**{f.name: getattr(program, f.name) for f in fields(LoihiProgram)})

    def run(self, x, record=None, record_states: bool = False, progress=None, **options) -> RunResult:
        """Run on a batch of spike trains; ``options``: :data:`RUN_OPTIONS`."""
        check_options(f"{self.target} run", options, RUN_OPTIONS)
        counter = self.__dict__.get("_counter")
        if counter is None or counter.program is not self:
            counter = self.__dict__["_counter"] = LoihiCounts(self)
        return run_program(self, x, record=record, record_states=record_states, progress=progress,
                           counter=counter, **options)

    def describe(self) -> dict:
        from .describe import describe_program

        return describe_program(self, self.target, RUN_OPTIONS, self.options)


def __getattr__(name):  # EmulatorTarget lives in .target (kept importable from here)
    if name == "EmulatorTarget":
        from .target import EmulatorTarget

        return EmulatorTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
