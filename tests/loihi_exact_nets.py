"""Small NIR networks for the exact-lowering tests (issue 11): CubaLIF layers with synaptic
biases (feed-forward and recurrent), skip connections / residual adds / multi-input
populations, and a loop through two layers. Sizes are tiny so Lava runs fast."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.graph import load

DT = 1e-3


def cuba(n, rng, thr=0.4, tau_syn=None):
    o = np.ones(n, np.float32)
    return nir.CubaLIF(tau_syn=o * (tau_syn or float(rng.uniform(2e-3, 8e-3))),
                       tau_mem=o * float(rng.uniform(5e-3, 2e-2)), r=o, v_leak=0 * o, v_threshold=o * thr,
                       v_reset=0 * o, w_in=o)


def affine(rng, n_out, n_in, scale=2.0, bias=0.5, zero=False):
    if zero:  # no connection at all (weights and bias 0)
        return nir.Affine(weight=np.zeros((n_out, n_in), np.float32), bias=np.zeros(n_out, np.float32))
    w = rng.normal(0.3, 1.0, (n_out, n_in)) * scale
    return nir.Affine(weight=w.astype(np.float32), bias=rng.normal(0.0, bias, n_out).astype(np.float32))


def cuba_li(n):
    o = np.ones(n, np.float32)
    return nir.CubaLI(tau_syn=o * 5e-3, tau_mem=o * 2e-2, r=o, v_leak=0 * o, w_in=o)


def biased_cuba_net(seed, recurrent=False, n_in=8, n_h=6, n_o=3):
    """in → Affine → CubaLIF → Affine → CubaLIF (optionally with a biased recurrent Affine)
    → Affine → CubaLI: a synaptic bias into every decaying current."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(np.array([n_in])), "fc0": affine(rng, n_h, n_in), "n0": cuba(n_h, rng),
             "fc1": affine(rng, n_h, n_h), "n1": cuba(n_h, rng), "fco": affine(rng, n_o, n_h), "ro": cuba_li(n_o),
             "out": nir.Output(np.array([n_o]))}
    edges = [("in", "fc0"), ("fc0", "n0"), ("n0", "fc1"), ("fc1", "n1"), ("n1", "fco"), ("fco", "ro"), ("ro", "out")]
    if recurrent:
        nodes["rec"] = affine(rng, n_h, n_h, scale=1.0, bias=0.2)
        edges += [("n1", "rec"), ("rec", "n1")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def skip_net(seed, n_in=8, n_h=6, n_o=3, long_path=True):
    """Three CubaLIF layers; n2 sums the chain (fc2 from n1), a residual from n0 and a skip
    from the input (depths 3, 2 and 1 synapses). ``long_path=False``: fc2 and res carry
    zero weights, so only the skip drives n2."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(np.array([n_in])), "fc0": affine(rng, n_h, n_in), "n0": cuba(n_h, rng),
             "fc1": affine(rng, n_h, n_h), "n1": cuba(n_h, rng), "fc2": affine(rng, n_h, n_h, zero=not long_path),
             "skip": affine(rng, n_h, n_in), "res": affine(rng, n_h, n_h, zero=not long_path), "n2": cuba(n_h, rng),
             "fco": affine(rng, n_o, n_h), "ro": cuba(n_o, rng), "out": nir.Output(np.array([n_o]))}
    edges = [("in", "fc0"), ("fc0", "n0"), ("n0", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"),
             ("in", "skip"), ("skip", "n2"), ("n0", "res"), ("res", "n2"), ("n2", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def skip_only_net(seed, n_in=8, n_h=6, n_o=3):
    """The skip path of :func:`skip_net` alone (same weights, same n2 and readout)."""
    full = skip_net(seed, n_in, n_h, n_o, long_path=False)
    keep = ("in", "skip", "n2", "fco", "ro", "out")
    nodes = {k: full.nodes[k] for k in keep}
    edges = [("in", "skip"), ("skip", "n2"), ("n2", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def loop_net(seed, n_in=8, n_h=6, n_o=3):
    """A loop through two layers: a → b → back → a (two synapses: Loihi delay 2, NIR 1)."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(np.array([n_in])), "fc0": affine(rng, n_h, n_in), "a": cuba(n_h, rng),
             "fc1": affine(rng, n_h, n_h), "b": cuba(n_h, rng), "back": affine(rng, n_h, n_h, bias=0.0),
             "fco": affine(rng, n_o, n_h), "ro": cuba(n_o, rng), "out": nir.Output(np.array([n_o]))}
    edges = [("in", "fc0"), ("fc0", "a"), ("a", "fc1"), ("fc1", "b"), ("b", "back"), ("back", "a"),
             ("b", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def spikes(seed, batch, steps, n, p=0.3):
    return (np.random.default_rng(seed).random((batch, steps, n)) < p).astype(np.float32)


def conv_skip_net(seed, c=2, h=6, w=6):
    """A residual convolution block: in → conv a → LIF → conv b → LIF, plus a conv skip from
    the input into the second LIF (a kernel that needs a delay, so it is unrolled)."""
    rng = np.random.default_rng(seed)

    def conv(ci, co):
        return nir.Conv2d(input_shape=(h, w), weight=(rng.normal(0.3, 1.0, (co, ci, 3, 3)) * 1.5).astype(np.float32),
                          stride=1, padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.3, co).astype(np.float32))

    def lif(shape):
        o = np.ones(shape, np.float32)
        return nir.LIF(tau=o * 1e-2, r=o, v_leak=0 * o, v_threshold=o * 0.5, v_reset=0 * o)

    nodes = {"in": nir.Input(np.array([c, h, w])), "ca": conv(c, c), "la": lif((c, h, w)), "cb": conv(c, c),
             "cs": conv(c, c), "lb": lif((c, h, w)), "out": nir.Output(np.array([c, h, w]))}
    edges = [("in", "ca"), ("ca", "la"), ("la", "cb"), ("cb", "lb"), ("in", "cs"), ("cs", "lb"), ("lb", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
