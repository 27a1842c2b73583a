"""Throughput of the LSM reservoir (200 LIF neurons, 256 inputs, 50 steps, batch 256):
the RRAM target (ideal and with the rram_40nm non-idealities) vs the same reservoir in
norse (``lif_box_feed_forward_step`` with the two matrix products) and the reference
target. Results are per-machine; each benchmark records ``samples_per_s``.

Run: ``.venv/bin/python -m pytest -q benchmarks/bench_rram.py --benchmark-only`` (pytest
collects ``bench_*.py`` when the file is named; ``make bench`` collects it once
``python_files`` includes ``bench_*.py``).
"""

import pytest
import torch

from neurodeploy.targets.rram.device import DeviceConfig
from neurodeploy.targets.rram.lsm import LSMConfig, Reservoir

pytest.importorskip("pytest_benchmark")

BATCH, STEPS = 256, 50


@pytest.fixture(scope="module")
def reservoir():
    return Reservoir(LSMConfig(n_neurons=200))


@pytest.fixture(scope="module")
def x():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(BATCH, STEPS, 256, generator=g) < 0.25).float()


def norse_reservoir(res: Reservoir, x: torch.Tensor) -> torch.Tensor:
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

    c = res.config
    w = res.weights()
    win, wrec = torch.as_tensor(w["w_in"]), torch.as_tensor(w["w_rec"])
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / (c.dt / (1 - c.decay))), v_th=torch.as_tensor(c.threshold),
                         v_reset=torch.as_tensor(0.0), v_leak=torch.as_tensor(0.0))
    r = c.dt / (1 - c.decay) / c.dt
    state = LIFBoxFeedForwardState(v=torch.zeros(x.shape[0], c.n_neurons))
    z = torch.zeros(x.shape[0], c.n_neurons)
    out = []
    for t in range(x.shape[1]):
        z, state = lif_box_feed_forward_step(r * (x[:, t] @ win.T + z @ wrec.T), state, p, dt=c.dt)
        out.append(z)
    return torch.stack(out, 1)


def _throughput(benchmark, fn):
    out = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["samples"] = BATCH
    benchmark.extra_info["steps"] = STEPS
    benchmark.extra_info["samples_per_s"] = BATCH / benchmark.stats.stats.mean
    return out


def test_bench_norse_reservoir(benchmark, reservoir, x):
    with torch.no_grad():
        z = _throughput(benchmark, lambda: norse_reservoir(reservoir, x))
    ref, _ = reservoir.run(x)
    assert float((z != ref).float().mean()) < 0.01  # the same reservoir, up to rounding


def test_bench_reference_reservoir(benchmark, reservoir, x):
    prog = reservoir.compile("reference")
    _throughput(benchmark, lambda: prog.run(x))


def test_bench_rram_reservoir_ideal(benchmark, reservoir, x):
    prog = reservoir.compile("rram", config=DeviceConfig.from_profile().ideal())
    _throughput(benchmark, lambda: prog.run(x))


def test_bench_rram_reservoir_rram_40nm(benchmark, reservoir, x):
    prog = reservoir.compile("rram", config=DeviceConfig.from_profile())
    _throughput(benchmark, lambda: prog.run(x))
