r"""The reference dynamics with a surrogate gradient at the threshold.

Forward values are the reference target's bit for bit: :func:`step` is
:func:`neurodeploy.dynamics.step` assembled from the same shared functions
(:func:`~neurodeploy.dynamics.leak_integrate`, :func:`~neurodeploy.dynamics.spike_reset`) in
the same order; the only addition is a term ``s − s.detach()`` on the spikes, which is
exactly 0 in the forward pass and carries the surrogate's gradient backwards.

Surrogate (documented choice): snnTorch's ``fast_sigmoid`` (Zenke & Ganguli's SuperSpike
shape, which norse also uses), in units of the threshold so that it does not depend on a
graph's scale::

    ∂z/∂v = 1 / (|θ| · (k·|v − θ|/|θ| + 1)²),   k = SLOPE = 25

(for θ = 1 this is snnTorch's default ``fast_sigmoid(slope=25)``). The reset is not
differentiated through the spike (``torch.where`` on the boolean spike, as snnTorch's
default detached reset): gradients flow through the membrane where it did not spike.
"""

from __future__ import annotations

import torch

from .. import dynamics

#: slope k of the fast-sigmoid surrogate, in units of the threshold (snnTorch's default 25)
SLOPE = 25.0


class _FastSigmoid(torch.autograd.Function):
    """Forward: 0 (a placeholder whose value is never used); backward: the fast-sigmoid
    derivative at ``u = (v − θ)/|θ|`` divided by |θ|."""

    @staticmethod
    def forward(ctx, v, theta):
        ctx.save_for_backward(v, theta)
        return torch.zeros_like(v)

    @staticmethod
    def backward(ctx, grad):
        v, theta = ctx.saved_tensors
        a = theta.abs().clamp(min=torch.finfo(v.dtype).tiny)
        g = grad / (a * (SLOPE * (v - theta).abs() / a + 1) ** 2)
        return g, None


def with_surrogate(z: torch.Tensor, v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``z`` (the exact 0/1 spikes of membrane ``v`` against ``theta``) with the surrogate
    gradient attached; the value is ``z`` exactly (``z + 0``)."""
    if not (v.requires_grad or theta.requires_grad):
        return z
    return z + _FastSigmoid.apply(v, torch.as_tensor(theta, dtype=v.dtype, device=v.device).expand_as(v))


def _spike(v, p: dynamics.NeuronParams, reset: str):
    z, v_new = dynamics.spike_reset(v, p.v_threshold, p.v_reset, reset)
    return with_surrogate(z, v, p.v_threshold), v_new


def step(x: torch.Tensor, state: dict, p: dynamics.NeuronParams, reset: str = "zero"):
    """:func:`neurodeploy.dynamics.step` with the surrogate gradient on the spikes."""
    if p.kind in ("I", "IF"):
        v = state["v"] + p.k_in * x
        if p.kind == "I":
            return v, {"v": v}
        z, v = _spike(v, p, reset)
        return z, {"v": v}
    if p.kind in ("LI", "LIF"):
        v = dynamics.leak_integrate(state["v"], p.r * x, p.a_mem, p.v_leak)
        if p.kind == "LI":
            return v, {"v": v}
        z, v = _spike(v, p, reset)
        return z, {"v": v}
    i = state["i"] + p.a_syn * (p.w_in * x - state["i"])
    v = dynamics.leak_integrate(state["v"], p.r * i, p.a_mem, p.v_leak)
    if p.kind == "CubaLI":
        return v, {"v": v, "i": i}
    z, v = _spike(v, p, reset)
    return z, {"v": v, "i": i}


def threshold(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """A NIR Threshold node (``x > θ``) with the same surrogate."""
    return with_surrogate((x > theta).to(x.dtype), x, theta)
