"""``describe()`` of the Loihi programs (docs/protocol.md, "The description"): plain,
JSON-ready data, shared by the emulator's Program and LavaProgram."""

from __future__ import annotations

import json

from ..base import describe_base
from ..memory import graph_memory
from .program import LoihiProgram, _jsonable, declared_lag, hardware_constant


def describe_program(program: LoihiProgram, target: str, run_options: dict, compile_options: dict,
                     **parts) -> dict:
    """Every protocol key: ``lag`` (= ``RunResult.info["lag"]``), ``quantization`` (the
    per-layer report), ``mapping`` (when mapped onto cores), ``memory`` (from the profile's
    ``weight_bits`` and ``state_bits``), ``run_options``, ``compile_options``."""
    return describe_base(
        target, program.graph, lag=declared_lag(program),
        quantization=_plain(program.report) if program.report else None,
        mapping=_plain(program.mapping) if program.mapping is not None else None,
        memory=memory(program),
        run_options=run_options, compile_options=_plain(compile_options), **parts,
    )


def memory(program: LoihiProgram) -> dict | None:
    """Weights and neuron state of the NIR graph at the profile's widths (None without a graph)."""
    if program.graph is None:
        return None
    wb = hardware_constant(program, "weight_bits", "describe()['memory']")
    sb = hardware_constant(program, "state_bits", "describe()['memory']")
    prof = program.hardware.get("profile", "?")
    return graph_memory(program.graph, wb / 8, sb / 8,
                        f"{wb}-bit weights, {sb}-bit state variables (profile {prof}), per NIR weight and state")


def _plain(o):
    """JSON-ready copy (numpy scalars and arrays, tuples → Python)."""
    return json.loads(json.dumps(o, default=_jsonable))
