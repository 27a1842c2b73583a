"""Executable float ops for each NIR primitive, and the step-loop that runs a Graph.

Shared by the reference target and the RRAM target (which swaps the synaptic ops for
crossbar ops). Every op works on a batch: ``x`` is (batch, *shape). The only Python loops
are over time steps and graph nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch
import torch.nn.functional as F

from .. import dynamics
from ..graph.graph import NEURON_TYPES, SYNAPSE_TYPES
from ..graph.normalize import _pair
from .counting import fanout, neuron_counts, synapse_counts


def _t(a, dtype, device):
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class Op:
    """One node. ``fanout`` (input shape) is set for synaptic ops, for event counting."""

    kind = "op"
    spiking = False
    fanout: torch.Tensor | None = None

    def reset(self, batch: int) -> None:  # stateless by default
        pass

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Dense(Op):
    kind = "synapse"

    def __init__(self, node, dtype, device):
        self.weight = _t(node.weight, dtype, device)
        self.bias = _t(node.bias, dtype, device) if isinstance(node, nir.Affine) else None
        self.fanout = fanout(node, (self.weight.shape[1],), device)

    def __call__(self, x):
        return F.linear(x, self.weight, self.bias)


class Conv(Op):
    kind = "synapse"

    def __init__(self, node, in_shape, dtype, device):
        self.nd = 1 if isinstance(node, nir.Conv1d) else 2
        self.weight = _t(node.weight, dtype, device)
        self.bias = _t(node.bias, dtype, device)
        pad = node.padding
        self.padding = pad if isinstance(pad, str) else _pair(pad, self.nd)
        self.stride = _pair(node.stride, self.nd)
        self.dilation = _pair(node.dilation, self.nd)
        self.groups = int(node.groups)
        self.fanout = fanout(node, in_shape, device)

    def _conv(self, x, w, b):
        fn = F.conv1d if self.nd == 1 else F.conv2d
        return fn(x, w, b, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def __call__(self, x):
        return self._conv(x, self.weight, self.bias)


class Pool(Op):
    def __init__(self, node):
        self.k = tuple(int(v) for v in node.kernel_size)
        self.s = tuple(int(v) for v in node.stride)
        self.p = tuple(int(v) for v in node.padding)
        self.sum = isinstance(node, nir.SumPool2d)

    def __call__(self, x):
        # SumPool2d: divisor 1 gives the exact sum; AvgPool2d counts the padding (torch default)
        return F.avg_pool2d(x, self.k, self.s, self.p, divisor_override=1 if self.sum else None)


class Flatten(Op):
    def __init__(self, node):
        s, e = int(node.start_dim), int(node.end_dim)
        self.start = s + 1 if s >= 0 else s
        self.end = e + 1 if e >= 0 else e

    def __call__(self, x):
        return torch.flatten(x, self.start, self.end)


class Scale(Op):
    def __init__(self, node, dtype, device):
        self.scale = _t(node.scale, dtype, device)

    def __call__(self, x):
        return x * self.scale


class Threshold(Op):
    spiking = True

    def __init__(self, node, dtype, device):
        self.threshold = _t(node.threshold, dtype, device)

    def __call__(self, x):
        return (x > self.threshold).to(x.dtype)


class Delay(Op):
    """``y[t] = x[t − d]`` with ``d = round(delay/dt)`` steps per element (zeros before)."""

    def __init__(self, node, dt, dtype, device):
        steps = np.rint(np.asarray(node.delay, np.float64) / dt).astype(np.int64)
        self.steps = torch.as_tensor(steps, device=device)
        self.length = int(steps.max()) + 1 if steps.size else 1
        self.dtype, self.device = dtype, device

    def reset(self, batch):
        self.t = 0
        self.buf = torch.zeros((self.length, batch, *self.steps.shape), dtype=self.dtype, device=self.device)

    def __call__(self, x):
        L = self.length
        self.buf[self.t % L] = x
        idx = ((self.t - self.steps) % L).expand(1, x.shape[0], *self.steps.shape)
        self.t += 1
        return torch.gather(self.buf, 0, idx)[0]


class Neuron(Op):
    kind = "neuron"

    def __init__(self, node, dt, reset, dtype, device, v_init="zero"):
        self.p = dynamics.prepare(node, dt, dtype, device)
        self.v_init = v_init
        self.spiking = self.p.spiking
        self.reset_mode = reset
        self.dtype, self.device = dtype, device

    def reset(self, batch):
        self.state = dynamics.init_state(self.p, batch, self.dtype, self.device, self.v_init)

    def __call__(self, x):
        out, self.state = dynamics.step(x, self.state, self.p, self.reset_mode)
        return out


class Identity(Op):
    def __call__(self, x):
        return x


def build_op(name: str, graph, dtype, device, synapse_factory=None, v_init: str = "zero") -> Op:
    """The float op for flat node ``name``. ``synapse_factory(name, node, in_shape)`` may
    return a replacement for Dense/Conv ops (the RRAM target's crossbars)."""
    node = graph.nodes[name]
    in_shape = graph.input_shape(name)
    if isinstance(node, SYNAPSE_TYPES) and synapse_factory is not None:
        op = synapse_factory(name, node, in_shape)
        if op is not None:
            return op
    if isinstance(node, (nir.Affine, nir.Linear)):
        return Dense(node, dtype, device)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return Conv(node, in_shape, dtype, device)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return Pool(node)
    if isinstance(node, nir.Flatten):
        return Flatten(node)
    if isinstance(node, nir.Scale):
        return Scale(node, dtype, device)
    if isinstance(node, nir.Threshold):
        return Threshold(node, dtype, device)
    if isinstance(node, nir.Delay):
        return Delay(node, graph.dt, dtype, device)
    if isinstance(node, NEURON_TYPES):
        return Neuron(node, graph.dt, graph.reset, dtype, device, v_init)
    return Identity()  # Input / Output


@dataclass
class StepLoop:
    """Runs a Graph's ops over time. ``ops[name]`` for every flat node in ``graph.order``."""

    graph: object
    ops: dict
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    inputs_of: dict = field(init=False)

    def __post_init__(self):
        g = self.graph
        self.inputs_of = {n: [(a, (a, n) in g.delayed) for a, b in g.edges if b == n] for n in g.order}
        self.delayed_sources = sorted({a for a, _ in g.delayed})
        # a synapse fed by one spiking node sees only 0/1 values: its nonzero count is a sum
        self.binary_in = {n: len(src) == 1 and bool(getattr(self.ops[src[0][0]], "spiking", False))
                          for n, src in self.inputs_of.items()}

    def run(self, inputs: dict[str, torch.Tensor], record: list[str], record_states: bool = False, progress=None):
        g = self.graph
        batch, steps = next(iter(inputs.values())).shape[:2]
        for op in self.ops.values():
            op.reset(batch)
        prev = {s: torch.zeros((batch, *g.shapes[s]), dtype=self.dtype, device=self.device) for s in self.delayed_sources}
        outs = {n: [] for n in g.outputs}
        recs = {n: [] for n in record}
        states = {n: [] for n in record if isinstance(self.ops[n], Neuron)} if record_states else {}
        # per input element: how many (sample, step) pairs it was nonzero; × fan-out at the end
        syn = {n: None for n in g.order if self.ops[n].fanout is not None}
        spk = {n: torch.zeros((), dtype=torch.float64, device=self.device) for n in g.order if self.ops[n].spiking}
        for t in range(steps):
            vals = {}
            for n in g.order:
                op = self.ops[n]
                if n in inputs:
                    vals[n] = inputs[n][:, t]
                    continue
                srcs = self.inputs_of[n]
                x = prev[srcs[0][0]] if srcs[0][1] else vals[srcs[0][0]]
                for a, dl in srcs[1:]:
                    x = x + (prev[a] if dl else vals[a])
                if op.fanout is not None:
                    nz = (x if self.binary_in[n] else torch.sign(x).abs_()).sum(0, dtype=torch.float64)
                    syn[n] = nz if syn[n] is None else syn[n].add_(nz)
                y = op(x)
                vals[n] = y
                if op.spiking:
                    spk[n] += y.sum(dtype=torch.float64)
            for s in self.delayed_sources:
                prev[s] = vals[s]
            for n in outs:
                outs[n].append(vals[n])
            for n in recs:
                recs[n].append(vals[n])
            for n in states:
                states[n].append(self.ops[n].state["v"])
            if progress is not None:
                progress(t + 1, steps)
        counts = {}
        for n in g.order:
            c = synapse_counts(self.ops[n].fanout, syn[n], batch, steps) if n in syn else {}
            c.update(neuron_counts(g, n, batch, steps, int(round(float(spk[n]))) if n in spk else None))
            if c:
                counts[n] = c
        stack = lambda xs: torch.stack(xs, 1) if xs else torch.zeros(0)  # noqa: E731
        return (
            {n: stack(v) for n, v in outs.items()},
            {n: stack(v) for n, v in recs.items()},
            {n: stack(v) for n, v in states.items()},
            counts,
        )
