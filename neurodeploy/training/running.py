"""Compile and run a target as :func:`neurodeploy.measure.report.run_target` does, with an
ADC calibration pass on given data first (which ``run_target`` has no argument for)."""

from __future__ import annotations

import numpy as np


def compile_for(name: str, graph, hardware=None, device: str = "cpu", **options):
    """(program, profile): ``graph`` compiled for target ``name`` as run_target compiles it."""
    from ..measure.report import device_options, load_hardware
    from ..targets.base import get_target

    tgt = get_target(name)
    profile = load_hardware(tgt, hardware)
    compile_hw = profile if profile is not None and profile.kind in tgt.hardware_kinds else None
    dev = device_options(tgt, device) if device != "cpu" or "device" in tgt.compile_options else {}
    return tgt.compile(graph, hardware=compile_hw, **dev, **options), profile


def calibrate(program, x, data: str) -> bool:
    """Calibrate a program whose description says its ADC ranges are calibrated on data;
    True when it did."""
    cal = program.describe().get("calibration")
    if cal is None or cal.get("adc_range") != "calibrated":
        return False
    program.calibrate(np.asarray(x, np.float32), data=data)
    return True


def run(program, graph, x):
    """``program.run(x, record="all")`` read at its outputs' lag, as run_target runs it."""
    from ..measure.window import run_windowed

    return run_windowed(lambda xp: program.run(xp, record="all"), program.describe(), graph, x)
