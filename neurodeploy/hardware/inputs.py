"""What pricing reads — a RunResult's counts and a Program's ``describe()`` dict — checked,
and the one-line errors a hardware model gives when what it needs is not there.

Pricing never asks which target ran: it reads counts keyed by NIR nodes
(docs/protocol.md) and the description's sections. A malformed input is an
:class:`~neurodeploy.errors.InputError` naming the node or key; a result that lacks the
counts or geometry a hardware kind prices is an :class:`~neurodeploy.errors.UnsupportedError`.
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping

from ..errors import InputError, UnsupportedError

#: the crossbar kinds an RRAM profile prices (docs/protocol.md, extra kinds)
CROSSBAR_KINDS = ("cell_reads", "rows_activated", "adc_conversions")
#: the kinds that mark a synapse node
SYNAPSE_KINDS = ("synaptic_events", "dense_synops")


def cite(profile, name: str) -> dict:
    """JSON-ready record of one profile constant as used by a figure."""
    c = profile[name]
    return {"value": c.value, "unit": c.unit, "si": c.si, "source": c.source, "confidence": c.confidence}


def checked_counts(result) -> dict[str, dict[str, int]]:
    """``result.counts`` as {node: {kind: int}}; InputError naming a bad node or kind."""
    counts = getattr(result, "counts", None)
    if not isinstance(counts, Mapping):
        raise InputError(f"pricing needs a RunResult with counts {{node: {{kind: n}}}}, got {type(result).__name__}")
    for attr in ("batch", "steps"):
        v = getattr(result, attr, None)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise InputError(f"pricing needs RunResult.{attr} as an integer >= 0, got {v!r}")
    out = {}
    for node, kinds in counts.items():
        if not isinstance(kinds, Mapping):
            raise InputError(f"counts of node '{node}' must be a dict {{kind: n}}, got {type(kinds).__name__}")
        out[str(node)] = {str(k): _count(node, k, v) for k, v in kinds.items()}
    return out


def _count(node, kind, v) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"count '{kind}' of node '{node}' is not a number: {v!r}") from None
    if not math.isfinite(f) or f < 0:
        raise InputError(f"count '{kind}' of node '{node}' must be finite and >= 0, got {v!r}")
    return int(round(f))


def samples_steps(result) -> int:
    """batch × steps (at least 1): counts divided by it are averages per sample and step."""
    return max(int(result.batch) * int(result.steps), 1)


def check_description(description) -> None:
    """InputError unless ``description`` is None or a dict (``Program.describe()``)."""
    if description is not None and not isinstance(description, Mapping):
        raise InputError(f"description must be the dict Program.describe() returns, got {type(description).__name__}")


def section(description, key: str) -> Mapping | None:
    """``description[key]`` when it is a dict, None when absent or None; InputError when
    the description is not a dict (e.g. a Graph passed where ``describe()`` belongs)."""
    check_description(description)
    if description is None:
        return None
    v = description.get(key)
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise InputError(f"description['{key}'] must be a dict, got {type(v).__name__}")
    return v


def ran_on(result, description) -> str:
    """The name of the run's target, for messages only."""
    name = description.get("target") if isinstance(description, Mapping) else None
    return str(name or getattr(result, "target", None) or "given")


def lacking(profile, what: str, result, description, has: str = "counted none") -> UnsupportedError:
    """The one line a hardware model gives for a run without what it prices."""
    return UnsupportedError(
        f"hardware profile '{profile.name}' (kind {profile.kind}) prices {what} and the "
        f"{ran_on(result, description)} run {has}: run the model on a crossbar target")


def synapse_nodes(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Counted nodes that do synaptic work (the protocol's synapse kinds or crossbar kinds)."""
    return [n for n, c in counts.items() if any(k in c for k in SYNAPSE_KINDS + CROSSBAR_KINDS)]


def positive_int(where: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; InputError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or int(value) != value or value < minimum:
        raise InputError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return int(value)
