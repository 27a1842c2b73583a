"""lava-dl netx import, the rest of what lava-dl's own reader accepts: conv biases (per
channel), synaptic delays where lava-dl stores them (per output, per input), and the
refusals (an input layer with a neuron, SDNN). Each runnable file is checked spike for spike
on every layer against lava-dl's own ``netx.hdf5.Network`` run in Lava."""

from __future__ import annotations

import sys
from pathlib import Path

import nir
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import spikes  # noqa: E402
from netx_files import _run, conv_net_file, dense_file, run_lava_dl  # noqa: E402

from neurodeploy.errors import NeurodeployError, UnsupportedError  # noqa: E402
from neurodeploy.graph import load  # noqa: E402
from neurodeploy.targets.loihi.emulator import EmulatorTarget  # noqa: E402

try:
    import lava.lib.dl.netx.hdf5  # noqa: F401

    HAVE_NETX = True
except Exception:  # pragma: no cover
    HAVE_NETX = False

lava = pytest.mark.skipif(not HAVE_NETX, reason="lava-dl (netx) is not importable")
CONV_BIAS = {  # conv neuron → the file's per-channel bias mantissas
    "cuba": ({}, [40, -30, 90]),
    "if": ({"i_decay": 4096, "v_decay": 0}, [25, -20, 60]),
}
DELAYS = {"per-output": [0, 2, 1, 3, 0], "per-input": [1, 0, 3, 2, 0, 1]}


def _ours(path, x):
    """Our import on the emulator: each population's spikes (steps, *shape), for x (steps, *in)."""
    g = load(path)
    prog = EmulatorTarget().compile(g)
    res = prog.run(x[None], record="all")
    return [(p.name, res.records[p.name][0].numpy()) for p in prog.populations if p.spiking]


def _assert_same(theirs, ours):
    assert len(theirs) == len(ours)
    for got, (name, want) in zip(theirs, ours):
        assert got.shape == want.shape and want.sum() > 0, (name, got.shape, want.shape, want.sum())
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("neuron", list(CONV_BIAS))
def test_conv_bias_is_imported_per_channel(neuron, tmp_path):
    kw, bias = CONV_BIAS[neuron]
    g = load(conv_net_file(tmp_path / "b.net", conv_bias=bias, conv_neuron=kw))
    conv = next(n for n in g.nodes.values() if isinstance(n, nir.Conv2d))
    layer = g.nodes["layer1"]
    if neuron == "if":  # IF has no leak: the bias is the conv's, per channel
        assert np.all(np.sign(conv.bias) == np.sign(bias))
    else:  # a leaky layer's bias is its v_leak, the same over each channel's H, W
        leak = np.asarray(layer.v_leak)
        assert np.all(np.sign(leak[:, 0, 0]) == np.sign(bias)) and np.all(leak == leak[:, :1, :1])
    x = spikes(3, 1, 10, g.shapes["input"], p=0.4)[0]
    with_bias = _ours(tmp_path / "b.net", x)
    without = _ours(conv_net_file(tmp_path / "n.net", conv_neuron=kw), x)
    assert not np.array_equal(with_bias[0][1], without[0][1])  # the bias is not dropped


def test_input_layer_with_a_neuron_and_sdnn_are_refused(tmp_path):
    with pytest.raises(UnsupportedError, match="input layer with a neuron"):
        load(dense_file(tmp_path / "i.net", input_neuron=True))
    with pytest.raises(UnsupportedError, match="sigma-delta"):
        load(dense_file(tmp_path / "s.net", neuron_type=b"SDNN"))


@pytest.mark.parametrize("kind", list(DELAYS))
def test_delays_become_a_delay_node(kind, tmp_path):
    g = load(dense_file(tmp_path / "d.net", delay=DELAYS[kind]))
    delay = next(n for n in g.nodes.values() if isinstance(n, nir.Delay))
    np.testing.assert_allclose(np.asarray(delay.delay) / g.dt, DELAYS[kind])


@pytest.mark.lava
@lava
@pytest.mark.parametrize("neuron", list(CONV_BIAS))
def test_conv_bias_runs_like_lava_dl(neuron, tmp_path):
    kw, bias = CONV_BIAS[neuron]
    path = conv_net_file(tmp_path / "b.net", seed=4, conv_bias=bias, conv_neuron=kw)
    x = spikes(8, 1, 10, (2, 6, 7), p=0.4)[0]
    _assert_same(run_lava_dl(path, x.transpose(1, 2, 3, 0)), _ours(path, x))


@pytest.mark.lava
@lava
@pytest.mark.parametrize("kind", list(DELAYS))
def test_delays_run_like_lava_dl(kind, tmp_path):
    path = dense_file(tmp_path / "d.net", seed=2, delay=DELAYS[kind])
    x = spikes(9, 1, 12, (6,), p=0.5)[0]
    _assert_same(run_lava_dl(path, x.T), _ours(path, x))


@pytest.mark.lava
@lava
def test_lava_dl_itself_cannot_run_an_input_layer_with_a_neuron(tmp_path):
    """Why the import refuses it: lava-dl's own Network fails on such a file in Lava."""
    from neurodeploy.targets.loihi.lava import run_isolated

    path = dense_file(tmp_path / "i.net", input_neuron=True)
    x = spikes(1, 1, 4, (6,), p=0.5)[0].T
    with pytest.raises(NeurodeployError, match="PyInputModel"):
        run_isolated(_run, (str(path), x), 60.0, "lava-dl on an input layer with a neuron")

