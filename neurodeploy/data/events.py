"""Event-camera style data as tonic-compatible structured arrays, and transforms on them.

An event array is a 1-D numpy structured array of dtype :data:`EVENT_DTYPE` with fields
``x``, ``y`` (pixel column and row, int16), ``t`` (timestamp in microseconds, int64) and ``p``
(polarity, int8: 0 = OFF, 1 = ON). A sensor size is ``(W, H, P)``: width, height, number of
polarities -- tonic's convention. Frames are ``(T, P, H, W)``.

The transforms are frozen dataclasses with ``__call__`` and follow tonic 1.7's semantics
(``tonic.transforms.ToFrame``, ``CenterCrop``, ``Downsample``) without needing tonic; each
documents where it differs. They never modify their input array.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "ToFrame",
    "CropCenter",
    "Downsample",
    "frames_to_spikes",
    "spikes_to_events",
]

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])
"""x, y: pixel coordinates; t: microseconds; p: polarity, 0 = OFF, 1 = ON."""

_I16_MAX = np.iinfo(np.int16).max
SensorSize = tuple[int, int, int]


# --------------------------------------------------------------------------- validation


def _sensor_size(owner: str, sensor_size: Any) -> SensorSize:
    try:
        vals = tuple(sensor_size)
    except TypeError:
        vals = ()
    if len(vals) != 3 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in vals
    ):
        raise InputError(f"{owner}: sensor_size must be three positive integers (W, H, P), got {sensor_size!r}")
    w, h, p = (int(v) for v in vals)
    if w > _I16_MAX + 1 or h > _I16_MAX + 1:
        raise InputError(f"{owner}: sensor_size {sensor_size!r} exceeds the int16 coordinate range")
    return w, h, p


def _positive_number(owner: str, name: str, value: Any) -> float | int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InputError(f"{owner}: {name} must be a positive finite number, got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _integer_valued(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.trunc(arr)):
            raise InputError(f"make_events: {name} must hold integers, got non-integer values (shape {arr.shape})")
        return arr
    raise InputError(f"make_events: {name} must be an integer array, got dtype {arr.dtype} (shape {arr.shape})")


def _check_events(owner: str, events: Any, sensor_size: SensorSize | None = None,
                  need_p: bool = True) -> np.ndarray:
    """Check a structured event array (fields, 1-D, coordinates within the sensor)."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise InputError(
            f"{owner}: events must be a numpy structured array with fields x, y, t, p "
            f"(see make_events), got {type(events).__name__}"
        )
    needed = ("x", "y", "t", "p") if need_p else ("x", "y", "t")
    missing = [f for f in needed if f not in events.dtype.names]
    if missing:
        raise InputError(f"{owner}: events lack field(s) {missing}; dtype is {events.dtype}")
    if events.ndim != 1:
        raise InputError(f"{owner}: events must be a 1-D array, got shape {events.shape}")
    if sensor_size is not None and len(events):
        w, h, _ = sensor_size
        for name, size in (("x", w), ("y", h)):
            lo, hi = events[name].min(), events[name].max()
            if lo < 0 or hi >= size:
                raise InputError(
                    f"{owner}: events {name} in [{lo}, {hi}] fall outside sensor_size {sensor_size} "
                    f"(valid 0..{size - 1})"
                )
    return events


# --------------------------------------------------------------------------- construction


def make_events(x: Any, y: Any, t: Any, p: Any, *, sensor_size: SensorSize | None = None,
                sort: bool = True) -> np.ndarray:
    """Build an event array of dtype :data:`EVENT_DTYPE` from four equal-length 1-D arrays.

    ``x``, ``y``: non-negative integer pixel coordinates (< W, < H if ``sensor_size`` is given;
    int16 range otherwise). ``t``: non-negative integer timestamps in microseconds. ``p``: polarity
    0 (OFF) or 1 (ON) (booleans accepted). Float inputs are accepted when integer-valued.
    With ``sort=True`` (default) the events are stably sorted by ``t``, which tonic-style slicing
    expects. Raises :class:`InputError` naming the offending argument.
    """
    size = _sensor_size("make_events", sensor_size) if sensor_size is not None else None
    cols = {}
    for name, val in (("x", x), ("y", y), ("t", t), ("p", p)):
        if isinstance(val, torch.Tensor):
            val = val.detach().cpu().numpy()
        arr = np.asarray(val)
        if arr.ndim != 1:
            raise InputError(f"make_events: {name} must be a 1-D array, got shape {arr.shape}")
        cols[name] = _integer_valued(name, arr)
    n = len(cols["x"])
    for name in ("y", "t", "p"):
        if len(cols[name]) != n:
            raise InputError(
                f"make_events: {name} has shape {cols[name].shape} but x has shape {cols['x'].shape}; "
                "all four must have the same length"
            )
    limits = {"x": _I16_MAX + 1, "y": _I16_MAX + 1, "t": 2**63, "p": 2}
    if size is not None:
        limits["x"], limits["y"] = size[0], size[1]
    for name, limit in limits.items():
        arr = cols[name]
        if n and (arr.min() < 0 or arr.max() >= limit):
            what = {"p": "0 (OFF) or 1 (ON)"}.get(name, f"in [0, {limit - 1}]")
            raise InputError(
                f"make_events: {name} must be {what}, got values in [{arr.min()}, {arr.max()}] (shape {arr.shape})"
            )
    events = np.empty(n, dtype=EVENT_DTYPE)
    for name in ("x", "y", "t", "p"):
        events[name] = cols[name]
    if sort and n > 1 and np.any(events["t"][1:] < events["t"][:-1]):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


# --------------------------------------------------------------------------- ToFrame


@dataclass(frozen=True)
class ToFrame:
    """Accumulate events into frames of event counts, ``(T, P, H, W)`` float32.

    Exactly one of

    * ``time_window`` (µs): frames are consecutive windows ``[s_k, s_k + time_window)`` with
      ``s_k = start + k * time_window``, ``start`` = ``start_time`` or the first event's time, and
      ``n = floor((end - start - time_window) / time_window) + 1`` windows (``ceil`` with
      ``include_incomplete=True``), at least one; ``end`` = ``end_time`` or the last event's time;
    * ``n_time_bins``: ``n_time_bins`` windows of length ``(t_last - t_first) // n_time_bins``
      (integer division) starting at the first event's time.

    This is exactly ``tonic.transforms.ToFrame`` (tonic 1.7, ``overlap=0``), including two of its
    quirks: windows are half-open, so with ``time_window`` the last event (at ``t_last``) falls
    outside every frame when the span is a whole number of windows; with ``n_time_bins`` the bins
    end at ``t_first + n_time_bins * width <= t_last``, so events at ``t_last`` (and in the
    remainder of the integer division) are always dropped, and a span shorter than
    ``n_time_bins`` µs gives empty frames. To keep every event with
    ``time_window``, pass ``end_time`` > the last timestamp (e.g. ``T * dt`` for events from
    :func:`spikes_to_events`). Differences from tonic: the result is float32, not int16; events
    need not be sorted (the first/last times are the min/max); empty input gives
    ``(1 or n_time_bins, P, H, W)`` zeros (tonic returns ``(.., P, W, H)``); overlap and the
    event-count slicings are not offered. A single-polarity sensor (``P == 1``) counts all events
    in channel 0, and like tonic refuses events of both polarities.
    """

    sensor_size: SensorSize
    n_time_bins: int | None = None
    time_window: float | None = None
    include_incomplete: bool = False
    start_time: float | None = None
    end_time: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensor_size", _sensor_size("ToFrame", self.sensor_size))
        if (self.n_time_bins is None) == (self.time_window is None):
            raise InputError(
                "ToFrame: give exactly one of n_time_bins and time_window, got "
                f"n_time_bins={self.n_time_bins!r}, time_window={self.time_window!r}"
            )
        if self.n_time_bins is not None:
            nb = self.n_time_bins
            if isinstance(nb, bool) or not isinstance(nb, numbers.Integral) or nb <= 0:
                raise InputError(f"ToFrame: n_time_bins must be a positive integer, got {nb!r}")
            object.__setattr__(self, "n_time_bins", int(nb))
            if self.start_time is not None or self.end_time is not None:
                raise InputError("ToFrame: start_time/end_time only apply with time_window, not n_time_bins")
        else:
            object.__setattr__(self, "time_window", _positive_number("ToFrame", "time_window", self.time_window))
        for name in ("start_time", "end_time"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)):
                raise InputError(f"ToFrame: {name} must be a finite number or None, got {v!r}")

    def windows(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end times ``(n_frames,)`` of the frames' half-open windows for ``events``."""
        t = events["t"]
        if self.n_time_bins is not None:
            t0, t1 = t.min(), t.max()
            window = (t1 - t0) // self.n_time_bins
            starts = np.arange(self.n_time_bins) * window + t0
            return starts, starts + window
        tw = self.time_window
        start = t.min() if self.start_time is None else self.start_time
        end = t.max() if self.end_time is None else self.end_time
        rounding = np.ceil if self.include_incomplete else np.floor
        n = max(int(rounding(((end - start) - tw) / tw) + 1), 1)
        starts = np.arange(n) * tw + start
        return starts, starts + tw

    def __call__(self, events: np.ndarray) -> np.ndarray:
        w, h, n_pol = self.sensor_size
        events = _check_events("ToFrame", events, self.sensor_size, need_p=n_pol > 1)
        if len(events) == 0:
            n = self.n_time_bins if self.n_time_bins is not None else 1
            return np.zeros((n, n_pol, h, w), dtype=np.float32)
        if n_pol == 1:
            if "p" in events.dtype.names and np.unique(events["p"]).size > 1:
                raise InputError(
                    f"ToFrame: sensor_size {self.sensor_size} has one polarity but the events hold both"
                )
            pol = np.zeros(len(events), dtype=np.int64)
        else:
            pol = events["p"].astype(np.int64)
            if pol.min() < 0 or pol.max() >= n_pol:
                raise InputError(
                    f"ToFrame: events p in [{pol.min()}, {pol.max()}] fall outside sensor_size "
                    f"{self.sensor_size} (valid 0..{n_pol - 1})"
                )
        starts, ends = self.windows(events)
        n = len(starts)
        t = events["t"]
        # frame of each event: the last window starting at or before t, if t is before its end
        k = np.searchsorted(starts, t, side="right") - 1
        inside = k >= 0
        inside[inside] = t[inside] < ends[k[inside]]
        flat = ((k * n_pol + pol) * h + events["y"].astype(np.int64)) * w + events["x"].astype(np.int64)
        counts = np.bincount(flat[inside], minlength=n * n_pol * h * w)
        return counts.reshape(n, n_pol, h, w).astype(np.float32)


# --------------------------------------------------------------------------- spatial transforms


def _pair(owner: str, name: str, value: Any, positive_int: bool) -> tuple:
    vals = (value, value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    try:
        vals = tuple(vals)
    except TypeError:
        vals = ()
    ok = len(vals) == 2 and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in vals)
    if ok and positive_int:
        ok = all(isinstance(v, numbers.Integral) and v > 0 for v in vals)
    if ok and not positive_int:
        ok = all(math.isfinite(v) and v > 0 for v in vals)
    if not ok:
        kind = "positive integer" if positive_int else "positive number"
        raise InputError(f"{owner}: {name} must be a {kind} or a pair (x, y) of them, got {value!r}")
    return tuple(int(v) for v in vals) if positive_int else tuple(float(v) for v in vals)


@dataclass(frozen=True)
class CropCenter:
    """Keep the events inside the central ``size = (width, height)`` window and shift them so the
    window's corner is (0, 0). ``size`` may be an int for a square. The window starts at
    ``((W - width) // 2, (H - height) // 2)``; :attr:`out_sensor_size` is ``(width, height, P)``.

    As tonic's ``CenterCrop``, including padding: a crop larger than the sensor keeps every event
    and shifts it to the centre of the larger field.
    """

    sensor_size: SensorSize
    size: int | tuple[int, int] = (16, 16)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensor_size", _sensor_size("CropCenter", self.sensor_size))
        object.__setattr__(self, "size", _pair("CropCenter", "size", self.size, positive_int=True))

    @property
    def offsets(self) -> tuple[int, int]:
        """Sensor coordinates of the crop's corner, ``((W - width) // 2, (H - height) // 2)``."""
        return ((self.sensor_size[0] - self.size[0]) // 2, (self.sensor_size[1] - self.size[1]) // 2)

    @property
    def out_sensor_size(self) -> SensorSize:
        return (self.size[0], self.size[1], self.sensor_size[2])

    def __call__(self, events: np.ndarray) -> np.ndarray:
        events = _check_events("CropCenter", events, need_p=False)
        ox, oy = self.offsets
        lx, ly = max(ox, 0), max(oy, 0)
        x, y = events["x"], events["y"]
        keep = (x >= lx) & (x < lx + self.size[0]) & (y >= ly) & (y < ly + self.size[1])
        out = events[keep]  # boolean indexing copies
        out["x"] = out["x"] - ox
        out["y"] = out["y"] - oy
        return out


@dataclass(frozen=True)
class Downsample:
    """Scale coordinates (and optionally timestamps) by factors, rounding down; keeps every event.

    As tonic's ``Downsample``: ``spatial_factor`` is a *multiplier* (0.5 halves the resolution;
    a pair gives separate x and y factors), ``x -> floor(x * fx)``, ``y -> floor(y * fy)``,
    ``t -> floor(t * time_factor)``. Several events can land on one pixel. Use
    :meth:`out_sensor_size` for the sensor size afterwards.
    """

    spatial_factor: float | tuple[float, float] = 1.0
    time_factor: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "spatial_factor", _pair("Downsample", "spatial_factor", self.spatial_factor, positive_int=False)
        )
        object.__setattr__(self, "time_factor", _positive_number("Downsample", "time_factor", self.time_factor))

    def out_sensor_size(self, sensor_size: SensorSize) -> SensorSize:
        """Smallest sensor holding the scaled coordinates of a ``sensor_size`` sensor."""
        w, h, p = _sensor_size("Downsample", sensor_size)
        fx, fy = self.spatial_factor
        return (int(np.floor((w - 1) * fx)) + 1, int(np.floor((h - 1) * fy)) + 1, p)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        events = _check_events("Downsample", events, need_p=False)
        fx, fy = self.spatial_factor
        out = events.copy()
        for name, f in (("x", fx), ("y", fy), ("t", self.time_factor)):
            if f != 1.0:
                scaled = np.floor(events[name] * f)
                if scaled.size and scaled.max() > np.iinfo(out.dtype[name]).max:
                    raise InputError(f"Downsample: {name} * {f} overflows the {out.dtype[name]} field")
                out[name] = scaled.astype(out.dtype[name])
        return out


# --------------------------------------------------------------------------- frames <-> spikes

Array = Union[np.ndarray, torch.Tensor]


def frames_to_spikes(frames: Array, binary: bool = True, flatten: bool = True) -> Array:
    """Frames -> spike input for a network.

    ``frames``: ``(T, P, H, W)`` or batched ``(N, T, P, H, W)``, numpy or torch. ``binary=True``
    maps every non-zero count to 1 (at most one spike per pixel and step); ``binary=False`` keeps
    the counts. ``flatten=True`` merges ``(P, H, W)`` into one axis of ``P*H*W`` neurons
    (index ``(p * H + y) * W + x``): ``(T, P*H*W)`` or ``(N, T, P*H*W)``. Returns float32 of the
    input's library type.
    """
    ndim = frames.ndim if isinstance(frames, (np.ndarray, torch.Tensor)) else np.asarray(frames).ndim
    if not isinstance(frames, torch.Tensor):
        frames = np.asarray(frames)
        if frames.dtype.kind not in "biuf":
            raise InputError(f"frames_to_spikes: frames must be numeric, got dtype {frames.dtype}")
    if ndim not in (4, 5):
        raise InputError(
            f"frames_to_spikes: frames must have shape (T, P, H, W) or (N, T, P, H, W), got shape {tuple(frames.shape)}"
        )
    if isinstance(frames, torch.Tensor):
        out = (frames > 0).to(torch.float32) if binary else frames.to(torch.float32)
        return out.flatten(start_dim=ndim - 3) if flatten else out
    out = (frames > 0).astype(np.float32) if binary else frames.astype(np.float32)
    return out.reshape(*out.shape[: ndim - 3], -1) if flatten else out


def spikes_to_events(spikes: Array, dt_us: int = 1000, t0_us: int = 0) -> np.ndarray:
    """Spike trains -> event array: the inverse of :class:`ToFrame` on a time grid.

    ``spikes``: ``(T, H, W)`` (all events ON, ``p = 1``) or ``(T, P, H, W)`` (``p`` = channel
    index, P <= 2), non-negative integer counts; a count of ``c`` gives ``c`` events. Step ``k``
    maps to ``t = t0_us + k * dt_us``. Events come out sorted by time. To get the frames back use
    ``ToFrame((W, H, P), time_window=dt_us, start_time=t0_us, end_time=t0_us + T * dt_us)``.
    """
    if isinstance(spikes, torch.Tensor):
        spikes = spikes.detach().cpu().numpy()
    arr = np.asarray(spikes)
    if arr.ndim not in (3, 4):
        raise InputError(f"spikes_to_events: spikes must have shape (T, H, W) or (T, P, H, W), got shape {arr.shape}")
    if arr.ndim == 4 and arr.shape[1] > 2:
        raise InputError(f"spikes_to_events: at most 2 polarity channels, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or (arr.size and (
        not np.isfinite(arr).all() or arr.min() < 0 or not np.array_equal(arr, np.trunc(arr))
    )):
        raise InputError(f"spikes_to_events: spikes must be non-negative integer counts (shape {arr.shape})")
    dt = _positive_number("spikes_to_events", "dt_us", dt_us)
    if isinstance(dt, float) or isinstance(t0_us, bool) or not isinstance(t0_us, numbers.Integral) or t0_us < 0:
        raise InputError(
            f"spikes_to_events: dt_us must be a positive integer and t0_us a non-negative integer, got {dt_us!r}, {t0_us!r}"
        )
    if arr.ndim == 3:
        arr = arr[:, None]
        default_p = 1
    else:
        default_p = None
    idx = np.nonzero(arr)  # C order: sorted by t, then p, y, x
    counts = arr[idx].astype(np.int64)
    k, p, y, x = (np.repeat(i, counts) for i in idx)
    if default_p is not None:
        p = np.ones_like(p)
    return make_events(x, y, int(t0_us) + k.astype(np.int64) * int(dt), p,
                       sensor_size=(arr.shape[3], arr.shape[2], max(arr.shape[1], 2)), sort=False)
