"""A differentiable reference simulation of any Graph.

:class:`Simulator` holds the synapse weights and biases of a Graph as ``torch`` parameters
and runs the graph with the reference target's own step loop (:class:`..targets.ops.StepLoop`)
and ops (:func:`..targets.ops.build_op`), with two replacements: neuron and Threshold nodes
step with :mod:`.surrogate` (same forward values, surrogate gradient), and synapse nodes
apply a parameter op whose weights an *effect* (:mod:`.effects`) may transform first (the
target's fixed-point grid, programmed conductances) and whose output it may replace by the
hardware's (``out = h + (f − f.detach())``: forward value exactly ``h``, gradient of ``f``).
With no effect the forward pass is the reference target's bit for bit.
"""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import torch

from ..graph.graph import SYNAPSE_TYPES
from ..targets import ops
from ..targets.base import as_inputs
from ..targets.counting import fanout
from ..targets.reference import _device, _dtype
from . import surrogate
from .params import FIELDS


class ParamSynapse(ops.Op):
    """Affine/Linear/Conv with the weight and bias it is given for this forward pass
    (``w``, ``b``) and an optional hardware op ``hw`` whose output replaces the value."""

    kind = "synapse"

    def __init__(self, name, node, in_shape, dtype, device):
        self.name = name
        self.conv = ops.Conv(node, in_shape, dtype, device) if isinstance(node, (nir.Conv1d, nir.Conv2d)) else None
        self.fanout = fanout(node, in_shape, device)
        self.w = self.b = self.hw = None

    def __call__(self, x):
        f = F_linear(x, self.w, self.b) if self.conv is None else self.conv._conv(x, self.w, self.b)
        if self.hw is None:
            return f
        with torch.no_grad():
            h = self.hw(x.detach())
        return h + (f - f.detach())


def F_linear(x, w, b):
    return torch.nn.functional.linear(x, w, b)


class SurrogateNeuron(ops.Neuron):
    def __call__(self, x):
        out, self.state = surrogate.step(x, self.state, self.p, self.reset_mode)
        return out


class SurrogateThreshold(ops.Threshold):
    def __call__(self, x):
        return surrogate.threshold(x, self.threshold)


class Simulator(torch.nn.Module):
    """Differentiable simulation of ``graph``. ``params`` is a ParameterDict keyed
    ``"<node>/<field>"`` (node names with "." written as ":")."""

    def __init__(self, graph, dtype="float32", device="cpu", v_init="zero"):
        super().__init__()
        self.graph = graph
        self.dtype, self.device = _dtype(dtype), _device(device)
        self.params = torch.nn.ParameterDict()
        self.synapses: dict[str, ParamSynapse] = {}
        for n in graph.order:
            node = graph.nodes[n]
            if isinstance(node, SYNAPSE_TYPES):
                for f in FIELDS[type(node)]:
                    t = torch.as_tensor(np.asarray(getattr(node, f)), dtype=self.dtype, device=self.device)
                    self.params[self.key(n, f)] = torch.nn.Parameter(t.clone())
        self._ops = {n: self._op(n, v_init) for n in graph.order}
        self._neuron_params = {n: op.p for n, op in self._ops.items() if isinstance(op, ops.Neuron)}
        self._loop = ops.StepLoop(graph, self._ops, self.dtype, self.device)

    @staticmethod
    def key(node: str, field: str) -> str:
        return f"{node.replace('.', ':')}/{field}"

    def _op(self, n, v_init):
        g, node = self.graph, self.graph.nodes[n]
        if isinstance(node, SYNAPSE_TYPES):
            self.synapses[n] = ParamSynapse(n, node, g.input_shape(n), self.dtype, self.device)
            return self.synapses[n]
        if isinstance(node, nir.Threshold):
            return SurrogateThreshold(node, self.dtype, self.device)
        op = ops.build_op(n, g, self.dtype, self.device, v_init=v_init)
        if isinstance(op, ops.Neuron):
            sop = SurrogateNeuron.__new__(SurrogateNeuron)
            sop.__dict__.update(op.__dict__)
            return sop
        return op

    def values(self) -> dict[str, dict[str, torch.Tensor]]:
        """{node: {field: parameter}} of the synapse nodes."""
        out: dict = {}
        for k, p in self.params.items():
            n, _, f = k.rpartition("/")
            out.setdefault(n.replace(":", "."), {})[f] = p
        return out

    def numpy_values(self) -> dict[str, dict[str, np.ndarray]]:
        return {n: {f: p.detach().cpu().to(torch.float64).numpy() for f, p in d.items()} for n, d in self.values().items()}

    def forward(self, x, effect=None):
        """Outputs {Output node: (batch, time, *shape)} for inputs ``x``. ``effect(values,
        inputs)`` returns this pass's :class:`.effects.Pass` (None: the reference)."""
        g = self.graph
        inputs = as_inputs(x, g.inputs, g.shapes, self.dtype, self.device)
        vals = self.values()
        if effect is None:
            wb, hw, decays = {n: (d["weight"], d.get("bias")) for n, d in vals.items()}, {}, {}
        else:
            p = effect(vals, inputs)
            wb, hw, decays = p.weights, p.hw, p.decays
        for n, s in self.synapses.items():
            s.w, s.b = wb[n]
            s.hw = hw.get(n)
        for n, p0 in self._neuron_params.items():
            d = decays.get(n)
            self._ops[n].p = p0 if not d else dataclasses.replace(
                p0, **{k: torch.full_like(getattr(p0, k), v) for k, v in d.items() if getattr(p0, k) is not None})
        outs, _, _, _ = self._loop.run(inputs, [], False, None)
        return outs
