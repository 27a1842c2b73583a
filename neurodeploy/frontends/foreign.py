"""Sinabs and Rockpool modules: exported with the framework's own ``to_nir``, then repaired
(:mod:`.quirks`: ``sinabs-if-r``/``sinabs-decay``, ``rockpool-decay``).

Unlike a file, the module says what its exporter leaves out, so each setting that NIR (or
the exporter) cannot carry is refused here naming the module, instead of being assumed:
several events per step (Sinabs' ``MultiSpike``, Rockpool's ``max_spikes_per_dt > 1``),
a membrane floor (``min_v_mem``), a synaptic τ on a Sinabs layer, ``norm_input`` away from
the default the repair reads, a reset other than subtraction or to zero, Rockpool biases,
recurrent weights and noise (its ``to_nir`` drops them).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedError

SINABS_DT = 1e-3  # Sinabs layers are per step: any dt gives the same spikes; this one is the default


def _refuse(name, module, why):
    raise UnsupportedError(f"module '{name}' ({type(module).__name__}): {why}")


def _export(to_nir, what, module, sample):
    try:
        return to_nir(module, sample)
    except NotImplementedError as exc:  # the exporter's own refusal, e.g. "Module <IAFRecurrent> not supported"
        raise UnsupportedError(f"{what} cannot export this model: {exc}") from None


def _check_sinabs(module):
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, MembraneSubtract, SingleSpike

    resets = set()
    for name, m in module.named_modules():
        if not isinstance(m, (sl.IAF, sl.LIF, sl.ExpLeak)):
            continue
        spiking = m.spike_fn is not None
        if spiking and m.spike_fn is not SingleSpike:
            _refuse(name, m, f"{m.spike_fn.__name__} emits floor(v/θ) events per step; a NIR neuron emits one "
                    "(build it with spike_fn=SingleSpike)")
        if m.min_v_mem is not None:
            _refuse(name, m, "min_v_mem floors the membrane, which NIR neurons do not")
        if getattr(m, "tau_syn", None) is not None:
            _refuse(name, m, "sinabs.to_nir writes this layer without its synaptic τ (tau_syn)")
        if m.norm_input != (not isinstance(m, (sl.ExpLeak, sl.IAF))):
            _refuse(name, m, f"norm_input={m.norm_input}: sinabs.to_nir writes r = 1 either way, read with the "
                    "layer's default")
        if spiking and isinstance(m.reset_fn, MembraneSubtract) and m.reset_fn.subtract_value is None:
            resets.add("subtract")
        elif spiking and isinstance(m.reset_fn, MembraneReset) and not m.reset_fn.reset_value:
            resets.add("zero")
        elif spiking:
            _refuse(name, m, f"reset {m.reset_fn!r} has no NIR form (subtract the threshold or reset to 0)")
    if len(resets) > 1:
        raise UnsupportedError("the Sinabs layers reset in different ways; one graph has one reset mode")
    return resets.pop() if resets else "subtract"


def from_sinabs(module, sample, *, dt=None, reset=None):
    """``sinabs.to_nir(module, sample)`` repaired; ``sample`` is one batch of one step."""
    import sinabs

    from ..graph.normalize import normalize
    from . import quirks

    mode = _check_sinabs(module)
    if reset not in (None, mode):
        raise InputError(f"reset={reset!r}, but the Sinabs layers reset by {mode!r}")
    graph = _export(sinabs.to_nir, "sinabs.to_nir", module, sample)
    for m in module.modules():  # to_nir ran the module on the sample: clear the state it left
        if hasattr(m, "reset_states"):
            m.reset_states()
    graph, dt = quirks.repair_sinabs(graph, float(dt or SINABS_DT), mode)
    graph.metadata["assumptions"] = []  # checked on the module
    return normalize(graph, dt=dt, reset=mode)


def _check_rockpool(module):
    import torch
    from rockpool.nn.modules import ExpSynTorch, LIFNeuronTorch, LIFTorch

    for name, m in torch.nn.Module.named_modules(module):  # Rockpool overrides named_modules
        if not isinstance(m, (LIFTorch, LIFNeuronTorch, ExpSynTorch)):
            continue
        if isinstance(m, (LIFTorch, LIFNeuronTorch)):
            if float(m.max_spikes_per_dt) != 1:
                _refuse(name, m, f"max_spikes_per_dt={float(m.max_spikes_per_dt):g} emits floor(v/θ) events per "
                        "step; a NIR neuron emits one (build it with max_spikes_per_dt=1)")
            if float(np.abs(m.noise_std)) > 0:
                _refuse(name, m, "noise_std > 0: a random membrane noise has no NIR form")
            if np.any(m.bias.detach().numpy() != 0):
                _refuse(name, m, "Rockpool's to_nir writes its bias as v_leak = 0")
        w_rec = getattr(m, "w_rec", None)
        if getattr(m, "_has_rec", False) and w_rec is not None and np.any(w_rec.detach().numpy() != 0):
            _refuse(name, m, "Rockpool's to_nir drops the recurrent weights w_rec")


def from_rockpool(module, sample, *, dt=None, reset=None):
    """``rockpool.nn.modules.torch.nir.to_nir(module, sample)`` repaired (``rockpool-decay``)."""
    import nir
    from rockpool.nn.modules.torch.nir import to_nir

    from ..graph.normalize import normalize
    from . import quirks

    _check_rockpool(module)
    if reset not in (None, "subtract"):
        raise InputError(f"reset={reset!r}: Rockpool's neurons reset by subtraction")
    graph = _export(to_nir, "rockpool's to_nir", module, sample)
    for node in graph.nodes.values():  # 0-d torch parameters (ExpSynTorch): plain arrays
        for key, value in list(vars(node).items()):
            if hasattr(value, "detach"):
                setattr(node, key, np.asarray(value.detach().cpu().numpy(), np.float32))
    if not isinstance(graph, nir.NIRGraph):  # pragma: no cover - to_nir always gives a graph
        raise InputError("rockpool's to_nir did not return a NIR graph")
    graph, dt = quirks.repair_rockpool(graph, dt, "subtract")
    graph.metadata["assumptions"] = []  # checked on the module
    return normalize(graph, dt=dt, reset="subtract")
