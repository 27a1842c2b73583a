"""Hardware metrics during training: :class:`HardwareEval`.

Call it from a norse or snnTorch training loop, ``metrics = cb(model, epoch)``. Every
``every`` epochs it exports the current module to NIR through neurodeploy's frontends
(:func:`neurodeploy.load`, which repairs the exporters' quirks), compiles and runs it on
each target exactly as ``neurodeploy profile`` does
(:func:`neurodeploy.measure.report.run_target`) and reads the numbers from the measurement
layer's report (:func:`~neurodeploy.measure.report.target_entry`,
:func:`~neurodeploy.measure.report.build_report`): the same figures ``neurodeploy profile``
prints for that model and data. On other epochs it returns None without touching the
model. A program that calibrates on data (RRAM's ADC ranges) is calibrated on
``calibration=x_cal`` (inputs not in ``data``) and refused without it, as ``neurodeploy
profile`` refuses to calibrate on the evaluated samples.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import FitError, InputError


def _metrics(row: dict, entry: dict) -> dict:
    desc = entry.get("description") or {}
    return {
        "accuracy": row["accuracy"],
        "spikes_per_sample": row["spikes_per_sample"],
        "energy_per_inference_J": row["energy_per_inference_J"],
        "latency_per_inference_s": row["latency_per_inference_s"],
        "hardware": row["hardware"],
        "fits": True,
        "fit": {"mapping": desc.get("mapping"), "resources": desc.get("resources")},
    }


class HardwareEval:
    """``HardwareEval(every=N, targets=("reference", "loihi2-emu"), hardware=None,
    data=(x, y))``: ``cb(model, epoch)`` → {target: {accuracy, spikes_per_sample,
    energy_per_inference_J, latency_per_inference_s, hardware, fits, fit}} on epochs
    divisible by ``every``, else None. ``hardware``: a profile name (for the targets of its
    kind) or {target: profile}. ``dt``/``reset``/``framework`` go to :func:`neurodeploy.load`.
    ``history`` keeps (epoch, metrics) of every evaluation."""

    def __init__(self, every: int = 1, targets: Sequence[str] | str = ("reference",), hardware=None, data=None, *,
                 readout: str = "spikes", dt=None, reset=None, framework=None, device: str = "cpu", calibration=None):
        from ..targets.base import get_target

        if not (isinstance(every, int) and every >= 1):
            raise InputError(f"HardwareEval: every must be an integer >= 1, got {every!r}")
        try:
            x, y = data
        except (TypeError, ValueError):
            raise InputError("HardwareEval: data must be (x, y) with x (batch, time, *input_shape)") from None
        self.x = np.ascontiguousarray(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), np.float32)
        self.y = None if y is None else np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        if self.x.ndim < 3:
            raise InputError(f"HardwareEval: x has shape {self.x.shape}, expected (batch, time, *input_shape)")
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        self._tgts = {t: get_target(t) for t in self.targets}  # unknown targets fail here
        self.hardware = self._profiles(hardware)
        self.every, self.readout, self.device, self.calibration = every, readout, device, calibration
        self.load_kw = {"dt": dt, "reset": reset, "framework": framework}
        self.history: list[tuple[int, dict]] = []

    def _profiles(self, hardware) -> dict:
        from ..hardware import load_profile
        from ..measure.report import applies, load_hardware

        if hardware is None:
            per = {}
        elif isinstance(hardware, Mapping):
            per = dict(hardware)
        else:
            prof = load_profile(hardware) if isinstance(hardware, str) else hardware
            per = {t: prof for t, tgt in self._tgts.items() if applies(tgt, prof)}
        return {t: load_hardware(tgt, per.get(t)) for t, tgt in self._tgts.items()}

    def graph(self, model):
        """The current module as a Graph (neurodeploy's frontends)."""
        from .. import load

        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return load(model, torch.as_tensor(self.x[:1, 0]), **self.load_kw)
        finally:
            model.train(was)

    def __call__(self, model, epoch: int) -> dict | None:
        if epoch % self.every:
            return None
        return self.evaluate(self.graph(model), epoch)

    def evaluate(self, graph, epoch: int | None = None) -> dict:
        """Metrics of ``graph`` on every target (what :meth:`__call__` returns)."""
        from ..measure.report import build_report, run_target, target_entry

        out, entries = {}, []
        inputs = {graph.inputs[0]: self.x} if len(graph.inputs) == 1 else None
        for t in self.targets:
            try:
                program, result = self._run(t, graph, run_target)
            except FitError as exc:
                out[t] = {"fits": False, "reason": str(exc)}
                continue
            entries.append(target_entry(t, program, result, graph, self.hardware[t], labels=self.y,
                                        readout=self.readout, inputs=inputs))
        report = build_report("profile", "training", f"epoch {epoch}", graph, self.x, entries, labels=self.y,
                              readout=self.readout)
        for row, e in zip(report["summary"], report["targets"]):
            out[row["target"]] = _metrics(row, e)
        self.history.append((epoch, out))
        return out

    def _run(self, t, graph, run_target=None):
        """(program, result) as ``run_target`` compiles and runs it; a program that
        calibrates on data is calibrated on ``calibration`` first (refused without it: the
        evaluated data never calibrate the hardware model)."""
        from . import running

        program, _ = running.compile_for(t, graph, self.hardware[t], self.device)
        if (program.describe().get("calibration") or {}).get("needs_data"):
            if self.calibration is None:
                raise InputError(f"HardwareEval: target '{t}' calibrates on data (describe()['calibration'], e.g. ADC "
                                 "ranges): pass calibration=x_cal, inputs that are not in data (e.g. a slice of the "
                                 "training split)")
            running.calibrate(program, self.calibration, "HardwareEval calibration data")
        return program, running.run(program, graph, self.x)
