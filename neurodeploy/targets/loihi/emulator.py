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

State arithmetic is int64 (with int32 wrap where Lava's dtypes wrap). The synaptic sums
``W @ s`` use a float GEMM, which is exact: spikes are 0/1 and mantissas are integers
with ``|w| ≤ 256``, so every partial sum is an integer of magnitude ≤ 256·n_src; float32
represents every integer up to 2^24 exactly, hence float32 is used when
``256·n_src ≤ 2^24`` (n_src ≤ 65536) and float64 (exact to 2^53) otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError
from ..base import RunResult, as_inputs
from .program import LoihiProgram

U_MAX = 1 << 23
V_LIM = (1 << 23) - 1


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    return torch.remainder(x + (1 << 31), 1 << 32) - (1 << 31)


def _shift(a: torch.Tensor, e: int) -> torch.Tensor:
    if e > 0:
        return a << e
    if e < 0:
        return a >> (-e)  # arithmetic shift == floor, as numpy's right_shift
    return a


def _trunc_decay(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``sign(x·f)·(|x·f| >> 12)`` as Lava computes the decays."""
    return torch.div(x * factor, 4096, rounding_mode="trunc")


def gemm_dtype(program: LoihiProgram) -> torch.dtype:
    n_max = max((program.size(s.src) for s in program.synapses), default=1)
    return torch.float32 if 256 * n_max <= (1 << 24) else torch.float64


def _device(device) -> str:
    device = str(device or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return device


def lags(program: LoihiProgram) -> dict[str, int | None]:
    """Steps by which each population lags the NIR reference (None if paths disagree)."""
    order = {p.name: i for i, p in enumerate(program.populations)}
    lag: dict[str, set] = {i: {0} for i in program.inputs}
    for p in program.populations:
        s: set = set()
        for syn in program.incoming(p.name):
            if syn.src in program.inputs or order[syn.src] < order[p.name]:
                s |= {x + 1 for x in lag.get(syn.src, {None}) if x is not None}
        lag[p.name] = s or {None}
    return {k: (next(iter(v)) if len(v) == 1 else None) for k, v in lag.items() if k not in program.inputs}


def check_binary(inputs: dict[str, torch.Tensor]) -> None:
    for k, t in inputs.items():
        if bool(((t != 0) & (t != 1)).any()):
            raise InputError(
                f"input '{k}': Loihi inputs are spikes; values must be 0 or 1 (got e.g. "
                f"{float(t[(t != 0) & (t != 1)][0])}); encode the data first (RateEncoder)"
            )


def run_program(program: LoihiProgram, x, record=None, record_states: bool = False, progress=None, device=None,
                 check_inputs: bool = True) -> RunResult:
    dev = _device(device or program.options.get("device"))
    inputs = as_inputs(x, list(program.inputs), program.inputs, torch.float32, dev)
    if check_inputs:
        check_binary(inputs)
    batch, steps = next(iter(inputs.values())).shape[:2]
    inputs = {k: v.reshape(batch, steps, -1) for k, v in inputs.items()}
    pops = program.populations
    names = {p.name for p in pops}
    if record in (None, (), []):
        rec = []
    elif record == "all":
        rec = [p.name for p in pops]
    else:
        rec = [record] if isinstance(record, str) else list(record)
        for r in rec:
            if r not in names and r not in program.inputs:
                raise InputError(
                    f"cannot record node '{r}' on Loihi: only neuron nodes and inputs exist after quantization "
                    f"(linear nodes are folded into synapses); neuron nodes: {', '.join(sorted(names))}"
                )
    gd = gemm_dtype(program)
    i64 = torch.int64
    # ---- parameters ------------------------------------------------------------------
    P = {}
    for p in pops:
        P[p.name] = dict(
            du=4095 - p.du, dv=4096 - p.dv, vth=int(p.vth) << 6,
            bias=torch.as_tensor(np.asarray(p.bias_mant, np.int64) << p.bias_exp if p.bias_exp >= 0
                                 else np.asarray(p.bias_mant, np.int64) >> -p.bias_exp, device=dev),
            scale=torch.as_tensor(np.asarray(p.scale, np.float64), device=dev),
        )
    S = []
    for s in program.synapses:
        w = np.asarray(s.weights, np.int64)
        if s.delays is None:
            buckets = [(0, torch.as_tensor(w.T, dtype=gd, device=dev))]
            L = 1
        else:
            d = np.asarray(s.delays, np.int64)
            buckets = [(int(k), torch.as_tensor(np.where(d == k, w, 0).T, dtype=gd, device=dev)) for k in np.unique(d)
                       if np.any(np.where(d == k, w, 0))]
            L = s.max_delay + 1
        fan = torch.as_tensor((w != 0).sum(0).astype(np.float64), device=dev)
        S.append(dict(syn=s, buckets=buckets, L=L, fan=fan, delayed=s.delays is not None))
    # ---- state -----------------------------------------------------------------------
    u = {p.name: torch.zeros((batch, p.n), dtype=i64, device=dev) for p in pops}
    v = {p.name: torch.zeros((batch, p.n), dtype=i64, device=dev) for p in pops}
    buf = {i: torch.zeros((batch, s["syn"].weights.shape[0], s["L"]), dtype=i64, device=dev) for i, s in enumerate(S)}
    z = lambda: torch.zeros((), dtype=torch.float64, device=dev)  # noqa: E731
    ev = {"u_wrap_events": z(), "v_saturation_events": z(), "int32_wrap_events": z(), "readout_spikes": z()}
    spikes = {p.name: z() for p in pops}
    syn_events = {s["syn"].name: z() for s in S}
    outs = {o: [] for o in program.outputs}
    recs = {r: [] for r in rec}
    states = {r: [] for r in rec if r in names} if record_states else {}
    prev_out: dict[str, torch.Tensor] = {}
    incoming = {p.name: [i for i, s in enumerate(S) if s["syn"].dst == p.name] for p in pops}
    # Static bound B on |a_in << 6| (binary spikes: each synapse sends at most its largest
    # row sum of |w|, shifted by its exponent). If B < 2^23, then inductively |u| < 2^23
    # (|u·decay| + B < 2^24 < 3·2^23, so Lava's single wrap brings u back in range),
    # |u_pre_wrap| < 2^24 and |v_pre_clip| < 2^23 + 2^23 + |bias| < 2^31: no int32 wrap can
    # occur, and those checks are skipped (same result, faster).
    safe = {}
    for p in pops:
        bound = 0
        for i in incoming[p.name]:
            syn = S[i]["syn"]
            rowsum = int(np.abs(np.asarray(syn.weights, np.int64)).sum(1).max(initial=0))
            bound += rowsum << syn.weight_exp if syn.weight_exp >= 0 else rowsum
        bias_max = int(P[p.name]["bias"].abs().max()) if p.n else 0
        safe[p.name] = (bound << 6) < (1 << 23) and bias_max < (1 << 24)
    with torch.no_grad():
        for t in range(steps):
            # 1. synapses send what they accumulated last step (int32 channel)
            sent = {}
            for i in buf:
                a = buf[i][..., 0]
                w32 = _wrap32(a)
                ev["int32_wrap_events"] += (w32 != a).sum(dtype=torch.float64)
                sent[i] = w32
            # 2. neurons
            cur: dict[str, torch.Tensor] = {k: inputs[k][:, t] for k in program.inputs}
            for p in pops:
                q = P[p.name]
                a_in = torch.zeros((batch, p.n), dtype=i64, device=dev)
                for i in incoming[p.name]:
                    a_in = a_in + sent[i]
                if safe[p.name]:
                    dc32 = _trunc_decay(u[p.name], q["du"]) + (a_in << 6)
                else:
                    a_in = _wrap32(a_in)
                    act = a_in << 6
                    act32 = _wrap32(act)
                    dc = _trunc_decay(u[p.name], q["du"]) + act32
                    dc32 = _wrap32(dc)
                    ev["int32_wrap_events"] += ((act32 != act).sum() + (dc32 != dc).sum()).to(torch.float64)
                wr = torch.where(dc32 > U_MAX, dc32 - 2 * U_MAX, dc32)
                wr = torch.where(wr <= -U_MAX, dc32 + 2 * U_MAX, wr)
                ev["u_wrap_events"] += (wr != dc32).sum(dtype=torch.float64)
                u[p.name] = wr
                upd = _trunc_decay(v[p.name], q["dv"]) + wr + q["bias"]
                if not safe[p.name]:
                    upd = _wrap32(upd)
                vc = upd.clamp(-V_LIM, V_LIM)
                ev["v_saturation_events"] += (vc != upd).sum(dtype=torch.float64)
                s_ = vc > q["vth"]
                v[p.name] = torch.where(s_, torch.zeros_like(vc), vc)
                nsp = s_.sum(dtype=torch.float64)
                if p.spiking:
                    spikes[p.name] += nsp
                else:
                    ev["readout_spikes"] += nsp
                cur[p.name] = s_
                if p.name in states:
                    states[p.name].append((v[p.name].to(torch.float64) / q["scale"]).to(torch.float32))
            # 3. synapses accumulate this step's spikes (sent next step)
            for i, s in enumerate(S):
                syn = s["syn"]
                spk = cur[syn.src]
                spf = spk.to(gd)
                syn_events[syn.name] += ((spk != 0).to(torch.float64) @ s["fan"]).sum()
                if not s["delayed"]:
                    k, W = s["buckets"][0]
                    acc = torch.round(spf @ W).to(i64)
                    buf[i][..., 0] = _shift(acc, syn.weight_exp)
                else:
                    b = buf[i]
                    b[..., 0] = 0
                    b = torch.roll(b, -1, dims=-1)
                    for k, W in s["buckets"]:
                        acc = _shift(torch.round(spf @ W).to(i64), syn.weight_exp)
                        b[..., k] = _wrap32(b[..., k] + acc)
                    buf[i] = b
            # 4. outputs / records
            for p in pops:
                prev_out[p.name] = cur[p.name]
            for o, pn in program.outputs.items():
                outs[o].append(_value(program.pop(pn), cur[pn], v[pn], P[pn]["scale"]))
            for r in recs:
                if r in program.inputs:
                    recs[r].append(cur[r].reshape(batch, *program.inputs[r]).to(torch.float32))
                else:
                    recs[r].append(_value(program.pop(r), cur[r], v[r], P[r]["scale"]))
            if progress is not None:
                progress(t + 1, steps)
    stack = lambda xs: torch.stack(xs, 1) if xs else torch.zeros(0)  # noqa: E731
    outputs = {o: stack(vs) for o, vs in outs.items()}
    records = {r: stack(vs) for r, vs in recs.items()}
    states_t = {r: stack(vs).reshape(batch, steps, *program.pop(r).shape) for r, vs in states.items()}
    counts: dict[str, dict[str, int]] = {}
    for p in pops:
        c = {"neuron_updates": p.n * batch * steps}
        if p.spiking:
            c["spikes"] = int(round(float(spikes[p.name])))
        counts[p.name] = c
    for s in S:
        syn = s["syn"]
        c = counts.setdefault(syn.name, {})
        c["synaptic_events"] = c.get("synaptic_events", 0) + int(round(float(syn_events[syn.name])))
        c["dense_synops"] = c.get("dense_synops", 0) + int(syn.weights.size) * batch * steps
    info = {k: int(round(float(val))) for k, val in ev.items()}
    info.update({
        "device": dev, "gemm_dtype": str(gd).replace("torch.", ""),
        "lag": {o: lags(program).get(pn) for o, pn in program.outputs.items()},
        "note": "Lava timing: each synapse delivers one step after its source fired",
    })
    return RunResult(outputs=outputs, records=records, states=states_t, counts=counts, target="loihi2-emu",
                     dt=program.dt, batch=int(batch), steps=int(steps), info=info)


def _value(pop, spikes, v, scale):
    b = spikes.shape[0]
    if pop.spiking:
        return spikes.reshape(b, *pop.shape).to(torch.float32)
    return (v.to(torch.float64) / scale).to(torch.float32).reshape(b, *pop.shape)


class EmulatorTarget:
    """Target "loihi2-emu": quantize to Lava fixed point and emulate it bit-exactly."""

    name = "loihi2-emu"

    def compile(self, graph, hardware=None, weight_exp: str = "auto", vth: int | None = None,
                vth_max: int = 1 << 13, chips: int | None = None, device: str | None = None,
                **options) -> LoihiProgram:
        """Quantize ``graph``; with ``hardware`` (profile name, path or HardwareProfile) or
        ``chips``, also map it onto cores (``program.mapping``; FitError if it does not fit).
        ``device`` is the default torch device of ``program.run``."""
        from .quantize import quantize

        if options:
            raise InputError(f"{self.name} target: unknown option(s) {', '.join(sorted(options))}")
        _device(device)
        prog = quantize(graph, weight_exp=weight_exp, vth=vth, vth_max=vth_max)
        if device is not None:
            prog.options["device"] = str(device)
        if hardware is not None or chips is not None:
            from .mapping import has_core_limits, map_program

            # a profile without core limits (e.g. an RRAM profile passed to every target by
            # a comparison) prices events but cannot map; only an explicit chips= insists
            if chips is not None or has_core_limits(hardware or "loihi2"):
                prog.mapping = map_program(prog, hardware or "loihi2", chips=chips)
        prog.target = self.name
        return prog

    @staticmethod
    def load(path) -> LoihiProgram:
        return LoihiProgram.load(path)
