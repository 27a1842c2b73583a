"""Data-based normalization (Diehl et al. 2015, Rueckauer et al. 2017): each ReLU/Clip
output's scale λ is a high percentile of its positive activations on the calibration set,
computed by onnxruntime on the original model.

A spiking layer then fires at rate ``activation / λ``; activations above λ saturate at one
spike per step (the percentile trades that clipping against resolution: λ = the maximum
wastes rate range on outliers)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .onnx_reader import OnnxModel, run_ort

ACTIVATIONS = ("Relu", "Clip")


def check_percentile(p) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise InputError(f"percentile must be a number in (0, 100], got {p!r}") from None
    if not 0.0 < p <= 100.0:
        raise InputError(f"percentile must be in (0, 100], got {p}")
    return p


def layer_scale(values: np.ndarray, percentile: float) -> float:
    """The ``percentile`` of the positive entries of ``values`` (1.0 when none is positive:
    a layer that never activates on the calibration set keeps unit scale)."""
    pos = values[values > 0]
    return float(np.percentile(pos, percentile)) if pos.size else 1.0


def input_scale(x: np.ndarray, percentile: float, path: str) -> float:
    """Scale of the input of a spike-coded first layer: rate = x / scale, in [0, 1]."""
    if (x < 0).any():
        raise InputError(f"{path}: the calibration inputs have negative values ({float(x.min()):g}); "
                         "binary spikes cannot code them: use encoding='graded' (reference and rram only)")
    return layer_scale(x, percentile)


def scales(model: OnnxModel, x_cal: np.ndarray, percentile: float) -> tuple[dict[str, float], np.ndarray]:
    """λ per activation tensor, and the model's output (logits) on ``x_cal``."""
    acts = tuple(n.outputs[0] for n in model.nodes if n.op in ACTIVATIONS)
    out = run_ort(model, x_cal, acts)
    return {a: layer_scale(out[a], percentile) for a in acts}, out[model.output]
