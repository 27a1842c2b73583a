"""Event digits: an N-MNIST-like event dataset made offline from scikit-learn's 8x8 digits.

N-MNIST (Orchard et al., "Converting static image datasets to spiking neuromorphic
datasets using saccades", Front. Neurosci. 9:437, 2015) was recorded by moving an ATIS
event camera in three saccades in front of MNIST digits shown on a monitor: 34x34 pixels,
two polarities, ~300 ms per sample. :func:`load_event_digits` simulates the same recording:

1. each 8x8 digit (values 0..1) is upsampled bilinearly to ``digit_size`` (28) pixels and
   placed in the ``sensor`` (34x34) field;
2. the image moves along the three saccades of a triangle
   ``(0,0) → (3,6) → (6,0) → (0,0)`` pixels (``saccade_ms`` = 100 ms each, sub-pixel
   bilinear translation, sampled every ``step_us`` µs);
3. each pixel emits an ON (OFF) event each time its log intensity
   ``L = log(I + bg)`` has risen (fallen) by its contrast threshold
   ``C·(1 + σ_C n_pixel)`` since its last event (several per step when the change is
   larger), as a DVS/ATIS pixel does; timestamps are jittered uniformly within the step;
4. background noise events arrive as a Poisson process of ``noise_rate`` Hz per pixel.

The result is tonic-style event arrays (:data:`~neurodeploy.data.events.EVENT_DTYPE`: x,
y, t in µs, p 0 = OFF / 1 = ON), stored as one concatenated array plus per-sample offsets
(:class:`EventSet`), and :func:`to_spike_tensor` bins them into the LSM's input (a
centred 16x16 crop, 50 time bins, polarities merged, binarized): exactly
``CropCenter`` + ``ToFrame(time_window=duration/n_bins, start_time=0, end_time=duration)``
per sample, but vectorized over the whole set. Everything is seeded; nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .events import EVENT_DTYPE

SACCADES = ((0.0, 0.0), (3.0, 6.0), (6.0, 0.0), (0.0, 0.0))  # (dx, dy) vertices, pixels


@dataclass(frozen=True, eq=False)
class EventSet:
    """Events of many samples: ``events[offsets[i]:offsets[i+1]]`` is sample ``i``
    (sorted by t); ``labels[i]`` its class; ``sensor_size`` (W, H, P); ``duration`` µs."""

    events: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    sensor_size: tuple[int, int, int]
    duration: int

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> np.ndarray:
        """Sample ``i`` as a tonic-style event array."""
        return self.events[self.offsets[i]:self.offsets[i + 1]]

    @property
    def sample_index(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def subset(self, idx) -> "EventSet":
        """The samples ``idx`` (in that order), gathered without a per-sample loop."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        lens = np.diff(self.offsets)[idx]
        offs = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        rows = np.repeat(self.offsets[idx] - offs[:-1], lens) + np.arange(offs[-1])
        return EventSet(self.events[rows], offs, self.labels[idx], self.sensor_size, self.duration)

    def stats(self) -> dict:
        n = np.diff(self.offsets)
        on = float((self.events["p"] == 1).mean()) if len(self.events) else 0.0
        return {"samples": len(self), "events_mean": float(n.mean()), "events_std": float(n.std()),
                "events_min": int(n.min()), "events_max": int(n.max()), "on_fraction": on,
                "duration_us": int(self.duration), "sensor_size": list(self.sensor_size)}


@dataclass(frozen=True, eq=False)
class EventDigits:
    train: EventSet
    test: EventSet


def _positions(n_steps_per_saccade: int) -> np.ndarray:
    """(T, 2) image offsets (dx, dy) along the three saccades (linear motion)."""
    v = np.asarray(SACCADES)
    s = np.linspace(0, 1, n_steps_per_saccade, endpoint=False)[:, None]
    path = [v[k] + s * (v[k + 1] - v[k]) for k in range(3)]
    return np.concatenate(path + [v[-1:]])


def _shift(a: torch.Tensor, d: float, dim: int) -> torch.Tensor:
    """Translate ``a`` by ``d >= 0`` pixels along ``dim`` (bilinear, zeros shifted in)."""
    i = int(np.floor(d))
    f = float(d - i)
    size = a.shape[dim]

    def whole(k):
        if k == 0:
            return a
        if k >= size:
            return torch.zeros_like(a)
        pad = [0, 0] * (a.ndim - 1 - dim) + [k, 0]
        return F.pad(a, pad).narrow(dim, 0, size)

    return whole(i) if f == 0 else (1 - f) * whole(i) + f * whole(i + 1)


def _canvas(images: torch.Tensor, sensor: int, digit_size: int) -> torch.Tensor:
    n = images.shape[0]
    up = F.interpolate(images[:, None], size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    canvas = torch.zeros(n, sensor, sensor, dtype=images.dtype)
    canvas[:, :digit_size, :digit_size] = up[:, 0].clamp(0, 1)
    return canvas


def render(images: torch.Tensor, sensor: int, digit_size: int, offsets: np.ndarray) -> torch.Tensor:
    """Intensity frames (T, N, sensor, sensor) of the digits (upsampled to ``digit_size``,
    top-left aligned) translated by ``offsets`` (T, 2) = (dx, dy) >= 0 pixels."""
    canvas = _canvas(images, sensor, digit_size)
    return torch.stack([_shift(_shift(canvas, float(dx), 2), float(dy), 1) for dx, dy in offsets])


def simulate_events(images, *, seed: int = 0, sensor: int = 34, digit_size: int = 28, saccade_ms: float = 100.0,
                    step_us: int = 2000, contrast: float = 0.5, contrast_sigma: float = 0.03,
                    background: float = 0.05, noise_rate: float = 0.5):
    """Events of a batch of images (N, h, w) in [0, 1]: returns (event array with an extra
    sample index, duration in µs). See the module docstring for the model."""
    imgs = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if imgs.ndim != 3:
        raise InputError(f"simulate_events: images must be (N, h, w), got shape {tuple(imgs.shape)}")
    if digit_size > sensor:
        raise InputError(f"simulate_events: digit_size {digit_size} exceeds the sensor size {sensor}")
    n = imgs.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    steps = int(round(saccade_ms * 1000 / step_us))
    offsets = _positions(steps)
    canvas = _canvas(imgs, sensor, digit_size)
    frame = lambda t: _shift(_shift(canvas, float(offsets[t][0]), 2), float(offsets[t][1]), 1)  # noqa: E731
    thr = contrast * (1 + contrast_sigma * torch.randn(n, sensor, sensor, generator=g)).clamp(min=0.2)
    ref = torch.log(frame(0) + background)
    idx_s, idx_y, idx_x, idx_t, idx_p, counts = [], [], [], [], [], []
    for t in range(1, len(offsets)):  # time loop over steps; all pixels of all samples at once
        d = torch.log(frame(t) + background) - ref
        k = torch.floor(d.abs() / thr)
        fire = k > 0
        if bool(fire.any()):
            s, y, x = torch.nonzero(fire, as_tuple=True)
            kk = k[fire].to(torch.int64)
            idx_s.append(s), idx_y.append(y), idx_x.append(x)
            idx_p.append((d[fire] > 0).to(torch.int8))
            idx_t.append(torch.full_like(s, t))
            counts.append(kk)
            ref = ref + torch.sign(d) * k * thr
    duration = int((len(offsets) - 1) * step_us)
    if counts:
        kk = torch.cat(counts)
        rep = lambda a: torch.repeat_interleave(torch.cat(a), kk)  # noqa: E731  one event per threshold crossing
        s, y, x, p, tt = rep(idx_s), rep(idx_y), rep(idx_x), rep(idx_p), rep(idx_t)
        jitter = torch.rand(len(s), generator=g, dtype=torch.float64)
        t_us = ((tt.double() - 1 + jitter) * step_us).floor().to(torch.int64)
    else:
        s = y = x = tt = torch.zeros(0, dtype=torch.int64)
        p = torch.zeros(0, dtype=torch.int8)
        t_us = torch.zeros(0, dtype=torch.int64)
    # background activity: Poisson(noise_rate · duration) per pixel, uniform times and polarity
    lam = noise_rate * duration * 1e-6
    nn = torch.poisson(torch.full((n, sensor, sensor), lam), generator=g).to(torch.int64)
    if int(nn.sum()):
        ns, ny, nx = torch.nonzero(nn, as_tuple=True)
        reps = nn[ns, ny, nx]
        ns, ny, nx = (torch.repeat_interleave(a, reps) for a in (ns, ny, nx))
        nt = (torch.rand(len(ns), generator=g, dtype=torch.float64) * duration).floor().to(torch.int64)
        npol = (torch.rand(len(ns), generator=g) < 0.5).to(torch.int8)
        s, y, x, p, t_us = (torch.cat(a) for a in ((s, ns), (y, ny), (x, nx), (p, npol), (t_us, nt)))
    order = np.lexsort((t_us.numpy(), s.numpy()))  # by sample, then time
    ev = np.empty(len(order), dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = x.numpy()[order], y.numpy()[order]
    ev["t"], ev["p"] = t_us.numpy()[order], p.numpy()[order]
    sidx = s.numpy()[order]
    offs = np.concatenate([[0], np.cumsum(np.bincount(sidx, minlength=n))]).astype(np.int64)
    return ev, offs, duration


def make_event_set(images, labels, *, seed: int = 0, **kw) -> EventSet:
    ev, offs, duration = simulate_events(images, seed=seed, **kw)
    sensor = kw.get("sensor", 34)
    return EventSet(ev, offs, np.asarray(labels, np.int64), (sensor, sensor, 2), duration)


def load_event_digits(test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None,
                      n_test: int | None = None, **kw) -> EventDigits:
    """The event-digits dataset: scikit-learn's digits split as
    :func:`~neurodeploy.data.load_digits_dataset` splits them (stratified, seeded), then
    optionally truncated to ``n_train``/``n_test`` samples, converted to events
    (:func:`simulate_events`, keyword arguments passed on)."""
    from .digits import load_digits_dataset

    split = load_digits_dataset(test_fraction=test_fraction, seed=seed)
    xs, ys = split.x_train[:n_train], split.y_train[:n_train]
    xt, yt = split.x_test[:n_test], split.y_test[:n_test]
    return EventDigits(make_event_set(xs, ys, seed=seed * 2 + 1, **kw), make_event_set(xt, yt, seed=seed * 2 + 2, **kw))


def to_spike_tensor(data: EventSet, crop: int = 16, n_bins: int = 50, merge_polarity: bool = True,
                    binary: bool = True, downsample: int = 1) -> torch.Tensor:
    """(N, n_bins, crop·crop) float32 input of the LSM (or (N, n_bins, 2·crop·crop) with
    ``merge_polarity=False``): events downsampled by ``downsample`` (x // d, y // d), a
    centred ``crop`` window, counted in ``n_bins`` windows of ``duration/n_bins`` µs,
    binarized (spike if any event) when ``binary``."""
    if crop < 1 or n_bins < 1 or downsample < 1:
        raise InputError(f"to_spike_tensor: crop, n_bins, downsample must be >= 1, got {crop}, {n_bins}, {downsample}")
    W, H, _ = data.sensor_size
    W, H = -(-W // downsample), -(-H // downsample)
    ev = data.events
    x = ev["x"].astype(np.int64) // downsample
    y = ev["y"].astype(np.int64) // downsample
    ox, oy = (W - crop) // 2, (H - crop) // 2
    x, y = x - ox, y - oy
    tw = data.duration / n_bins
    k = np.floor(ev["t"] / tw).astype(np.int64)
    keep = (x >= 0) & (x < crop) & (y >= 0) & (y < crop) & (k >= 0) & (k < n_bins)
    P = 1 if merge_polarity else 2
    p = np.zeros(len(ev), np.int64) if merge_polarity else ev["p"].astype(np.int64)
    s = data.sample_index
    flat = (((s * n_bins + k) * P + p) * crop + y) * crop + x
    counts = np.bincount(flat[keep], minlength=len(data) * n_bins * P * crop * crop)
    out = torch.from_numpy(counts.reshape(len(data), n_bins, P * crop * crop).astype(np.float32))
    return (out > 0).float() if binary else out
