"""Physical units accepted in hardware profiles, and their conversion to SI base units.

Every constant in a hardware profile carries a unit string. The unit must belong to one
of the dimensions below; :func:`to_si` multiplies the value by the unit's factor to give
the value in the dimension's SI base unit (J, s, W, S, V, bytes, or a plain number).

Byte prefixes follow the hardware literature, not SI: ``KB`` and ``KiB`` both mean 1024
bytes and ``MB``/``MiB`` both mean 1024**2 bytes (Davies et al. 2018, for instance, give
Loihi's synaptic memory as "128 KB" per core, meaning 131,072 bytes).

The micro prefix may be written ``u``, ``µ`` (U+00B5) or ``μ`` (U+03BC).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Mapping, Tuple

# dimension -> {unit: factor to the SI base unit}; insertion order is the order used in
# error messages, smallest unit first.
DIMENSIONS: Mapping[str, Mapping[str, float]] = {
    "energy": {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "mJ": 1e-3, "J": 1.0},
    "time": {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0},
    "power": {"nW": 1e-9, "uW": 1e-6, "mW": 1e-3, "W": 1.0},
    "conductance": {"nS": 1e-9, "uS": 1e-6, "mS": 1e-3, "S": 1.0},
    "voltage": {"mV": 1e-3, "V": 1.0},
    "bytes": {"B": 1.0, "KiB": 1024.0, "MiB": 1024.0**2, "KB": 1024.0, "MB": 1024.0**2},
    "count": {"1": 1.0, "count": 1.0},
    "fraction": {"1": 1.0, "%": 1e-2},
}

# The SI base unit each dimension is converted to.
SI_UNIT: Mapping[str, str] = {
    "energy": "J",
    "time": "s",
    "power": "W",
    "conductance": "S",
    "voltage": "V",
    "bytes": "B",
    "count": "1",
    "fraction": "1",
}

# Words used in error messages ("expected an energy unit (...)").
_ARTICLE_NOUN: Mapping[str, str] = {
    "energy": "an energy unit",
    "time": "a time unit",
    "power": "a power unit",
    "conductance": "a conductance unit",
    "voltage": "a voltage unit",
    "bytes": "a bytes unit",
    "count": "a count unit",
    "fraction": "a fraction unit",
}

_MICRO_ALIASES = ("\u00b5", "\u03bc")


def normalize_unit(unit: str) -> str:
    """Return ``unit`` with surrounding blanks removed and a micro sign spelled ``u``."""
    unit = unit.strip()
    for alias in _MICRO_ALIASES:
        if unit.startswith(alias):
            unit = "u" + unit[len(alias):]
    return unit


def dimensions_of(unit: str) -> Tuple[str, ...]:
    """All dimensions ``unit`` belongs to (``"1"`` is both a count and a fraction)."""
    unit = normalize_unit(unit)
    return tuple(dim for dim, units in DIMENSIONS.items() if unit in units)


def is_known_unit(unit: str) -> bool:
    """True when ``unit`` belongs to at least one dimension."""
    return bool(dimensions_of(unit))


def describe_dimension(dimension: str) -> str:
    """Text such as ``an energy unit (fJ, pJ, nJ, uJ, mJ, J)`` for error messages."""
    units = ", ".join(DIMENSIONS[dimension])
    return f"{_ARTICLE_NOUN[dimension]} ({units})"


def all_units() -> Tuple[str, ...]:
    """Every accepted unit string once, in table order."""
    seen: Dict[str, None] = {}
    for units in DIMENSIONS.values():
        for unit in units:
            seen.setdefault(unit, None)
    return tuple(seen)


def _scale(value: float, factor: float) -> float:
    """``value * factor``, exact to the last digit when ``factor`` is a power of ten.

    ``1.7 * 1e-12`` is ``1.6999999999999998e-12`` in binary floating point; scaling the
    decimal representation instead gives ``1.7e-12``, the number the profile author wrote.
    """
    value = float(value)
    if factor > 0:
        exponent = Decimal(repr(factor)).normalize().as_tuple()
        if exponent.digits == (1,) and not exponent.sign:
            return float(Decimal(repr(value)).scaleb(exponent.exponent))
    return value * factor


def to_si(value: float, unit: str, dimension: str | None = None) -> float:
    """Convert ``value`` expressed in ``unit`` to the SI base unit of its dimension.

    ``dimension`` picks the dimension when given (it must contain ``unit``); otherwise
    the first dimension that contains ``unit`` is used. Raises ``ValueError`` for an
    unknown unit or a unit outside ``dimension``.
    """
    unit = normalize_unit(unit)
    if dimension is not None:
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r}")
        factor = DIMENSIONS[dimension].get(unit)
        if factor is None:
            raise ValueError(f"unit {unit!r} is not {describe_dimension(dimension)}")
        return _scale(value, factor)
    dims = dimensions_of(unit)
    if not dims:
        raise ValueError(f"unknown unit {unit!r}")
    return _scale(value, DIMENSIONS[dims[0]][unit])


def si_unit_of(unit: str, dimension: str | None = None) -> str:
    """The SI base unit that ``unit`` converts to (``"J"`` for ``"pJ"``, ...)."""
    if dimension is None:
        dims = dimensions_of(unit)
        if not dims:
            raise ValueError(f"unknown unit {unit!r}")
        dimension = dims[0]
    return SI_UNIT[dimension]
