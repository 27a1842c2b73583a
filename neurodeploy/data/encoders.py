"""Spike encoders: static values (images, features) -> spike trains.

Encoders are small frozen dataclasses with ``__call__``, in the style of tonic's transforms. They
take a batch ``x`` of shape ``(N, *shape)`` -- a numpy array or a torch tensor -- and return spikes
of shape ``(N, steps, *shape)``, dtype float32, values 0/1, of the same library type as the input
(a torch tensor stays on its device). Time is the second axis, batch first, which is the layout of
neurodeploy's input files (see :func:`neurodeploy.data.write_npz`).

Both encoders are pure functions of their parameters and the input: calling a seeded
:class:`RateEncoder` twice on the same input gives the same spikes.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from ..errors import InputError

Array = Union[np.ndarray, torch.Tensor]

__all__ = ["RateEncoder", "LatencyEncoder"]


# --------------------------------------------------------------------------- argument checks


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InputError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _finite_float(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


def _seed(owner: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**63:
        raise InputError(f"{owner}: seed must be None or an integer in [0, 2**63), got {value!r}")
    return int(value)


def _check_input(owner: str, x: Any) -> Array:
    """Return ``x`` as a float numpy array or a floating torch tensor, checked for shape and NaNs."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise InputError(f"{owner}: x must be a real-valued tensor, got dtype {x.dtype}")
        if not x.is_floating_point():
            x = x.float()
        shape = tuple(x.shape)
        if x.ndim < 1:
            raise InputError(f"{owner}: x must have shape (N, *shape) with a batch axis, got shape {shape}")
        if x.numel() and not bool(torch.isfinite(x).all()):
            what = "NaN" if bool(torch.isnan(x).any()) else "infinite"
            raise InputError(f"{owner}: x of shape {shape} contains {what} values")
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{owner}: x must be a numpy array or torch tensor: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{owner}: x must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim < 1:
        raise InputError(f"{owner}: x must have shape (N, *shape) with a batch axis, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    if arr.size and not np.isfinite(arr).all():
        what = "NaN" if np.isnan(arr).any() else "infinite"
        raise InputError(f"{owner}: x of shape {arr.shape} contains {what} values")
    return arr


# --------------------------------------------------------------------------- rate coding


@dataclass(frozen=True)
class RateEncoder:
    """Bernoulli (Poisson-like) rate code.

    At every one of ``steps`` time steps each element fires independently with probability
    ``p = clip(gain * x, 0, 1)``. Input ``(N, *shape)`` -> output ``(N, steps, *shape)`` float32 0/1.

    ``seed`` seeds a fresh generator on every call, so the output is a pure function of
    ``(x, steps, gain, seed)``; use ``dataclasses.replace(enc, seed=epoch)`` for fresh noise per
    epoch. ``seed=None`` draws from OS entropy (not reproducible). numpy inputs use
    ``numpy.random.default_rng(seed)``, torch inputs a ``torch.Generator`` on the tensor's device,
    so the same seed gives different (but each reproducible) spikes for numpy and torch inputs.
    """

    steps: int
    gain: float = 1.0
    seed: int | None = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _positive_int("RateEncoder", "steps", self.steps))
        gain = _finite_float("RateEncoder", "gain", self.gain)
        if gain < 0:
            raise InputError(f"RateEncoder: gain must be >= 0, got {gain!r}")
        object.__setattr__(self, "gain", gain)
        object.__setattr__(self, "seed", _seed("RateEncoder", self.seed))

    def probabilities(self, x: Array) -> Array:
        """Per-step spike probability ``clip(gain * x, 0, 1)``, same shape as ``x``."""
        x = _check_input("RateEncoder", x)
        if isinstance(x, torch.Tensor):
            return torch.clamp(x * self.gain, 0.0, 1.0)
        return np.clip(x * self.gain, 0.0, 1.0)

    def __call__(self, x: Array) -> Array:
        p = self.probabilities(x)
        out_shape = (p.shape[0], self.steps, *p.shape[1:])
        if isinstance(p, torch.Tensor):
            gen = torch.Generator(device=p.device)
            if self.seed is None:
                gen.seed()
            else:
                gen.manual_seed(self.seed)
            u = torch.rand(out_shape, generator=gen, device=p.device, dtype=torch.float32)
            return (u < p.unsqueeze(1)).to(torch.float32)
        rng = np.random.default_rng(self.seed)
        out = rng.random(out_shape, dtype=np.float32)
        # compare in place: out[n, t, ...] = (u < p[n, ...]); bool -> float32 is a safe cast.
        np.less(out, p[:, None].astype(np.float32, copy=False), out=out)
        return out


# --------------------------------------------------------------------------- latency coding


@dataclass(frozen=True)
class LatencyEncoder:
    """Time-to-first-spike code: each element fires at most once, brighter elements earlier.

    Input values must lie in [0, 1]. An element with ``x > threshold`` fires once, at step
    ``round(t)`` (round half to even, as ``torch.round``), where

    * logarithmic code (``linear=False``, snnTorch's RC model):
      ``t = tau * ln(x / (x - threshold))``;
    * linear code (``linear=True``): ``t = tau * (1 - x)``.

    With ``normalize=True`` (default) the times are rescaled so that the code spans the window:

    * linear: ``tau`` is replaced by ``steps - 1``, i.e. ``t = (1 - x) * (steps - 1)``
      (exactly snnTorch's ``normalize=True``);
    * logarithmic: ``t`` is multiplied by ``(steps - 1) / max(t)``, the maximum taken over the
      supra-threshold elements *of each sample*, so every sample that spikes at all has its
      latest spike at ``steps - 1`` (``tau`` cancels out).

    With ``normalize=False`` spikes whose rounded time is beyond ``steps - 1`` are dropped.
    Elements with ``x <= threshold`` never fire.

    Differences from ``snntorch.spikegen.latency`` (snnTorch 1.0.0):

    * layout is ``(N, steps, *shape)`` (batch first) instead of snnTorch's time-first
      ``(steps, N, *shape)``;
    * sub-threshold elements never fire (snnTorch's ``clip=True``); snnTorch's default makes them
      fire at the last step. ``x == threshold`` never fires here (its log-code time is infinite);
    * log-code normalization uses the per-sample maximum over supra-threshold elements; snnTorch
      divides by the maximum over the whole tensor, including sub-threshold elements clamped to
      ``threshold + 1e-7`` -- so one dark pixel pushes all other spikes of the batch to step 0;
      snnTorch's results thus depend on batch composition, ours do not. For a single sample with
      no sub-threshold element the two agree;
    * late spikes with ``normalize=False`` are dropped silently (snnTorch raises unless
      ``bypass=True``, then drops them too); ``first_spike_time``/``interpolate`` are not offered;
    * defaults differ: ``tau=5`` here, ``tau=1`` in snnTorch; ``normalize=True`` here.
    """

    steps: int
    tau: float = 5.0
    threshold: float = 0.01
    linear: bool = False
    normalize: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _positive_int("LatencyEncoder", "steps", self.steps))
        tau = _finite_float("LatencyEncoder", "tau", self.tau)
        if tau <= 0:
            raise InputError(f"LatencyEncoder: tau must be > 0, got {tau!r}")
        thr = _finite_float("LatencyEncoder", "threshold", self.threshold)
        if not 0.0 < thr < 1.0:
            raise InputError(f"LatencyEncoder: threshold must be in (0, 1), got {thr!r}")
        object.__setattr__(self, "tau", tau)
        object.__setattr__(self, "threshold", thr)
        object.__setattr__(self, "linear", bool(self.linear))
        object.__setattr__(self, "normalize", bool(self.normalize))

    # The computation runs in torch for both input types (numpy arrays are wrapped without a copy);
    # float64 is used for the times except on devices without float64 (MPS).
    def _steps_of(self, x: torch.Tensor) -> torch.Tensor:
        """Integer spike step per element (int64, same shape as x); -1 = no spike."""
        n = x.shape[0]
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        xf = x.to(dtype).reshape(n, math.prod(x.shape[1:]))
        fires = xf > self.threshold
        if self.linear:
            scale = (self.steps - 1) if self.normalize else self.tau
            t = scale * (1.0 - xf)
        else:
            safe = torch.where(fires, xf, torch.ones_like(xf))
            t = self.tau * torch.log(safe / (safe - self.threshold))
            if self.normalize:
                t = torch.where(fires, t, torch.zeros_like(t))
                if t.numel():
                    tmax = t.amax(dim=1, keepdim=True)
                else:
                    tmax = torch.ones((n, 1), dtype=dtype, device=t.device)
                tmax = torch.where(tmax > 0, tmax, torch.ones_like(tmax))
                t = t * ((self.steps - 1) / tmax)
        step = torch.round(t)
        fires &= step <= self.steps - 1
        step = torch.where(fires, step, torch.full_like(step, -1.0))
        return step.to(torch.int64).reshape(x.shape)

    def _prepare(self, x: Array) -> tuple[torch.Tensor, bool]:
        x = _check_input("LatencyEncoder", x)
        is_numpy = not isinstance(x, torch.Tensor)
        xt = torch.from_numpy(np.ascontiguousarray(x)) if is_numpy else x
        if xt.numel():
            lo, hi = float(xt.min()), float(xt.max())
            if lo < 0.0 or hi > 1.0:
                raise InputError(
                    f"LatencyEncoder: x of shape {tuple(xt.shape)} must lie in [0, 1], "
                    f"got values in [{lo:g}, {hi:g}]"
                )
        return xt, is_numpy

    def spike_times(self, x: Array) -> Array:
        """Spike step of every element: int64 array/tensor shaped like ``x``; -1 means no spike."""
        xt, is_numpy = self._prepare(x)
        step = self._steps_of(xt)
        return step.numpy() if is_numpy else step

    def __call__(self, x: Array) -> Array:
        xt, is_numpy = self._prepare(x)
        step = self._steps_of(xt)  # (N, *shape)
        t_axis = torch.arange(self.steps, device=xt.device).reshape(1, self.steps, *([1] * (xt.ndim - 1)))
        out = (step.unsqueeze(1) == t_axis).to(torch.float32)  # -1 never matches: no spike
        return out.numpy() if is_numpy else out
