"""State of one test session: the selected targets, hardware and seeds, and a cache of
loaded graphs, compiled programs and runs, so a model is compiled once per target (and
hardware, seed, options) in a session, however many tests use it.

A program that calibrates on data (RRAM ADC ranges; ``describe()["calibration"]``) is
calibrated on a split the check does not evaluate (``calibration=`` of the assertion, or
``--nd-calibration``), never on the checked samples unless asked (``calibrate_on_eval``,
``--nd-calibrate-on-eval``), and cached per calibration array, so a test's numbers never
depend on which test ran first. Everything heavy is imported inside
the methods: importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

#: hardware-simulator targets, in the order ``--nd-targets`` lists them by default
SIMULATED = ("loihi2-emu", "rram", "lava")
#: the package a target needs beyond neurodeploy's core (checked without importing it)
NEEDS = {"lava": "lava"}


def available_targets() -> list[str]:
    """The simulated targets usable here: the core ones and Lava when it is installed."""
    import importlib.util

    return [t for t in SIMULATED if t not in NEEDS or importlib.util.find_spec(NEEDS[t]) is not None]


def parse_targets(text: str | None) -> list[str]:
    """``"loihi2-emu,rram"`` → names; None/empty → :func:`available_targets`."""
    from ..errors import InputError
    from ..targets.base import REGISTRY

    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    unknown = [t for t in names if t not in REGISTRY]
    if unknown:
        raise InputError(f"--nd-targets: unknown target {unknown[0]!r} (choose from {', '.join(REGISTRY)})")
    return list(dict.fromkeys(names)) or available_targets()


def parse_hardware(text: str | None) -> dict[str, str]:
    """``--nd-hardware``: ``"rram_40nm"`` (every target of that profile's kind) or
    ``"loihi2-emu=loihi2,rram=my.toml"`` (per target) → {target or "*": profile}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        k, sep, v = part.strip().partition("=")
        if k:
            out[k.strip() if sep else "*"] = (v if sep else k).strip()
    return out


def fits(target: str, profile) -> bool:
    """Whether ``profile`` is of a kind the target compiles for (a target that compiles for
    none, like the reference, fits the kind of its default profile)."""
    from ..measure.report import applies
    from ..targets.base import get_target

    return applies(get_target(target), profile)


def compiles_for(target: str, profile) -> bool:
    """Whether compile() takes ``profile`` (its kind is one the target declares)."""
    from ..targets.base import get_target

    return profile is not None and profile.kind in get_target(target).hardware_kinds


def takes_option(target: str, name: str) -> bool:
    """Whether the target declares compile option ``name``."""
    from ..targets.base import get_target

    return name in get_target(target).compile_options


def fingerprint(x) -> str:
    """A content hash of an input array (or a dict of them)."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    items = sorted(x.items()) if isinstance(x, dict) else [("", x)]
    for k, v in items:
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        h.update(f"{k}|{a.dtype}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def parse_calibration(spec):
    """``--nd-calibration``: an int N (as text or int: hold out the first N samples of each
    check's input), a ``.npy`` / ``.npz`` file of inputs (an ``.npz`` holds ``x`` or
    ``x_cal``), an array, or None."""
    if spec is None or not isinstance(spec, (str, os.PathLike)):
        return spec
    import numpy as np

    from ..errors import InputError

    text = str(spec)
    if text.strip().isdigit():
        return int(text)
    p = Path(text)
    if not p.exists():
        raise InputError(f"--nd-calibration {text}: no such file (give a .npy/.npz of inputs or a number N of held-out samples)")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as f:
            for k in ("x_cal", "x"):
                if k in f.files:
                    return f[k]
            raise InputError(f"--nd-calibration {text}: no array 'x_cal' or 'x' in it (found {', '.join(f.files) or 'nothing'})")
    raise InputError(f"--nd-calibration {text}: expected a .npy or .npz file, or a number N of held-out samples")


class Session:
    """Options of a test session and its caches (see the module docstring)."""

    def __init__(self, targets=None, hardware: str | None = None, report_dir=None, seeds: int = 1,
                 calibration=None, calibrate_on_eval: bool = False):
        from ..errors import InputError

        if int(seeds) < 1:
            raise InputError(f"--nd-seeds must be >= 1, got {seeds}")
        if calibration is not None and calibrate_on_eval:
            raise InputError("--nd-calibration and --nd-calibrate-on-eval exclude each other")
        self.calibration = parse_calibration(calibration)
        self.calibrate_on_eval = bool(calibrate_on_eval)
        self.targets_text = targets
        self.hardware = parse_hardware(hardware)
        self.report_dir = Path(report_dir) if report_dir else None
        self.seeds = int(seeds)
        self.current_test: str | None = None
        self.checks: dict[str, list[dict]] = {}  # test id → the checks it made (for the index page)
        self.outcomes: dict[str, str] = {}
        self._graphs: dict = {}
        self._programs: dict = {}
        self._runs: dict = {}
        self._pinned: dict = {}  # id → object, for objects whose id() is part of a cache key

    @property
    def targets(self) -> list[str]:
        return parse_targets(self.targets_text)

    # ------------------------------------------------------------------ models and profiles
    def graph(self, model):
        """A normalized Graph from a Graph, a NIRGraph or a .nir path (loaded once)."""
        from .. import load
        from ..graph import Graph

        if isinstance(model, Graph):
            return model
        if isinstance(model, (str, os.PathLike)):
            p = Path(model).resolve()
            key = ("path", str(p), p.stat().st_mtime_ns if p.exists() else None)
        else:
            self._pinned[id(model)] = model
            key = ("object", id(model))
        if key not in self._graphs:
            self._graphs[key] = load(model)
        return self._graphs[key]

    def profile(self, target: str, hardware=None):
        """The profile for ``target``: ``hardware`` if given, else ``--nd-hardware`` (per
        target, or a bare profile of the target's kind), else the measurement layer's default."""
        from ..hardware import load_profile
        from ..targets.base import get_target

        if hardware is None and target in self.hardware:
            hardware = self.hardware[target]
        if hardware is None and "*" in self.hardware:
            bare = load_profile(self.hardware["*"])
            hardware = bare if fits(target, bare) else None
        if hardware is None:
            hardware = get_target(target).default_hardware
        return load_profile(hardware) if isinstance(hardware, (str, os.PathLike)) else hardware

    # ------------------------------------------------------------------ compile and run
    def program(self, graph, target: str, profile=None, seed: int = 0, options: dict | None = None, x=None,
                cal=None):
        """The compiled program (cached; see the module docstring for data-dependent ones:
        keyed by the calibration data ``cal`` when given, else by ``x``)."""
        from .. import compile as nd_compile

        options = dict(options or {})
        if takes_option(target, "seed"):
            options.setdefault("seed", int(seed))
        self._pinned[id(graph)] = graph
        base = (id(graph), target, getattr(profile, "name", None), _freeze(options))
        xkey = ("calibration", fingerprint(cal.x)) if cal is not None and cal.x is not None else (
            fingerprint(x) if x is not None else None)
        for key in (base, (base, xkey)):
            if key in self._programs:
                return self._programs[key]
        hw = profile if compiles_for(target, profile) else None
        prog = nd_compile(graph, target, hardware=hw, **options)
        cal = prog.describe().get("calibration") or {}
        data_dependent = bool(cal) and not cal.get("calibrated", True)  # its settings depend on the data it is given
        self._programs[(base, xkey) if data_dependent else base] = prog
        return prog

    def calibration_for(self, x, labels=None, calibration=None, calibrate_on_eval: bool = False, where: str = "calibration="):
        """(x, labels, Calibration) of a check: ``calibration`` (inputs, or N: the first N
        samples of ``x`` held out and not checked), else ``--nd-calibration``, else none;
        ``calibrate_on_eval`` (or ``--nd-calibrate-on-eval``): the checked samples themselves,
        flagged as not disjoint (:func:`neurodeploy.measure.calibration.split`)."""
        from ..measure.calibration import split

        on_eval = bool(calibrate_on_eval) or (calibration is None and self.calibrate_on_eval)
        if calibration is None and not on_eval and self.calibration is not None:
            calibration, where = self.calibration, "--nd-calibration"
        if on_eval:
            import warnings

            warnings.warn("neurodeploy check calibrates on the samples it checks (calibrate_on_eval / "
                          "--nd-calibrate-on-eval): the checked data shape the hardware model; the report says "
                          "'disjoint': false", UserWarning, stacklevel=3)
        return split(x, labels, calibration, on_eval=on_eval, where=where if not on_eval else "calibration=")

    def run(self, graph, target: str, x, profile=None, seed: int = 0, options: dict | None = None, cal=None):
        """(program, RunResult) of ``x`` on ``target``, every node recorded (cached). A
        program that calibrates on data (``describe()["calibration"]["needs_data"]``) gets
        ``cal`` (a :class:`neurodeploy.measure.calibration.Calibration`) through its
        calibration run option; without one it is refused (InputError), never calibrated on ``x``."""
        from ..errors import InputError
        from ..measure.calibration import run_options

        prog = self.program(graph, target, profile, seed, options, x, cal)
        try:
            opts = run_options(prog.describe(), cal, target)
        except InputError:
            raise InputError(f"{target}: the program calibrates on data (describe()['calibration'], e.g. ADC ranges) "
                             "and the check has none apart from the data it checks: pass calibration=x_cal (inputs never checked) "
                            "or calibration=N (hold out the first N samples), or run pytest with --nd-calibration "
                            "FILE.npy|N; calibrate_on_eval=True / --nd-calibrate-on-eval calibrates on the checked "
                            "samples (flagged in the report)") from None
        key = (id(prog), fingerprint(x))
        if key not in self._runs:
            self._runs[key] = prog.run(x, record="all", **opts)
        return prog, self._runs[key]

    # ------------------------------------------------------------------ report bookkeeping
    def record_check(self, check: dict) -> None:
        self.checks.setdefault(self.current_test or "(outside a test)", []).append(check)


def _freeze(obj: Any):
    if isinstance(obj, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    try:
        hash(obj)
        return obj
    except TypeError:
        return repr(obj)


_ACTIVE: list[Session] = []


def current() -> Session:
    """The plugin's session inside a pytest run; a default one outside (cached too)."""
    if not _ACTIVE:
        _ACTIVE.append(Session())
    return _ACTIVE[-1]


def push(session: Session) -> None:
    _ACTIVE.append(session)


def pop(session: Session) -> None:
    if session in _ACTIVE:
        _ACTIVE.remove(session)
