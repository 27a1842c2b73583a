"""Where the accuracy goes: each non-ideality alone and all but each one, over device seeds.

A target that models non-idealities declares a compile option ``nonidealities`` (names to
keep, the others ideal) and lists the active ones in ``describe()["nonidealities"]``.
:func:`attribute` compiles the program with none, all, each alone and all but each, for
every seed, and reports accuracies and costs (mean and spread over seeds):

* ``cost_alone[n]`` = accuracy(ideal) − accuracy(only n);
* ``cost_in_context[n]`` = accuracy(all but n) − accuracy(all): what removing n would win.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .calibration import run_options
from .metrics import accuracy
from .report import device_options, load_hardware
from .window import run_windowed


def _stats(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}


class _Runner:
    """Compiles and runs one target at one non-ideality set and seed; returns accuracy."""

    def __init__(self, target, graph, x, labels, *, hardware=None, device="cpu", readout="auto", calibration=None,
                 options=None):
        from ..targets.base import get_target

        self.tgt, self.name = get_target(target), target
        if "nonidealities" not in self.tgt.compile_options:
            raise InputError(f"--attribute: target '{target}' declares no 'nonidealities' compile option "
                             "(it models no non-idealities to attribute)")
        profile = load_hardware(self.tgt, hardware)
        self.hw = profile if profile is not None and profile.kind in self.tgt.hardware_kinds else None
        self.graph, self.x, self.labels, self.readout, self.cal = graph, x, labels, readout, calibration
        self.options = {**device_options(self.tgt, device), **dict(options or {})}

    def compile(self, keep, seed):
        opts = dict(self.options)
        if keep is not None:
            opts["nonidealities"] = list(keep)
        if "seed" in self.tgt.compile_options:
            opts["seed"] = int(seed)
        return self.tgt.compile(self.graph, hardware=self.hw, **opts)

    def accuracy(self, keep, seed) -> float:
        program = self.compile(keep, seed)
        d = program.describe()
        result = run_windowed(lambda xp: program.run(xp, **run_options(d, self.cal, self.name)), d, self.graph, self.x)
        return accuracy(result, self.labels, self.readout)


def attribute(graph, x, labels, *, target: str, hardware=None, seeds=(0, 1, 2), device="cpu", readout="auto",
              calibration=None, options=None, progress=None) -> dict:
    """Accuracy cost of each non-ideality of ``target`` (see the module docstring).
    ``calibration``: a :class:`.calibration.Calibration` for programs that need data;
    ``options``: further compile options (e.g. ``device_params``). JSON-ready."""
    if labels is None:
        raise InputError("--attribute needs labels (y in the input file): it measures accuracy")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InputError("--attribute needs at least one device seed")
    run = _Runner(target, graph, x, labels, hardware=hardware, device=device, readout=readout,
                  calibration=calibration, options=options)
    names = list(run.compile(None, seeds[0]).describe().get("nonidealities") or {})
    sets = {"ideal": [], "all": names, **{f"only:{n}": [n] for n in names},
            **{f"without:{n}": [m for m in names if m != n] for n in names}}
    acc = {}
    for i, (key, keep) in enumerate(sets.items()):
        acc[key] = [run.accuracy(keep, s) for s in seeds]
        if progress is not None:
            progress(i + 1, len(sets))
    ideal, full = np.array(acc["ideal"]), np.array(acc["all"])
    per = {n: {"alone": _stats(acc[f"only:{n}"]), "without": _stats(acc[f"without:{n}"]),
               "cost_alone": _stats(ideal - np.array(acc[f"only:{n}"])),
               "cost_in_context": _stats(np.array(acc[f"without:{n}"]) - full)} for n in names}
    return {"target": target, "hardware": None if run.hw is None else run.hw.name, "seeds": seeds, "readout": readout,
            "nonidealities": names, "ideal": _stats(ideal), "all": _stats(full), "per": per,
            "calibration": None if calibration is None else calibration.record()}


#: Columns of :func:`table` (the CLI, the HTML report and examples/rram_fidelity.py print it).
COLUMNS = ("non-ideality", "accuracy alone", "cost alone (pp)", "accuracy all but it", "cost in context (pp)")


def pm(stats: dict, scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` of a :func:`_stats` dict, scaled (default: fractions → percent)."""
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"


def table(a: dict) -> list[list[str]]:
    """One row per non-ideality of an :func:`attribute` result (columns :data:`COLUMNS`):
    accuracies in %, costs in percentage points, mean ± std over the device seeds."""
    return [[n, pm(p["alone"]), pm(p["cost_alone"]), pm(p["without"]), pm(p["cost_in_context"])]
            for n, p in a["per"].items()]


def caption(a: dict) -> str:
    """What :func:`table` shows, with the ideal and the full accuracy."""
    return (f"{a['target']} on {a['hardware'] or 'its default profile'}, {len(a['seeds'])} device seed(s): "
            f"ideal {pm(a['ideal'])} %, all non-idealities {pm(a['all'])} %; cost alone = ideal − only it, "
            "cost in context = all but it − all (mean ± std over seeds)")
