"""The target protocol: ``compile(graph, hardware, **options) -> Program``,
``Program.run(x, record=...) -> RunResult``. Measurement only ever sees RunResult."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch

from ..errors import InputError

#: event kinds every target counts (per node, summed over batch and time)
EVENT_KINDS = (
    "synaptic_events",  # nonzero input element × its fan-out (one accumulate each)
    "dense_synops",  # every input element × its fan-out (what a dense MAC engine does)
    "neuron_updates",  # neuron state updates (neurons × steps × batch)
    "spikes",  # spikes emitted
)


@dataclass
class RunResult:
    """What a target returns.

    ``outputs[name]``: (batch, time, *shape) tensor per Output node. ``records[name]``: the
    output of node ``name`` at every step (spikes for spiking neurons, potentials for
    non-spiking), for the nodes asked for with ``record``. ``states[name]``: the membrane
    potential of recorded neuron nodes. ``counts[node][kind]``: event counts summed over
    batch and time (kinds in :data:`EVENT_KINDS`, targets may add their own, e.g. crossbar
    reads). ``info``: target specifics (lag, saturation events, ...).
    """

    outputs: dict[str, torch.Tensor]
    target: str
    dt: float
    batch: int
    steps: int
    records: dict[str, torch.Tensor] = field(default_factory=dict)
    states: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> torch.Tensor:
        """The single Output node's tensor (error if there are several)."""
        if len(self.outputs) != 1:
            raise InputError(f"graph has {len(self.outputs)} outputs: use .outputs[name] ({', '.join(self.outputs)})")
        return next(iter(self.outputs.values()))

    def total(self, kind: str) -> int:
        """Sum of one event kind over all nodes."""
        return int(sum(c.get(kind, 0) for c in self.counts.values()))

    def totals(self) -> dict[str, int]:
        kinds = sorted({k for c in self.counts.values() for k in c})
        return {k: self.total(k) for k in kinds}

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays, as ``neurodeploy run`` writes them."""
        out = {}
        if len(self.outputs) == 1:
            out["outputs"] = self.output.detach().cpu().numpy()
        else:
            for k, v in self.outputs.items():
                out[f"outputs.{k}"] = v.detach().cpu().numpy()
        for k, v in self.records.items():
            out[f"spikes.{k}"] = v.detach().cpu().numpy()
        for k, v in self.states.items():
            out[f"v.{k}"] = v.detach().cpu().numpy()
        return out


class Program(Protocol):
    target: str

    def run(self, x, record: Sequence[str] | str | None = None, **options) -> RunResult: ...

    def save(self, path) -> None: ...


class Target(Protocol):
    name: str

    def compile(self, graph, hardware=None, **options) -> Program: ...


#: target name → "module:attribute" (imported lazily, so Lava is only imported for "lava")
REGISTRY: dict[str, str] = {
    "reference": "neurodeploy.targets.reference:ReferenceTarget",
    "loihi2-emu": "neurodeploy.targets.loihi.emulator:EmulatorTarget",
    "lava": "neurodeploy.targets.loihi.lava:LavaTarget",
    "rram": "neurodeploy.targets.rram.program:RRAMTarget",
}


def get_target(name: str) -> Target:
    if name not in REGISTRY:
        raise InputError(f"unknown target {name!r}: choose one of {', '.join(REGISTRY)}")
    mod, _, attr = REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("neurodeploy"):
            raise InputError(f"target {name!r} is not available in this version") from None
        raise InputError(f"target {name!r} needs the package {exc.name!r}, which is not installed") from None
    return getattr(module, attr)()


def as_inputs(x, input_names: Sequence[str], input_shapes: Mapping[str, tuple], dtype, device) -> dict[str, torch.Tensor]:
    """Check and convert run inputs: an array (batch, time, *shape) or a dict of them."""
    if not isinstance(x, Mapping):
        if len(input_names) != 1:
            raise InputError(f"graph has {len(input_names)} inputs ({', '.join(input_names)}): pass a dict")
        x = {input_names[0]: x}
    out = {}
    batch_time = None
    for name in input_names:
        if name not in x:
            raise InputError(f"no data for input node '{name}'")
        arr = x[name]
        t = arr if isinstance(arr, torch.Tensor) else torch.as_tensor(np.asarray(arr))
        shape = tuple(input_shapes[name])
        if t.ndim != len(shape) + 2 or tuple(t.shape[2:]) != shape:
            raise InputError(
                f"input '{name}' has shape {tuple(t.shape)}, expected (batch, time, {', '.join(map(str, shape))})"
            )
        if batch_time is not None and tuple(t.shape[:2]) != batch_time:
            raise InputError(f"inputs disagree on (batch, time): {batch_time} vs {tuple(t.shape[:2])}")
        batch_time = tuple(t.shape[:2])
        out[name] = t.to(device=device, dtype=dtype)
    return out


def record_set(record, graph) -> list[str]:
    if record is None or record == () or record == []:
        return []
    if record == "all":
        return [n for n in graph.order if n not in graph.inputs and n not in graph.outputs]
    names = [record] if isinstance(record, str) else list(record)
    for n in names:
        if n not in graph.nodes:
            raise InputError(f"cannot record node '{n}': no such node (nodes: {', '.join(graph.order)})")
    return names
