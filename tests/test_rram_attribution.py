"""Accuracy attribution (measure/attribution.py) on models whose answer is known by
construction, and calibration data kept apart from the evaluated samples."""

import nir
import numpy as np
import pytest

from .conftest import spikes
from .helpers import affine, chain, lif
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.measure.attribution import attribute
from neurodeploy.measure.calibration import Calibration, run_options, split
from neurodeploy.measure.metrics import predict
from neurodeploy.targets.reference import ReferenceTarget
from neurodeploy.targets.rram.device import DeviceConfig

IDEAL = DeviceConfig().ideal()


@pytest.fixture
def task():
    """A dense SNN and labels = its own reference predictions: the ideal accuracy is 1."""
    rng = np.random.default_rng(0)
    g = load(chain(nir.Input(np.array([16])), affine(rng, 4, 16, scale=2.0), lif(4), nir.Output(np.array([4])), dt=1e-3))
    x = spikes((24, 15, 16), p=0.4, seed=1).numpy()
    y = predict(ReferenceTarget().compile(g).run(x).output, "spikes")
    return g, x, y


def test_only_levels_non_ideal_gets_all_the_loss(task):
    g, x, y = task
    a = attribute(g, x, y, target="rram", seeds=(0, 1), options={"config": IDEAL.replace(levels=2)})
    assert a["nonidealities"] == ["levels"]
    assert a["ideal"]["values"] == [1.0, 1.0]  # ideal RRAM = the reference, spike for spike
    lv = a["per"]["levels"]
    assert lv["alone"]["values"] == a["all"]["values"]  # only levels = all of them
    assert lv["without"]["values"] == a["ideal"]["values"]  # all but levels = ideal
    loss = [1.0 - v for v in a["all"]["values"]]
    assert lv["cost_alone"]["values"] == pytest.approx(loss) and lv["cost_in_context"]["values"] == pytest.approx(loss)


def test_attribution_with_two_effects_lists_both_and_seeds_matter(task):
    g, x, y = task
    cfg = IDEAL.replace(levels=3, programming_noise=0.2)
    a = attribute(g, x, y, target="rram", seeds=(0, 1, 2), options={"config": cfg})
    assert a["nonidealities"] == ["levels", "programming_noise"]
    pn = a["per"]["programming_noise"]
    assert pn["without"]["values"] == a["per"]["levels"]["alone"]["values"]  # the same program, twice
    assert len(pn["alone"]["values"]) == 3 and pn["alone"]["std"] >= 0


def test_attribution_needs_a_target_that_declares_nonidealities(task):
    g, x, y = task
    with pytest.raises(InputError, match="nonidealities"):
        attribute(g, x, y, target="reference")
    with pytest.raises(InputError, match="labels"):
        attribute(g, x, None, target="rram")


def test_calibration_never_uses_evaluated_samples_by_default(task):
    """No calibration data: a program that needs some is refused (no silent calibration on
    the evaluated batch); N held out are excluded from what is evaluated; the record says
    where the data came from and whether it is disjoint."""
    g, x, y = task
    from neurodeploy.targets.rram.program import RRAMTarget

    d = RRAMTarget().compile(g).describe()
    assert d["calibration"]["needs_data"]
    xe, ye, cal = split(x, y, None)
    with pytest.raises(InputError, match="--calibration"):
        run_options(d, cal, "rram")
    xe, ye, cal = split(x, y, 5)
    assert len(xe) == len(ye) == len(x) - 5 and cal.disjoint and cal.samples == 5
    assert np.array_equal(run_options(d, cal, "rram")["calibration"], x[:5])
    assert not np.shares_memory(xe, cal.x) and np.array_equal(np.concatenate([cal.x, xe]), x)
    _, _, train = split(x, y, None, train=x[:3])
    assert train.disjoint and "training" in train.source
    _, _, ev = split(x, y, None, on_eval=True)
    assert not ev.disjoint and ev.record()["samples"] == len(x)
    assert run_options(RRAMTarget().compile(g, config=IDEAL).describe(), None, "rram") == {}  # no ADC: needs none
    with pytest.raises(InputError, match="exclude"):
        split(x, y, 5, on_eval=True)
    assert isinstance(cal, Calibration)
