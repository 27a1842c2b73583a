"""Metrics against hand-computed values and an independent NeuroBench-style computation."""

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .helpers import chain, f32, lif
from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.measure.metrics import (
    accuracy,
    activation_sparsity,
    compute_metrics,
    neuron_updates,
    predict,
    spike_counts,
    synaptic_ops,
)
from neurodeploy.targets.base import RunResult, get_target

W = f32([[1.0, 0.0, 2.0], [0.5, 0.0, -1.0]])  # column 1 has only zero weights, W[1,?] all nonzero
X = f32([  # one sample, 4 steps, 3 inputs (a known spike pattern)
    [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1]],
])


def _graph(weight=W, neuron=None, dt=1e-3):
    n_out, n_in = weight.shape
    neuron = neuron or lif(n_out, tau=0.002, thr=0.5)
    return load(chain(nir.Input(np.array([n_in])), nir.Linear(weight=weight), neuron, nir.Output(np.array([n_out])), dt=dt))


def _run(graph, x, record="all"):
    return get_target("reference").compile(graph).run(x, record=record)


def test_synops_hand_computed():
    g = _graph()
    r = _run(g, X)
    syn = g.synapse_nodes()[0]
    # nonzero inputs per step: 1, 2, 1, 2 -> 6 nonzero input elements
    # counts (fan-out incl. zero weights): 6 × 2 outputs = 12
    assert r.counts[syn]["synaptic_events"] == 12
    # NeuroBench: nonzero-weight fan-out per input column = (2, 0, 2)
    # steps: x0 -> 2; x0,x1 -> 2; x2 -> 2; x1,x2 -> 2  => 8
    so = synaptic_ops(r, g, inputs={g.inputs[0]: X})
    assert so["layers"][syn]["effective"] == 8
    assert so["layers"][syn]["method"] == "exact"
    assert so["layers"][syn]["kind"] == "AC"
    assert so["Effective_ACs"] == 8 and so["Effective_MACs"] == 0
    assert so["Dense"] == 3 * 2 * 4  # every input × every connection × steps
    # without the input, the target's count is used and the input assumed binary
    so2 = synaptic_ops(r, g)
    assert so2["layers"][syn]["effective"] == 12
    assert "assumed" in so2["layers"][syn]["method"]


def test_synops_graded_input_is_mac_and_per_sample():
    g = _graph()
    x = np.concatenate([X * 0.5, X], 0)  # two samples, the first graded
    r = _run(g, x)
    so = synaptic_ops(r, g, inputs={g.inputs[0]: x})
    syn = g.synapse_nodes()[0]
    assert so["layers"][syn]["kind"] == "MAC"  # values outside {-1, 0, 1}
    assert so["Effective_MACs"] == pytest.approx(8.0)  # (8 + 8) / 2 samples
    assert so["Dense"] == pytest.approx(24.0)


def _neurobench_effective(x, weight, conv=None):
    """NeuroBench's rule: apply the layer with binarized weights (no bias) to the
    binarized input and sum (neurobench/metrics/utils/layers/macs.py)."""
    xb = (torch.as_tensor(x) != 0).float()
    wb = (torch.as_tensor(weight) != 0).float()
    if conv is None:
        return float(F.linear(xb.reshape(-1, xb.shape[-1]), wb).sum())
    xs = xb.reshape(-1, *xb.shape[2:])
    return float(F.conv2d(xs, wb, None, **conv).sum())


def test_synops_conv_matches_neurobench_rule(rng):
    w = f32(rng.normal(size=(2, 1, 3, 3)))
    w[0, 0, 1, 1] = 0.0
    w[1, 0, 0, :] = 0.0
    conv = nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2, np.float32))
    neuron = nir.IF(r=np.ones((2, 4, 4), np.float32), v_threshold=np.ones((2, 4, 4), np.float32))
    g = load(chain(nir.Input(np.array([1, 4, 4])), conv, neuron, nir.Output(np.array([2, 4, 4])), dt=1e-3))
    x = (rng.random((2, 5, 1, 4, 4)) < 0.4).astype(np.float32)
    r = _run(g, x)
    so = synaptic_ops(r, g, inputs={g.inputs[0]: x})
    syn = g.synapse_nodes()[0]
    expected = _neurobench_effective(x, w, dict(stride=1, padding=1))
    assert so["layers"][syn]["effective"] * 2 == pytest.approx(expected)
    dense = _neurobench_effective(np.ones_like(x), np.ones_like(w), dict(stride=1, padding=1))
    assert so["Dense"] * 2 == pytest.approx(dense)


def test_synops_hidden_layer_from_records(rng):
    w1 = f32(rng.normal(1.0, 0.5, (5, 3)))
    w2 = f32(rng.normal(0, 1, (2, 5)))
    w2[:, 0] = 0
    g = load(chain(nir.Input(np.array([3])), nir.Linear(weight=w1), lif(5, tau=0.002, thr=0.3), nir.Linear(weight=w2),
                   lif(2, tau=0.002, thr=0.3), nir.Output(np.array([2])), dt=1e-3))
    x = (rng.random((3, 12, 3)) < 0.5).astype(np.float32)
    r = _run(g, x)
    syn2 = g.synapse_nodes()[1]
    hidden = g.neuron_nodes()[0]
    spikes = r.records[hidden].numpy()
    assert spikes.sum() > 0
    so = synaptic_ops(r, g)
    assert so["layers"][syn2]["method"] == "exact"
    assert so["layers"][syn2]["kind"] == "AC"
    assert so["layers"][syn2]["effective"] * 3 == pytest.approx(_neurobench_effective(spikes, w2))
    # without records the structure says the input is spikes (LIF source): AC, counts method
    r2 = _run(g, x, record=None)
    so2 = synaptic_ops(r2, g)
    assert so2["layers"][syn2]["kind"] == "AC" and so2["layers"][syn2]["method"] == "counts"
    assert so2["layers"][syn2]["effective"] * 3 == r2.counts[syn2]["synaptic_events"] == spikes.sum() * 2


def test_spike_counts_rates_and_sparsity(rng):
    g = _graph(W * 2)
    x = (rng.random((2, 10, 3)) < 0.6).astype(np.float32)
    r = _run(g, x)
    n = g.neuron_nodes()[0]
    s = r.records[n].numpy()
    sc = spike_counts(r, g)
    assert sc[n]["spikes"] == int(s.sum()) > 0
    assert sc[n]["neurons"] == 2
    assert sc[n]["rate"] == pytest.approx(s.sum() / (2 * 10 * 2))
    assert sc[n]["spikes_per_sample"] == pytest.approx(s.sum() / 2)
    sp = activation_sparsity(r, g)
    assert sp["sparsity"] == pytest.approx(1 - s.sum() / s.size)
    assert sp["layers"][n]["method"] == "records"
    # the counts-only path gives the same number for binary spikes
    r2 = _run(g, x, record=None)
    sp2 = activation_sparsity(r2, g)
    assert sp2["layers"][n]["method"] == "counts"
    assert sp2["sparsity"] == pytest.approx(sp["sparsity"])


def test_neuron_updates():
    g = _graph()
    r = _run(g, np.concatenate([X, X, X]))
    nu = neuron_updates(r)
    assert nu["total"] == 2 * 4 * 3
    assert nu["per_sample"] == 8


def _fake(outputs):
    out = torch.as_tensor(np.asarray(outputs, np.float32))
    return RunResult(outputs={"o": out}, target="x", dt=1e-3, batch=out.shape[0], steps=out.shape[1])


def test_accuracy_readouts():
    # sample 0: class 1 spikes most; sample 1: tie between 0 and 2 -> lowest index (0)
    spikes = [[[0, 1, 0], [0, 1, 1], [1, 1, 0]], [[1, 0, 1], [0, 0, 0], [0, 0, 0]]]
    r = _fake(spikes)
    assert predict(r.output, "spikes").tolist() == [1, 0]
    assert accuracy(r, [1, 0], "spikes") == 1.0
    assert accuracy(r, [1, 2], "spikes") == 0.5
    # membrane readout: the class whose potential peaks highest
    v = [[[0.1, 0.9, 0.2], [0.5, 0.1, 1.5]], [[2.0, 0.0, 0.0], [0.0, 0.0, 0.1]]]
    rv = _fake(v)
    assert predict(rv.output, "membrane").tolist() == [2, 0]
    assert accuracy(rv, [2, 0], "auto") == 1.0  # non-binary -> membrane
    with pytest.raises(InputError):
        accuracy(rv, [1, 2, 3], "membrane")
    with pytest.raises(InputError):
        predict(rv.output, "votes")


def test_memory_in_the_reference_description():
    n = 2
    cuba = nir.CubaLIF(tau_syn=f32([0.005] * n), tau_mem=f32([0.01] * n), r=f32([1] * n), v_leak=f32([0] * n),
                       v_threshold=f32([1] * n), v_reset=f32([0] * n), w_in=f32([1] * n))
    g = load(chain(nir.Input(np.array([3])), nir.Affine(weight=W, bias=f32([0.1, 0.2])), cuba, nir.Output(np.array([2])), dt=1e-3))
    prog = get_target("reference").compile(g)
    m = prog.describe()["memory"]
    assert m["weights"] == 6 + 2  # weights + biases
    assert m["state_vars"] == 2 * 2  # CubaLIF: v and i
    assert m["total_bytes"] == (8 + 4) * 4
    assert get_target("reference").compile(g, dtype="float64").describe()["memory"]["total_bytes"] == (8 + 4) * 8


def test_compute_metrics_bundle(rng):
    g = _graph(W * 3)
    x = (rng.random((4, 8, 3)) < 0.5).astype(np.float32)
    r = _run(g, x)
    y = predict(r.output, "spikes")
    m = compute_metrics(r, g, labels=y, readout="spikes", inputs={g.inputs[0]: x})
    assert m["accuracy"] == 1.0 and m["readout"] == "spikes"
    assert m["spikes"]["total"] == r.total("spikes")
    assert m["samples"] == 4 and m["steps"] == 8
    m2 = compute_metrics(r, g, labels=(y + 1) % 2, readout="spikes")
    assert m2["accuracy"] == pytest.approx(float(((y + 1) % 2 == y).mean()))


def test_memory_in_the_loihi_description():
    """Loihi programs: 8-bit weights (1 byte) and 24-bit state variables (3 bytes)."""
    tgt = get_target("loihi2-emu")
    g = _graph(W * 3)
    prog = tgt.compile(g)
    m = prog.describe()["memory"]
    assert m["bytes_per_weight"] == 1 and m["bytes_per_state_var"] == 3
    assert m["weights"] == W.size and m["state_vars"] == 2
    assert m["total_bytes"] == W.size * 1 + 2 * 3
