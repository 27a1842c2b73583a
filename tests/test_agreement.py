"""Our reference simulator vs independent implementations: norse and snnTorch.

Conventions (docs/semantics.md, "Agreement with other simulators"):
- norse ``from_nir(graph, dt=dt)`` integrates NIR's forward Euler at the same dt; its LIF
  and IF ignore ``r`` and ``v_reset`` (r = 1, v_reset = 0 here), its IF integrates
  ``v += x`` (NIR IF with r = 1/dt), its CubaLIF synapse leaks towards ``v_leak`` (v_leak = 0
  here), it has no LI import (we compare LI with norse's LIBoxCell directly), and it
  starts membranes at rest, v_leak (our option v_init="leak").
- snnTorch's exporter/importer fix dt = 1e-4 s and use reset_mechanism="zero".
All comparisons are exact (spike for spike, every step).
"""

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.targets.reference import ReferenceTarget

from .conftest import spikes
from .helpers import affine, chain, cubalif, f32, graph, lif

norse = pytest.importorskip("norse.torch")
DT = 1e-3
SEEDS = [0, 1, 2]


def run_norse(g, x, dt=DT):
    module = norse.from_nir(g, dt=dt, ignore_warnings=True)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = module(x[:, t], state)
            outs.append(out)
    return torch.stack(outs, 1)


def run_ours(g, x, dt=DT, dtype="float32"):
    # norse starts membranes at rest (v_leak): v_init="leak"
    return ReferenceTarget().compile(G.load(g, dt=dt), dtype=dtype, v_init="leak").run(x).output


def assert_same_spikes(ours, theirs):
    assert ours.shape == theirs.shape
    n_spikes = int(theirs.sum())
    assert n_spikes > 0, "test network produced no spikes: it would not test anything"
    mismatch = int((ours != theirs).sum())
    assert mismatch == 0, f"{mismatch} of {theirs.numel()} spike entries differ"


@pytest.mark.parametrize("seed", SEEDS)
def test_affine_lif_vs_norse(seed):
    rng = np.random.default_rng(seed)
    g = chain(nir.Input(np.array([10])), affine(rng, 8, 10, scale=3.0), lif(8, tau=0.005, v_leak=0.2, rng=rng, spread=True),
              affine(rng, 4, 8, scale=3.0), lif(4, tau=0.01), nir.Output(np.array([4])))
    x = spikes((6, 40, 10), p=0.4, seed=seed)
    assert_same_spikes(run_ours(g, x), run_norse(g, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_cubalif_vs_norse(seed):
    rng = np.random.default_rng(seed)
    n = 8
    node = cubalif(n, tau_syn=rng.uniform(2e-3, 8e-3, n), tau_mem=rng.uniform(5e-3, 2e-2, n), thr=rng.uniform(0.5, 1.5, n),
                   r=rng.uniform(0.5, 2, n), w_in=rng.uniform(0.5, 3, n))
    g = chain(nir.Input(np.array([10])), affine(rng, n, 10, scale=4.0), node, nir.Output(np.array([n])))
    x = spikes((5, 50, 10), p=0.4, seed=seed)
    assert_same_spikes(run_ours(g, x), run_norse(g, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_if_vs_norse(seed):
    rng = np.random.default_rng(seed)
    n = 6
    node = nir.IF(r=f32(np.full(n, 1 / DT)), v_threshold=f32(rng.uniform(0.5, 2, n)), v_reset=f32(np.zeros(n)))
    g = chain(nir.Input(np.array([5])), affine(rng, n, 5, scale=1.0), node, nir.Output(np.array([n])))
    x = spikes((4, 40, 5), p=0.5, seed=seed)
    assert_same_spikes(run_ours(g, x), run_norse(g, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_li_vs_norse_libox(seed):
    """norse 1.1.0's from_nir has no LI import: compare with its LIBoxCell directly."""
    rng = np.random.default_rng(seed)
    n = 5
    tau, v_leak = f32(rng.uniform(5e-3, 2e-2, n)), f32(rng.uniform(-0.5, 0.5, n))
    node = nir.LI(tau=tau, r=f32(np.ones(n)), v_leak=v_leak)
    aff = affine(rng, n, 7)
    g = chain(nir.Input(np.array([7])), aff, node, nir.Output(np.array([n])))
    x = spikes((3, 30, 7), p=0.5, seed=seed)
    ours = run_ours(g, x)
    cell = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=1 / torch.from_numpy(tau), v_leak=torch.from_numpy(v_leak)), dt=DT)
    lin = torch.nn.Linear(7, n)
    lin.weight.data, lin.bias.data = torch.from_numpy(aff.weight), torch.from_numpy(aff.bias)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            v, state = cell(lin(x[:, t]), state)
            outs.append(v)
    theirs = torch.stack(outs, 1)
    # LI has no threshold, so compare potentials; norse sums (v_leak - v) + x where the
    # Euler form we share with norse's LIF sums (x + v_leak) - v: equal up to rounding
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert theirs.abs().max() > 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_sumpool_flatten_vs_norse(seed):
    rng = np.random.default_rng(seed)
    conv = nir.Conv2d(input_shape=(8, 8), weight=f32(rng.normal(0, 1.5, (4, 2, 3, 3))), stride=1, padding=1, dilation=1, groups=1,
                      bias=f32(rng.normal(0, 0.1, 4)))
    l1 = lif(1, tau=0.005, thr=1.0)
    l1 = nir.LIF(**{k: f32(np.full((4, 8, 8), getattr(l1, k)[0])) for k in ("tau", "r", "v_leak", "v_threshold", "v_reset")})
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    fl = nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1)
    g = chain(nir.Input(np.array([2, 8, 8])), conv, l1, pool, fl, affine(rng, 5, 64, scale=0.7), lif(5, tau=0.005), nir.Output(np.array([5])))
    x = spikes((3, 25, 2, 8, 8), p=0.4, seed=seed)
    ours = run_ours(g, x)
    # norse's importer maps Flatten(start, end) to torch.nn.Flatten(start, end) counting the
    # batch dim: hand it the torch convention (start_dim=1)
    g.nodes["flatten"] = nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=1, end_dim=-1)
    assert_same_spikes(ours, run_norse(g, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_recurrent_cubalif_vs_norse(seed):
    rng = np.random.default_rng(seed)
    n = 6
    nodes = {"input": nir.Input(np.array([4])), "w_in": affine(rng, n, 4, scale=4.0), "lif": cubalif(n, thr=1.0, w_in=2.0),
             "w_rec": affine(rng, n, n, scale=2.0, bias=False), "output": nir.Output(np.array([n]))}
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
    g = graph(nodes, edges)
    x = spikes((4, 40, 4), p=0.4, seed=seed)
    ours = run_ours(g, x)
    assert_same_spikes(ours, run_norse(g, x))
    # the recurrent weights matter: without them the spikes differ
    g2 = graph({k: v for k, v in nodes.items() if k != "w_rec"}, [e for e in edges if "w_rec" not in e])
    assert not torch.equal(ours, run_ours(g2, x))


def test_norse_module_through_frontend_matches_module():
    """A norse module loaded by our frontend runs as the module itself does."""
    torch.manual_seed(0)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(128.0), v_th=torch.tensor(1.0))
    m = norse.SequentialState(torch.nn.Linear(6, 8), norse.LIFBoxCell(p), torch.nn.Linear(8, 3), norse.LIFBoxCell(p))
    with torch.no_grad():
        m[0].weight.mul_(10)
        m[2].weight.mul_(10)
    x = spikes((4, 40, 6), p=0.5, seed=3)
    g = G.load(m, x[:1, 0], dt=DT)
    ours = ReferenceTarget().compile(g, v_init="leak").run(x).output
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, state = m(x[:, t], state)
            outs.append(z)
    assert_same_spikes(ours, torch.stack(outs, 1))


snn = pytest.importorskip("snntorch")


def _snn_forward(net, x):
    from snntorch import utils

    utils.reset(net)
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out = net(x[:, t])
            outs.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(outs, 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_leaky_spikes(seed):
    """snnTorch's own simulation of a two-layer Leaky module vs ours of its exported graph.

    snnTorch computes ``beta·v + x``; NIR's Euler form ``v + (1-beta)·(r·x - v)`` with
    ``r = 1/(1-beta)`` is the same value computed in another order — a spike could in
    principle differ by one rounding at threshold; on these seeds none does."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 6), snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(6, 4), snn.Leaky(beta=0.8, threshold=1.0, init_hidden=True, output=True, reset_mechanism="zero"),
    )
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.mul_(4)
    x = spikes((5, 40, 8), p=0.4, seed=seed)
    ours = ReferenceTarget().compile(G.load(net, x[:1, 0])).run(x).output
    assert_same_spikes(ours, _snn_forward(net, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_synaptic_membrane(seed):
    """snnTorch's Synaptic (current-based), loaded as LI (current) → LIF: same membrane
    trajectory. (Spikes of every snnTorch neuron type: tests/zoo; its "zero" reset, which
    also discards the next step's input, is refused there.)"""
    torch.manual_seed(seed)
    syn = snn.Synaptic(alpha=0.6, beta=0.85, threshold=1e9, init_hidden=True, output=True, reset_mechanism="subtract")
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), syn)
    x = spikes((5, 40, 8), p=0.4, seed=seed)
    g = G.load(net, x[:1, 0])
    res = ReferenceTarget().compile(g).run(x, record=["1"], record_states=True)
    from snntorch import utils

    utils.reset(net)
    mems = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(x[:, t])
            mems.append(syn.mem.clone())
    theirs = torch.stack(mems, 1)
    torch.testing.assert_close(res.states["1"], theirs, rtol=1e-5, atol=1e-5)
    assert theirs.abs().max() > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_snntorch_importer_runs_our_graph(seed):
    """snnTorch's importer accepts our saved graph; its simulation equals ours."""
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(seed)
    dt = 1e-4
    beta = 0.9
    tau = dt / (1 - beta)
    n = 5
    node = lif(n, tau=tau, r=tau / dt, thr=1.0)
    g = chain(nir.Input(np.array([6])), affine(rng, n, 6, scale=2.0), node, nir.Output(np.array([n])), dt=dt)
    x = spikes((4, 30, 6), p=0.5, seed=seed)
    ours = ReferenceTarget().compile(G.load(g), dtype="float64").run(x.double()).output
    net = import_from_nir(G.load(g).nir).double()
    theirs = []
    from snntorch import utils

    utils.reset(net)
    with torch.no_grad():
        for t in range(x.shape[1]):
            out = net(x[:, t].double())
            theirs.append(out[0] if isinstance(out, tuple) else out)
    assert_same_spikes(ours.float(), torch.stack(theirs, 1).float())


# ---------------------------------------------------------------------------------------
# Loihi 2 (loihi2-emu) against the reference on the shipped digits SNN (issue 11, item 4):
# the input padded by the outputs' lag, the outputs read at their lag (measure/window.py)
def _digits_loihi_vs_reference(**compile_kw):
    from pathlib import Path

    from neurodeploy.data.digits import digits_spikes
    from neurodeploy.measure.metrics import accuracy
    from neurodeploy.measure.window import output_lags, pad_steps, windowed
    from neurodeploy.targets.loihi.target import EmulatorTarget

    g = G.load(Path(__file__).parents[1] / "examples" / "models" / "digits_snn.nir")
    (_, _), (x, y) = digits_spikes(steps=16, encoder="rate", seed=0)
    ref = ReferenceTarget().compile(g).run(x)
    prog = EmulatorTarget().compile(g, **compile_kw)
    lags = output_lags(prog.describe(), g)
    pad = max(lags.values())
    emu = windowed(prog.run(pad_steps(x, pad)), lags, x.shape[1], pad)
    (o,) = g.outputs
    same_class = float((emu.outputs[o].sum(1).argmax(-1) == ref.outputs[o].sum(1).argmax(-1)).float().mean())
    spike_match = float((emu.outputs[o] == ref.outputs[o]).float().mean())
    return accuracy(ref.outputs[o], y), accuracy(emu.outputs[o], y), same_class, spike_match, pad


def test_digits_loihi_accuracy_within_half_a_point_of_reference():
    """The issue's goal (0.5 pp), on its protocol (test split, 16 rate-coded steps, seed 0,
    lag padding), with the default lowering (weight_sign 'auto' = split: 8-bit weight
    magnitudes). Lava's mixed sign mode (7-bit magnitudes) is further from the reference
    spike by spike and class by class, and timing every bias to its layer's lag
    (bias='synapse') is closer still (docs/loihi.md)."""
    ref_acc, acc, same_class, spike_match, pad = _digits_loihi_vs_reference()
    assert pad == 2  # two synapses: the output trails the reference by two steps
    assert abs(acc - ref_acc) <= 0.005, (acc, ref_acc)
    mixed = _digits_loihi_vs_reference(weight_sign="mixed")
    timed = _digits_loihi_vs_reference(bias="synapse")
    assert mixed[3] < spike_match < timed[3] and mixed[2] < same_class < timed[2]
