"""Event digits: seeded, physically consistent (closed saccade path), binned like tonic."""

import numpy as np
import pytest
import torch

from neurodeploy.data.events import EVENT_DTYPE, CropCenter, ToFrame
from neurodeploy.data.event_digits import load_event_digits, make_event_set, simulate_events, to_spike_tensor
from neurodeploy.data.digits import load_digits_dataset


@pytest.fixture(scope="module")
def small():
    return load_event_digits(seed=0, n_train=40, n_test=20)


def test_structure_and_stats(small):
    tr = small.train
    assert tr.events.dtype == EVENT_DTYPE
    assert len(tr) == 40 and tr.offsets[-1] == len(tr.events)
    assert tr.sensor_size == (34, 34, 2) and tr.duration == 300_000
    for i in range(len(tr)):
        e = tr[i]
        assert len(e) > 1000
        assert np.all(np.diff(e["t"]) >= 0)  # time-sorted per sample
        assert e["t"].min() >= 0 and e["t"].max() < tr.duration
        assert e["x"].min() >= 0 and e["x"].max() < 34 and e["y"].max() < 34
    st = tr.stats()
    assert 0.4 < st["on_fraction"] < 0.6
    split = load_digits_dataset(seed=0)
    assert np.array_equal(tr.labels, split.y_train[:40]) and np.array_equal(small.test.labels, split.y_test[:20])


def test_seeded():
    imgs = load_digits_dataset(seed=0).x_train[:5]
    a = simulate_events(imgs, seed=3)
    b = simulate_events(imgs, seed=3)
    c = simulate_events(imgs, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert len(a[0]) != len(c[0]) or not np.array_equal(a[0], c[0])


def test_closed_saccade_path_gives_zero_net_events_per_pixel():
    """The path returns to its start, so each pixel's log intensity does too; each event
    moves the pixel's reference by ±C, hence ON − OFF ∈ {−1, 0, 1} per pixel (no noise)."""
    imgs = load_digits_dataset(seed=0).x_train[:6]
    es = make_event_set(imgs, np.zeros(6), seed=1, noise_rate=0.0, contrast_sigma=0.0)
    ev, s = es.events, es.sample_index
    flat = (s * 34 + ev["y"].astype(np.int64)) * 34 + ev["x"].astype(np.int64)
    net = np.bincount(flat, weights=np.where(ev["p"] == 1, 1.0, -1.0), minlength=6 * 34 * 34)
    assert np.abs(net).max() <= 1
    assert len(ev) > 0


def test_blank_image_only_noise_events():
    blank = np.zeros((50, 8, 8))
    es = make_event_set(blank, np.zeros(50), seed=0, noise_rate=10.0)
    n = np.diff(es.offsets)
    lam = 10.0 * 0.3 * 34 * 34  # Poisson rate × duration × pixels
    assert abs(n.mean() - lam) < 5 * np.sqrt(lam / 50)
    es0 = make_event_set(blank, np.zeros(50), seed=0, noise_rate=0.0)
    assert len(es0.events) == 0


@pytest.mark.parametrize("merge", [True, False])
def test_binning_equals_cropcenter_toframe(small, merge):
    x = to_spike_tensor(small.train, crop=16, n_bins=50, merge_polarity=merge, binary=False)
    crop = CropCenter(sensor_size=(34, 34, 2), size=16)
    tf = ToFrame(sensor_size=(16, 16, 2), time_window=small.train.duration / 50, start_time=0,
                 end_time=small.train.duration)
    for i in (0, 7, 39):
        fr = tf(crop(small.train[i]))  # (T, P, H, W)
        if merge:
            fr = fr.sum(1, keepdims=True)
        assert np.array_equal(x[i].numpy(), fr.reshape(50, -1))
    xb = to_spike_tensor(small.train)
    assert xb.shape == (40, 50, 256) and set(torch.unique(xb).tolist()) <= {0.0, 1.0}
    assert 0.05 < float(xb.mean()) < 0.6


def test_subset_gathers_samples(small):
    sub = small.train.subset([5, 0, 5, 39])
    assert len(sub) == 4 and list(sub.labels) == [small.train.labels[i] for i in (5, 0, 5, 39)]
    for k, i in enumerate((5, 0, 5, 39)):
        assert np.array_equal(sub[k], small.train[i])
