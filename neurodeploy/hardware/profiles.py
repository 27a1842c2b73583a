"""Hardware profiles: cited physical constants of a deployment target, loaded from TOML.

A profile is a TOML file with a ``[profile]`` table (``name``, ``kind``, ``description``)
and one ``[constants.<name>]`` table per constant, each holding ``value``, ``unit``,
``source`` (a citation), ``confidence`` (``measured`` | ``published`` | ``estimated``) and
an optional ``note`` (required when the constant is ``estimated``: it must say how the
number was derived). Each *kind* (``loihi``, ``rram``: targets whose runs are priced;
``digital``: a per-operation digital baseline for comparisons, :data:`PRICED_KINDS`) has a
schema of required constants and the dimension each must have; see :data:`REQUIRED` and
``docs/profiles.md``.

Bundled profiles live in ``<repo>/hardware_profiles``; directories listed in the
environment variable ``NEURODEPLOY_PROFILE_PATH`` (``os.pathsep``-separated) are searched
before it. Every validation failure raises :class:`~neurodeploy.errors.ProfileError` with a
one-line message that names the file and the field at fault.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import ProfileError
from . import units as _units

if sys.version_info >= (3, 11):  # pragma: no cover - depends on interpreter
    import tomllib as _toml
else:  # pragma: no cover - depends on interpreter
    import tomli as _toml

__all__ = [
    "Constant",
    "HardwareProfile",
    "load_profile",
    "list_profiles",
    "profile_dirs",
    "BUNDLED_DIR",
    "ENV_VAR",
    "REQUIRED",
    "KINDS",
    "CONFIDENCE_LEVELS",
    "PRICED_KINDS",
]

#: Directory holding the profiles shipped with the repository.
BUNDLED_DIR: Path = Path(__file__).resolve().parents[2] / "hardware_profiles"

#: Environment variable with extra profile directories, searched before ``BUNDLED_DIR``.
ENV_VAR = "NEURODEPLOY_PROFILE_PATH"

#: Allowed values of a constant's ``confidence`` field.
CONFIDENCE_LEVELS: Tuple[str, ...] = ("measured", "published", "estimated")

#: Required constants per profile kind, each with the dimension its unit must have.
REQUIRED: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "loihi": MappingProxyType(
            {
                "cores_per_chip": "count",
                "neurons_per_core": "count",
                "synaptic_memory_per_core": "bytes",
                "max_fanin_axons_per_core": "count",
                "max_fanout_axons_per_core": "count",
                "weight_bits": "count",
                "state_bits": "count",
                "delay_bits": "count",
                "max_delay": "count",
                "cores_per_tile": "count",
                "barrier_tiles_max": "count",
                "energy_synop": "energy",
                "energy_neuron_update_active": "energy",
                "energy_neuron_update_inactive": "energy",
                "energy_spike_within_tile": "energy",
                "energy_spike_hop": "energy",
                "time_synop": "time",
                "time_neuron_update_active": "time",
                "time_neuron_update_inactive": "time",
                "time_spike_within_tile": "time",
                "time_spike_hop": "time",
                "time_barrier_sync_min": "time",
                "time_barrier_sync_max": "time",
                "static_power": "power",
            }
        ),
        "rram": MappingProxyType(
            {
                "array_rows": "count",
                "array_cols": "count",
                "g_min": "conductance",
                "g_max": "conductance",
                "levels": "count",
                "read_voltage": "voltage",
                "adc_bits": "count",
                "dac_bits": "count",
                "energy_cell_read": "energy",
                "energy_adc_conversion": "energy",
                "energy_dac_conversion": "energy",
                "energy_digital_neuron_update": "energy",
                "time_array_read": "time",
                "time_adc_conversion": "time",
                "static_power": "power",
                "programming_noise_sigma": "fraction",
                "read_noise_sigma": "fraction",
                "drift_nu_mean": "fraction",
                "drift_nu_std": "fraction",
                "drift_t0": "time",
                "stuck_on_fraction": "fraction",
                "stuck_off_fraction": "fraction",
                "d2d_variation": "fraction",
            }
        ),
        # a digital processor as a comparison baseline (per-operation energies, no timing):
        # it prices the protocol counts of a workload as a CPU/GPU would execute it
        # (neurodeploy.targets.rram.lsm_energy); no target compiles for it, and the energy
        # and latency models of hardware.energy / hardware.latency do not price runs on it
        "digital": MappingProxyType(
            {
                "energy_fp32_add": "energy",
                "energy_fp32_mult": "energy",
                "energy_int32_add": "energy",
                "energy_sram_read_8kb": "energy",
                "energy_sram_read_32kb": "energy",
                "energy_sram_read_1mb": "energy",
            }
        ),
    }
)

#: Kinds whose profiles price a target's runs (hardware.energy / hardware.latency); the
#: others ("digital") are comparison baselines priced by their own models.
PRICED_KINDS: Tuple[str, ...] = ("loihi", "rram")

#: Known profile kinds.
KINDS: Tuple[str, ...] = tuple(REQUIRED)

_CONSTANT_FIELDS = ("value", "unit", "source", "confidence", "note")


def _format_number(value: float) -> str:
    """``128`` for whole numbers, the shortest round-trip form (``23.6``) otherwise."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))
_PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Constant:
    """One cited physical constant of a hardware profile.

    ``value`` is the number as written in the profile, in ``unit``; ``si`` is the same
    quantity in the SI base unit of its dimension (J, s, W, S, V, bytes, or a plain
    number for counts and fractions), so ``23.6 pJ`` has ``si == 2.36e-11``. ``source``
    is the citation the number comes from, ``confidence`` says whether it was
    ``measured`` on silicon, ``published`` as a figure in the source, or ``estimated``
    (derived or scaled by us), and ``note`` says how an estimate was derived or gives
    any caveat.
    """

    name: str
    value: float
    unit: str
    si: float
    source: str
    confidence: str
    note: str = ""

    @property
    def si_unit(self) -> str:
        """The SI base unit ``si`` is expressed in (``"J"``, ``"s"``, ``"1"``, ...)."""
        return _units.si_unit_of(self.unit)

    def cite(self) -> str:
        """One line: ``value unit — source (confidence)``."""
        unit = "" if self.unit == "1" else f" {self.unit}"
        return f"{_format_number(self.value)}{unit} \u2014 {self.source} ({self.confidence})"

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serializable form of the constant."""
        return {
            "value": self.value,
            "unit": self.unit,
            "si": self.si,
            "si_unit": self.si_unit,
            "source": self.source,
            "confidence": self.confidence,
            "note": self.note,
        }


@dataclass(frozen=True)
class HardwareProfile:
    """A validated hardware profile: the target's kind and its cited constants.

    Index it by constant name to get a :class:`Constant` (``profile["energy_synop"]``),
    or use :meth:`si` for the SI value directly. ``path`` is the TOML file it was loaded
    from. Instances are immutable.
    """

    name: str
    kind: str
    description: str
    constants: Mapping[str, Constant]
    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.constants, MappingProxyType):
            object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))

    def __hash__(self) -> int:
        return hash((self.name, self.kind, str(self.path)))

    def __getitem__(self, name: str) -> Constant:
        try:
            return self.constants[name]
        except KeyError:
            raise KeyError(
                f"hardware profile '{self.name}' has no constant '{name}' "
                f"(it has: {', '.join(sorted(self.constants))})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.constants

    def __iter__(self) -> Iterator[str]:
        return iter(self.constants)

    def __len__(self) -> int:
        return len(self.constants)

    def get(self, name: str, default: Optional[Constant] = None) -> Optional[Constant]:
        """The constant called ``name``, or ``default`` when the profile lacks it."""
        return self.constants.get(name, default)

    def si(self, name: str) -> float:
        """Value of constant ``name`` in SI base units (J, s, W, S, V, bytes, 1)."""
        return self[name].si

    def cite(self, name: str) -> str:
        """One line for constant ``name``: ``value unit — source (confidence)``."""
        return self[name].cite()

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serializable form, for reports; :meth:`from_dict` reads it back."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "path": str(self.path),
            "constants": {name: c.to_dict() for name, c in self.constants.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HardwareProfile":
        """Rebuild a profile from :meth:`to_dict` output (no re-validation of sources)."""
        constants = {
            name: Constant(
                name=name,
                value=float(c["value"]),
                unit=str(c["unit"]),
                si=float(c["si"]),
                source=str(c["source"]),
                confidence=str(c["confidence"]),
                note=str(c.get("note", "")),
            )
            for name, c in data["constants"].items()
        }
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            description=str(data.get("description", "")),
            constants=constants,
            path=Path(data["path"]),
        )


# ----------------------------------------------------------------------------- lookup


def profile_dirs() -> List[Path]:
    """Directories searched for a profile name: ``$NEURODEPLOY_PROFILE_PATH``, then bundled."""
    dirs: List[Path] = []
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            dirs.append(Path(entry.strip()).expanduser())
    dirs.append(BUNDLED_DIR)
    return dirs


def list_profiles(include_env: bool = False) -> List[str]:
    """Sorted names of the bundled profiles (plus those on ``$NEURODEPLOY_PROFILE_PATH``
    when ``include_env`` is true)."""
    dirs = profile_dirs() if include_env else [BUNDLED_DIR]
    names = set()
    for directory in dirs:
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.toml") if p.is_file())
    return sorted(names)


def _bundled_hint() -> str:
    names = list_profiles()
    return ", ".join(names) if names else "(none found in %s)" % BUNDLED_DIR


def _looks_like_path(text: str) -> bool:
    return text.endswith(".toml") or "/" in text or os.sep in text or (
        os.altsep is not None and os.altsep in text
    )


def _resolve(name_or_path: Union[_PathLike, Path]) -> Path:
    if isinstance(name_or_path, Path) or not isinstance(name_or_path, str):
        path = Path(os.fspath(name_or_path))
        if not path.is_file():
            raise ProfileError(
                f"{_display(path)}: profile file not found "
                f"(bundled profiles: {_bundled_hint()})"
            )
        return path
    text = name_or_path.strip()
    if not text:
        raise ProfileError(
            f"empty hardware profile name (bundled profiles: {_bundled_hint()})"
        )
    if _looks_like_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProfileError(
                f"{_display(path)}: profile file not found "
                f"(bundled profiles: {_bundled_hint()})"
            )
        return path
    searched = profile_dirs()
    for directory in searched:
        candidate = directory / f"{text}.toml"
        if candidate.is_file():
            return candidate
    raise ProfileError(
        f"hardware profile '{text}' not found in "
        f"{', '.join(_display(d) for d in searched)} (bundled profiles: {_bundled_hint()})"
    )


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# ------------------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _toml_error(where: str, exc: Exception) -> ProfileError:
    message = str(exc)
    lineno = getattr(exc, "lineno", None)
    if lineno is None:
        match = re.search(r"line (\d+)", message)
        lineno = int(match.group(1)) if match else None
    msg = getattr(exc, "msg", None) or re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    msg = msg.strip().rstrip(".")
    if lineno is not None:
        return ProfileError(f"{where}: TOML syntax error at line {lineno}: {msg}")
    return ProfileError(f"{where}: TOML syntax error: {msg}")


def _parse_constant(where: str, name: str, raw: Any, dimension: Optional[str]) -> Constant:
    label = f"{where}: constant '{name}'"
    if not isinstance(raw, dict):
        raise ProfileError(
            f"{label} must be a table with value, unit, source and confidence"
        )
    unknown = [key for key in raw if key not in _CONSTANT_FIELDS]
    if unknown:
        raise ProfileError(
            f"{label} has unknown field '{unknown[0]}' "
            f"(allowed: {', '.join(_CONSTANT_FIELDS)})"
        )
    for key in ("value", "unit", "source", "confidence"):
        if key not in raw:
            raise ProfileError(f"{label} is missing field '{key}'")

    value = raw["value"]
    if not _is_number(value):
        raise ProfileError(f"{label} has non-numeric value {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ProfileError(f"{label} has non-finite value {value!r}")
    if value < 0:
        raise ProfileError(f"{label} has negative value {value:g}")

    unit = raw["unit"]
    if not isinstance(unit, str) or not unit.strip():
        raise ProfileError(f"{label} has an empty or non-string unit {unit!r}")
    unit = _units.normalize_unit(unit)
    dims = _units.dimensions_of(unit)
    if dimension is not None:
        if dimension not in dims:
            raise ProfileError(
                f"{label} has unit '{unit}', expected "
                f"{_units.describe_dimension(dimension)}"
            )
        chosen = dimension
    else:
        if not dims:
            raise ProfileError(
                f"{label} has unknown unit '{unit}' "
                f"(known units: {', '.join(_units.all_units())})"
            )
        chosen = dims[0]

    source = raw["source"]
    if not isinstance(source, str) or not source.strip():
        raise ProfileError(f"{label} has an empty source")

    confidence = raw["confidence"]
    if confidence not in CONFIDENCE_LEVELS:
        raise ProfileError(
            f"{label} has unknown confidence {confidence!r}, "
            f"expected one of: {', '.join(CONFIDENCE_LEVELS)}"
        )

    note = raw.get("note", "")
    if not isinstance(note, str):
        raise ProfileError(f"{label} has a non-string note {note!r}")
    if confidence == "estimated" and not note.strip():
        raise ProfileError(
            f"{label} is 'estimated' but has no note saying how it was derived"
        )

    return Constant(
        name=name,
        value=value,
        unit=unit,
        si=_units.to_si(value, unit, chosen),
        source=source.strip(),
        confidence=confidence,
        note=note.strip(),
    )


def _validate(path: Path, data: Mapping[str, Any]) -> HardwareProfile:
    where = _display(path)
    meta = data.get("profile")
    if meta is None:
        raise ProfileError(f"{where}: missing [profile] table")
    if not isinstance(meta, dict):
        raise ProfileError(f"{where}: 'profile' must be a table ([profile])")
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{where}: [profile] field 'name' is missing or empty")
    kind = meta.get("kind")
    if kind is None:
        raise ProfileError(
            f"{where}: [profile] field 'kind' is missing, expected one of: "
            f"{', '.join(KINDS)}"
        )
    if kind not in REQUIRED:
        raise ProfileError(
            f"{where}: [profile] kind {kind!r} is unknown, expected one of: "
            f"{', '.join(KINDS)}"
        )
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: [profile] field 'description' must be a string")

    raw_constants = data.get("constants")
    if raw_constants is None:
        raise ProfileError(f"{where}: missing [constants] table")
    if not isinstance(raw_constants, dict):
        raise ProfileError(f"{where}: 'constants' must be a table of [constants.<name>] tables")

    schema = REQUIRED[kind]
    missing = [key for key in schema if key not in raw_constants]
    if len(missing) == 1:
        raise ProfileError(f"{where}: constant '{missing[0]}' is missing")
    if missing:
        listed = ", ".join(f"'{m}'" for m in missing)
        raise ProfileError(f"{where}: constants {listed} are missing")

    constants: Dict[str, Constant] = {}
    # Required constants first (schema order), then the extras in file order.
    for key in list(schema) + [k for k in raw_constants if k not in schema]:
        constants[key] = _parse_constant(where, key, raw_constants[key], schema.get(key))

    return HardwareProfile(
        name=name.strip(),
        kind=kind,
        description=description.strip(),
        constants=constants,
        path=path.resolve(),
    )


def load_profile(name_or_path: Union[_PathLike, Path]) -> HardwareProfile:
    """Load and validate a hardware profile.

    ``name_or_path`` is a profile name (``"loihi1"``, ``"loihi2"``, ``"rram_40nm"``,
    ``"digital_45nm"``, or a
    file stem found on ``$NEURODEPLOY_PROFILE_PATH``) or a path to a ``.toml`` file.
    Raises :class:`ProfileError` with a one-line message naming the file and field when
    the file is missing, is not valid TOML, or breaks the schema.
    """
    path = _resolve(name_or_path)
    where = _display(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read profile file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{where}: profile file is not UTF-8 text ({exc.reason})") from exc
    try:
        data = _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise _toml_error(where, exc) from exc
    return _validate(path, data)
