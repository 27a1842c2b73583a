"""The emulator's CPU step in float32: populations whose every value is a proven integer
of magnitude ≤ 2^24, stepped with ~12 torch calls per step instead of the float64 path's
widening copies and ``trunc_`` (the slowest call of that path on CPU).

Which populations (``_Pop.f32``, decided in :func:`.emulator._plan` from the proven
bounds): on the fast path (no int32 channel can wrap), every input through the batched
GEMM (no synapse stepped inside the block), and ``c·V + U + B ≤ 2^24`` with ``V`` the bound
on ``|v|`` after the reset/clip, ``U`` on ``|u|`` (``2^23`` where the current can wrap),
``B`` on ``|bias|`` and ``c = (4096−dv)/4096``. Then every value below is an integer of
magnitude ≤ 2^24, which float32 holds exactly, and every sum of them is exact:

* the decay ``trunc(x·m/4096)`` (Lava's ``sign(x)·(|x·m| >> 12)``, ``m = 4095−du`` or
  ``4096−dv``) needs up to 36 bits as a product: it is formed in float64 (exact) and
  truncated by the float64 → int32 conversion, which rounds toward zero (:func:`decay`;
  u and v are stacked, so one set of calls decays both);
* the current wrap: ``k = floor((u + 2^23 − 1)·2^−24) ∈ {−1, 0, 1}``: the sum is exact
  below 2^24 and rounds to ≥ 2^24 exactly when it is ≥ 2^24, so ``k`` is Lava's wrap;
  ``u − k·2^24`` is exact;
* the spike ``v > vth·64`` (written as 1.0 / 0.0) and the reset ``v − v·s``;
* the wrap and the clip, with their event counts, run only on a step where a min/max of
  the population says one happens (elsewhere they change nothing and count 0).

The results are the float64 path's bit for bit (``tests/test_loihi_cpu_step.py`` runs both
on random programs with wraps, clips, biases and delays, and the decay against Lava's shift
over the whole 24-bit range; the Lava and numpy-Lava tests run this path wherever it
applies). ``NEURODEPLOY_CPU_F32=0`` runs the float64 path instead.
"""

from __future__ import annotations

import os

import torch

U_MAX = 1 << 23
V_LIM = (1 << 23) - 1


def clip_counted(v: torch.Tensor, tmp: torch.Tensor, count: torch.Tensor, lo: bool, hi: bool) -> None:
    """Lava's ±(2^23 − 1) clip of ``v`` in place on the sides that can happen (``lo``, ``hi``),
    adding 1 per clipped neuron to ``count``: v is an integer, so clamp(|v| − V_LIM, 0, 1) is
    1 exactly for a clipped neuron. ``tmp``: scratch of ``v``'s shape. Shared by both paths."""
    if hi and lo:
        torch.abs(v, out=tmp).sub_(V_LIM)
    elif lo:
        torch.neg(v, out=tmp).sub_(V_LIM)
    else:
        torch.sub(v, V_LIM, out=tmp)
    count.add_(tmp.clamp_(0, 1))
    v.clamp_(-V_LIM if lo else None, V_LIM if hi else None)


def enabled() -> bool:
    """Whether eligible CPU blocks take this path (``NEURODEPLOY_CPU_F32=0``: never)."""
    return os.environ.get("NEURODEPLOY_CPU_F32", "1") != "0"


def decay(x: torch.Tensor, c, p: torch.Tensor, hi: torch.Tensor) -> None:
    """``x ← trunc(x·c)`` in place for float32 integers ``|x| < 2^24`` and ``c = m/4096``
    (Lava's ``sign(x)·(|x·m| >> 12)``; ``c`` a number or a float64 tensor broadcast to
    ``x``): the product in float64 (exact: < 2^36), truncated by the float64 → int32
    conversion; ``p`` (float64) and ``hi`` (int32) are scratch of ``x``'s shape."""
    p.copy_(x).mul_(c)
    hi.copy_(p)
    x.copy_(hi)


def run_block(bp, pre, spk, vals, ev, steps, batch, keep, ws) -> dict[str, torch.Tensor]:
    """Step the populations ``bp`` of one block (all ``f32``, inputs all in ``pre[name] =
    (D0, Dr, [])``, float32) through time; as :func:`.emulator._run_block` does, writing
    ``spk[name][:, t]`` and, for kept populations, ``vals[name][:, t]`` (float32). Returns
    each population's spike count per neuron (float64), summed while the spikes are in cache."""
    st = {q.name: _state(q, batch, ws) for q in bp}
    # D0 (the bias folded into the GEMM's output, sent at step 0) is the float64 bias
    ins = [(q, st[q.name], pre[q.name][1], q.bias32 if pre[q.name][0] is not None else None,
            q.bias32 if pre[q.name][0] is None else None, spk[q.name], vals[q.name] if q.name in keep else None)
           for q in bp]
    for t in range(steps):
        for q, s, Dr, d0, bias, sp, va in ins:
            d = None if Dr is None else Dr[t - 1] if t else d0
            _step(q, s, d, bias, sp[:, t], None if va is None else va[:, t])
    counts = {}
    for q in bp:
        s = st[q.name]
        if s["wc"] is not None:
            ev["u_wrap_events"] += float(s["wc"].sum(dtype=torch.float64))
        if s["sc"] is not None:
            ev["v_saturation_events"] += float(s["sc"].sum(dtype=torch.float64))
        # per element ≤ steps ≤ 2^24; over the chunk exact in float32 while batch·steps ≤ 2^24
        acc = s["acc"]
        counts[q.name] = acc.sum(0).double() if batch * steps <= 1 << 24 else acc.sum(0, dtype=torch.float64)
    return counts


def _state(q, batch: int, ws) -> dict:
    """Zeroed float32 state of population ``q`` and its scratch: ``uv`` holds u and v
    stacked, ``dec`` the arguments of the one :func:`decay` call that decays both."""
    f32, shape, k = torch.float32, (batch, q.n), 2 if q.ustate else 1
    uv = ws.get(("uv32", q.name), (k, *shape), f32, zero=True)
    p = ws.get(("p64", q.name), (k, *shape), torch.float64)
    hi = ws.get(("hi32", q.name), (k, *shape), torch.int32)
    if q.ustate and q.decay_v:  # both decay: one pass over the stack
        dec = (uv, torch.tensor([q.cu, q.cv], dtype=torch.float64).view(2, 1, 1), p, hi)
    elif q.ustate:
        dec = (uv[0], q.cu, p[0], hi[0])
    else:
        dec = (uv[0], q.cv, p[0], hi[0]) if q.decay_v else None
    return dict(u=uv[0] if q.ustate else None, v=uv[-1], dec=dec, tmp=ws.get(("t32", q.name), shape, f32),
                acc=ws.get(("acc32", q.name), shape, f32, zero=True),
                wc=ws.get(("wc32", q.name), shape, f32, zero=True) if q.ustate and q.wrap else None,
                sc=ws.get(("sc32", q.name), shape, f32, zero=True) if q.clip_hi or q.clip_lo else None)


def _step(q, s, d, bias, spk_t, vals_t) -> None:
    """One step of population ``q`` (state ``s``): ``d`` what its synapses send now and
    ``bias`` the bias to add (each float32 or None); spikes into ``spk_t`` (v into ``vals_t``)."""
    u, v, tmp = s["u"], s["v"], s["tmp"]
    if s["dec"] is not None:
        decay(*s["dec"])  # u ← trunc(u·cu), v ← trunc(v·cv)
    if u is not None:
        if d is not None:
            u.add_(d)
        if q.wrap and _beyond(u, -U_MAX, U_MAX, lo_incl=True):  # Lava's single wrap (module docstring)
            k = torch.add(u, U_MAX - 1, out=tmp).mul_(1.0 / (2 * U_MAX)).floor_()
            u.add_(k, alpha=-2.0 * U_MAX)
            s["wc"].addcmul_(k, k)
        v.add_(u)
    elif d is not None:
        v.add_(d)
    if bias is not None:
        v.add_(bias)
    if (q.clip_hi or q.clip_lo) and _beyond(v, -V_LIM if q.clip_lo else None, V_LIM if q.clip_hi else None):
        clip_counted(v, tmp, s["sc"], q.clip_lo, q.clip_hi)
    torch.gt(v, q.th, out=spk_t)  # 1.0 / 0.0
    v.addcmul_(v, spk_t, value=-1)
    s["acc"].add_(spk_t)
    if vals_t is not None:
        vals_t.copy_(v)


def _beyond(x: torch.Tensor, lo, hi, lo_incl: bool = False) -> bool:
    """Whether any element is above ``hi`` or below ``lo`` (at or below with ``lo_incl``):
    one reduction, so the wrap / clip and its count run only on a step where one happens
    (elsewhere they change nothing and count 0)."""
    if lo is None:
        return float(x.max()) > hi
    mn, mx = (x.min(), None) if hi is None else torch.aminmax(x)
    return (mx is not None and float(mx) > hi) or (float(mn) <= lo if lo_incl else float(mn) < lo)
