"""HardwareEval: hardware metrics of a training module, the numbers `neurodeploy profile` gives."""

import json

import numpy as np
import pytest
import torch

import neurodeploy as nd
from neurodeploy.errors import InputError
from neurodeploy.training import HardwareEval
from neurodeploy.training.data import digits


def _norse_model(seed=0):
    import norse.torch as nt

    torch.manual_seed(seed)
    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(50.0), v_th=torch.tensor(1.0))
    m = nt.SequentialState(torch.nn.Linear(64, 32), nt.LIFBoxCell(p, dt=1e-3), torch.nn.Linear(32, 10), nt.LIFBoxCell(p, dt=1e-3))
    with torch.no_grad():
        for layer in (m[0], m[2]):
            layer.weight.mul_(8)
            layer.bias.mul_(8)
    return m


@pytest.fixture(scope="module")
def data():
    x, y = digits().val
    return x[:60], y[:60]


def test_metrics_equal_neurodeploy_profile(tmp_path, capsys, data):
    from neurodeploy.cli import main

    x, y = data
    model = _norse_model()
    cb = HardwareEval(every=1, targets=["reference", "loihi2-emu"], hardware="loihi2", data=(x, y))
    got = cb(model, 0)
    path, npz = tmp_path / "m.nir", tmp_path / "x.npz"
    nd.save(cb.graph(model), path)
    np.savez(npz, x=x, y=y)
    for t in ("reference", "loihi2-emu"):
        capsys.readouterr()
        assert main(["profile", str(path), "--target", t, "--hardware", "loihi2", "-i", str(npz), "--json",
                     "-o", str(tmp_path / t)]) == 0
        row = json.loads(capsys.readouterr().out)["targets"][0]
        for k in ("accuracy", "spikes_per_sample", "energy_per_inference_J", "latency_per_inference_s", "hardware"):
            assert got[t][k] == row[k], (t, k)
    assert got["loihi2-emu"]["fits"] and got["loihi2-emu"]["fit"]["mapping"]["cores"] >= 1
    assert 0 < got["reference"]["spikes_per_sample"]


def test_cheap_when_not_due(data, monkeypatch):
    cb = HardwareEval(every=3, targets=["reference"], data=data)
    model = _norse_model()
    monkeypatch.setattr(cb, "graph", lambda m: pytest.fail("exported on an epoch that is not due"))
    assert cb(model, 1) is None and cb(model, 2) is None and cb.history == []


def test_metrics_follow_the_module_as_it_changes(data):
    cb = HardwareEval(every=1, targets=["reference"], data=data)
    model = _norse_model()
    a = cb(model, 0)["reference"]["spikes_per_sample"]
    with torch.no_grad():
        model[0].weight.mul_(0.0)
        model[0].bias.mul_(0.0)
        model[2].bias.mul_(0.0)
    assert cb(model, 1)["reference"]["spikes_per_sample"] == 0 < a
    assert [e for e, _ in cb.history] == [0, 1]


def test_rram_calibrates_on_the_given_split_or_is_refused(data):
    """The evaluated data never calibrate the ADC ranges: without calibration= the rram
    target is refused; with it, the metrics are those of a program calibrated on that split."""
    from neurodeploy.measure.metrics import accuracy
    from neurodeploy.training import running

    x, y = data
    xcal = digits().train[0][:64]
    model = _norse_model()
    with pytest.raises(InputError, match="target 'rram' calibrates on data.*calibration=x_cal"):
        HardwareEval(targets=["rram"], hardware="rram_40nm", data=(x, y))(model, 0)
    cb = HardwareEval(targets=["rram"], hardware="rram_40nm", data=(x, y), calibration=xcal)
    got = cb(model, 0)["rram"]["accuracy"]
    prog = nd.compile(cb.graph(model), "rram", hardware="rram_40nm")
    prog.calibrate(xcal)
    assert got == accuracy(running.run(prog, cb.graph(model), x).output, y, "spikes")
    assert prog.describe()["calibration"]["samples"] == 64


@pytest.mark.parametrize("kw, needle", [({"every": 0}, "every"), ({"data": None}, "data must be"),
                                        ({"targets": ["nope"]}, "unknown target")])
def test_bad_arguments(data, kw, needle):
    args = {"every": 1, "targets": ["reference"], "data": data, **kw}
    with pytest.raises(InputError, match=needle):
        HardwareEval(**args)
