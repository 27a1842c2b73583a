"""Reference target: float32 (or float64) torch simulation of a Graph, CPU or CUDA.

It implements the semantics of docs/semantics.md exactly and is what every other target is
compared against.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import InputError
from .base import RunResult, as_inputs, check_options, describe_base, record_set
from .memory import graph_memory
from .ops import StepLoop, build_op

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def _device(device) -> str:
    device = str(device or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return device


class ReferenceProgram:
    """A compiled reference simulation: the graph plus dtype and device."""

    target = "reference"

    def __init__(self, graph, dtype=torch.float32, device="cpu", v_init="zero"):
        from ..dynamics import V_INIT

        if v_init not in V_INIT:
            raise InputError(f"v_init must be one of {', '.join(V_INIT)}, got {v_init!r}")
        self.graph = graph
        self.dtype = _dtype(dtype)
        self.device = _device(device)
        self.v_init = v_init
        self._ops = {n: build_op(n, graph, self.dtype, self.device, v_init=v_init) for n in graph.order}
        self._loop = StepLoop(graph, self._ops, self.dtype, self.device)

    def run(self, x, record=None, record_states: bool = False, progress=None, **options) -> RunResult:
        check_options(f"{self.target} run", options, {})
        g = self.graph
        inputs = as_inputs(x, g.inputs, g.shapes, self.dtype, self.device)
        rec = record_set(record, g)
        with torch.no_grad():
            outs, recs, states, counts = self._loop.run(inputs, rec, record_states, progress)
        batch, steps = next(iter(inputs.values())).shape[:2]
        return RunResult(
            outputs=outs, records=recs, states=states, counts=counts, target=self.target,
            dt=g.dt, batch=int(batch), steps=int(steps),
            info={"dtype": str(self.dtype).replace("torch.", ""), "device": self.device},
        )

    def describe(self) -> dict:
        itemsize = torch.tensor([], dtype=self.dtype).element_size()
        return describe_base(
            self.target, self.graph,
            memory=graph_memory(self.graph, itemsize, itemsize, f"{itemsize}-byte weights and state ({self.dtype})"),
            compile_options={"dtype": str(self.dtype).replace("torch.", ""), "device": self.device, "v_init": self.v_init},
        )

    def save(self, path) -> Path:
        from ..graph import save

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        save(self.graph, d / "graph.nir")
        (d / "program.json").write_text(json.dumps({"target": self.target, "dtype": str(self.dtype).replace("torch.", ""), "dt": self.graph.dt, "reset": self.graph.reset, "v_init": self.v_init}))
        return d

    @classmethod
    def load(cls, path, device="cpu") -> "ReferenceProgram":
        from ..graph import load

        d = Path(path)
        meta = json.loads((d / "program.json").read_text())
        graph = load(d / "graph.nir", dt=meta["dt"], reset=meta["reset"])
        return cls(graph, meta["dtype"], device, meta.get("v_init", "zero"))


class ReferenceTarget:
    name = "reference"
    compile_options = {"dtype": "float32 | float64", "device": "cpu | cuda[:i]", "v_init": "zero | leak"}
    hardware_kinds: tuple[str, ...] = ()
    default_hardware = "loihi2"  # a float simulation has no hardware: priced as Loihi 2 events

    def compile(self, graph, hardware=None, dtype="float32", device="cpu", v_init="zero", **options) -> ReferenceProgram:
        """``dtype``: float32 | float64; ``device``: cpu | cuda; ``v_init``: zero | leak."""
        check_options(f"{self.name} target", options, self.compile_options)
        return ReferenceProgram(graph, dtype, device, v_init)
