"""Sinabs 2.0.3 models exported with Sinabs' own ``to_nir`` and loaded with
``framework="sinabs"``: neurodeploy's reference equals Sinabs' simulation spike for spike on
every layer at any dt (quirks ``sinabs-if-r``, ``sinabs-decay``); the raw graph never
spikes at dt ≠ 1 and the ``cannot-spike`` diagnostic names the layers.

Sinabs is not in the ``all`` extra (it requires samna, see pyproject.toml): these tests run
where it was installed with ``pip install --no-deps -c constraints.txt sinabs pbr``."""

from __future__ import annotations

import warnings

import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import InputError, UnsupportedError
from neurodeploy.graph.diagnose import diagnose

from .common import run_ours, spikes

pytest.importorskip("sinabs")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

B, T = 2, 30
SPIKING = ("1", "5")


def conv_net(seed=0):
    """Conv2d → IAF → SumPool2d → Flatten → Linear → LIF → Linear → ExpLeak, single spikes."""
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike),
                            sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 10),
                            sl.LIFSqueeze(tau_mem=8.0, batch_size=B, spike_fn=SingleSpike),
                            torch.nn.Linear(10, 4), sl.ExpLeakSqueeze(tau_mem=5.0, batch_size=B))
    with torch.no_grad():
        m[0].weight.mul_(2)
        m[4].weight.abs_().mul_(2)
        m[6].weight.mul_(2)
    return m


def sinabs_layers(m, x, names=(*SPIKING, "7")):
    """Sinabs' own run (time folded into the batch, as its Squeeze layers want) per layer."""
    rec = {}
    mods = dict(m.named_children())
    hooks = [mods[n].register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n, o.detach())) for n in names]
    reset = lambda: [mod.reset_states() for mod in m if hasattr(mod, "reset_states")]  # noqa: E731 (to_nir runs m)
    try:
        reset()
        with torch.no_grad():
            m(x.reshape(B * T, *x.shape[2:]))
    finally:
        for h in hooks:
            h.remove()
        reset()
    return {n: r.reshape(B, T, *r.shape[1:]) for n, r in rec.items()}


@pytest.fixture(scope="module")
def case():
    m = conv_net()
    x = spikes((B, T, 2, 6, 6), p=0.3, seed=1)
    theirs = sinabs_layers(m, x)
    assert all(theirs[n].sum() > 5 for n in SPIKING), {n: theirs[n].sum() for n in SPIKING}
    return m, x, theirs


@pytest.mark.parametrize("dt", [1e-3, 1.0, 2e-4])
def test_sinabs_conv_net_equals_sinabs_on_every_layer(case, dt):
    m, x, theirs = case
    graph = G.load(sinabs.to_nir(m, x[:, 0]), dt=dt, framework="sinabs")
    assert graph.metadata["repairs"] == ["sinabs-if-r", "sinabs-decay"] and graph.reset == "subtract"
    ours = run_ours(graph, x)
    for n in SPIKING:
        assert torch.equal(ours.records[n], theirs[n]), f"layer {n}: {int((ours.records[n] != theirs[n]).sum())} differ"
    torch.testing.assert_close(ours.records["7"], theirs["7"], rtol=1e-4, atol=1e-5)


def test_sinabs_raw_graph_never_spikes_and_is_diagnosed(case):
    m, x, theirs = case
    raw = G.load(sinabs.to_nir(m, x[:, 0]), dt=1e-3)  # r = 1 read per second: v += 1e-3·x
    assert "repairs" not in raw.metadata
    assert run_ours(raw, x).records["1"].sum() == 0 < theirs["1"].sum()
    silent = {d.node for d in diagnose(raw, steps=T) if d.code == "cannot-spike"}
    assert {"1", "5"} <= silent
    with pytest.raises(InputError, match="pass dt"):
        G.load(sinabs.to_nir(m, x[:, 0]), framework="sinabs")


def test_sinabs_lif_decay_is_exact_not_euler(case):
    """At dt = 1 the raw file's IF is right (r = 1 per step) but its LIF, read as Euler with
    Sinabs' τ in steps, is not: only sinabs-decay makes layer 5 equal."""
    m, x, theirs = case
    raw = run_ours(G.load(sinabs.to_nir(m, x[:, 0]), dt=1.0, reset="subtract"), x)
    assert torch.equal(raw.records["1"], theirs["1"])
    assert not torch.equal(raw.records["5"], theirs["5"])


def test_sinabs_multispike_default_is_an_assumption():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(6, 4), sl.IAFSqueeze(batch_size=B))  # MultiSpike: the default
    with torch.no_grad():
        m[0].weight.abs_().mul_(4)
    x = spikes((B, T, 6), seed=3)
    theirs = sinabs_layers(m, x, names=("1",))["1"]
    assert theirs.max() > 1  # several events in one step: NIR has no such neuron
    graph = G.load(sinabs.to_nir(m, x[:, 0]), dt=1e-3, framework="sinabs")
    assert any("SingleSpike" in a for a in graph.metadata["assumptions"])


def test_sinabs_avgpool_export_fails_upstream():
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), sl.IAFSqueeze(batch_size=1), torch.nn.AvgPool2d(2))
    with pytest.raises(NotImplementedError, match="AvgPool2d"):
        sinabs.to_nir(m, torch.zeros(1, 1, 6, 6))


def test_saved_sinabs_graph_follows_a_new_dt(case, tmp_path):
    m, x, theirs = case
    G.save(G.load(sinabs.to_nir(m, x[:, 0]), dt=1e-3, framework="sinabs"), tmp_path / "sb.nir")
    again = G.load(tmp_path / "sb.nir", dt=0.5)
    assert again.dt == 0.5 and again.reset == "subtract"
    ours = run_ours(again, x)
    assert all(torch.equal(ours.records[n], theirs[n]) for n in SPIKING)


def test_sinabs_module_loads_through_its_exporter(case):
    """``load(module, sample)``: sinabs.to_nir, repaired, with nothing left to assume."""
    m, x, theirs = case
    graph = G.load(m, x[:, 0], dt=5e-4)
    assert graph.metadata["repairs"] == ["sinabs-if-r", "sinabs-decay"] and graph.metadata["assumptions"] == []
    ours = run_ours(graph, x)
    assert all(torch.equal(ours.records[n], theirs[n]) for n in SPIKING)
    assert torch.equal(sinabs_layers(m, x)["1"], theirs["1"])  # loading left no state in the module


@pytest.mark.parametrize("layer,match", [
    (lambda: sl.IAFSqueeze(batch_size=B), "MultiSpike"),
    (lambda: sl.IAFSqueeze(batch_size=B, spike_fn=SingleSpike, min_v_mem=-1.0), "min_v_mem"),
    (lambda: sl.LIFSqueeze(tau_mem=5.0, tau_syn=3.0, batch_size=B, spike_fn=SingleSpike), "tau_syn"),
    (lambda: sl.LIFSqueeze(tau_mem=5.0, norm_input=False, batch_size=B, spike_fn=SingleSpike), "norm_input"),
    (lambda: sl.IAFRecurrent(rec_connect=torch.nn.Linear(4, 4, bias=False), spike_fn=SingleSpike), "IAFRecurrent"),
])
def test_sinabs_module_settings_nir_cannot_carry_are_refused(layer, match):
    m = torch.nn.Sequential(torch.nn.Linear(6, 4), layer())
    with pytest.raises(UnsupportedError, match=match):
        G.load(m, torch.zeros(B, 6), dt=1e-3)
