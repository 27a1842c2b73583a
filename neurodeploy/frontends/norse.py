"""norse frontend.

norse 1.1.0's ``norse.torch.to_nir`` has three problems we repair here:

1. neuron parameters are 0-d torch tensors and Input/Output types carry the sample's batch
   dimension, so plain ``nir.write`` fails ("Scalar datasets don't support chunk/filter
   options" with h5py 3.16) — normalization converts, broadcasts and strips them;
2. time constants are written as ``tau = dt / tau_inv`` (that is ``dt·τ``, not ``τ``), so
   norse's own ``from_nir`` of its own export runs a different network. We write
   ``tau = 1 / tau_inv`` (seconds), the value the module integrates with;
3. ``LIFCell`` (current-based) is exported as CubaLIF with ``w_in = 1``, but its input jumps
   into the current (``i ← i·(1−dt/τ_syn) + x``) where NIR's CubaLIF adds
   ``dt/τ_syn·w_in·x``; we set ``w_in = τ_syn/dt`` so the current matches. One difference
   remains and is documented: ``LIFCell`` updates the membrane with the current *before*
   the jump, NIR with the current after it (one step earlier input response).

With those repairs, a norse module of Linear/Conv2d/LIFBoxCell/LIBoxCell/IAFCell layers and
its NIR graph produce the same spikes (tests/test_frontends.py).
"""

from __future__ import annotations

import numpy as np

DEFAULT_DT = 1e-3  # norse's default integration step (seconds)


def _inv(t) -> np.ndarray:
    return 1.0 / np.asarray(t.detach().cpu().numpy(), np.float64)


def _repair(graph, module, dt):
    import norse.torch as nt

    for name, node in graph.nodes.items():
        try:
            sub = module.get_submodule(name)
        except AttributeError:
            continue
        p = getattr(sub, "p", None)
        if p is None:
            continue
        if isinstance(sub, (nt.LIFBoxCell, nt.LIBoxCell)) and hasattr(node, "tau"):
            node.tau = _inv(p.tau_mem_inv)
        elif isinstance(sub, nt.LIFCell) and hasattr(node, "tau_mem"):
            node.tau_mem = _inv(p.tau_mem_inv)
            node.tau_syn = _inv(p.tau_syn_inv)
            node.w_in = node.tau_syn / dt
            node.v_reset = np.asarray(p.v_reset.detach().cpu().numpy(), np.float64)
        if hasattr(node, "v_reset") and hasattr(p, "v_reset"):
            node.v_reset = np.asarray(p.v_reset.detach().cpu().numpy(), np.float64)
    return graph


def from_norse(module, sample, *, dt=None, reset=None, model_name="norse"):
    import norse.torch as nt

    from ..graph.normalize import normalize

    dt = DEFAULT_DT if dt is None else dt
    graph = nt.to_nir(module, sample, model_name=model_name, dt=dt)
    graph = _repair(graph, module, dt)
    return normalize(graph, dt=dt, reset=reset, source=f"norse:{type(module).__name__}")
