r"""Neuron dynamics as pure step functions, shared by every target that uses float math.

All models are NIR's ODEs integrated with forward Euler at step ``dt`` (see
docs/semantics.md). With :math:`\alpha = dt/\tau`:

* I:       ``v ← v + dt·r·x``                                     (output v)
* IF:      ``v ← v + dt·r·x``; spike and reset                     (output z)
* LI:      ``v ← v + α_mem·((r·x + v_leak) − v)``                 (output v)
* LIF:     as LI; spike and reset                                  (output z)
* CubaLI:  ``I ← I + α_syn·(w_in·x − I)``; ``v ← v + α_mem·((r·I + v_leak) − v)`` (output v)
* CubaLIF: as CubaLI; spike and reset                              (output z)

Spike when ``v > v_threshold`` (strictly); reset to ``v_reset`` ("zero" mode) or subtract
``v_threshold`` ("subtract" mode). The current ``I`` of CubaLIF is updated first and the
membrane uses the *updated* current, as NIR's and norse's reference implementations do.

The arithmetic is ordered as norse orders it (``α = dt · (1/τ)`` in the working dtype),
so float32 runs agree with norse bit for bit. Parameters are prepared once by
:func:`prepare`; :func:`step` is then a handful of tensor ops with no Python loop over
neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch

KINDS = {
    nir.I: "I",
    nir.IF: "IF",
    nir.LI: "LI",
    nir.LIF: "LIF",
    nir.CubaLI: "CubaLI",
    nir.CubaLIF: "CubaLIF",
}
SPIKING = ("IF", "LIF", "CubaLIF")


@dataclass(frozen=True)
class NeuronParams:
    """Prepared parameters of one neuron population (tensors of the population's shape).

    ``k_in`` is ``dt·r`` for I/IF (the integration gain); ``a_mem``/``a_syn`` are
    ``dt/τ`` for the leaky models. Unused fields are None.
    """

    kind: str
    shape: tuple[int, ...]
    k_in: torch.Tensor | None = None
    a_mem: torch.Tensor | None = None
    a_syn: torch.Tensor | None = None
    r: torch.Tensor | None = None
    w_in: torch.Tensor | None = None
    v_leak: torch.Tensor | None = None
    v_threshold: torch.Tensor | None = None
    v_reset: torch.Tensor | None = None

    @property
    def spiking(self) -> bool:
        return self.kind in SPIKING

    @property
    def has_current(self) -> bool:
        return self.kind in ("CubaLI", "CubaLIF")


def _t(value, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


def _alpha(tau, dt: float, dtype, device) -> torch.Tensor:
    # same op sequence as norse: tau_inv = 1 / tau (working dtype), then dt * tau_inv
    tau_inv = 1 / _t(tau, dtype, device)
    return dt * tau_inv


def prepare(node: nir.NIRNode, dt: float, dtype=torch.float32, device="cpu") -> NeuronParams:
    """Prepare a (normalized) NIR neuron node for :func:`step`."""
    kind = KINDS[type(node)]
    shape = tuple(np.asarray(node.r).shape)
    kw: dict = {}
    if kind in ("I", "IF"):
        kw["k_in"] = _t(np.asarray(node.r, np.float64) * dt, dtype, device)
    if kind in ("LI", "LIF"):
        kw["a_mem"] = _alpha(node.tau, dt, dtype, device)
    if kind in ("CubaLI", "CubaLIF"):
        kw["a_mem"] = _alpha(node.tau_mem, dt, dtype, device)
        kw["a_syn"] = _alpha(node.tau_syn, dt, dtype, device)
        kw["w_in"] = _t(node.w_in, dtype, device)
    if kind not in ("I", "IF"):
        kw["r"] = _t(node.r, dtype, device)
        kw["v_leak"] = _t(node.v_leak, dtype, device)
    if kind in SPIKING:
        kw["v_threshold"] = _t(node.v_threshold, dtype, device)
        kw["v_reset"] = _t(node.v_reset, dtype, device)
    return NeuronParams(kind=kind, shape=shape, **kw)


V_INIT = ("zero", "leak")


def init_state(p: NeuronParams, batch: int, dtype=torch.float32, device="cpu", v_init: str = "zero") -> dict:
    """Initial state: membrane ``v`` (and synaptic current ``i = 0`` for Cuba models).

    ``v_init="zero"`` starts every membrane at 0 (as Lava and snnTorch do); ``"leak"``
    starts it at rest, ``v_leak`` (as norse does; I/IF have no leak and start at 0)."""
    state = {"v": torch.zeros((batch, *p.shape), dtype=dtype, device=device)}
    if v_init == "leak" and p.v_leak is not None:
        state["v"] = state["v"] + p.v_leak
    if p.has_current:
        state["i"] = torch.zeros_like(state["v"])
    return state


def leak_integrate(v: torch.Tensor, drive: torch.Tensor, alpha: torch.Tensor, v_leak: torch.Tensor) -> torch.Tensor:
    """One forward-Euler step of ``τ dv/dt = (v_leak − v) + drive``."""
    return v + alpha * ((drive + v_leak) - v)


def spike_reset(v, v_threshold, v_reset, reset: str):
    """Spike where ``v > v_threshold``; reset by value ("zero") or by subtraction."""
    z = v > v_threshold
    if reset == "subtract":
        v = torch.where(z, v - v_threshold, v)
    else:
        v = torch.where(z, v_reset, v)
    return z.to(v.dtype), v


def step(x: torch.Tensor, state: dict, p: NeuronParams, reset: str = "zero"):
    """Advance one population one step. Returns ``(output, new_state)``; the output is the
    spike tensor for spiking models and the membrane potential otherwise."""
    if p.kind in ("I", "IF"):
        v = state["v"] + p.k_in * x
        if p.kind == "I":
            return v, {"v": v}
        z, v = spike_reset(v, p.v_threshold, p.v_reset, reset)
        return z, {"v": v}
    if p.kind in ("LI", "LIF"):
        v = leak_integrate(state["v"], p.r * x, p.a_mem, p.v_leak)
        if p.kind == "LI":
            return v, {"v": v}
        z, v = spike_reset(v, p.v_threshold, p.v_reset, reset)
        return z, {"v": v}
    i = state["i"] + p.a_syn * (p.w_in * x - state["i"])
    v = leak_integrate(state["v"], p.r * i, p.a_mem, p.v_leak)
    if p.kind == "CubaLI":
        return v, {"v": v, "i": i}
    z, v = spike_reset(v, p.v_threshold, p.v_reset, reset)
    return z, {"v": v, "i": i}
