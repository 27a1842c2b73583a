"""norse 1.1.0 models, loaded the documented ways, against norse's own simulation of the
module: every spiking layer spike for spike, readouts to float rounding, at several dt.

Ways: ``load(module, sample)`` (dt from the cells), ``load(module, sample, dt=cell dt)``,
and, where norse's exporter can export the model, ``load(norse.torch.to_nir(module, sample,
dt=dt), dt=dt)`` (repaired: tests/test_quirks.py shows the raw export is wrong)."""

from __future__ import annotations

import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import UnsupportedError

from .common import assert_layers_equal, record_layers, run_ours, spikes

nt = pytest.importorskip("norse.torch")
DTS = [1e-3, 5e-4]


def _gain(module, k):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(k)
    return module


def _positive(layer, k):
    with torch.no_grad():
        layer.weight.abs_().mul_(k)
    return layer


def lifbox(dt):
    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(150.0), v_leak=torch.tensor(0.2), v_th=torch.tensor(0.8))
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFBoxCell(p, dt=dt), torch.nn.Linear(8, 5),
                                    nt.LIFBoxCell(dt=dt)), 25)


def lifbox_subtract(dt):
    from norse.torch.functional.reset import reset_subtract

    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(120.0), reset_method=reset_subtract)
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFBoxCell(p, dt=dt), torch.nn.Linear(8, 5),
                                    nt.LIFBoxCell(p, dt=dt)), 25)


def lifcell(dt):
    p = nt.LIFParameters(tau_syn_inv=torch.tensor(300.0), tau_mem_inv=torch.tensor(150.0), v_leak=torch.tensor(0.1))
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFCell(p, dt=dt), torch.nn.Linear(8, 5, bias=False),
                                    nt.LIFCell(dt=dt)), 8)


def libox_readout(dt):
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFBoxCell(dt=dt), torch.nn.Linear(8, 3),
                                    nt.LIBoxCell(dt=dt)), 25)


def li_readout(dt):
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFCell(dt=dt), torch.nn.Linear(8, 3), nt.LICell(dt=dt)), 4)


def iaf(dt):
    return _gain(nt.SequentialState(torch.nn.Linear(6, 8), nt.IAFCell(dt=dt), torch.nn.Linear(8, 4),
                                    nt.IAFCell(dt=dt)), 1)


def recurrent(dt):
    cell = nt.LIFRecurrentCell(6, 8, dt=dt)
    with torch.no_grad():
        cell.input_weights.mul_(15)
        cell.recurrent_weights.mul_(4)
    return nt.SequentialState(cell, _gain(torch.nn.Linear(8, 4), 8), nt.LIFBoxCell(dt=dt))


def conv(dt):
    return nt.SequentialState(_gain(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), 20), nt.LIFBoxCell(dt=dt),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(), _positive(torch.nn.Linear(4 * 3 * 3, 5), 30),
                              nt.LIFBoxCell(dt=dt))


def _bn(bn):
    with torch.no_grad():
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.3)
    return bn


def conv_batchnorm(dt):
    return nt.SequentialState(_gain(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), 20), _bn(torch.nn.BatchNorm2d(4)),
                              nt.LIFBoxCell(dt=dt), torch.nn.Flatten(), _positive(torch.nn.Linear(4 * 6 * 6, 5), 15),
                              _bn(torch.nn.BatchNorm1d(5)), nt.LIFBoxCell(dt=dt))


#: builder, input shape, spiking layers, readout layers, norse's to_nir can export it
ZOO = {
    "LIFBoxCell": (lifbox, (6,), ["1", "3"], [], True),
    "LIFBoxCell-subtract": (lifbox_subtract, (6,), ["1", "3"], [], False),
    "LIFCell": (lifcell, (6,), ["1", "3"], [], True),
    "LIBoxCell-readout": (libox_readout, (6,), ["1"], ["3"], True),
    "LICell-readout": (li_readout, (6,), ["1"], ["3"], False),
    "IAFCell": (iaf, (6,), ["1", "3"], [], True),
    "LIFRecurrentCell": (recurrent, (6,), ["0", "2"], [], False),
    "conv-pool-flatten-linear": (conv, (2, 6, 6), ["1", "5"], [], False),
    "conv-batchnorm": (conv_batchnorm, (2, 6, 6), ["2", "6"], [], False),
}


def norse_layers(module, x, names):
    def step():
        state = None
        for t in range(x.shape[1]):
            _, state = module(x[:, t], state)

    return record_layers(module, names, step)


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", list(ZOO))
def test_norse_module_matches_norse(name, dt):
    build, shape, spiking, readouts, _ = ZOO[name]
    torch.manual_seed(0)
    module = build(dt).eval()
    x = spikes((3, 30, *shape), seed=1)
    theirs = norse_layers(module, x, spiking + readouts)
    for kw in ({}, {"dt": dt}):
        graph = G.load(module, x[:1, 0], **kw)
        assert graph.dt == dt
        assert_layers_equal(run_ours(graph, x), theirs, spiking)


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", [n for n, z in ZOO.items() if z[4]])
def test_norse_export_then_load_matches_norse(name, dt):
    build, shape, spiking, readouts, _ = ZOO[name]
    torch.manual_seed(0)
    module = build(dt).eval()
    x = spikes((3, 30, *shape), seed=2)
    graph = G.load(nt.to_nir(module, x[:1, 0], dt=dt), dt=dt)
    assert "norse-tau" in graph.metadata["repairs"]
    assert_layers_equal(run_ours(graph, x), norse_layers(module, x, spiking + readouts), spiking)


def test_norse_unsupported_layer_is_refused_by_name():
    module = nt.SequentialState(torch.nn.Linear(4, 4), torch.nn.MaxPool1d(2), nt.LIFBoxCell())
    with pytest.raises(UnsupportedError, match=r"module '1' \(MaxPool1d\)"):
        G.load(module, torch.zeros(1, 4))


def test_norse_time_looping_module_is_refused_pointing_to_its_cell():
    module = nt.SequentialState(torch.nn.Linear(4, 4), nt.LIF())
    with pytest.raises(UnsupportedError, match=r"module '1' \(LIF\): .*LIFCell"):
        G.load(module, torch.zeros(1, 4))
