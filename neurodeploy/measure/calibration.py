"""Calibration data for programs whose settings depend on data (e.g. ADC ranges), kept
apart from the evaluated samples.

A Program says in ``describe()["calibration"]`` whether it needs data (``needs_data``) and
through which run option it takes them (``data_option``). Measurement passes a
:class:`Calibration` there; it never lets a program calibrate on the samples it evaluates
unless asked (``on_eval=True``, flagged in the report as not disjoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Calibration:
    """Calibration inputs ``x`` (batch, time, *shape) and what they are: ``source`` (a
    file, held-out samples, the training split, or the evaluated samples), ``disjoint``
    (never evaluated)."""

    x: object | None
    source: str
    disjoint: bool

    @property
    def samples(self) -> int:
        return 0 if self.x is None else int(np.shape(self.x)[0])

    def record(self) -> dict:
        """The report's ``calibration`` entry."""
        return {"source": self.source, "samples": self.samples, "disjoint": self.disjoint}


def split(x, labels, spec, *, train=None, on_eval: bool = False, where: str = "--calibration"):
    """(x_eval, labels_eval, Calibration) from ``spec``: None (the training split ``train``
    where given, else no data), an int N (the first N samples held out of ``x`` and its
    labels), an array, or a Calibration. ``on_eval``: calibrate on the evaluated samples."""
    if on_eval:
        if spec is not None:
            raise InputError(f"{where} and --calibrate-on-eval exclude each other")
        return x, labels, Calibration(x, "the evaluated samples (--calibrate-on-eval)", False)
    if isinstance(spec, Calibration):
        return x, labels, spec
    if spec is None:
        if train is not None:
            return x, labels, Calibration(train, "the training split of the input file", True)
        return x, labels, Calibration(None, "none", True)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        n, total = int(spec), int(np.shape(x)[0])
        if not 0 < n < total:
            raise InputError(f"{where} {n}: hold out between 1 and {total - 1} of the {total} samples")
        y = None if labels is None else labels[n:]
        return x[n:], y, Calibration(x[:n], f"the first {n} samples of the input, held out (not evaluated)", True)
    return x, labels, Calibration(spec, "calibration inputs given", True)


def run_options(description: dict, cal: Calibration | None, target: str) -> dict:
    """The run option that hands ``cal`` to a program that needs calibration data (per its
    description), ``{}`` for one that needs none; InputError when it needs data and there are none."""
    need = (description.get("calibration") or {}) if isinstance(description, dict) else {}
    if not need.get("needs_data"):
        return {}
    option = need.get("data_option")
    if cal is None or cal.x is None:
        raise InputError(f"target '{target}' calibrates on data (describe()['calibration']): give --calibration FILE|N "
                         "(a file of inputs, or N held-out samples) or --calibrate-on-eval")
    if not option:
        raise InputError(f"target '{target}' needs calibration data but declares no option to take them")
    return {option: cal.x}
