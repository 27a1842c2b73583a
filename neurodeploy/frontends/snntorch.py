"""snnTorch frontend: a module traced with our own extractor (not ``export_to_nir``).

snnTorch 1.0.0's neurons are per-step maps (dt-free); at the graph's ``dt`` they are NIR
nodes whose Euler step is the same map:

* ``Leaky``: ``v = βv + x`` → LIF(τ = dt/(1−β), r = 1/(1−β), v_leak = 0) (IF with r = 1/dt
  for β = 1). The reset is taken from the module (``reset_mechanism``, default "subtract").
  snnTorch resets one step late (it subtracts ``θ·s[t−1]`` from the *new* membrane); that is
  NIR's reset by subtraction plus a self-loop ``−(1−β)θ`` (``+βθ`` for "none") carrying the
  previous step's spikes — exact (quirk ``snntorch-reset``). "zero" is NIR's reset to zero.
* ``Synaptic``: ``syn = α·syn + x; v = βv + syn`` → LI (current, τ = dt/(1−α)) → LIF, so
  the reset loop acts on the membrane (``snntorch-synaptic``).
* ``RLeaky`` / ``RSynaptic``: the recurrent layer (``all_to_all`` Linear with its bias, or
  one-to-one ``V``) feeds the previous step's spikes back into the membrane / current.
* Linear, Conv1d/Conv2d, AvgPool2d, Flatten, Dropout as in :mod:`.torch`.

Refused with the reason (UnsupportedError): reset to zero of Synaptic/RLeaky/RSynaptic
(snnTorch then zeroes the membrane *including* that step's input, which NIR's reset keeps),
a mix of reset modes (one graph has one), ``inhibition``, ``state_quant``,
``graded_spikes_factor ≠ 1``, ``reset_delay=False``, and neuron types without a NIR model
(Alpha, Lapicque, SLSTM, …: the tracer names the module).

With no ``dt``, the exporter's convention 1e-4 s is used; any dt gives the same spikes.
"""

from __future__ import annotations

import nir
import numpy as np

from ..errors import InputError, UnsupportedError
from . import _edit, quirks
from .torch import torch_node, trace

SNNTORCH_DT = quirks.SNNTORCH_DT


def _a(value):
    return np.asarray(_edit.as_numpy(value), np.float64)


def _f32(a):
    return np.asarray(a, np.float32)


def _leaky(decay, dt, name, **spiking):
    """NIR node of ``v = decay·v + x``: LI/LIF, or I/IF when decay = 1."""
    decay = np.clip(decay, 0.0, 1.0)
    if np.all(decay == 1.0):
        r = _f32(np.full(decay.shape, 1 / dt))
        return nir.IF(r=r, **spiking) if spiking else nir.I(r=r)
    if np.any(decay == 1.0):
        raise UnsupportedError(f"module '{name}': decay 1 (no leak) for some neurons only has no single NIR node")
    kw = dict(tau=_f32(dt / (1 - decay)), r=_f32(1 / (1 - decay)), v_leak=_f32(np.zeros_like(decay)))
    return nir.LIF(**kw, **spiking) if spiking else nir.LI(**kw)


def _check(cell, name):
    if getattr(cell, "inhibition", False) or getattr(cell, "state_quant", False):
        raise UnsupportedError(f"module '{name}' ({type(cell).__name__}): inhibition/state_quant have no NIR equivalent")
    if not np.allclose(_a(getattr(cell, "graded_spikes_factor", 1.0)), 1.0):
        raise UnsupportedError(f"module '{name}': graded_spikes_factor ≠ 1 (graded spikes) has no NIR equivalent")
    if not getattr(cell, "reset_delay", True):
        raise UnsupportedError(f"module '{name}': reset_delay=False is not supported (snnTorch's default is True)")


def _cells(module):
    import snntorch as snn

    return [(n, m) for n, m in module.named_modules() if isinstance(m, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic))]


def _graph_reset(cells) -> str:
    import snntorch as snn

    modes = {n: m.reset_mechanism for n, m in cells}
    for n, m in cells:
        if modes[n] == "zero" and not isinstance(m, snn.Leaky):
            raise UnsupportedError(f"module '{n}' ({type(m).__name__}): snnTorch's reset to zero sets the membrane to 0 on "
                                   "the step after a spike, discarding that step's input; NIR's reset keeps it "
                                   "(use reset_mechanism='subtract' or 'none')")
    kinds = {"zero" if v == "zero" else "subtract" for v in modes.values()}
    if len(kinds) > 1:
        raise UnsupportedError(f"modules reset in different ways ({modes}): one graph has one reset mode")
    return kinds.pop() if kinds else "zero"


def cell_node(cell, name, dt):
    """The membrane node of an snnTorch neuron (None if not one)."""
    import snntorch as snn

    if not isinstance(cell, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)):
        return None
    _check(cell, name)
    thr = _f32(_a(cell.threshold))
    return _leaky(_a(cell.beta), dt, name, v_threshold=thr, v_reset=_f32(np.zeros_like(thr)))


def _expand(graph, name, cell, dt):
    """Add the synaptic LI, the recurrent layer and the reset loop of one neuron module."""
    import snntorch as snn

    into = name
    if isinstance(cell, (snn.Synaptic, snn.RSynaptic)):
        graph = _edit.insert_before(graph, name, _leaky(_a(cell.alpha), dt, name), "syn")
        into = f"{name}.syn"
    if isinstance(cell, (snn.RLeaky, snn.RSynaptic)):
        if cell.all_to_all:
            rec = torch_node(cell.recurrent)
            if not isinstance(rec, (nir.Linear, nir.Affine)):
                raise UnsupportedError(f"module '{name}': only Linear all-to-all recurrence is supported, "
                                       f"not {type(cell.recurrent).__name__}")
        else:
            rec = nir.Scale(scale=_f32(_a(cell.recurrent.V)))
        graph = _edit.add_loop(graph, name, rec, "rec", into=into)
    if cell.reset_mechanism in ("subtract", "none"):
        beta, thr = np.clip(_a(cell.beta), 0, 1), _a(cell.threshold)
        kick = -(1 - beta) * thr if cell.reset_mechanism == "subtract" else beta * thr
        graph = _edit.add_loop(graph, name, nir.Scale(scale=_f32(kick)), "reset")
    return graph


def from_snntorch(module, sample, *, dt=None, reset=None, model_name="snntorch"):
    import snntorch as snn

    from ..graph.normalize import normalize

    dt = SNNTORCH_DT if dt is None else float(dt)
    cells = _cells(module)
    graph_reset = _graph_reset(cells)
    if reset is not None and reset != graph_reset:
        raise InputError(f"the snnTorch module resets {'to zero' if graph_reset == 'zero' else 'by subtraction'}; "
                         f"reset={reset!r} would run another network")

    def node_fn(sub, name):
        node = cell_node(sub, name, dt)
        return node if node is not None else torch_node(sub)

    graph = trace(module, sample, node_fn, model_name=model_name, ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])
    for name, cell in cells:
        if name in graph.nodes:
            graph = _expand(graph, name, cell, dt)
    repairs = ["snntorch-export-layers", "snntorch-dt"]
    repairs += ["snntorch-reset"] if graph_reset == "subtract" else []
    repairs += ["snntorch-synaptic"] if any(isinstance(m, (snn.Synaptic, snn.RSynaptic)) for _, m in cells) else []
    graph = quirks.record(graph, repairs=repairs, exporter="snntorch", exporter_dt=dt)
    return normalize(graph, dt=dt, reset=graph_reset, source=f"snntorch:{type(module).__name__}")
