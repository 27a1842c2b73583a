"""One fused CUDA kernel (Triton) for a step of a population on the emulator's fast path.

The plain torch path in :mod:`.emulator` runs a step of a population as ~10 elementwise
kernels over (batch, n) float64 tensors (decay and truncate u, add the input, wrap, decay
and truncate v, add u and the bias, clip, spike, reset, write the spikes); on a GPU each is
a launch and a pass over memory. :func:`step` does all of it in one pass, element by
element, with the same float64 operations in the same order, so its results are
bit-identical (every value is an integer or an exact binary fraction of one: products
``u·(4095−du)/4096`` are exact in float64, truncation is ``floor`` of |x| with the sign, and
the spike / reset are exact on integers). It covers populations whose every input arrives
through the precomputed GEMM (``Dr``; no stepped synapse into them); the others, and
everything on CPU or without Triton, run the plain path. ``NEURODEPLOY_FUSED=0`` turns it off.
"""

from __future__ import annotations

import os

import torch

try:  # Triton ships with CUDA builds of torch; absent elsewhere
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - depends on the installation
    triton = None


def available(device: str) -> bool:
    """Whether the fused step runs on ``device`` (CUDA, Triton importable, not turned off)."""
    return (triton is not None and str(device).startswith("cuda") and torch.cuda.is_available()
            and os.environ.get("NEURODEPLOY_FUSED", "1") != "0")


if triton is not None:

    @triton.jit
    def _trunc(x):
        return tl.where(x >= 0, tl.math.floor(x), -tl.math.floor(-x))

    @triton.jit
    def _step_kernel(u_ptr, v_ptr, d_ptr, b_ptr, s_ptr, vals_ptr, wc_ptr, sc_ptr, total, n, row,
                     cu, cv, th, USTATE: tl.constexpr, HAS_D: tl.constexpr, HAS_B: tl.constexpr,
                     DECAY_V: tl.constexpr, WRAP: tl.constexpr, CLIP_HI: tl.constexpr, CLIP_LO: tl.constexpr,
                     KEEP_V: tl.constexpr, BLOCK: tl.constexpr):
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = idx < total
        bi = idx // n
        j = idx - bi * n
        v = tl.load(v_ptr + idx, mask=m, other=0.0)
        if USTATE:
            u = _trunc(tl.load(u_ptr + idx, mask=m, other=0.0) * cu)
            if HAS_D:
                u = u + tl.load(d_ptr + idx, mask=m, other=0.0).to(tl.float64)
            if WRAP:
                k = tl.math.floor((u + 8388607.0) * 5.9604644775390625e-08)  # (u + 2^23 − 1) / 2^24
                u = u - k * 16777216.0
                tl.store(wc_ptr + idx, tl.load(wc_ptr + idx, mask=m, other=0.0) + k * k, mask=m)
            tl.store(u_ptr + idx, u, mask=m)
        if DECAY_V:
            v = _trunc(v * cv)
        if USTATE:
            v = v + u
        elif HAS_D:
            v = v + tl.load(d_ptr + idx, mask=m, other=0.0).to(tl.float64)
        if HAS_B:
            v = v + tl.load(b_ptr + j, mask=m, other=0.0)
        if CLIP_HI or CLIP_LO:
            if CLIP_HI and CLIP_LO:
                c = tl.abs(v) - 8388607.0
            elif CLIP_LO:
                c = -v - 8388607.0
            else:
                c = v - 8388607.0
            c = tl.minimum(tl.maximum(c, 0.0), 1.0)
            tl.store(sc_ptr + idx, tl.load(sc_ptr + idx, mask=m, other=0.0) + c, mask=m)
            if CLIP_HI:
                v = tl.minimum(v, 8388607.0)
            if CLIP_LO:
                v = tl.maximum(v, -8388607.0)
        s = tl.minimum(tl.maximum(v - th, 0.0), 1.0)
        v = v - v * s
        tl.store(v_ptr + idx, v, mask=m)
        tl.store(s_ptr + bi * row + j, s.to(tl.float32), mask=m)
        if KEEP_V:
            tl.store(vals_ptr + bi * row + j, v, mask=m)


def step(q, u, v, d, bias, spk_t, vals_t, wrap_cnt, sat_cnt) -> None:
    """One step of population ``q`` (an emulator ``_Pop`` on the fast path) in place: ``u``,
    ``v`` (batch, n) float64 contiguous; ``d`` this step's input (batch, n) contiguous or
    None; ``bias`` (n,) float64 to add or None; ``spk_t`` / ``vals_t`` the (batch, n) slices
    of step t of the (batch, steps, n) spike / potential records (``vals_t`` None when v is
    not kept); ``wrap_cnt`` / ``sat_cnt`` the event accumulators (or None)."""
    total, n = v.numel(), q.n
    row = spk_t.stride(0)
    assert spk_t.stride(1) == 1 and (vals_t is None or (vals_t.stride(0) == row and vals_t.stride(1) == 1))
    dummy = v
    BLOCK = 512
    _step_kernel[(triton.cdiv(total, BLOCK),)](
        u if u is not None else dummy, v, d if d is not None else dummy, bias if bias is not None else dummy,
        spk_t, vals_t if vals_t is not None else dummy, wrap_cnt if wrap_cnt is not None else dummy,
        sat_cnt if sat_cnt is not None else dummy, total, n, row, float(q.cu), float(q.cv), float(q.th),
        USTATE=bool(q.ustate), HAS_D=d is not None, HAS_B=bias is not None, DECAY_V=bool(q.decay_v),
        WRAP=bool(q.ustate and q.wrap), CLIP_HI=bool(q.clip_hi), CLIP_LO=bool(q.clip_lo),
        KEEP_V=vals_t is not None, BLOCK=BLOCK)
