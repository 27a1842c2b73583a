"""Plain torch layers through nirtorch (neurodeploy.frontends.torch): the graph computes
what torch computes; BatchNorm folded, Dropout removed, the rest refused by name."""

from __future__ import annotations

import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import UnsupportedError
from neurodeploy.frontends.torch import from_torch

from .common import run_ours
from .test_norse_zoo import _bn

DT = 1e-3


def nets():
    torch.manual_seed(0)
    yield "conv2d-bn-pool-flatten-linear", torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1), _bn(torch.nn.BatchNorm2d(3)), torch.nn.AvgPool2d(2), torch.nn.Dropout(0.3),
        torch.nn.Flatten(), torch.nn.Linear(3 * 3 * 3, 4, bias=False), _bn(torch.nn.BatchNorm1d(4))), (2, 6, 6)
    yield "conv1d-no-bias-flatten", torch.nn.Sequential(
        torch.nn.Conv1d(2, 3, 3, stride=2, bias=False), torch.nn.Flatten(), torch.nn.Linear(3 * 4, 2)), (2, 9)


@pytest.mark.parametrize("name,net,shape", list(nets()), ids=lambda v: v if isinstance(v, str) else "")
def test_torch_layers_compute_what_torch_computes(name, net, shape):
    net = net.eval()
    x = torch.rand(3, 4, *shape)
    graph = from_torch(net, x[:1, 0], dt=DT)
    with torch.no_grad():
        want = torch.stack([net(x[:, t]) for t in range(x.shape[1])], 1)
    torch.testing.assert_close(run_ours(graph, x).output, want, rtol=1e-5, atol=1e-5)
    assert not any(type(n).__name__ in ("Scale",) for n in graph.nodes.values())  # BN/Dropout gone


def test_batchnorm_in_training_mode_or_not_after_a_layer_is_refused():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(UnsupportedError, match=r"module '1' \(BatchNorm1d\).*eval"):
        G.load(net.train(), torch.zeros(2, 4), dt=DT, framework="torch")
    first = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 4)).eval()
    with pytest.raises(UnsupportedError, match="right after a Linear or Conv"):
        G.load(first, torch.zeros(1, 4), dt=DT, framework="torch")


def test_maxpool_is_refused_naming_the_module():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2))
    with pytest.raises(UnsupportedError, match=r"module '1' \(MaxPool2d\)"):
        G.load(net, torch.zeros(1, 1, 6, 6), dt=DT)
