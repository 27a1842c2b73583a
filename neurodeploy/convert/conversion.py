"""The result of :func:`neurodeploy.convert`: a spiking Graph plus how to feed and read it.

``encode(x)`` gives the input the graph expects (T steps of the chosen code); ``run`` encodes,
compiles for a target and runs (Loihi targets get the graph's depth in silent steps appended,
so Lava's one-step-per-synapse lag does not cut the presentation short; RRAM programs have
their ADCs calibrated on the encoded calibration set); ``logits`` reads the integrating
readout: its potential after the last step divided by T estimates the ANN's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from ..errors import InputError, UnsupportedError
from .encode import encode as _encode

LOIHI_TARGETS = ("loihi2-emu", "lava")


@dataclass(frozen=True, eq=False)
class Conversion:
    graph: object  # neurodeploy Graph
    model: object  # OnnxModel
    steps: int
    encoding: str
    input_scale: float
    percentile: float
    threshold_ratio: float
    scales: dict  # IF node -> λ (ANN units represented by one spike per step)
    clip_rate: dict  # IF node -> rate of its Clip ceiling
    calibration: np.ndarray = field(repr=False)  # a few calibration samples (ADC calibration)
    check_error: float = 0.0  # rate-ANN vs onnxruntime, relative (see check.verify)
    seed: int = 0
    balance: dict = field(default_factory=dict)  # IF node -> gain factor (reset-to-zero balancing)
    rate_graph: object = None  # the graph before balancing: exactly the ANN's rate network

    @property
    def reset(self) -> str:
        return self.graph.reset

    @property
    def depth(self) -> int:
        """Neuron layers on the longest input → output path (Loihi's lag in steps)."""
        d: dict[str, int] = {}
        for n in self.graph.order:
            preds = self.graph.predecessors(n)
            own = 1 if isinstance(self.graph.nodes[n], (nir.IF, nir.I)) else 0
            d[n] = own + max((d[p] for p in preds), default=0)
        return d[self.graph.outputs[0]]

    def encode(self, x, steps: int | None = None) -> torch.Tensor:
        """``x`` (N, *input_shape) in the ONNX model's units → (N, T, *input_shape)."""
        x = np.asarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != tuple(self.model.input_shape):
            raise InputError(f"inputs of shape {tuple(x.shape[1:])} per sample; the model expects {tuple(self.model.input_shape)}")
        return _encode(x, steps or self.steps, self.encoding, self.input_scale, self.seed)

    def ann(self, x) -> np.ndarray:
        """The original model's output on ``x`` (onnxruntime)."""
        from .onnx_reader import run_ort

        return run_ort(self.model, np.asarray(x, np.float32))[self.model.output]

    def saturated_ann(self, x) -> np.ndarray:
        """The rate network with every rate capped at 1 spike/step: what the SNN approaches
        as T grows (the cost of the percentile clipping alone)."""
        from .check import rate_ann

        xr = torch.as_tensor(np.asarray(x, np.float64) / (1.0 if self.encoding == "graded" else self.input_scale))
        if self.encoding != "graded":
            xr = xr.clamp(0, 1)
        with torch.no_grad():
            return rate_ann(self.rate_graph or self.graph, xr, self.clip_rate, saturate=True).numpy()

    def compile(self, target: str = "reference", hardware=None, **options):
        from .. import compile as _compile

        if target in LOIHI_TARGETS and self.reset == "subtract":
            raise UnsupportedError("this conversion resets by subtraction, which Loihi's LIF cannot do: "
                                   "convert with reset='zero' for Loihi (docs/convert.md)")
        if target in LOIHI_TARGETS and self.encoding == "graded":
            raise UnsupportedError("Loihi's inputs are binary spikes: convert with encoding='regular' or 'rate'")
        prog = _compile(self.graph, target, hardware, **options)
        if getattr(prog, "needs_calibration", False):
            prog.calibrate(self.encode(self.calibration))
        return prog

    def run(self, x, target: str = "reference", hardware=None, steps: int | None = None, program=None, **options):
        """Encode ``x``, compile (unless ``program`` is given) and run; returns the RunResult."""
        xe = self.encode(x, steps)
        if target in LOIHI_TARGETS:
            pad = torch.zeros((xe.shape[0], self.depth, *xe.shape[2:]), dtype=xe.dtype)
            xe = torch.cat([xe, pad], 1)
        prog = program if program is not None else self.compile(target, hardware, **options)
        result = prog.run(xe)
        _warn_overflow(target, result)
        return result

    def logits(self, result, steps: int | None = None) -> np.ndarray:
        """Estimate of the ANN's output: the readout's potential gained over the T steps of
        the presentation, / T. On Loihi targets the window is shifted by the lag (depth): the
        potential at the last step minus that at step ``depth - 1``, so the biases, which act
        from step 0, are integrated over T steps as in the reference."""
        out = result.outputs[self.graph.outputs[0]].double()
        T = float(steps or self.steps)
        v = out[:, -1]
        if result.target in LOIHI_TARGETS and self.depth > 0:
            v = v - out[:, self.depth - 1]
        return (v / T).cpu().numpy()

    def predict(self, result) -> np.ndarray:
        return self.logits(result).reshape(result.batch, -1).argmax(1)

    def save(self, path):
        from .. import save as _save

        return _save(self.graph, path)


OVERFLOW_EVENTS = ("v_saturation_events", "u_wrap_events", "int32_wrap_events")


def _warn_overflow(target: str, result) -> None:
    """A fixed-point overflow makes the run differ from the float graph: say so, with counts."""
    import warnings

    hit = {k: int(result.info.get(k, 0) or 0) for k in OVERFLOW_EVENTS}
    hit = {k: v for k, v in hit.items() if v}
    if hit:
        warnings.warn(f"{target}: fixed-point overflow during the run ({', '.join(f'{k}={v}' for k, v in hit.items())}): "
                      "a potential hit the 24-bit range (the IF layers and the readout integrate without leak; "
                      "long presentations saturate), so this run differs from the float graph", stacklevel=3)
