"""The conversion entry point (``neurodeploy.convert``; the package docstring says what it does).

ANN → SNN conversion from ONNX (docs/convert.md).

``neurodeploy.convert("model.onnx", calibration=x_cal, steps=T)`` reads the model with the
``onnx`` package, normalizes each ReLU layer from the calibration set (onnxruntime), builds a
NIR graph of rate-coded IF neurons and returns a :class:`Conversion` whose ``graph`` runs on
every target (``reset="zero"`` for Loihi).
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .conversion import Conversion

#: threshold ratio k of reset-to-zero conversion (each layer's threshold is k × its
#: percentile scale, so the per-step input stays ≤ 1/k of the threshold and the charge a
#: reset to zero throws away is small); measured in docs/convert.md
DEFAULT_ZERO_RATIO = 1.0
CHECK_SAMPLES = 256
BALANCE_SAMPLES = 256


def read_calibration(calibration, path: str = "calibration") -> np.ndarray:
    """An array (N, *input_shape), or an .npz path holding it as ``x``."""
    if isinstance(calibration, (str, Path)):
        p = Path(calibration)
        if not p.exists():
            raise InputError(f"{p}: calibration file not found")
        try:
            data = np.load(p, allow_pickle=False)
            keys = list(data.keys())
        except Exception as exc:
            raise InputError(f"{p}: not a readable .npz file ({type(exc).__name__})") from None
        if "x" not in keys:
            raise InputError(f"{p}: no array 'x' (found: {', '.join(keys) or 'nothing'}); expected x of shape (N, *input_shape)")
        calibration = data["x"]
    x = np.asarray(calibration)
    if x.dtype.kind not in "biuf" or x.ndim < 2 or len(x) == 0:
        raise InputError(f"{path}: expected a non-empty real array (N, *input_shape), got {x.dtype} {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{path}: contains NaN or infinite values")
    return x.astype(np.float32)


def _check_args(steps, reset, threshold_ratio, dt) -> tuple[int, float]:
    from ..graph.normalize import check_dt, check_reset

    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps <= 0:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    check_reset(reset)
    check_dt(dt)
    k = (1.0 if reset == "subtract" else DEFAULT_ZERO_RATIO) if threshold_ratio is None else threshold_ratio
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not k >= 1.0 or not np.isfinite(k):
        raise InputError(f"threshold_ratio must be a number ≥ 1, got {threshold_ratio!r}")
    return int(steps), float(k)


def convert(onnx_path, calibration, steps: int = 32, *, percentile: float = 99.9, reset: str = "subtract",
            threshold_ratio: float | None = None, balance: bool | None = None, encoding: str = "regular",
            dt: float = 1e-3, seed: int = 0) -> Conversion:
    """Convert the ONNX ANN at ``onnx_path`` into a spiking Graph.

    ``calibration``: inputs (N, *input_shape) or an .npz with ``x``; each ReLU's scale is the
    ``percentile`` of its positive activations on them. ``reset``: "subtract" (IF with reset
    by subtraction: reference, rram) or "zero" (Loihi; thresholds × ``threshold_ratio``,
    default :data:`DEFAULT_ZERO_RATIO`). ``balance`` (default: on for reset "zero") scales each
    IF layer's gain so the SNN's mean rate on the calibration set at T steps matches the rate
    network's (:mod:`.balance`). ``encoding``: regular | rate | graded (see
    :mod:`.encode`). ``steps``: the presentation length T used by ``encode``/``run``.
    """
    from ..graph import load
    from .check import verify
    from .encode import check_encoding
    from .normalize import check_percentile, input_scale, scales
    from .onnx_reader import read_model
    from .translate import Translator, check_ops

    steps, k = _check_args(steps, reset, threshold_ratio, dt)
    percentile, encoding = check_percentile(percentile), check_encoding(encoding)
    model = read_model(onnx_path)
    check_ops(model)
    x = read_calibration(calibration)
    if tuple(x.shape[1:]) != model.input_shape:
        raise InputError(f"calibration samples have shape {tuple(x.shape[1:])}; {model.path} expects {model.input_shape}")
    lam, logits = scales(model, x, percentile)
    spiking = encoding != "graded"
    s0 = input_scale(x, percentile, str(onnx_path)) if spiking else 1.0
    t = Translator(model, lam, dt=float(dt), ratio=k, input_scale=s0, spiking_input=spiking)
    meta = {"dt": float(dt), "reset": reset, "source": f"neurodeploy.convert({Path(str(onnx_path)).name})",
            "convert_steps": steps, "convert_encoding": encoding, "convert_input_scale": s0}
    graph = load(t.run().to_nir(meta), dt=float(dt), reset=reset)
    xr = torch.as_tensor(x[:CHECK_SAMPLES] / s0)
    err = verify(graph, xr, t.clip_rate, logits[:CHECK_SAMPLES], str(onnx_path))
    rate_graph, gains = graph, {}
    if reset == "zero" if balance is None else balance:
        graph, gains = _balanced(graph, x[:BALANCE_SAMPLES], s0, t, steps, encoding, seed)
    return Conversion(graph=graph, model=model, steps=steps, encoding=encoding, input_scale=s0,
                      percentile=percentile, threshold_ratio=k, scales={n: v / gains.get(n, 1.0) for n, v in t.if_scale.items()},
                      clip_rate=dict(t.clip_rate), calibration=x[:64], check_error=err, seed=int(seed),
                      balance=gains, rate_graph=rate_graph)


def _balanced(graph, xb, s0, t, steps, encoding, seed):
    from .balance import balance
    from .check import rate_ann
    from .encode import encode

    xr = torch.as_tensor(xb / s0, dtype=torch.float64)
    xr = xr if encoding == "graded" else xr.clamp(0, 1)
    with torch.no_grad():
        vals = rate_ann(graph, xr, t.clip_rate, saturate=True, every=True)
    targets = {n: float(vals[n].mean()) for n in t.if_scale}
    return balance(graph, encode(xb, steps, encoding, s0, seed), targets)
