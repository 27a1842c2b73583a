"""Graph builders shared by the tests."""

import nir
import numpy as np


def f32(a):
    return np.asarray(a, np.float32)


def lif(n, tau=0.01, thr=1.0, v_leak=0.0, r=1.0, v_reset=0.0, rng=None, spread=False):
    if spread and rng is not None:
        tau = rng.uniform(0.5 * tau, 1.5 * tau, n)
        thr = rng.uniform(0.5 * thr, 1.5 * thr, n)
    full = lambda v: f32(np.broadcast_to(v, (n,)))  # noqa: E731
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(v_leak), v_threshold=full(thr), v_reset=full(v_reset))


def cubalif(n, tau_syn=0.005, tau_mem=0.01, thr=1.0, v_leak=0.0, r=1.0, w_in=1.0, v_reset=0.0):
    full = lambda v: f32(np.broadcast_to(v, (n,)))  # noqa: E731
    return nir.CubaLIF(
        tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(r), v_leak=full(v_leak),
        v_threshold=full(thr), v_reset=full(v_reset), w_in=full(w_in),
    )


def affine(rng, n_out, n_in, scale=1.0, bias=True):
    w = f32(rng.normal(0, scale, (n_out, n_in)))
    b = f32(rng.normal(0, 0.1 * scale, n_out)) if bias else np.zeros(n_out, np.float32)
    return nir.Affine(weight=w, bias=b)


def chain(*nodes, dt=None):
    g = nir.NIRGraph.from_list(*nodes, type_check=False)
    if dt is not None:
        g.metadata = {"dt": dt}
    return g


def graph(nodes, edges, dt=None):
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    g.metadata = {"dt": dt} if dt is not None else {}
    return g
