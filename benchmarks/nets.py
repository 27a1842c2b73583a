"""Networks the benchmarks (and a few tests) build: the issue-11 DVS-gesture-sized CNN and
dense CubaLIF stacks. Random weights, seeded; thresholds set so that every layer spikes."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.graph import load

DT = 1e-3


def _lif(shape, rng, thr=1.0, kind="LIF"):
    f = lambda v: np.full(shape, v, np.float32)  # noqa: E731
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=f(5e-3), tau_mem=f(2e-2), r=f(1.0), v_leak=f(0.0), v_threshold=f(thr),
                           v_reset=f(0.0), w_in=f(1.0))
    if kind == "LI":
        return nir.LI(tau=f(2e-2), r=f(1.0), v_leak=f(0.0))
    return nir.LIF(tau=f(2e-2), r=f(1.0), v_leak=f(0.0), v_threshold=f(thr), v_reset=f(0.0))


def dvs_gesture_net(seed: int = 0, size: int = 128):
    """2×size×size input, conv 16@5×5/2, 32@3×3/2, 64@3×3/2 (LIF after each), flatten, fc 11
    into an LI readout (issue 11's DVS-gesture-sized net)."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type=np.array([2, size, size]))}
    edges, prev, c, h = [], "in", 2, size
    for i, (co, k) in enumerate(((16, 5), (32, 3), (64, 3))):
        w = (rng.normal(0.5, 1.0, (co, c, k, k)) / np.sqrt(c * k * k) * 6.0).astype(np.float32)
        nodes[f"conv{i}"] = nir.Conv2d(input_shape=(h, h), weight=w, stride=2, padding=0, dilation=1, groups=1,
                                       bias=np.zeros(co, np.float32))
        h = (h - k) // 2 + 1
        nodes[f"lif{i}"] = _lif((co, h, h), rng, thr=0.5)
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
        prev, c = f"lif{i}", co
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([c, h, h])}, start_dim=0, end_dim=-1)
    nodes["fc"] = nir.Linear(weight=(rng.normal(0.0, 1.0, (11, c * h * h)) / np.sqrt(c * h * h)).astype(np.float32))
    nodes["ro"] = _lif(11, rng, kind="LI")
    nodes["out"] = nir.Output(output_type=np.array([11]))
    edges += [(prev, "flat"), ("flat", "fc"), ("fc", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)


def dense_net(width: int = 256, layers: int = 3, n_in: int | None = None, seed: int = 0, kind: str = "CubaLIF"):
    """``layers`` dense ``kind`` layers of ``width`` neurons (the last one the output)."""
    rng = np.random.default_rng(seed)
    n_in = n_in or width
    nodes = {"in": nir.Input(input_type=np.array([n_in]))}
    edges, prev, n = [], "in", n_in
    for i in range(layers):
        nodes[f"fc{i}"] = nir.Linear(weight=(rng.normal(0.2, 1.0, (width, n)) * 6.0 / np.sqrt(n)).astype(np.float32))
        nodes[f"n{i}"] = _lif(width, rng, thr=1.0, kind=kind)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        prev, n = f"n{i}", width
    nodes["out"] = nir.Output(output_type=np.array([width]))
    edges.append((prev, "out"))
    return load(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)


def spikes(batch: int, steps: int, shape, p: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, *shape)) < p).astype(np.float32)
