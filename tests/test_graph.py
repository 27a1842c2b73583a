"""Graph layer: loading, normalization, validation, save round trip."""

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import GraphError, InputError

from .helpers import affine, chain, cubalif, f32, graph, lif


def test_scalar_params_are_broadcast_and_types_set(rng):
    node = nir.LIF(tau=np.array(0.01), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.array(1.0))
    g = G.load(chain(nir.Input(np.array([4])), affine(rng, 5, 4), node, nir.Output(np.array([5]))), dt=1e-3)
    lifn = g.nodes["lif"]
    assert lifn.tau.shape == (5,) and lifn.v_reset.shape == (5,)
    assert g.shapes == {"input": (4,), "affine": (5,), "lif": (5,), "output": (5,)}
    assert list(g.nir.nodes["lif"].input_type["input"]) == [5]


def test_batch_dims_stripped_from_input_and_output(rng):
    g = chain(nir.Input(np.array([1, 4])), affine(rng, 3, 4), lif(3), nir.Output(np.array([1, 3])))
    out = G.load(g, dt=1e-3)
    assert out.shapes["input"] == (4,) and out.shapes["output"] == (3,)


def test_dt_from_metadata_and_required(rng):
    g = chain(nir.Input(np.array([2])), affine(rng, 2, 2), lif(2), nir.Output(np.array([2])), dt=5e-4)
    assert G.load(g).dt == 5e-4
    g.metadata = {}
    with pytest.raises(InputError, match="no time step"):
        G.load(g)
    for bad in (0, -1e-3, float("nan")):
        with pytest.raises(InputError, match="dt must be a positive"):
            G.load(g, dt=bad)
    with pytest.raises(InputError, match="reset must be one of"):
        G.load(g, dt=1e-3, reset="hard")


def test_save_reads_back_equal_with_plain_nir(tmp_path, rng):
    g = G.load(chain(nir.Input(np.array([4])), affine(rng, 3, 4), cubalif(3), nir.Output(np.array([3]))), dt=1e-3, reset="subtract")
    path = tmp_path / "m.nir"
    G.save(g, path)
    back = nir.read(str(path))
    assert G.graphs_equal(back, g.nir)
    # and the loaded copy keeps the time semantics
    again = G.load(path)
    assert again.dt == 1e-3 and again.reset == "subtract"
    # a changed weight is detected by the comparison (the check can fail)
    back.nodes["affine"].weight[0, 0] += 1
    assert not G.graphs_equal(back, g.nir)


def test_with_time_is_what_save_writes(tmp_path, rng):
    g = G.load(chain(nir.Input(np.array([4])), affine(rng, 3, 4), lif(3), nir.Output(np.array([3]))), dt=1e-3)
    changed = g.with_time(dt=5e-3, reset="subtract")
    assert (changed.dt, changed.reset) == (5e-3, "subtract")
    assert (g.dt, g.reset, g.nir.metadata["dt"]) == (1e-3, "zero", 1e-3)  # the original is untouched
    G.save(changed, tmp_path / "m.nir")
    back = G.load(tmp_path / "m.nir")
    assert (back.dt, back.reset) == (5e-3, "subtract")
    with pytest.raises(InputError, match="dt must be a positive"):
        g.with_time(dt=-1.0)


def test_norse_to_nir_graph_that_nir_write_rejects(tmp_path):
    norse = pytest.importorskip("norse.torch")
    m = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFBoxCell(), torch.nn.Linear(3, 2), norse.LIBoxCell())
    raw = norse.to_nir(m, torch.randn(1, 4))
    with pytest.raises(Exception):  # the upstream breakage this test guards against
        nir.write(str(tmp_path / "raw.nir"), raw)
    g = G.load(m, torch.randn(1, 4), dt=1e-3)
    G.save(g, tmp_path / "ok.nir")
    assert G.graphs_equal(nir.read(str(tmp_path / "ok.nir")), g.nir)
    assert g.nodes["1"].tau.shape == (3,)
    np.testing.assert_allclose(g.nodes["1"].tau, 0.01, rtol=1e-6)  # 1/tau_mem_inv, not dt/tau_mem_inv


def test_snntorch_export_that_fails_type_inference():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Linear(3, 2), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    with pytest.raises(ValueError, match="Type inference"):
        export_to_nir(net, torch.randn(1, 4))
    g = G.load(net, torch.randn(1, 4))
    assert g.dt == 1e-4 and g.shapes["input"] == (4,)
    # Leaky resets by subtraction (snnTorch's default): NIR subtract plus a reset self-loop
    assert g.reset == "subtract" and g.delayed == frozenset({("1", "1.reset"), ("3", "3.reset")})
    assert [type(g.nodes[n]).__name__ for n in g.order if "." not in n] == ["Input", "Affine", "LIF", "Affine", "LIF", "Output"]


def test_recurrent_order_delays_edge_out_of_neuron(rng):
    nodes = {"in": nir.Input(np.array([3])), "w": affine(rng, 4, 3), "lif": cubalif(4), "rec": affine(rng, 4, 4), "out": nir.Output(np.array([4]))}
    edges = [("in", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]
    g = G.load(graph(nodes, edges), dt=1e-3)
    assert g.delayed == frozenset({("lif", "rec")})
    assert g.order.index("rec") < g.order.index("lif")


def test_two_neuron_loop_keeps_forward_path_undelayed(rng):
    nodes = {"in": nir.Input(np.array([2])), "a": lif(2), "w1": affine(rng, 2, 2), "b": lif(2), "w2": affine(rng, 2, 2), "out": nir.Output(np.array([2]))}
    edges = [("in", "a"), ("a", "w1"), ("w1", "b"), ("b", "w2"), ("w2", "a"), ("b", "out")]
    g = G.load(graph(nodes, edges), dt=1e-3)
    assert g.delayed == frozenset({("b", "w2")})


def test_nested_subgraph_is_inlined(rng):
    inner = graph({"i": nir.Input(np.array([3])), "w": affine(rng, 3, 3), "n": lif(3), "o": nir.Output(np.array([3]))},
                  [("i", "w"), ("w", "n"), ("n", "o")])
    outer = graph({"in": nir.Input(np.array([3])), "sub": inner, "out": nir.Output(np.array([3]))}, [("in", "sub"), ("sub", "out")])
    g = G.load(outer, dt=1e-3)
    assert g.order == ("in", "sub.w", "sub.n", "out")
    assert ("sub.n", "out") in g.edges


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda n, e: n.__setitem__("bad", object()), "node 'bad' has unsupported type 'object'"),
        (lambda n, e: e.append(("lif", "ghost")), "node 'ghost', which does not exist"),
        (lambda n, e: n.__setitem__("w", nir.Affine(f32(np.ones((3, 5))), f32(np.zeros(3)))), r"shape mismatch on edge 'in' -> 'w': 'in' outputs \(4,\)"),
        (lambda n, e: setattr(n["lif"], "tau", f32(-np.ones(3))), "node 'lif': time constant 'tau' must be positive"),
    ],
)
def test_validation_names_node_and_fault(rng, mutate, match):
    nodes = {"in": nir.Input(np.array([4])), "w": affine(rng, 3, 4), "lif": lif(3), "out": nir.Output(np.array([3]))}
    edges = [("in", "w"), ("w", "lif"), ("lif", "out")]
    mutate(nodes, edges)
    with pytest.raises(GraphError, match=match):
        G.load(graph(nodes, edges), dt=1e-3)


def test_cycle_without_stateful_node_is_rejected(rng):
    nodes = {"in": nir.Input(np.array([3])), "a": affine(rng, 3, 3), "b": affine(rng, 3, 3), "out": nir.Output(np.array([3]))}
    edges = [("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")]
    with pytest.raises(GraphError, match="cycle a -> b -> a has no stateful"):
        G.load(graph(nodes, edges), dt=1e-3)


def test_flatten_torch_convention_is_detected(rng):
    conv = nir.Conv2d(input_shape=None, weight=f32(rng.normal(size=(2, 1, 3, 3))), stride=1, padding=0, dilation=1, groups=1, bias=f32(np.zeros(2)))
    fl = nir.Flatten(input_type=None, start_dim=1, end_dim=-1)  # torch dims (batch counted)
    g = G.load(chain(nir.Input(np.array([1, 6, 6])), conv, fl, affine(rng, 5, 32), nir.Output(np.array([5]))), dt=1e-3)
    assert g.shapes["flatten"] == (32,)
    assert g.nodes["flatten"].start_dim == 0  # stored in NIR's batch-free convention


def test_snntorch_recurrent_export_with_dotted_names():
    """nirtorch flattens snnTorch's RLeaky into nodes named '1.lif', '1.w_rec'."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(8, 6), snn.RLeaky(beta=0.9, linear_features=6, init_hidden=True, output=True))
    g = G.load(export_to_nir(net, torch.zeros(8)), reset="subtract")  # RLeaky's default; the file does not say
    assert set(g.nodes) == {"input", "0", "1.lif", "1.w_rec", "1.lif.reset", "output"}  # + the subtraction loop
    assert g.delayed == frozenset({("1.lif", "1.w_rec"), ("1.lif", "1.lif.reset")})
    assert g.shapes["1.w_rec"] == (6,)
