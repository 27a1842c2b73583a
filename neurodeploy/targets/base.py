"""The target protocol: ``compile(graph, hardware, **options) -> Program``,
``Program.run(x, record=...) -> RunResult``. Measurement only ever sees RunResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch

from ..errors import InputError

#: The protocol's event kinds (docs/protocol.md): every target counts each of them the same
#: way, keyed by the NIR node that does the work, summed over batch and time.
EVENT_KINDS = {
    "dense_synops": "synapse node: MACs of the NIR operation as written (Σ input elements × their fan-out; "
                    "a convolution counts its kernel MACs, never an unrolled matrix) × steps × samples",
    "synaptic_events": "synapse node: Σ over (sample, step, input element) with a nonzero input of that "
                       "element's fan-out in the NIR operation (zero weights included)",
    "neuron_updates": "neuron node: neurons × steps × samples (one state update each)",
    "spikes": "spiking node: spikes emitted (binary outputs equal to 1)",
}

#: Target-specific kinds: extra keys beside the protocol's, each with one definition.
EXTRA_KINDS = {
    "array_reads": "rram, synapse node: reads of a (row tile, input vector) with at least one active row, × column tiles",
    "rows_activated": "rram, synapse node: word lines driven (active input rows × column tiles) per read cycle",
    "cell_reads": "rram, synapse node: devices read: active rows × 2 × outputs × bit slices (both cells of every pair the row crosses)",
    "adc_conversions": "rram, synapse node: one per differential-pair column (output × slice) of every tile read, per read cycle",
    "dac_conversions": "rram, synapse node: active rows of input vectors with a non-binary element, × column tiles, per read cycle",
    "adc_saturations": "rram, synapse node: column currents clipped at the ADC's full scale",
    "stored_synaptic_events": "rram sparse reservoir; loihi (under the last NIR synapse node folded into a Loihi synapse): nonzero input × stored (nonzero) connections",
    "tiles": "rram, synapse node: crossbar tiles the node occupies (a size, not an event)",
}

#: the lag key of RunResult.info and Program.describe(): {node: steps it trails the NIR reference}
LAG_KEY = "lag"


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

    @property
    def spikes(self) -> dict[str, torch.Tensor]:
        """Recorded spike trains: records of the nodes that count ``spikes``."""
        return {n: r for n, r in self.records.items() if "spikes" in self.counts.get(n, {})}

    @property
    def values(self) -> dict[str, torch.Tensor]:
        """Recorded graded values (potentials of non-spiking neurons, synapse currents, inputs)."""
        return {n: r for n, r in self.records.items() if "spikes" not in self.counts.get(n, {})}

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays, as ``neurodeploy run`` writes them: ``outputs`` (or
        ``outputs.<node>``), ``spikes.<node>`` for spiking nodes only, ``values.<node>`` for
        graded records, ``v.<node>`` for membrane potentials."""
        out = {}
        if len(self.outputs) == 1:
            out["outputs"] = self.output.detach().cpu().numpy()
        else:
            for k, v in self.outputs.items():
                out[f"outputs.{k}"] = v.detach().cpu().numpy()
        for k, v in self.spikes.items():
            out[f"spikes.{k}"] = v.detach().cpu().numpy()
        for k, v in self.values.items():
            out[f"values.{k}"] = v.detach().cpu().numpy()
        for k, v in self.states.items():
            out[f"v.{k}"] = v.detach().cpu().numpy()
        return out


class Program(Protocol):
    """What a target compiled. ``describe()`` is all that measurement may know of it."""

    target: str

    def run(self, x, record: Sequence[str] | str | None = None, **options) -> RunResult: ...

    def describe(self) -> dict:
        """Plain data: ``target``, ``lag`` {node: steps}, ``quantization``, ``mapping``,
        ``resources``, ``memory``, ``calibration``, ``crossbars``, ``run_options``
        {name: meaning}, ``compile_options``; keys a target has nothing for are None."""
        ...

    def save(self, path) -> None: ...


class Target(Protocol):
    name: str
    #: compile options {name: meaning}; any other option is an InputError
    compile_options: dict[str, str]
    #: hardware-profile kinds compile() uses (others are refused); () for none
    hardware_kinds: tuple[str, ...]
    #: the profile that prices this target's runs when none is given
    default_hardware: str | None

    def compile(self, graph, hardware=None, **options) -> Program: ...


#: run options every Program accepts
COMMON_RUN_OPTIONS = {
    "record": "nodes to record: 'all' (every neuron and spiking node), a name or a list of names",
    "record_states": "also record membrane potentials of recorded neuron nodes",
    "progress": "callback progress(done, total)",
}


def check_options(where: str, given: Mapping[str, Any], known: Mapping[str, str]) -> None:
    """InputError naming every unknown option (and the known ones)."""
    bad = sorted(set(given) - set(known))
    if bad:
        raise InputError(f"{where}: unknown option(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")


def describe_base(target: str, graph, *, lag=None, run_options=None, compile_options=None, **parts) -> dict:
    """A Program description with every protocol key present (None where a target has
    nothing to say). ``lag`` defaults to 0 for every node of ``graph``."""
    d = {
        "target": target,
        "dt": float(graph.dt) if graph is not None else None,
        LAG_KEY: dict(lag) if lag is not None else {n: 0 for n in graph.order} if graph is not None else {},
        "quantization": None, "mapping": None, "resources": None, "memory": None,
        "calibration": None, "crossbars": None,
        "run_options": {**COMMON_RUN_OPTIONS, **(run_options or {})},
        "compile_options": dict(compile_options or {}),
    }
    d.update(parts)
    return d


from .registry import REFERENCE, REGISTRY, get_target  # noqa: E402,F401  (light: no torch)


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
        check_finite(name, t)
        out[name] = t.to(device=device, dtype=dtype)
    return out


def check_finite(name: str, t: torch.Tensor) -> None:
    """InputError at the first NaN or ±Inf of input ``name`` (sample, step). One pass: a
    finite sum means every element is finite (NaN/Inf make it non-finite; only then, or
    when a finite input's sum overflows, is every element checked)."""
    if not t.is_floating_point() or not t.numel() or bool(torch.isfinite(t.sum())):
        return
    if not bool(torch.isfinite(t).all()):
        b, s = (int(i) for i in torch.nonzero(~torch.isfinite(t))[0][:2])
        raise InputError(f"input '{name}' contains NaN or Inf (first at sample {b}, step {s}): "
                         f"inputs must be finite")


def record_set(record, graph) -> list[str]:
    """Nodes to record. ``"all"`` means every neuron and spiking node — the nodes that exist
    on every target (a folding target has no synapse nodes left to record)."""
    if record is None or record == () or record == []:
        return []
    if record == "all":
        return populations(graph)
    names = [record] if isinstance(record, str) else list(record)
    for n in names:
        if n not in graph.nodes:
            raise InputError(f"--record: no node '{n}' in the graph (nodes: {', '.join(graph.order)})")
    return names


def populations(graph) -> list[str]:
    """Neuron and spiking nodes in graph order (what ``record="all"`` records)."""
    from ..graph.graph import NEURON_TYPES, SPIKING_TYPES

    return [n for n in graph.order if isinstance(graph.nodes[n], NEURON_TYPES + SPIKING_TYPES)]
