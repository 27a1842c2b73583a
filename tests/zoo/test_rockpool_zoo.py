"""Rockpool 3.1.0 models exported with Rockpool's own ``to_nir``: neurodeploy's reference
equals Rockpool's simulation spike for spike on every layer (quirks ``rockpool-decay`` and
``output-type``); the raw upstream path fails (plain ``nir.read``) or differs (the file's
Euler reading of Rockpool's exact decays)."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import UnsupportedError

from .common import run_ours, spikes

pytest.importorskip("rockpool")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rockpool.nn.modules import ExpSynTorch, LIFNeuronTorch, LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir
    from rockpool.nn.combinators import Sequential

SPIKING = ("1_LIFTorch", "3_LIFNeuronTorch")
READOUT = "5_ExpSynTorch"


def rockpool_net(dt, max_spikes=1, seed=0):
    """Linear → LIFTorch (CubaLIF) → Linear → LIFNeuronTorch (LIF) → Linear → ExpSynTorch (LI)."""
    torch.manual_seed(seed)
    layers = [LinearTorch((6, 8)), LIFTorch(8, dt=dt, tau_mem=0.02, tau_syn=0.01, max_spikes_per_dt=max_spikes),
              LinearTorch((8, 5)), LIFNeuronTorch(5, dt=dt, tau_mem=0.015, max_spikes_per_dt=max_spikes),
              LinearTorch((5, 3)), ExpSynTorch(3, dt=dt, tau=0.02)]
    with torch.no_grad():
        layers[0].weight.mul_(4)
        layers[2].weight.mul_(6)
    return Sequential(*layers), layers


def rockpool_layers(layers, x):
    """Each layer's output from Rockpool's own evolve, keyed as its to_nir names the node."""
    out, h = {}, x
    with torch.no_grad():
        for i, layer in enumerate(layers):
            h, _, _ = layer.evolve(h)
            out[f"{i}_{type(layer).__name__}"] = h.detach()
    return {n: out[n] for n in (*SPIKING, READOUT)}


def assert_equal(ours, theirs):
    for n in SPIKING:
        assert theirs[n].sum() > 0, f"layer {n} never spikes: the test would test nothing"
        assert torch.equal(ours.records[n], theirs[n]), f"layer {n}: {int((ours.records[n] != theirs[n]).sum())} differ"
    torch.testing.assert_close(ours.records[READOUT], theirs[READOUT], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dt", [1e-3, 5e-4, 2e-3])
def test_rockpool_export_equals_rockpool_on_every_layer(dt):
    net, layers = rockpool_net(dt)
    x = spikes((3, 40, 6), seed=1)
    theirs = rockpool_layers(layers, x)
    graph = G.load(to_nir(net, torch.zeros(1, 6)))  # detected; dt = Rockpool's, solved from r and τ
    assert graph.metadata["repairs"] == ["rockpool-decay"] and graph.reset == "subtract"
    assert graph.dt == pytest.approx(dt, rel=1e-5)
    assert_equal(run_ours(graph, x), theirs)
    # Rockpool's neurons are per step: another dt gives the same spikes
    assert_equal(run_ours(G.load(to_nir(net, torch.zeros(1, 6)), dt=dt * 3.7), x), theirs)


def test_rockpool_raw_upstream_path_fails_or_differs(tmp_path):
    net, layers = rockpool_net(1e-3)
    x = spikes((3, 40, 6), seed=2)
    theirs = rockpool_layers(layers, x)
    path = str(tmp_path / "rockpool.nir")
    exported = to_nir(net, torch.zeros(1, 6))
    with pytest.raises(RuntimeError, match="requires grad"):
        nir.write(path, exported)  # ExpSynTorch's parameters are 0-d torch tensors (in memory, load takes them)
    li = exported.nodes[READOUT]  # what a user must do to save it: arrays of the layer's shape
    for p in ("tau", "r", "v_leak"):
        setattr(li, p, np.full(3, float(getattr(li, p)), np.float32))
    nir.write(path, exported)
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(path)  # Rockpool types Input/Output with the sample's batch dimension
    raw = run_ours(G.load(path, dt=1e-3, framework="torch"), x)  # the file read as NIR says: Euler, r as written
    assert any(not torch.equal(raw.records[n], theirs[n]) for n in SPIKING)
    graph = G.load(path)
    assert graph.metadata["repairs"] == ["rockpool-decay"]  # the batch-typed Input/Output are read as (6,)/(3,)
    assert_equal(run_ours(graph, x), theirs)


def test_rockpool_multiple_events_per_step_are_an_assumption():
    """Rockpool's default max_spikes_per_dt emits several events in a step; NIR cannot, and
    the file does not say which was used: the graph lists it in its assumptions."""
    net, layers = rockpool_net(1e-3, max_spikes=2.0 ** 16)
    with torch.no_grad():
        layers[2].weight.mul_(4)
    x = spikes((3, 40, 6), seed=1)
    theirs = rockpool_layers(layers, x)
    assert theirs["3_LIFNeuronTorch"].max() > 1  # several events in one step
    graph = G.load(to_nir(net, torch.zeros(1, 6)))
    assert any("max_spikes_per_dt=1" in a for a in graph.metadata["assumptions"])
    ours = run_ours(graph, x)
    assert ours.records["3_LIFNeuronTorch"].max() == 1
    from neurodeploy.graph.summary import summarize

    assert summarize(graph)["assumptions"] == graph.metadata["assumptions"]  # what inspect and reports show


def test_rockpool_recurrent_weights_are_dropped_upstream():
    """Rockpool's to_nir leaves LIFTorch's w_rec out of the graph (no loop): the table's
    'upstream fails'."""
    torch.manual_seed(0)
    net = Sequential(LinearTorch((4, 3)), LIFTorch(3, has_rec=True, max_spikes_per_dt=1))
    g = to_nir(net, torch.zeros(1, 4))
    names = list(g.nodes)
    assert not any((b, a) in g.edges for a, b in g.edges), names


def test_saved_rockpool_graph_follows_a_new_dt(tmp_path):
    """Saved after the repair, the graph is per step: loaded at another dt, τ follows it."""
    net, layers = rockpool_net(1e-3)
    x = spikes((3, 40, 6), seed=3)
    theirs = rockpool_layers(layers, x)
    G.save(G.load(to_nir(net, torch.zeros(1, 6))), tmp_path / "rp.nir")
    again = G.load(tmp_path / "rp.nir", dt=4e-3)
    assert again.dt == 4e-3 and again.metadata["exporter_dt"] == 4e-3
    assert_equal(run_ours(again, x), theirs)


def test_rockpool_module_loads_through_its_exporter():
    net, layers = rockpool_net(1e-3)
    x = spikes((3, 40, 6), seed=4)
    theirs = rockpool_layers(layers, x)
    graph = G.load(net, torch.zeros(1, 6), dt=2e-3)
    assert graph.metadata["repairs"] == ["rockpool-decay"] and graph.metadata["assumptions"] == []
    assert_equal(run_ours(graph, x), theirs)


@pytest.mark.parametrize("layer,match", [
    (lambda: LIFTorch(3), "max_spikes_per_dt"),
    (lambda: LIFTorch(3, max_spikes_per_dt=1, bias=0.1), "bias"),
    (lambda: LIFTorch(3, max_spikes_per_dt=1, has_rec=True), "w_rec"),
    (lambda: LIFNeuronTorch(3, max_spikes_per_dt=1, noise_std=0.1), "noise"),
])
def test_rockpool_module_settings_nir_cannot_carry_are_refused(layer, match):
    torch.manual_seed(0)
    with pytest.raises(UnsupportedError, match=match):
        G.load(Sequential(LinearTorch((4, 3)), layer()), torch.zeros(1, 4))
