"""Throughput of LSM reservoirs, per machine (pytest-benchmark; every benchmark records
``samples_per_s``, ``steps_per_s`` and peak memory in ``extra_info``).

1. The paper's reservoir (200 LIF neurons, 256 inputs, 50 steps, batch 256): the RRAM
   target (ideal and with the rram_40nm non-idealities) vs the same reservoir in norse
   (``lif_box_feed_forward_step`` with the two matrix products) and the reference target.
   Also the lean reservoir program (``kernel="dense"``) on the same reservoir.
2. A fixed-fan-in reservoir (4096 neurons, fan-in 100, batch 64, 50 steps): our reservoir
   program (CSR and dense kernels) vs norse's LIF step with dense matrix products (norse
   has no sparse synapse layer) and with the same CSR products as ours.
3. Large sparse reservoirs (fan-in 100): 1e5 neurons on the CPU (batch 4, 10 steps) and
   1e6 neurons on CUDA (batch 16, 20 steps; skipped without CUDA), reference semantics and
   the rram_40nm device model (read noise, 8-bit ADC), CSR and gather kernels on CUDA.

``steps_per_s`` counts simulated time steps of the whole batch per second; peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak RSS on the CPU
(``ru_maxrss``: includes everything the process held before). ``weights_bytes`` is the
compiled program's weights.

Run: ``.venv/bin/python -m pytest -q benchmarks/bench_rram.py --benchmark-only`` (add
``-k cuda`` on a GPU machine for the CUDA cases only).
"""

import resource
import time

import pytest
import torch

from neurodeploy.targets.rram.device import DeviceConfig
from neurodeploy.targets.rram.lsm import LSMConfig, Reservoir

pytest.importorskip("pytest_benchmark")

BATCH, STEPS = 256, 50
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _inputs(batch, steps, n=256, p=0.25, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, n, generator=g) < p).float().to(device)


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _throughput(benchmark, fn, batch, steps, device="cpu", rounds=3, **info):
    def run():
        out = fn()
        _sync(device)
        return out

    _peak_reset(device)
    out = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing to record
        return out
    mean = benchmark.stats.stats.mean
    e = benchmark.extra_info
    e.update(samples=batch, steps=steps, device=str(device), samples_per_s=batch / mean, steps_per_s=steps / mean,
             ms_per_step=1e3 * mean / steps)
    if str(device).startswith("cuda"):
        e["gpu"] = torch.cuda.get_device_name()
        e["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
    else:
        e["peak_rss_bytes"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    e.update(info)
    return out


# ------------------------------------------------------------------------------ norse versions
def _norse_params(c):
    from norse.torch.functional.lif_box import LIFBoxParameters

    return LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / (c.dt / (1 - c.decay))), v_th=torch.as_tensor(c.threshold),
                            v_reset=torch.as_tensor(0.0), v_leak=torch.as_tensor(0.0))


def _norse_loop(res: Reservoir, x: torch.Tensor, current) -> torch.Tensor:
    """norse's LIF step over time; ``current(x_t, z)`` gives the synaptic input."""
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step

    c = res.config
    p = _norse_params(c)
    r = c.dt / (1 - c.decay) / c.dt
    state = LIFBoxFeedForwardState(v=torch.zeros(x.shape[0], c.n_neurons, device=x.device))
    z = torch.zeros(x.shape[0], c.n_neurons, device=x.device)
    out = []
    for t in range(x.shape[1]):
        z, state = lif_box_feed_forward_step(r * current(x[:, t], z), state, p, dt=c.dt)
        out.append(z)
    return torch.stack(out, 1)


def norse_reservoir(res: Reservoir, x: torch.Tensor, weights=None) -> torch.Tensor:
    """The reservoir with norse's LIF step and dense products (``weights``: prepared
    (w_in, w_rec) tensors on x's device)."""
    if weights is None:
        w = res.weights()
        weights = torch.as_tensor(w["w_in"]).to(x.device), torch.as_tensor(w["w_rec"]).to(x.device)
    win, wrec = weights
    return _norse_loop(res, x, lambda xt, z: xt @ win.T + z @ wrec.T)


def norse_sparse_reservoir(res: Reservoir, x: torch.Tensor, csr) -> torch.Tensor:
    """norse's LIF step with CSR products (``csr``: the (w_in, w_rec) CSR matrices)."""
    win, wrec = csr
    return _norse_loop(res, x, lambda xt, z: torch.sparse.mm(win, xt.T).T + torch.sparse.mm(wrec, z.T).T)


# ------------------------------------------------------------------------------ 1. 200 neurons
@pytest.fixture(scope="module")
def reservoir():
    return Reservoir(LSMConfig(n_neurons=200))


@pytest.fixture(scope="module")
def x():
    return _inputs(BATCH, STEPS)


@pytest.mark.parametrize("device", DEVICES)
def test_bench_norse_reservoir(benchmark, reservoir, x, device):
    pytest.importorskip("norse")
    xd = x.to(device)
    w = reservoir.weights()
    weights = torch.as_tensor(w["w_in"]).to(device), torch.as_tensor(w["w_rec"]).to(device)
    with torch.no_grad():
        z = _throughput(benchmark, lambda: norse_reservoir(reservoir, xd, weights), BATCH, STEPS, device)
    ref, _ = reservoir.run(x)
    assert float((z.cpu() != ref).float().mean()) < 0.01  # the same reservoir, up to rounding


@pytest.mark.parametrize("device", DEVICES)
def test_bench_reference_reservoir(benchmark, reservoir, x, device):
    prog = reservoir.compile("reference", device=device)
    xd = x.to(device)
    _throughput(benchmark, lambda: prog.run(xd), BATCH, STEPS, device)


@pytest.mark.parametrize("device", DEVICES)
def test_bench_reservoir_program(benchmark, reservoir, x, device):
    """The same reservoir through the lean reservoir program (one GEMM per layer and step,
    event counts in bulk): identical spikes and counts to the Graph program."""
    prog = reservoir.compile("reference", device=device, kernel="dense")
    xd = x.to(device)
    z = _throughput(benchmark, lambda: prog.run(xd), BATCH, STEPS, device)
    ref, _ = reservoir.run(x)
    assert float((z.output.cpu() != ref).float().mean()) < 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_bench_rram_reservoir_ideal(benchmark, reservoir, x, device):
    prog = reservoir.compile("rram", config=DeviceConfig.from_profile().ideal(), device=device)
    xd = x.to(device)
    _throughput(benchmark, lambda: prog.run(xd), BATCH, STEPS, device)


@pytest.mark.parametrize("device", DEVICES)
def test_bench_rram_reservoir_rram_40nm(benchmark, reservoir, x, device):
    prog = reservoir.compile("rram", config=DeviceConfig.from_profile(), device=device)
    xd = x.to(device)
    _throughput(benchmark, lambda: prog.run(xd), BATCH, STEPS, device)


# ------------------------------------------------------------------------------ 2. 4096, fan-in 100
MID = LSMConfig(n_neurons=4096, fan_in=100)
MID_BATCH, MID_STEPS = 64, 50


@pytest.fixture(scope="module")
def mid():
    return Reservoir(MID)


@pytest.fixture(scope="module")
def mid_x():
    return _inputs(MID_BATCH, MID_STEPS, seed=1)


@pytest.mark.parametrize("kernel", ["csr", "dense"])
@pytest.mark.parametrize("device", DEVICES)
def test_bench_sparse_reservoir_4096(benchmark, mid, mid_x, device, kernel):
    prog = mid.compile("reference", device=device, kernel=kernel)
    xd = mid_x.to(device)
    res = _throughput(benchmark, lambda: prog.run(xd), MID_BATCH, MID_STEPS, device, neurons=MID.n_neurons,
                      fan_in=MID.fan_in, kernel=kernel, weights_bytes=prog.nbytes())
    benchmark.extra_info["spike_rate"] = float(res.output.float().mean())


@pytest.mark.parametrize("device", DEVICES)
def test_bench_norse_dense_reservoir_4096(benchmark, mid, mid_x, device):
    pytest.importorskip("norse")
    w = mid.weights()
    weights = torch.as_tensor(w["w_in"]).to(device), torch.as_tensor(w["w_rec"]).to(device)
    xd = mid_x.to(device)
    with torch.no_grad():
        z = _throughput(benchmark, lambda: norse_reservoir(mid, xd, weights), MID_BATCH, MID_STEPS, device,
                        neurons=MID.n_neurons, fan_in=MID.fan_in)
    ours = mid.compile("reference", device=device).run(xd).output
    assert float((z != ours).float().mean()) < 0.01  # the same reservoir, up to rounding


@pytest.mark.parametrize("device", DEVICES)
def test_bench_norse_csr_reservoir_4096(benchmark, mid, mid_x, device):
    pytest.importorskip("norse")
    prog = mid.compile("reference", device=device)
    csr = prog.layers["w_in"].w, prog.layers["w_rec"].w
    xd = mid_x.to(device)
    with torch.no_grad():
        z = _throughput(benchmark, lambda: norse_sparse_reservoir(mid, xd, csr), MID_BATCH, MID_STEPS, device,
                        neurons=MID.n_neurons, fan_in=MID.fan_in)
    assert float((z != prog.run(xd).output).float().mean()) < 0.01


# ------------------------------------------------------------------------------ 3. large
LARGE = {"cpu": (100_000, 4, 10), "cuda": (1_000_000, 16, 20)}  # neurons, batch, steps
_built = {}


def _large(device):
    if device not in _built:
        n = LARGE[device][0]
        _peak_reset(device)
        t0 = time.perf_counter()
        r = Reservoir(LSMConfig(n_neurons=n, fan_in=100), device=device)
        _sync(device)
        _built[device] = (r, time.perf_counter() - t0)
    return _built[device]


@pytest.mark.parametrize("device,kernel", [("cpu", "csr"), pytest.param("cuda", "csr", marks=CUDA),
                                           pytest.param("cuda", "gather", marks=CUDA)])
@pytest.mark.parametrize("target", ["reference", "rram_40nm"])
def test_bench_large_sparse_reservoir(benchmark, device, kernel, target):
    n, batch, steps = LARGE[device]
    res, build_s = _large(device)
    t0 = time.perf_counter()
    if target == "reference":
        prog = res.compile("reference", device=device, kernel=kernel)
    else:
        prog = res.compile("rram", config=DeviceConfig.from_profile(), device=device, kernel=kernel)
    _sync(device)
    compile_s = time.perf_counter() - t0
    x = _inputs(batch, steps, seed=2, device=device)
    out = _throughput(benchmark, lambda: prog.run(x), batch, steps, device, rounds=3, neurons=n, fan_in=100,
                      kernel=kernel, build_s=build_s, compile_s=compile_s, weights_bytes=prog.nbytes(),
                      reservoir_bytes=sum(w.nbytes() for w in res.sparse.values()))
    e = benchmark.extra_info
    e["spike_rate"] = float(out.output.float().mean())
    e["neuron_steps_per_s"] = n * batch * steps / benchmark.stats.stats.mean if benchmark.stats else None
    e["stored_synaptic_events"] = out.counts["w_rec"]["stored_synaptic_events"] + out.counts["w_in"]["stored_synaptic_events"]
    if device == "cuda":  # the same spikes on a rerun? (cuSPARSE's CSR product is not bitwise deterministic)
        e["deterministic"] = bool(torch.equal(prog.run(x).output, out.output))
    assert 0 < e["spike_rate"] < 1
