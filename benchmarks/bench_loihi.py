"""Loihi 2 throughput: the batched torch emulator vs Lava's CPU simulator, measured in one
run on the same quantized network (the digits SNN, 64 → 64 LIF → 10 LIF, or a random
network of that shape when the example model is missing) and the same random input spikes
(30 % density, 16 steps), in samples × steps per second:

* **emulator** (target ``loihi2-emu``, CPU): batched; the batch sizes in ``EMU_BATCHES``
  are tried and the fastest is reported (the figure at batch 512 is recorded too), each
  as the median of ``ROUNDS`` timed runs after a warm-up run. Default run options: chunks
  of 1024 samples, ``torch.get_num_threads()`` worker threads.
* **Lava** (target ``lava``, ``fixed_pt``): one sample at a time, as the target runs it
  (each sample builds and runs its own Lava processes); ``LAVA_SAMPLES`` samples of
  ``STEPS`` steps. Lava's time per sample is mostly start-up, so one longer sample
  (``LAVA_LONG_STEPS``) also gives its *marginal* cost per step (start-up excluded).

Printed and stored in ``benchmark.extra_info``: both rates, ``emulator_over_lava`` (the
issue's ratio: emulator batched vs Lava per sample, end to end) and
``emulator_over_lava_steady`` (against Lava's marginal per-step rate, the conservative
one). Every Lava run is checked to give exactly the emulator's spikes. On a CUDA machine
the emulator's GPU rate is recorded as well.

``test_bench_lava_conv_lowering``: one conv Program lowered to Lava ``Conv``, ``Sparse`` and
``Dense`` processes; marginal Lava time per step of each (docs/loihi.md, "Lava lowering").

Run: ``.venv/bin/python -m pytest -q benchmarks/bench_loihi.py --benchmark-only -s``
(``make bench``). Numbers are per machine (and per load: other processes on the cores
slow both sides); nothing here is asserted about time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.graph import load
from neurodeploy.targets.loihi.emulator import EmulatorTarget

pytest.importorskip("pytest_benchmark")

STEPS = 16
EMU_BATCHES = (512, 1024, 2048, 4096, 8192, 16384)
ROUNDS = 5
LAVA_SAMPLES = 3
LAVA_LONG_STEPS = 8 * STEPS
GOAL = 1000.0
DIGITS = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits_snn.nir"


def _graph():
    if DIGITS.exists():
        return load(DIGITS)
    import nir

    rng = np.random.default_rng(0)
    ones = lambda n: np.ones(n, np.float32)  # noqa: E731
    lif = lambda n: nir.LIF(tau=ones(n) * 2e-2, r=ones(n), v_leak=0 * ones(n), v_threshold=ones(n), v_reset=0 * ones(n))  # noqa: E731
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([64])),
        "0": nir.Linear(weight=rng.normal(0.2, 1, (64, 64)).astype(np.float32)), "1": lif(64),
        "2": nir.Linear(weight=rng.normal(0.2, 1, (10, 64)).astype(np.float32)), "3": lif(10),
        "output": nir.Output(output_type=np.array([10]))},
        edges=[("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "output")])
    return load(g, dt=1e-3)


def _spikes(batch: int, steps: int = STEPS, seed: int = 0) -> torch.Tensor:
    return (torch.rand(batch, steps, 64, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def _median_time(fn, *args, rounds: int = ROUNDS, **kw) -> float:
    fn(*args, **kw)  # warm-up (first-touch of buffers, kernel selection)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(*args, **kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@pytest.fixture(scope="module")
def prog():
    return EmulatorTarget().compile(_graph())


def test_bench_emulator_vs_lava(benchmark, prog):
    pytest.importorskip("lava.proc.lif.process")
    from neurodeploy.targets.loihi.lava import LavaProgram

    info = benchmark.extra_info
    # ---- emulator, CPU, batched: the fastest batch ----------------------------------
    rates = {}
    for b in EMU_BATCHES:
        rates[b] = b * STEPS / _median_time(prog.run, _spikes(b))
    best = max(rates, key=rates.get)
    xb = _spikes(best)
    res = benchmark.pedantic(prog.run, args=(xb,), rounds=ROUNDS, warmup_rounds=1, iterations=1)
    emu = best * STEPS / benchmark.stats.stats.median
    assert res.output.shape == (best, STEPS, 10)
    # ---- Lava, one sample at a time -------------------------------------------------
    lp = LavaProgram(prog, "fixed_pt")
    xs = _spikes(LAVA_SAMPLES, seed=1)
    t0 = time.perf_counter()
    lav = lp.run(xs)
    t_short = time.perf_counter() - t0
    assert torch.equal(lav.output, prog.run(xs).output)  # identical spikes
    xl = _spikes(1, LAVA_LONG_STEPS, seed=2)
    t0 = time.perf_counter()
    lav_long = lp.run(xl)
    t_long = time.perf_counter() - t0
    assert torch.equal(lav_long.output, prog.run(xl).output)
    lava = LAVA_SAMPLES * STEPS / t_short
    per_sample = t_short / LAVA_SAMPLES
    per_step = max(t_long - per_sample, 1e-9) / (LAVA_LONG_STEPS - STEPS)  # start-up excluded
    lava_steady = 1.0 / per_step
    # ---- report ------------------------------------------------------------------------
    info.update({
        "steps": STEPS,
        "emulator_samples_x_steps_per_s": emu,
        "emulator_batch": best,
        "emulator_threads": res.info.get("threads"),
        "emulator_chunk": res.info.get("chunk"),
        "emulator_by_batch": {str(b): r for b, r in rates.items()},
        "emulator_batch512_samples_x_steps_per_s": rates.get(512),
        "lava_samples_x_steps_per_s": lava,
        "lava_s_per_sample": per_sample,
        "lava_steady_samples_x_steps_per_s": lava_steady,
        "emulator_over_lava": emu / lava,
        "emulator_over_lava_steady": emu / lava_steady,
        "goal": GOAL,
    })
    lines = [
        f"loihi2-emu CPU (batch {best}, {res.info.get('threads')} thread(s), chunk {res.info.get('chunk')}): "
        f"{emu:,.0f} samples×steps/s  [by batch: "
        + ", ".join(f"{b}: {r / 1e6:.2f}M" for b, r in rates.items()) + "]",
        f"lava fixed_pt, per sample ({LAVA_SAMPLES} × {STEPS} steps, {per_sample:.2f} s/sample): "
        f"{lava:,.1f} samples×steps/s; steady state ({per_step * 1e3:.2f} ms/step): {lava_steady:,.0f}",
        f"ratio emulator/lava: {emu / lava:,.0f}× end to end, {emu / lava_steady:,.0f}× vs Lava's steady state "
        f"(goal ≥ {GOAL:,.0f}×)",
    ]
    if torch.cuda.is_available():
        xg = _spikes(65536)
        g = 65536 * STEPS / _median_time(prog.run, xg, device="cuda")
        info["emulator_cuda_samples_x_steps_per_s"] = g
        lines.append(f"loihi2-emu CUDA (batch 65536): {g:,.0f} samples×steps/s")
    print("\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------
# Lava lowering of a conv net: Conv vs Sparse vs Dense processes for the same Program
# ---------------------------------------------------------------------------------------
CONV_SHORT, CONV_LONG = 16, 80


def _conv_graph():
    """2×32×32 → conv 3×3 p1 → 8×32×32 LIF → SumPool 2 + conv 3×3 p1 → 8×16×16 LIF →
    flatten → dense 10 → LI (unrolled matrices 8192×2048 and 2048×8192)."""
    import nir

    rng = np.random.default_rng(0)

    def lif(shape, tau):
        o = np.ones(shape, np.float32)
        return nir.LIF(tau=o * tau, r=o, v_leak=0 * o, v_threshold=o * float(rng.uniform(0.4, 0.9)), v_reset=0 * o)

    def conv(c_out, c_in, h, mean):
        w = (rng.normal(mean, 1.0, (c_out, c_in, 3, 3)) * 2).astype(np.float32)
        return nir.Conv2d(input_shape=(h, h), weight=w, stride=1, padding=1, dilation=1, groups=1,
                          bias=np.zeros(c_out, np.float32))

    o10 = np.ones(10, np.float32)
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type=np.array([2, 32, 32])),
        "conv1": conv(8, 2, 32, 0.6), "lif1": lif((8, 32, 32), 1e-2),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": conv(8, 8, 16, 0.3), "lif2": lif((8, 16, 16), 1e-2),
        "flat": nir.Flatten(input_type={"input": np.array([8, 16, 16])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0.1, 1, (10, 2048)).astype(np.float32)),
        "ro": nir.LI(tau=o10 * 2e-2, r=o10, v_leak=0 * o10), "out": nir.Output(output_type=np.array([10]))},
        edges=[("in", "conv1"), ("conv1", "lif1"), ("lif1", "pool"), ("pool", "conv2"), ("conv2", "lif2"),
               ("lif2", "flat"), ("flat", "fc"), ("fc", "ro"), ("ro", "out")])
    return load(g, dt=1e-3)


def _lava_steps_only(program, plan, steps):  # runs in run_isolated's child
    from neurodeploy.targets.loihi import lava as lv

    L = lv._lava()
    x = (np.random.default_rng(1).random((steps, 2 * 32 * 32)) < 0.3).astype(np.float32).T
    procs, _, _ = lv.build(program, {"in": x}, steps, "fixed_pt", plan=plan)
    t0 = time.perf_counter()
    try:
        procs["in"].run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](select_tag="fixed_pt"))
        return time.perf_counter() - t0
    finally:
        procs["in"].stop()


def test_bench_lava_conv_lowering(benchmark):
    """Marginal Lava time per step (run only: Lava's element-by-element result readback is
    excluded) of the same conv Program lowered to Conv, Sparse and Dense processes; the
    Conv and Sparse lowerings are checked to give the emulator's spikes."""
    pytest.importorskip("lava.proc.lif.process")
    from neurodeploy.targets.loihi.lava import LavaProgram, lower, run_isolated

    prog = EmulatorTarget().compile(_conv_graph())
    x = (torch.rand(1, CONV_SHORT, 2, 32, 32, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    emu = prog.run(x, record=["lif1", "lif2"])
    for kw in ({}, {"conv": False}):
        lav = LavaProgram(prog, **kw).run(x, record=["lif1", "lif2"])
        for p in ("lif1", "lif2"):
            assert torch.equal(lav.records[p], emu.records[p])
    per_step, kinds = {}, {}
    for name, kw in (("conv", {}), ("sparse", {"conv": False}), ("dense", {"conv": False, "sparse_density": 0})):
        plan = lower(prog, "fixed_pt", **kw)
        kinds[name] = plan.processes()
        t = {s: run_isolated(_lava_steps_only, (prog, plan, s), 600, f"{name} {s} steps") for s in (CONV_SHORT, CONV_LONG)}
        per_step[name] = (t[CONV_LONG] - t[CONV_SHORT]) / (CONV_LONG - CONV_SHORT)
    benchmark.pedantic(lambda: lower(prog, "fixed_pt"), rounds=1, iterations=1)
    benchmark.extra_info.update({"lava_ms_per_step": {k: v * 1e3 for k, v in per_step.items()}, "processes": kinds})
    print("\nlava conv net, ms/step (run only): " + ", ".join(f"{k} {v * 1e3:.1f} ({kinds[k]['conv2']})"
                                                           for k, v in per_step.items()))
