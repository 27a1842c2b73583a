"""Train / validation / test splits for fine-tuning.

The test split is never used for training or calibration: training reads ``train``, model
selection and the ADC calibration of the evaluation read ``val``, the figures read ``test``.

``"digits"``: scikit-learn's digits as 16-step rate-coded spike trains
(:func:`neurodeploy.data.digits_spikes`, seed 0: the test split is the demo's and the
shipped model's), validation = 20 % of the training split (seeded). A ``.npz`` file holds
either ``x_train, y_train, x_test, y_test`` (optionally ``x_val, y_val``; otherwise 20 % of
the training split) or ``x, y`` (split 60 / 20 / 20, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

VAL_FRACTION = 0.2
DIGITS_STEPS = 16


@dataclass(frozen=True)
class Splits:
    """(x, y) pairs; x: (batch, time, *input_shape) float32, y: int64 labels."""

    train: tuple
    val: tuple
    test: tuple


def _carve(x, y, fraction: float, seed: int):
    idx = np.random.default_rng(seed).permutation(len(y))
    k = max(1, int(round(fraction * len(y))))
    return (x[idx[k:]], y[idx[k:]]), (x[idx[:k]], y[idx[:k]])


def _arrays(path: Path) -> dict:
    if not path.exists():
        raise InputError(f"{path}: data file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile/ValueError/OSError on non-npz files
        raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None


def _checked(path, x, y, name):
    if x.ndim < 3:
        raise InputError(f"{path}: array '{name}' has shape {x.shape}, expected (batch, time, *input_shape)")
    if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu" and not np.array_equal(y, np.round(y)):
        raise InputError(f"{path}: labels for '{name}' have shape {y.shape} / dtype {y.dtype}, expected "
                         f"({len(x)},) integers")
    return np.ascontiguousarray(x, np.float32), y.astype(np.int64)


def from_npz(path, seed: int = 0) -> Splits:
    path = Path(path)
    a = _arrays(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= set(a):
        train = _checked(path, a["x_train"], a["y_train"], "x_train")
        test = _checked(path, a["x_test"], a["y_test"], "x_test")
        if "x_val" in a and "y_val" in a:
            return Splits(train, _checked(path, a["x_val"], a["y_val"], "x_val"), test)
        return Splits(*_carve(*train, VAL_FRACTION, seed), test)
    if {"x", "y"} <= set(a):
        x, y = _checked(path, a["x"], a["y"], "x")
        rest, test = _carve(x, y, 0.2, seed)
        return Splits(*_carve(*rest, 0.25, seed + 1), test)
    raise InputError(f"{path}: expected arrays x_train, y_train, x_test, y_test (optionally x_val, y_val) or x, y; "
                     f"found {', '.join(a) or 'nothing'}")


def digits(seed: int = 0) -> Splits:
    from ..data import digits_spikes

    (xtr, ytr), test = digits_spikes(steps=DIGITS_STEPS, encoder="rate", seed=0)
    return Splits(*_carve(xtr, ytr, VAL_FRACTION, seed), test)


def splits(data, seed: int = 0) -> Splits:
    """``data``: "digits", a .npz path, a :class:`Splits`, or ((x_train, y_train), (x_test,
    y_test)) (validation carved from the training part)."""
    if isinstance(data, Splits):
        return data
    if isinstance(data, str) and data == "digits":
        return digits(seed)
    if isinstance(data, (str, Path)):
        if not str(data).endswith(".npz"):
            raise InputError(f"--data must be 'digits' or a .npz file, got {str(data)!r}")
        return from_npz(data, seed)
    try:
        (xtr, ytr), (xte, yte) = data
    except (TypeError, ValueError):
        raise InputError("data must be 'digits', a .npz path or ((x_train, y_train), (x_test, y_test))") from None
    train = _checked("data", np.asarray(xtr), np.asarray(ytr), "x_train")
    return Splits(*_carve(*train, VAL_FRACTION, seed), _checked("data", np.asarray(xte), np.asarray(yte), "x_test"))
