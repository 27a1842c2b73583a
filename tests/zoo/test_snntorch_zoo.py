"""snnTorch 1.0.0 models, loaded the documented ways, against snnTorch's own simulation
of the module: every spiking layer spike for spike, at several dt.

Ways: ``load(module, sample)`` (dt = 1e-4, the exporter's convention), ``load(module,
sample, dt=…)`` (snnTorch's neurons are per step: any dt gives the same spikes), and the
graph snnTorch's own node extractor gives (``export_to_nir`` itself fails on most models,
tests/test_quirks.py) loaded with ``dt`` and the module's ``reset``. What NIR cannot express
is refused with UnsupportedError saying why."""

from __future__ import annotations

import warnings

import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import UnsupportedError

from .common import assert_layers_equal, record_layers, run_ours, spikes

snn = pytest.importorskip("snntorch")
DTS = [None, 1e-3, 1e-2]


def _net(*layers, gain=3.0):
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and "recurrent" not in str(m):
                m.weight.mul_(gain)
    return net


def leaky(reset):
    return lambda: _net(torch.nn.Linear(8, 6), snn.Leaky(beta=0.85, init_hidden=True, reset_mechanism=reset),
                        torch.nn.Linear(6, 4), snn.Leaky(beta=0.7, threshold=0.8, init_hidden=True, output=True,
                                                         reset_mechanism=reset))


def synaptic():
    return _net(torch.nn.Linear(8, 6), snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True),
                torch.nn.Linear(6, 4), snn.Synaptic(alpha=0.5, beta=0.9, init_hidden=True, output=True))


def rleaky():
    return _net(torch.nn.Linear(8, 6), snn.RLeaky(beta=0.85, linear_features=6, init_hidden=True),
                torch.nn.Linear(6, 4), snn.RLeaky(beta=0.8, linear_features=4, init_hidden=True, output=True))


def rleaky_one_to_one():
    return _net(torch.nn.Linear(8, 6), snn.RLeaky(beta=0.85, V=torch.linspace(-0.5, 0.5, 6), all_to_all=False,
                                                  init_hidden=True, output=True))


def rsynaptic():
    return _net(torch.nn.Linear(8, 6), snn.RSynaptic(alpha=0.7, beta=0.85, linear_features=6, init_hidden=True),
                torch.nn.Linear(6, 4), snn.RSynaptic(alpha=0.6, beta=0.8, linear_features=4, init_hidden=True,
                                                     output=True))


def conv():
    return _net(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), snn.Leaky(beta=0.8, init_hidden=True),
                torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 5),
                snn.Leaky(beta=0.8, init_hidden=True, output=True), gain=4.0)


def conv_batchnorm():
    from .test_norse_zoo import _bn

    net = _net(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), _bn(torch.nn.BatchNorm2d(4)),
               snn.Leaky(beta=0.8, init_hidden=True), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5),
               snn.Leaky(beta=0.8, init_hidden=True, output=True), gain=4.0)
    return net.eval()


#: builder, input shape, spiking layers, reset of the graph, snnTorch's extractor graph loads exactly
ZOO = {
    "Leaky-zero": (leaky("zero"), (8,), ["1", "3"], "zero", True),
    "Leaky-subtract": (leaky("subtract"), (8,), ["1", "3"], "subtract", True),
    "Leaky-none": (leaky("none"), (8,), ["1", "3"], "subtract", False),
    "Synaptic": (synaptic, (8,), ["1", "3"], "subtract", False),
    "RLeaky": (rleaky, (8,), ["1", "3"], "subtract", True),
    "RLeaky-one-to-one": (rleaky_one_to_one, (8,), ["1"], "subtract", True),
    "RSynaptic": (rsynaptic, (8,), ["1", "3"], "subtract", False),
    "conv-pool-flatten-linear": (conv, (2, 6, 6), ["1", "5"], "subtract", True),
    "conv-batchnorm": (conv_batchnorm, (2, 6, 6), ["2", "5"], "subtract", False),
}

REFUSED = {
    "Synaptic-zero": (lambda: _net(torch.nn.Linear(8, 6), snn.Synaptic(alpha=0.7, beta=0.8, init_hidden=True,
                                                                         reset_mechanism="zero")), "discarding"),
    "RLeaky-zero": (lambda: _net(torch.nn.Linear(8, 6), snn.RLeaky(beta=0.8, linear_features=6, init_hidden=True,
                                                                     reset_mechanism="zero")), "discarding"),
    "mixed-resets": (lambda: _net(torch.nn.Linear(8, 6), snn.Leaky(beta=0.8, init_hidden=True),
                                  torch.nn.Linear(6, 4), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero")),
                     "one reset mode"),
    "Alpha": (lambda: _net(torch.nn.Linear(8, 6), snn.Alpha(alpha=0.8, beta=0.7, init_hidden=True)), r"'1' \(Alpha\)"),
    "graded-spikes": (lambda: _net(torch.nn.Linear(8, 6), snn.Leaky(beta=0.8, init_hidden=True,
                                                                      graded_spikes_factor=2.0)), "graded"),
    "MaxPool": (lambda: _net(torch.nn.Conv2d(1, 2, 3), snn.Leaky(beta=0.8, init_hidden=True), torch.nn.MaxPool2d(2)),
                r"'2' \(MaxPool2d\)"),
}


def snn_layers(net, x, names):
    from snntorch import utils

    utils.reset(net)

    def step():
        for t in range(x.shape[1]):
            net(x[:, t])

    return record_layers(net, names, step)


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", list(ZOO))
def test_snntorch_module_matches_snntorch(name, dt):
    build, shape, spiking, reset, _ = ZOO[name]
    torch.manual_seed(0)
    net = build()
    x = spikes((3, 30, *shape), seed=1)
    graph = G.load(net, x[:1, 0], **({} if dt is None else {"dt": dt}))
    assert graph.reset == reset and graph.dt == (dt or 1e-4)
    assert_layers_equal(run_ours(graph, x), snn_layers(net, x, spiking), spiking)


def snntorch_extractor_graph(net, sample):
    """The graph snnTorch's own node extractor gives through nirtorch (export_to_nir
    without its failing type inference)."""
    import nirtorch
    from snntorch import export_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nirtorch.extract_nir_graph(net, export_nir._extract_snntorch_module, sample, model_name="snntorch",
                                          ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", [n for n, z in ZOO.items() if z[4]])
def test_snntorch_exporter_graph_then_load_matches(name, dt):
    build, shape, spiking, reset, _ = ZOO[name]
    torch.manual_seed(0)
    net = build()
    x = spikes((3, 30, *shape), seed=2)
    graph = G.load(snntorch_extractor_graph(net, x[:1, 0]), dt=dt, reset=reset)
    assert "snntorch-dt" in graph.metadata["repairs"]
    names = {n: n if n in graph.nodes else f"{n}.lif" for n in spiking}  # RLeaky exports a subgraph
    ours = run_ours(graph, x)
    ours.records.update({n: ours.records[m] for n, m in names.items()})
    assert_layers_equal(ours, snn_layers(net, x, spiking), spiking)


@pytest.mark.parametrize("name", list(REFUSED))
def test_snntorch_inexpressible_is_refused_with_reason(name):
    build, reason = REFUSED[name]
    net = build()
    sample = torch.zeros(1, 1, 6, 6) if name == "MaxPool" else torch.zeros(1, 8)
    with pytest.raises(UnsupportedError, match=reason):
        G.load(net, sample)
