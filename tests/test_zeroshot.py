"""Zero-shot multimodal LSM (neurodeploy/targets/rram/zeroshot.py): split parsing, prototype
retrieval, heads vs onnxruntime, the energy comparison's pricing, and zero-shot accuracy on
unseen classes well above chance on software and RRAM (3 device seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurodeploy.errors import InputError, ProfileError
from neurodeploy.hardware import list_profiles
from neurodeploy.hardware.profiles import BUNDLED_DIR, REQUIRED
from neurodeploy.targets.rram import lsm_energy
from neurodeploy.targets.rram import zeroshot as zs


def test_parse_split():
    assert zs.parse_split("1-7:8-9") == zs.PAPER_SPLIT
    assert zs.parse_split("0,2,4:1,3") == ((0, 2, 4), (1, 3))
    for bad, msg in (("1-7", "SEEN:UNSEEN"), ("1-7:7-9", "distinct"), ("1-7:9", "at least 2"), ("a:1,2", "not a digit"),
                     ("1-7:8-10", "0–9")):
        with pytest.raises(InputError, match=msg):
            zs.parse_split(bad)


def test_retrieve_assigns_the_nearest_prototype():
    zg = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], float)
    yg = np.array([8, 8, 9, 9])
    zq = np.array([[0.9, 0.2], [0.2, 0.9], [0.8, 0.1], [0.7, 0.3]])
    yq = np.array([8, 9, 9, 3])  # class 3 is not evaluated
    acc, conf = zs.retrieve(zq, yq, zg, yg, (8, 9))
    assert acc == pytest.approx(2 / 3)
    assert conf.tolist() == [[1, 0], [1, 1]]


def test_heads_export_to_onnx_and_match_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    fa, fb = rng.poisson(3, (80, 30)).astype(np.float32), rng.poisson(2, (90, 20)).astype(np.float32)
    ya, yb = rng.integers(0, 4, 80), rng.integers(0, 4, 90)
    ha, hb = zs.train_heads(fa, ya, fb, yb, (0, 1, 2), dim=8, epochs=20)
    for h, f, name in ((ha, fa, "a"), (hb, fb, "b")):
        p = h.export_onnx(tmp_path / f"{name}.onnx")
        assert zs.check_onnx(h, p, f) < 1e-5
        assert np.allclose(np.linalg.norm(h.embed(f), axis=1), 1, atol=1e-5)


def test_digital_baseline_prices_the_protocol_counts():
    prof = lsm_energy.load_digital_profile()
    assert prof.kind == "digital" and all(prof[k].confidence == "published" for k in REQUIRED["digital"])
    counts = {"w_in": {"dense_synops": 1000, "synaptic_events": 100}, "lif": {"neuron_updates": 10}}
    mult, add = prof.si("energy_fp32_mult"), prof.si("energy_fp32_add")
    r8, r32 = prof.si("energy_sram_read_8kb"), prof.si("energy_sram_read_32kb")
    dense = lsm_energy.digital_energy(counts, 16 * 1024, prof, "dense")
    assert dense["weight_cache"] == "energy_sram_read_32kb"
    assert dense["total_J"] == pytest.approx(1000 * (mult + add + r32 / 2) + 10 * (mult + 2 * add + r8))
    event = lsm_energy.digital_energy(counts, 16 * 1024, prof, "event")
    assert event["total_J"] == pytest.approx(100 * (add + r32 / 2) + 10 * (mult + 2 * add + r8))
    with pytest.raises(InputError, match="1 MB"):
        lsm_energy.digital_energy(counts, 2 * 1024 * 1024, prof)
    with pytest.raises(InputError, match="style"):
        lsm_energy.digital_energy(counts, 1024, prof, "sparse")


def test_digital_profile_is_validated(tmp_path):
    """The baseline is an ordinary bundled profile of kind "digital": the loader's schema
    checks it, and the comparison refuses a profile of another kind."""
    assert "digital_45nm" in list_profiles()
    text = (BUNDLED_DIR / "digital_45nm.toml").read_text()
    bad = tmp_path / "d.toml"
    bad.write_text(text.replace('unit = "pJ"', 'unit = "ns"', 1))
    with pytest.raises(ProfileError, match="energy_fp32_add.*energy unit"):
        lsm_energy.load_digital_profile(bad)
    bad.write_text(text.replace("[constants.energy_sram_read_1mb]", "[constants.energy_other]"))
    with pytest.raises(ProfileError, match="'energy_sram_read_1mb' is missing"):
        lsm_energy.load_digital_profile(bad)
    with pytest.raises(ProfileError, match="'rram_40nm' is a rram profile.*digital"):
        lsm_energy.load_digital_profile("rram_40nm")


def _p_chance(correct: int, n: int, p: float) -> float:
    """P(X >= correct) for X ~ Binomial(n, p): how likely the accuracy is by chance."""
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(correct, n + 1))


@pytest.mark.slow
def test_zero_shot_unseen_classes_well_above_chance_on_software_and_rram():
    """Paper split (1–7 seen, 8–9 unseen) on subsets: each direction's unseen accuracy of
    software and of every RRAM device seed is above chance with binomial p < 0.001, and the
    RRAM − software gap is reported over 3 device seeds."""
    from neurodeploy.targets.rram.lsm import audio_digit_inputs, event_digit_inputs

    img = event_digit_inputs(n_train=280, n_test=400)
    aud = audio_digit_inputs(words="digits", n_train=300, n_test=400)
    data = zs.ZeroShotData(img, aud)
    r = zs.run_zeroshot(data, device_seeds=(0, 1, 2), epochs=200)
    assert len(r.runs["software"]) == 1 and len(r.runs["rram"]) == 3
    n_unseen = {"audio_to_image": int(np.isin(aud[3], (8, 9)).sum()), "image_to_audio": int(np.isin(img[3], (8, 9)).sum())}
    for v, runs in r.runs.items():
        for run in runs:
            for d, n in n_unseen.items():
                acc = run["unseen"][d]
                assert _p_chance(round(acc * n), n, 0.5) < 1e-3, (v, d, acc, n)
    s = r.summary()
    gap = s["gap_rram_minus_software"]["unseen/audio_to_image"]
    assert gap == pytest.approx(s["rram"]["unseen/audio_to_image"]["mean"] - s["software"]["unseen/audio_to_image"]["mean"])
    assert len(s["rram"]["unseen/audio_to_image"]["values"]) == 3
    # the heads never saw the unseen classes: their training labels are the seen ones only
    assert set(zs.seen_training(data, zs.PAPER_SPLIT[0]).image[1]) <= set(zs.PAPER_SPLIT[0])
    assert torch.is_tensor(zs.seen_training(data, zs.PAPER_SPLIT[0]).audio[0])


def test_reservoir_features_do_not_depend_on_the_thread_count():
    """reservoir_features runs the reservoirs with zs.THREADS torch threads (speed): the
    spikes, hence the features and every zero-shot number, are those of any other count."""
    from neurodeploy.targets.rram.device import DeviceConfig
    from neurodeploy.targets.rram.lsm import audio_digit_inputs

    xtr, ytr, xte, yte = audio_digit_inputs(words="digits", n_train=24, n_test=8)
    x = (xtr[:, 20:60], ytr, xte[:, 20:60], yte)  # 40 steps of speech
    res = zs.reservoirs(0)["audio"]
    cfg = DeviceConfig.from_profile()
    before = torch.get_num_threads()
    for variant in ("software", "rram"):
        one = zs.reservoir_features(res, x, variant, 1, 4, cfg, calibration_samples=16, threads=1)
        two = zs.reservoir_features(res, x, variant, 1, 4, cfg, calibration_samples=16, threads=2)
        assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1]), variant
        assert one[0].sum() > 0
    assert torch.get_num_threads() == before  # restored
