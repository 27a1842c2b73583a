"""RRAM fidelity options (issue 12): device parameters, non-ideality selection and
calibration data as declared compile/run options, the conv SNN's graded pool through the
bit-serial drivers."""

import nir
import numpy as np
import pytest
import torch

from .conftest import spikes
from .helpers import affine, chain, lif
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.targets.reference import ReferenceTarget
from neurodeploy.targets.rram import device as dev
from neurodeploy.targets.rram.device import DeviceConfig
from neurodeploy.targets.rram.program import RRAMTarget

IDEAL = DeviceConfig().ideal()


def dense(rng, n_in=12, n_out=5):
    return load(chain(nir.Input(np.array([n_in])), affine(rng, n_out, n_in), lif(n_out), nir.Output(np.array([n_out])), dt=1e-3))


def test_device_params_override_the_profile_and_bad_ones_are_input_errors(rng):
    g = dense(rng)
    p = RRAMTarget().compile(g, device_params={"read_time": 3600, "levels": 8})
    assert p.config.read_time == 3600 and p.config.levels == 8
    assert p.config.replace(read_time=86400.0, levels=16) == DeviceConfig()  # the rest from the profile
    with pytest.raises(InputError, match="unknown parameter.*bogus"):
        RRAMTarget().compile(g, device_params={"bogus": 1})
    with pytest.raises(InputError, match="read_noise"):
        RRAMTarget().compile(g, device_params={"read_noise": -1})


def test_nonidealities_keep_only_the_named_ones(rng):
    g = dense(rng)
    full = RRAMTarget().compile(g)
    assert set(full.describe()["nonidealities"]) == set(DeviceConfig().nonidealities())
    only = RRAMTarget().compile(g, nonidealities=["levels"])
    assert only.config == IDEAL.replace(levels=DeviceConfig().levels)
    assert list(only.describe()["nonidealities"]) == ["levels"]
    none = RRAMTarget().compile(g, nonidealities=[])
    assert none.config.is_ideal and none.describe()["nonidealities"] == {}
    with pytest.raises(InputError, match="unknown non-ideality 'noise'"):
        RRAMTarget().compile(g, nonidealities=["noise"])


def test_calibration_option_sets_ranges_from_its_data_only(rng):
    """ADC ranges from compile(calibration=...) or run(calibration=...) come from those
    inputs: running other data leaves them as they are, and describe() names the source."""
    g = dense(rng)
    cal, evald = spikes((6, 5, 12), p=0.2, seed=1), spikes((6, 5, 12), p=0.9, seed=2)
    cfg = IDEAL.replace(adc_bits=6)
    p = RRAMTarget().compile(g, config=cfg, calibration=cal)
    r0 = p.adc_ranges()["affine"].copy()
    d = p.describe()["calibration"]
    assert d["needs_data"] and d["data_option"] == "calibration" and d["data"] == "compile(calibration=...)"
    assert d["samples"] == 6 and d["calibrated"]
    p.run(evald)
    assert np.array_equal(p.adc_ranges()["affine"], r0)  # evaluating never recalibrates
    q = RRAMTarget().compile(g, config=cfg)
    q.run(evald, calibration=cal)
    assert np.array_equal(q.adc_ranges()["affine"], r0) and q.describe()["calibration"]["data"] == "run(calibration=...)"
    lazy = RRAMTarget().compile(g, config=cfg)
    lazy.run(evald)  # no calibration data: the first batch (and describe() says so)
    assert not np.array_equal(lazy.adc_ranges()["affine"], r0)
    assert "first batch" in lazy.describe()["calibration"]["data"]


def conv_avgpool_dense(rng):
    """conv → LIF → AvgPool 2×2 (graded: multiples of 1/4) → flatten → affine → LIF."""
    from .helpers import f32

    conv = nir.Conv2d(input_shape=(8, 8), weight=f32(rng.normal(0, 1.5, (4, 2, 3, 3))), stride=1, padding=1,
                      dilation=1, groups=1, bias=f32(rng.normal(0, 0.1, 4)))
    l1 = nir.LIF(**{k: f32(np.full((4, 8, 8), v)) for k, v in
                    dict(tau=0.005, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0).items()})
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    fl = nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1)
    return load(chain(nir.Input(np.array([2, 8, 8])), conv, l1, pool, fl, affine(rng, 5, 64, scale=3.0),
                      lif(5, tau=0.005), nir.Output(np.array([5])), dt=1e-3))


def test_conv_snn_average_pool_loses_nothing_to_the_bit_serial_dac():
    """AvgPool 2×2 of spikes is graded (multiples of 1/4): 8-bit inputs streamed through
    1-bit DACs code it exactly, so with every other non-ideality off the RRAM program
    spikes as the reference does; 1-bit inputs (the old model of a 1-bit DAC) do not."""
    g = conv_avgpool_dense(np.random.default_rng(3))
    x = spikes((4, 25, 2, 8, 8), p=0.4, seed=0)
    ref = ReferenceTarget().compile(g, dtype="float64").run(x)
    serial = RRAMTarget().compile(g, config=IDEAL.replace(input_bits=8, dac_bits=1), dtype="float64").run(x)
    assert serial.counts["affine"]["dac_conversions"] > 0  # the pool's outputs went through the drivers
    assert ref.total("spikes") > 0 and torch.equal(serial.output, ref.output)
    coarse = RRAMTarget().compile(g, config=IDEAL.replace(dac_bits=1), dtype="float64").run(x)
    assert not torch.equal(coarse.output, ref.output)
