"""Each exporter quirk of neurodeploy.frontends.quirks: the raw upstream path fails or
differs from the framework's own simulation; ours matches it spike for spike."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import GraphError, UnsupportedError
from neurodeploy.frontends.quirks import QUIRKS
from neurodeploy.graph import normalize

from .helpers import affine, chain, f32
from .zoo.common import record_layers, run_ours, spikes

nt = pytest.importorskip("norse.torch")
snn = pytest.importorskip("snntorch")
DT = 1e-3


def _mismatch(ours, theirs):
    return sum(int((ours.records[n] != t).sum()) for n, t in theirs.items())


def norse_net():
    torch.manual_seed(0)
    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(150.0), v_leak=torch.tensor(0.2), v_th=torch.tensor(0.8))
    m = nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFBoxCell(p), torch.nn.Linear(8, 6), nt.LIFCell(),
                           torch.nn.Linear(6, 4), nt.IAFCell())
    with torch.no_grad():
        m[0].weight.mul_(25)
        m[2].weight.mul_(8)
        m[4].weight.abs_().mul_(2)
    return m


def norse_layers(m, x, names=("1", "3", "5")):
    def step():
        state = None
        for t in range(x.shape[1]):
            _, state = m(x[:, t], state)

    return record_layers(m, list(names), step)


@pytest.fixture(scope="module")
def norse_case():
    m = norse_net()
    x = spikes((3, 30, 6), seed=4)
    theirs = norse_layers(m, x)
    assert all(t.sum() > 0 for t in theirs.values())
    return m, x, nt.to_nir(m, x[:1, 0]), theirs


def test_every_repair_is_documented():
    for q in QUIRKS.values():
        assert q.problem and q.repair and q.framework


def test_norse_export_is_wrong_raw_and_right_repaired(norse_case):
    m, x, raw, theirs = norse_case
    # norse's own importer of its own export runs another network
    back = nt.from_nir(raw, dt=DT)
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, state = back(x[:, t], state)
            out.append(z)
    assert not torch.equal(torch.stack(out, 1), theirs["5"])
    # taken as written (no repair) the step is dt/τ = 150: garbage
    raw_graph = normalize(raw, dt=DT)
    assert float(DT / raw_graph.nodes["1"].tau.max()) > 100
    ours = G.load(raw)
    assert ours.metadata["repairs"] == ["norse-0d-params", "norse-tau", "norse-w-in", "norse-if-r", "norse-v-leak-start"]
    assert _mismatch(run_ours(ours, x), theirs) == 0


@pytest.mark.parametrize("undo", ["norse-w-in", "norse-if-r", "norse-v-leak-start"])
def test_each_norse_repair_is_needed(norse_case, undo):
    m, x, raw, theirs = norse_case
    g = G.load(raw)
    nodes = dict(g.nir.nodes)
    edit = {"norse-w-in": ("3", {"w_in": np.ones(6, np.float32)}),
            "norse-if-r": ("5", {"r": np.ones(4, np.float32)}),
            "norse-v-leak-start": ("1", {"v_leak": np.full(8, 0.2, np.float32), "v_threshold": np.full(8, 0.8, np.float32)})}
    name, params = edit[undo]
    node = nodes[name]
    nodes[name] = type(node)(**{**{k: getattr(node, k) for k in node.__dataclass_fields__
                                    if k not in ("input_type", "output_type", "metadata")}, **params})
    undone = normalize(nir.NIRGraph(nodes=nodes, edges=g.nir.edges, type_check=False), dt=DT)
    assert _mismatch(run_ours(undone, x), theirs) > 0


def test_norse_0d_params_cannot_be_written_raw_but_repaired_round_trips(norse_case, tmp_path):
    m, x, raw, theirs = norse_case
    with pytest.raises(Exception):
        nir.write(str(tmp_path / "raw.nir"), raw)
    g = G.load(raw)
    G.save(g, tmp_path / "ok.nir")
    for again in (G.load(tmp_path / "ok.nir"), G.load(tmp_path / "ok.nir", framework="norse")):
        assert again.metadata["repairs"] == g.metadata["repairs"]  # not applied twice
        assert _mismatch(run_ours(again, x), theirs) == 0


def test_norse_exporter_layers_fail_raw_and_load_from_module():
    torch.manual_seed(0)
    m = nt.SequentialState(torch.nn.Conv2d(1, 2, 3, bias=False), nt.LIFBoxCell())
    with pytest.raises(AttributeError):
        nt.to_nir(m, torch.zeros(1, 1, 5, 5))
    m2 = nt.SequentialState(torch.nn.Conv2d(1, 2, 3), nt.LIFBoxCell(), torch.nn.AvgPool2d(3), torch.nn.Flatten())
    with pytest.raises(GraphError, match="NoneType"):
        G.load(nt.to_nir(m2, torch.zeros(1, 1, 5, 5)))
    g = G.load(m2, torch.zeros(1, 1, 5, 5))
    assert "norse-export-layers" in g.metadata["repairs"] and g.shapes["output"] == (2,)


def snn_net(reset="subtract"):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), snn.Leaky(beta=0.85, init_hidden=True, reset_mechanism=reset),
                              torch.nn.Linear(6, 4), snn.Leaky(beta=0.7, init_hidden=True, output=True,
                                                               reset_mechanism=reset))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    return net


def snn_layers(net, x, names=("1", "3")):
    from snntorch import utils

    utils.reset(net)
    return record_layers(net, list(names), lambda: [net(x[:, t]) for t in range(x.shape[1])])


def snn_graph(net, sample):
    import nirtorch
    from snntorch import export_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nirtorch.extract_nir_graph(net, export_nir._extract_snntorch_module, sample, model_name="snntorch")


def test_snntorch_export_to_nir_fails_and_the_module_loads():
    from snntorch.export_nir import export_to_nir

    net = snn_net()
    with pytest.raises(ValueError, match="Type inference"):
        export_to_nir(net, torch.zeros(1, 8))
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Flatten(),
                               torch.nn.Linear(2 * 4 * 4, 3), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    with pytest.raises(IndexError):
        export_to_nir(conv, torch.zeros(1, 1, 6, 6))
    g = G.load(conv, torch.zeros(1, 1, 6, 6))
    assert "snntorch-export-layers" in g.metadata["repairs"] and g.shapes["3"] == (3,)


def test_snntorch_dt_raw_is_wrong_and_repaired():
    net = snn_net("zero")
    x = spikes((3, 30, 8), seed=5)
    theirs = snn_layers(net, x)
    graph = snn_graph(net, x[:1, 0])
    assert _mismatch(run_ours(normalize(graph, dt=DT), x), theirs) > 0  # τ meant for dt = 1e-4
    ours = G.load(graph, dt=DT, reset="zero")
    assert "snntorch-dt" in ours.metadata["repairs"]
    assert _mismatch(run_ours(ours, x), theirs) == 0


def test_snntorch_reset_by_subtraction_needs_the_loop():
    net = snn_net()  # Leaky's default: reset by subtraction
    x = spikes((3, 30, 8), seed=6)
    theirs = snn_layers(net, x)
    graph = snn_graph(net, x[:1, 0])
    as_zero = G.load(graph, dt=DT)
    assert any(w.startswith("snntorch-reset") for w in as_zero.metadata["load_warnings"])
    assert _mismatch(run_ours(as_zero, x), theirs) > 0
    plain_subtract = G.load(graph, dt=DT, reset="zero").with_time(reset="subtract")  # NIR subtract, no loop
    assert _mismatch(run_ours(plain_subtract, x), theirs) > 0
    for ours in (G.load(graph, dt=DT, reset="subtract"), G.load(net, x[:1, 0], dt=DT)):
        assert "snntorch-reset" in ours.metadata["repairs"]
        assert _mismatch(run_ours(ours, x), theirs) == 0


def test_snntorch_synaptic_subtract_needs_the_split():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(2)
    x = spikes((3, 30, 8), seed=7)
    theirs = snn_layers(net, x, ["1"])
    with pytest.raises(UnsupportedError, match="Synaptic"):
        G.load(snn_graph(net, x[:1, 0]), dt=DT, reset="subtract")
    ours = G.load(net, x[:1, 0], dt=DT)
    assert "snntorch-synaptic" in ours.metadata["repairs"] and isinstance(ours.nodes["1.syn"], nir.LI)
    assert theirs["1"].sum() > 0 and _mismatch(run_ours(ours, x), theirs) == 0


def sinabs_graph(rng):
    """IF layers as Sinabs exports them: r = 1 meaning v += x per step."""
    if_ = lambda n: nir.IF(r=f32(np.ones(n)), v_threshold=f32(np.ones(n)), v_reset=f32(np.zeros(n)))  # noqa: E731
    return chain(nir.Input(np.array([6])), affine(rng, 8, 6, scale=1.0), if_(8), affine(rng, 4, 8, scale=1.5), if_(4),
                 nir.Output(np.array([4])))


def test_sinabs_if_per_step():
    rng = np.random.default_rng(3)
    x = spikes((3, 30, 6), seed=8)
    g = sinabs_graph(rng)
    module = nt.from_nir(g, dt=DT)  # norse (like Sinabs and NIR's Lava script) integrates v += x for IF
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, state = module(x[:, t], state)
            out.append(z)
    theirs = torch.stack(out, 1)
    assert theirs.sum() > 0
    assert run_ours(G.load(g, dt=DT), x).output.sum() == 0  # r = 1 per second: never spikes at dt = 1 ms
    ours = G.load(g, dt=DT, framework="sinabs", reset="zero")  # norse's IF resets to zero; Sinabs' default
    assert ours.metadata["repairs"] == ["sinabs-if-r"]  # subtracts (reset then defaults to "subtract"):
    assert G.load(g, dt=DT, framework="sinabs").reset == "subtract"  # tests/zoo/test_sinabs_zoo.py, real Sinabs
    assert torch.equal(run_ours(ours, x).output, theirs)


def test_rockpool_output_type(tmp_path):
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([4])), "fc": affine(rng, 3, 4),
             "lif": nir.LIF(tau=f32(np.full(3, 0.01)), r=f32(np.ones(3)), v_leak=f32(np.zeros(3)),
                            v_threshold=f32(np.ones(3)), v_reset=f32(np.zeros(3))),
             "output": nir.Output(np.array([4]))}  # typed with the input's shape
    nir.write(str(tmp_path / "rockpool.nir"),
              nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False))
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(str(tmp_path / "rockpool.nir"))
    g = G.load(tmp_path / "rockpool.nir", dt=DT)
    assert g.shapes["output"] == (3,) and g.metadata["repairs"] == ["output-type"]
    assert "(4,)" in g.metadata["load_warnings"][0]


def test_plain_nir_graph_gets_no_repair():
    g = G.load(sinabs_graph(np.random.default_rng(0)), dt=DT)
    assert "repairs" not in g.metadata


def test_saved_snntorch_graph_follows_a_new_dt(tmp_path):
    net = snn_net()
    x = spikes((3, 30, 8), seed=9)
    theirs = snn_layers(net, x)
    G.save(G.load(net, x[:1, 0]), tmp_path / "snn.nir")  # τ for snnTorch's 1e-4 s
    again = G.load(tmp_path / "snn.nir", dt=1e-2)
    assert again.dt == 1e-2 and again.metadata["exporter_dt"] == 1e-2
    assert _mismatch(run_ours(again, x), theirs) == 0
    assert _mismatch(run_ours(G.load(tmp_path / "snn.nir"), x), theirs) == 0
