"""norse frontend: a norse module traced with our own extractor (not ``norse.torch.to_nir``).

Each cell becomes the NIR node its own step function integrates (norse 1.1.0, forward
Euler at the cell's ``dt``):

* ``LIFBoxCell`` → LIF(τ = 1/τ_inv, r = 1), reset to ``v_reset`` or by subtraction as the
  cell's ``reset_method`` says; ``LIBoxCell`` → LI;
* ``LIFCell`` / ``LICell`` → CubaLIF / CubaLI with ``w_in = τ_syn/dt``: norse jumps the
  current by the input and updates the membrane with the jumped current, which is NIR's
  CubaLIF exactly (quirk ``norse-w-in``);
* ``IAFCell`` → IF(r = 1/dt) (``v += x`` per step, quirk ``norse-if-r``);
* ``LIFRecurrentCell`` → Linear(input weights) → CubaLIF ⟲ Linear(recurrent weights,
  diagonal zeroed unless ``autapses``); the recurrent edge carries the previous step's spikes
  as norse's ``state.z`` does;
* Linear, Conv1d/Conv2d (with or without bias), AvgPool2d, Flatten, Dropout as in
  :mod:`.torch`; anything else is refused naming the module.

norse starts membranes at ``v_leak``; spiking layers are written relative to it
(``norse-v-leak-start``). The dt defaults to the cells' own ``dt`` (they must agree); a
different ``dt`` is allowed and reported by the diagnostics (``dt-mismatch``).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedError
from . import _edit, quirks
from .torch import torch_node, trace


def _p(value):
    return np.asarray(_edit.as_numpy(value), np.float32)


def _reset_of(cell) -> str:
    import norse.torch.functional.reset as nreset

    method = getattr(cell.p, "reset_method", None)
    if method is None or method is nreset.reset_value:
        return "zero"
    if method is nreset.reset_subtract:
        return "subtract"
    raise UnsupportedError(f"norse cell {type(cell).__name__}: reset method {method!r} has no NIR equivalent")


def cell_node(cell, dt: float):
    """The NIR node of one norse cell (None if ``cell`` is not a supported norse cell)."""
    import nir
    import norse.torch as nt

    p = getattr(cell, "p", None)
    looping = tuple(getattr(nt, n) for n in ("LIF", "LIFBox", "LI", "LIBox", "IAF", "LIFRecurrent") if hasattr(nt, n))
    if isinstance(cell, looping):
        raise UnsupportedError(f"norse's {type(cell).__name__} loops over time inside the module; build the model from "
                               f"its cell ({type(cell).__name__}Cell) in a SequentialState, which runs one step per call")
    if isinstance(cell, nt.LIFBoxCell):
        return nir.LIF(tau=1 / _p(p.tau_mem_inv), r=np.ones((), np.float32), v_leak=_p(p.v_leak),
                       v_threshold=_p(p.v_th), v_reset=_p(p.v_reset))
    if isinstance(cell, nt.LIBoxCell):
        return nir.LI(tau=1 / _p(p.tau_mem_inv), r=np.ones((), np.float32), v_leak=_p(p.v_leak))
    if isinstance(cell, (nt.LIFCell, nt.LIFRecurrentCell, nt.LICell)):
        tau_syn = 1 / _p(p.tau_syn_inv)
        kw = dict(tau_syn=tau_syn, tau_mem=1 / _p(p.tau_mem_inv), r=np.ones((), np.float32), v_leak=_p(p.v_leak),
                  w_in=np.asarray(tau_syn / dt, np.float32))
        if isinstance(cell, nt.LICell):
            return nir.CubaLI(**kw)
        return nir.CubaLIF(**kw, v_threshold=_p(p.v_th), v_reset=_p(p.v_reset))
    if isinstance(cell, nt.IAFCell):
        return nir.IF(r=np.full((), 1 / dt, np.float32), v_threshold=_p(p.v_th), v_reset=_p(p.v_reset))
    return None


def _cells(module):
    import norse.torch as nt

    kinds = (nt.LIFBoxCell, nt.LIBoxCell, nt.LIFCell, nt.LIFRecurrentCell, nt.LICell, nt.IAFCell)
    return [(n, m) for n, m in module.named_modules() if isinstance(m, kinds)]


def _recurrent(graph, name, cell):
    import nir

    w_in = cell.input_weights.detach().cpu().numpy()
    w_rec = cell.recurrent_weights.detach().cpu().numpy().copy()
    if not cell.autapses:
        np.fill_diagonal(w_rec, 0.0)
    graph = _edit.insert_before(graph, name, nir.Linear(weight=w_in), "in")
    return _edit.add_loop(graph, name, nir.Linear(weight=w_rec), "rec")


def from_norse(module, sample, *, dt=None, reset=None, model_name="norse"):
    import norse.torch as nt

    from ..graph.normalize import normalize

    cells = _cells(module)
    cell_dts = sorted({float(m.dt) for _, m in cells if hasattr(m, "dt")})
    if len(cell_dts) > 1:
        raise UnsupportedError(f"norse cells integrate with different steps {cell_dts}: one graph has one dt")
    module_dt = cell_dts[0] if cell_dts else quirks.NORSE_DT
    dt = module_dt if dt is None else float(dt)
    resets = {_reset_of(m) for _, m in cells if isinstance(m, nt.LIFBoxCell)}
    if len(resets) > 1:
        raise UnsupportedError("norse cells mix reset to a value and reset by subtraction: one graph has one reset mode")
    module_reset = resets.pop() if resets else "zero"
    if reset is not None and reset != module_reset:
        raise InputError(f"the norse module resets {'by subtraction' if module_reset == 'subtract' else 'to a value'}; "
                         f"reset={reset!r} would run another network")

    def node_fn(sub, name):
        node = cell_node(sub, dt)
        return node if node is not None else torch_node(sub)

    graph = trace(module, sample, node_fn, model_name=model_name)
    for name, cell in cells:
        if isinstance(cell, nt.LIFRecurrentCell) and name in graph.nodes:
            graph = _recurrent(graph, name, cell)
    graph = quirks.record(graph, repairs=["norse-export-layers", "norse-tau", "norse-w-in", "norse-if-r"],
                          exporter="norse", exporter_dt=module_dt)
    graph = quirks.shift_to_leak(graph, module_reset)
    return normalize(graph, dt=dt, reset=module_reset, source=f"norse:{type(module).__name__}")
