"""Issue 11's CPU figures (docs/benchmarks.md, "Issue 11"): every ratio from one run.

* ``test_bench_cli_vs_lava``: the dense 3 × 256 CubaLIF net, 100 steps, through
  ``neurodeploy run --target loihi2-emu`` at batch 64 and 1024 (marginal cost per sample =
  the difference / 960, start-up and compile excluded) against Lava ``fixed_pt``'s
  marginal cost per sample (2 samples minus 1, one Lava run per sample as the target runs
  it); Lava's spikes are checked equal to the emulator's. Goal ≥ 1000×.
* ``test_bench_emulator_vs_gemm``: in process, batch 256 and 1024: the emulator vs the bare
  float32 GEMMs of the same shapes (3 × (batch·100, 256) @ (256, 256)) and the reference
  target, each in its own process (``case.py``) so that its peak memory per sample is its
  own (marginal: Δ peak RSS / Δ batch). Goal: emulator ≤ 2× the GEMMs.
* ``test_bench_cli_startup``: ``python -m neurodeploy.cli --help`` and ``... run --help``, best
  of 5 each. Goal ≤ 0.5 s.
* ``test_bench_dvs_memory``: the DVS-gesture-sized CNN compiled and run on 4 samples × 20
  steps in a fresh process: peak RSS. Goal ≤ 4 GB.

Run: ``.venv/bin/python -m pytest -q -s benchmarks/bench_issue11.py --benchmark-only``.
Nothing is asserted about time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nets import dense_net, spikes  # noqa: E402

pytest.importorskip("pytest_benchmark")
PY = sys.executable
STEPS = 100


def _case(*args) -> dict:
    out = subprocess.run([PY, str(HERE / "case.py"), *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli_run(model, xfile, out) -> float:
    t = time.perf_counter()
    subprocess.run([PY, "-m", "neurodeploy.cli", "--quiet", "run", str(model), "--target", "loihi2-emu",
                    "-i", str(xfile), "-o", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t


def test_bench_cli_vs_lava(benchmark, tmp_path):
    pytest.importorskip("lava.proc.lif.process")
    from neurodeploy.graph import save
    from neurodeploy.targets.loihi.lava import LavaProgram
    from neurodeploy.targets.loihi.target import EmulatorTarget

    g = dense_net(256, 3)
    model = tmp_path / "dense.nir"
    save(g, model)
    t = {}
    for b in (64, 1024):
        np.savez(tmp_path / f"x{b}.npz", x=spikes(b, STEPS, (256,), p=0.2, seed=b))
        _cli_run(model, tmp_path / f"x{b}.npz", tmp_path / "o.npz")  # warm the page cache
        t[b] = min(_cli_run(model, tmp_path / f"x{b}.npz", tmp_path / f"o{b}.npz") for _ in range(2))
    cli_marginal = (t[1024] - t[64]) / (1024 - 64)
    with np.load(tmp_path / "o1024.npz") as d:
        size = (tmp_path / "o1024.npz").stat().st_size
        assert d["outputs"].dtype == np.bool_
    emu = EmulatorTarget().compile(g)
    lp = LavaProgram(emu, "fixed_pt")
    xs = spikes(2, STEPS, (256,), p=0.2, seed=7)
    lava_t = {}
    for n in (1, 2):
        t0 = time.perf_counter()
        res = benchmark.pedantic(lp.run, args=(xs[:n],), rounds=1, iterations=1) if n == 2 else lp.run(xs[:n])
        lava_t[n] = time.perf_counter() - t0
        assert torch.equal(res.output, emu.run(xs[:n]).output)  # identical spikes
    lava_marginal = lava_t[2] - lava_t[1]
    benchmark.extra_info.update({
        "cli_s": {str(b): v for b, v in t.items()}, "cli_marginal_s_per_sample": cli_marginal,
        "output_bytes_1024": size, "lava_s": {str(k): v for k, v in lava_t.items()},
        "lava_marginal_s_per_sample": lava_marginal, "ratio": lava_marginal / cli_marginal, "goal": 1000,
    })
    print(f"\nCLI loihi2-emu: {t[64]:.2f} s (64) / {t[1024]:.2f} s (1024): {cli_marginal * 1e3:.2f} ms per sample; "
          f"output {size / 1e6:.1f} MB; Lava: {lava_t[1]:.2f} s (1) / {lava_t[2]:.2f} s (2): "
          f"{lava_marginal:.2f} s per sample; ratio {lava_marginal / cli_marginal:,.0f}× (goal ≥ 1000×)")


def test_bench_emulator_vs_gemm(benchmark):
    rows = {}
    for b in (256, 1024):
        rows[b] = {m: _case(m, b) for m in ("emu", "gemm", "ref")}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    info = benchmark.extra_info
    lines = []
    for b, r in rows.items():
        ratio = r["emu"]["seconds"] / r["gemm"]["seconds"]
        info[f"batch{b}"] = {**{f"{m}_s": c["seconds"] for m, c in r.items()}, "emulator_over_gemm": ratio,
                             "emulator_over_reference": r["emu"]["seconds"] / r["ref"]["seconds"]}
        lines.append(f"batch {b}: emulator {r['emu']['seconds']:.3f} s, GEMMs {r['gemm']['seconds']:.3f} s "
                     f"({ratio:.2f}×, goal ≤ 2×), reference {r['ref']['seconds']:.3f} s")
    for m in ("emu", "gemm", "ref"):
        per = (rows[1024][m]["maxrss_mb"] - rows[256][m]["maxrss_mb"]) / (1024 - 256) * 1024
        info[f"{m}_peak_kb_per_sample"] = per
        lines.append(f"{m}: peak RSS {rows[256][m]['maxrss_mb']:.0f} / {rows[1024][m]['maxrss_mb']:.0f} MB "
                     f"(256 / 1024): {per:.0f} kB per sample")
    print("\n" + "\n".join(lines))


def test_bench_cli_startup(benchmark):
    def once(*args):
        t = time.perf_counter()
        subprocess.run([PY, "-m", "neurodeploy.cli", *args, "--help"], check=True, capture_output=True)
        return time.perf_counter() - t

    best = min(once() for _ in range(5))
    best_run = min(once("run") for _ in range(5))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    imp = subprocess.run([PY, "-X", "importtime", "-c", "import neurodeploy.cli"], capture_output=True, text=True)
    rows = [ln.split("|") for ln in imp.stderr.splitlines() if ln.count("|") == 2]
    top = sorted((f"{int(r[1]) / 1e6:.2f} s {r[2].strip()}" for r in rows
                  if r[1].strip().isdigit() and r[2].startswith("   ") and not r[2].startswith("    ")),
                 key=lambda s_: -float(s_.split()[0]))[:5]
    benchmark.extra_info.update({"help_s": best, "run_help_s": best_run, "goal_s": 0.5, "largest_imports": top})
    print(f"\nneurodeploy --help: {best:.2f} s, run --help: {best_run:.2f} s (goal ≤ 0.5 s); largest imports "
          f"directly under neurodeploy.cli:\n" + "\n".join(top))


def test_bench_dvs_memory(benchmark):
    r = _case("dvs", 4, 20)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({**r, "goal_mb": 4096})
    print(f"\nDVS CNN: compile {r['compile_s']:.2f} s, 4 × 20 run {r['seconds']:.2f} s, peak RSS {r['maxrss_mb']:.0f} MB "
          f"(goal ≤ 4096 MB); spike rates {r['spike_rates']}")
