"""Hand-written lava-dl netx files (the layout lava-dl 0.6.0's netx.hdf5.Network reads), for
the import tests."""

from __future__ import annotations

import h5py
import numpy as np


def _neuron(g, vth, i_decay=1024, v_decay=512):
    n = g.create_group("neuron")
    n.create_dataset("type", data=np.array([b"CUBA"]))
    for key, val in (("iDecay", i_decay), ("vDecay", v_decay), ("vThMant", vth), ("refDelay", 1)):
        n.create_dataset(key, data=np.int64(val))
    n.create_dataset("gradedSpike", data=np.bool_(False))


def conv_net_file(path, seed=0, c=2, h=6, w=7, out=3, kernel=(3, 2), stride=(1, 2), padding=(1, 0), n_out=4,
                  conv_bias=None, conv_neuron=None):
    """input (c, h, w) → conv (CUBA) → flatten → dense (CUBA); shapes stored as (C, H, W),
    conv weights (out, in, kH, kW), stride/padding (H, W). ``conv_bias``: the conv layer's
    bias mantissas (one per channel, as lava-dl stores them); ``conv_neuron``: its
    ``_neuron`` keywords."""
    rng = np.random.default_rng(seed)
    ho = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    with h5py.File(path, "w") as f:
        f.attrs["dt"] = 1e-3
        lay = f.create_group("layer")
        g = lay.create_group("0")
        g.create_dataset("type", data=np.array([b"input"]))
        g.create_dataset("shape", data=np.array([c, h, w]))
        g = lay.create_group("1")
        g.create_dataset("type", data=np.array([b"conv"]))
        g.create_dataset("shape", data=np.array([out, ho, wo]))
        g.create_dataset("weight", data=rng.integers(-60, 120, (out, c, *kernel)).astype(np.int64))
        for key, val in (("stride", stride), ("padding", padding), ("dilation", (1, 1))):
            g.create_dataset(key, data=np.array(val))
        g.create_dataset("groups", data=np.int64(1))
        if conv_bias is not None:
            g.create_dataset("bias", data=np.asarray(conv_bias, np.int64))
        _neuron(g, **{"vth": 150, **(conv_neuron or {})})
        lay.create_group("2").create_dataset("type", data=np.array([b"flatten"]))
        g = lay.create_group("3")
        g.create_dataset("type", data=np.array([b"dense"]))
        g.create_dataset("shape", data=np.array([n_out]))
        g.create_dataset("weight", data=rng.integers(-40, 100, (n_out, out * ho * wo)).astype(np.int64))
        _neuron(g, vth=300)
    return path


def dense_file(path, seed=0, sizes=(6, 5, 4), delay=None, input_neuron=False, neuron_type=b"CUBA", with_input=True):
    """input (n) → dense (CUBA) → dense (CUBA). ``delay``: the first dense layer's ``delay``
    dataset (per output (n_out,), per input (n_in,), or per synapse); ``input_neuron``: the
    input layer carries a CUBA neuron (lava-dl's Input block); ``neuron_type``: of the dense
    layers (b"SDNN" for sigma-delta)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs["dt"] = 1e-3
        lay = f.create_group("layer")
        k = 0
        if with_input:
            g = lay.create_group("0")
            g.create_dataset("type", data=np.array([b"input"]))
            g.create_dataset("shape", data=np.array([sizes[0]]))
            if input_neuron:
                _neuron(g, vth=10, i_decay=4096, v_decay=0)
            k = 1
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            g = lay.create_group(str(k + i))
            g.create_dataset("type", data=np.array([b"dense"]))
            g.create_dataset("shape", data=np.array([n_out]))
            g.create_dataset("weight", data=rng.integers(-30, 110, (n_out, n_in)).astype(np.int64))
            if i == 0 and delay is not None:
                g.create_dataset("delay", data=np.asarray(delay, np.int64))
            _neuron(g, vth=120 + 40 * i)
            g["neuron"]["type"][...] = np.array([neuron_type])
    return path


def run_lava_dl(path, x, **network):
    """Run ``x`` (C, H, W, steps) or (n, steps) of 0/1 through lava-dl's own Network in Lava
    (bounded by a timeout, runtime stopped in ``finally``); ``network``: keywords of lava-dl's
    Network. Returns each layer's spikes as (steps, *shape) in (C, H, W) order."""
    from neurodeploy.targets.loihi.lava import default_timeout, run_isolated

    return run_isolated(_run, (str(path), x, network), default_timeout(x.shape[-1], 8), f"running netx network {path}")


def _run(path, x, network=None):
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    steps = x.shape[-1]
    net = Network(net_config=path, **(network or {}))  # e.g. input_message_bits=8: graded input spikes
    src = Source(data=x.transpose(*range(x.ndim - 2, -1, -1), x.ndim - 1).astype(np.int32))  # lava-dl: (W, H, C)
    src.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        s = Sink(shape=layer.out.shape, buffer=steps)
        layer.out.connect(s.a_in)
        sinks.append(s)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        outs = [np.asarray(s.data.get()) for s in sinks]
    finally:
        net.stop()
    return [o.transpose(*range(o.ndim - 1, -1, -1)) if o.ndim > 2 else o.T for o in outs]
