"""Audio digits (neurodeploy/data/audio_events.py): the shipped events load without espeak-ng,
are split by speaker, regenerate exactly, and the reservoir earns its place on them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from neurodeploy.data import audio_events as ae
from neurodeploy.errors import InputError


@pytest.fixture(scope="module")
def shipped():
    with np.load(ae.DATA_FILE) as z:
        return {k: z[k] for k in z.files}


def test_shipped_set_loads_without_espeak(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    d = ae.load_audio_digits()
    cfg = d.config
    assert len(d.train) + len(d.test) == cfg.n_speakers * len(ae.WORDS)
    for part in (d.train, d.test):
        assert set(np.unique(part.labels)) == set(range(11))
        assert part.sensor_size == (64, 1, 1)
        ev = part.events
        assert ev["x"].min() >= 0 and ev["x"].max() < 64
        assert ev["t"].min() >= 0 and ev["t"].max() < part.duration
        assert (ev["y"] == 0).all() and (ev["p"] == 1).all()
        starts = np.repeat(part.offsets[:-1], np.diff(part.offsets))
        within = np.arange(len(ev)) > starts  # every event but a sample's first: time never decreases
        assert (np.diff(ev["t"])[within[1:]] >= 0).all()
    test_speakers = {i for i, s in enumerate(d.speakers) if s["split"] == "test"}
    assert 0 < len(test_speakers) < cfg.n_speakers
    with pytest.raises(InputError, match="espeak-ng"):
        ae.synthesize("one", d.speakers[0])


def test_speaker_split_is_disjoint(shipped):
    cfg = ae.load_audio_digits().config
    spk = ae.speakers(cfg)
    split = np.asarray([spk[s]["split"] for s in shipped["speaker"]])
    train_spk, test_spk = set(shipped["speaker"][split == "train"]), set(shipped["speaker"][split == "test"])
    assert train_spk and test_spk and not train_spk & test_spk
    # every speaker said every word once
    pairs = set(zip(shipped["speaker"].tolist(), shipped["label"].tolist()))
    assert len(pairs) == len(shipped["label"]) == cfg.n_speakers * len(ae.WORDS)


def test_word_options():
    d = ae.load_audio_digits(words="digits")
    assert 10 not in set(d.train.labels) | set(d.test.labels)
    m = ae.load_audio_digits(words="merge-oh")
    full = ae.load_audio_digits()
    assert np.array_equal(m.train.labels, np.where(full.train.labels == 10, 0, full.train.labels))
    with pytest.raises(InputError, match="words"):
        ae.load_audio_digits(words="letters")
    with pytest.raises(InputError, match="not found"):
        ae.load_audio_digits(path="/nonexistent/audio.npz")


def test_to_audio_tensor_counts_every_event():
    d = ae.load_audio_digits().test.subset(np.arange(5))
    x = ae.to_audio_tensor(d, 129)
    assert x.shape == (5, 129, 64)
    assert torch.equal(x.sum((1, 2)), torch.as_tensor(np.diff(d.offsets), dtype=torch.float32))
    # channel totals match a direct bincount of sample 0
    assert np.array_equal(x[0].sum(0).numpy(), np.bincount(d[0]["x"], minlength=64))
    assert ae.to_audio_tensor(d, 10, binary=True).max() == 1
    with pytest.raises(InputError, match="n_bins"):
        ae.to_audio_tensor(d, 0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (only needed to regenerate)")
def test_generation_reproduces_the_shipped_events(shipped):
    cfg = ae.load_audio_digits().config
    test_spk = next(i for i, s in enumerate(ae.speakers(cfg)) if s["split"] == "test")
    samples = [(0, 3), (1, 10), (test_spk, 7), (cfg.n_speakers - 1, 0)]
    got = ae.generate(cfg, samples, chunk=3)  # a chunk boundary inside the subset
    index = {(s, w): i for i, (s, w) in enumerate(zip(shipped["speaker"].tolist(), shipped["label"].tolist()))}
    for k, (s, w) in enumerate(samples):
        i = index[(s, w)]
        a, b = shipped["offsets"][i], shipped["offsets"][i + 1]
        c, e = got["offsets"][k], got["offsets"][k + 1]
        assert np.array_equal(got["channel"][c:e], shipped["channel"][a:b]), (s, w)
        assert np.array_equal(got["t_ms"][c:e], shipped["t_ms"][a:b]), (s, w)


def test_generate_rejects_bad_samples():
    with pytest.raises(InputError, match="out of range"):
        ae.generate(ae.AudioConfig(), [(0, 11)])
    with pytest.raises(InputError, match="fmin"):
        ae.AudioConfig(fmin=9000.0)


@pytest.mark.slow
def test_reservoir_beats_both_raw_baselines_by_more_than_the_seed_spread():
    """The paper's 200-neuron audio reservoir (decay 0.97, threshold 5.3, 129 steps;
    software, reservoir seeds 0–2; the whole set, binary inputs) against ridge readouts on
    the raw input: the totals per channel and the time-binned raw input. Every readout's
    options (feature kind, windows, lambda) are the ones picked on held-out training
    speakers (lsm.PAPER_READOUT, lsm.RAW_READOUT: the baseline searched the same grid as
    the reservoir); the margin over the better baseline must exceed the spread (max − min)
    over reservoir seeds."""
    from neurodeploy.targets.rram import lsm

    data = lsm.audio_digit_inputs(**lsm.PAPER_INPUT["audio-digits"])
    raw = lsm.RAW_READOUT["audio-digits"]
    r = lsm.baseline_comparison(data, lsm.PAPER_LSM["audio-digits"], reservoir_seeds=(0, 1, 2), device_seeds=(),
                                spec=lsm.PAPER_READOUT["audio-digits"], raw_spec=raw["binned"], total_spec=raw["total"])
    soft = np.asarray(r["software"])
    best_raw = max(r["raw_total_mean"], r["raw_binned_mean"])
    assert r["raw_binned_mean"] > r["raw_total_mean"]  # the events carry temporal information
    assert soft.mean() - best_raw > soft.max() - soft.min(), r


def test_select_readout_picks_on_held_out_folds_only():
    """The selection sees only the training signal and its folds: a feature that separates
    the classes in time only (same totals) is found by windows, not by totals."""
    from neurodeploy.targets.rram import lsm

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 40)
    x = np.zeros((80, 8, 3), np.float32)
    x[y == 0, :4, 0], x[y == 1, 4:, 0] = 1, 1  # class = early vs late spikes on channel 0
    x[..., 1:] = rng.random((80, 8, 2)) < 0.3
    folds = np.arange(80) % 4
    grid = {"features": (("counts", None),), "bins": (1, 2), "alphas": (1.0,)}
    sel = lsm.select_readout(torch.as_tensor(x), y, folds, grid)
    assert (sel["bins"], sel["kind"]) == (2, "counts") and sel["cv_accuracy"] == 1.0
    assert [row["bins"] for row in sel["table"]] == [1, 2] and sel["table"][0]["cv_accuracy"] < 0.75
    with pytest.raises(InputError, match="folds"):
        lsm.baseline_comparison((x, y, x, y), {"n_inputs": 3, "n_neurons": 4}, (0,), ())


def test_window_features_trace_is_the_filtered_signal_at_window_ends():
    from neurodeploy.targets.rram.readout import window_features

    s = torch.zeros(1, 6, 1)
    s[0, 0, 0] = s[0, 4, 0] = 1.0
    a = np.exp(-1 / 2.0)
    got = window_features(s, 2, "trace", 2.0)[0]  # windows [0, 3) and [3, 6): ends at steps 2 and 5
    assert got == pytest.approx([a ** 2, a ** 5 + a], rel=1e-6)
    assert window_features(s, 2)[0].tolist() == [1.0, 1.0]
    with pytest.raises(InputError, match="tau"):
        window_features(s, 2, "trace")
    with pytest.raises(InputError, match="kind"):
        window_features(s, 2, "rate")
