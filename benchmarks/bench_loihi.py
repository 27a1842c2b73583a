"""Loihi 2 throughput: the batched torch emulator vs Lava's CPU simulator (one sample at a
time, one OS process per Lava process), on the same quantized network (the digits SNN,
64 → 64 LIF → 10 LIF, or a random network of that shape when the example model is
missing), in samples × steps per second. The two runs produce identical spikes (asserted
on the samples Lava ran). Prints the speed ratio.

Run: ``.venv/bin/python -m pytest -q benchmarks/bench_loihi.py --benchmark-only -s``
(``make bench``). Numbers are per machine; nothing here is asserted about time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.graph import load
from neurodeploy.targets.loihi.emulator import EmulatorTarget

pytest.importorskip("pytest_benchmark")

STEPS = 16
EMU_BATCH = 512
LAVA_SAMPLES = 3
DIGITS = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits_snn.nir"
RESULTS: dict[str, float] = {}


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


@pytest.fixture(scope="module")
def setup():
    g = _graph()
    prog = EmulatorTarget().compile(g)
    x = (torch.rand(EMU_BATCH, STEPS, 64, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    return prog, x


def test_bench_emulator_batched(benchmark, setup):
    prog, x = setup
    t0 = time.perf_counter()
    res = benchmark.pedantic(prog.run, args=(x,), rounds=3, iterations=1)
    per = (time.perf_counter() - t0) / 3
    RESULTS["emulator"] = EMU_BATCH * STEPS / per
    benchmark.extra_info["samples_x_steps_per_s"] = RESULTS["emulator"]
    assert res.output.shape == (EMU_BATCH, STEPS, 10)


def test_bench_lava_per_sample(benchmark, setup):
    pytest.importorskip("lava.proc.lif.process")
    from neurodeploy.targets.loihi.lava import LavaProgram

    prog, x = setup
    lp = LavaProgram(prog, "fixed_pt")
    xs = x[:LAVA_SAMPLES]
    t0 = time.perf_counter()
    res = benchmark.pedantic(lp.run, args=(xs,), rounds=1, iterations=1)
    RESULTS["lava"] = LAVA_SAMPLES * STEPS / (time.perf_counter() - t0)
    benchmark.extra_info["samples_x_steps_per_s"] = RESULTS["lava"]
    assert torch.equal(res.output, prog.run(xs).output)  # same spikes
    if "emulator" in RESULTS:
        ratio = RESULTS["emulator"] / RESULTS["lava"]
        benchmark.extra_info["emulator_over_lava"] = ratio
        print(f"\nloihi2-emu (batch {EMU_BATCH}): {RESULTS['emulator']:.0f} samples×steps/s; "
              f"lava fixed_pt (per sample): {RESULTS['lava']:.1f} samples×steps/s; ratio {ratio:.0f}×")
