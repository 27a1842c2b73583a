"""Issue 11's CPU figures without Lava, in one run, for a machine where the 2 cores can be
had alone (``taskset -c 0,1 python3 benchmarks/cpu_issue11.py OUT.json``): the emulator vs
the bare float32 GEMMs and the reference target in process (batch 256, 1024; each case in
its own process, so peak memory per sample is its own), the CLI's marginal cost per sample
(batch 64 → 1024), CLI start-up (``--help`` and ``run --help``, best of 5) and the DVS CNN's
peak memory; also the emulator with its float64 CPU step (``NEURODEPLOY_CPU_F32=0``).
``bench_issue11.py`` measures the same plus Lava (which needs Python 3.10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from nets import dense_net, spikes  # noqa: E402

PY = sys.executable


def case(*args, env=None) -> dict:
    out = subprocess.run([PY, str(HERE / "case.py"), *map(str, args)], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def check_finite_cost() -> dict:
    """Seconds of the input's NaN/Inf check (``targets.base.check_finite``, part of every
    run) alone, on the batch-256 and 1024 inputs (median of 3)."""
    import statistics

    import torch

    from neurodeploy.targets.base import check_finite

    out = {}
    for b in (256, 1024):
        x = torch.as_tensor(spikes(b, 100, (256,), p=0.2))
        ts = []
        for _ in range(4):
            t = time.perf_counter()
            check_finite("x", x)
            ts.append(time.perf_counter() - t)
        out[str(b)] = statistics.median(ts[1:])
    return out


def diagnose_cost() -> dict:
    """Seconds of the input-dependent diagnostics the CLI's ``run`` computes after the run
    (``graph.diagnose.diagnose(graph, steps, x)``), at batch 64 and 1024 (median of 3)."""
    import statistics

    from neurodeploy.graph.diagnose import diagnose

    g, out = dense_net(256, 3), {}
    for b in (64, 1024):
        x = spikes(b, 100, (256,), p=0.2, seed=b)
        ts = []
        for _ in range(4):
            t = time.perf_counter()
            diagnose(g, steps=100, x=x)
            ts.append(time.perf_counter() - t)
        out[str(b)] = statistics.median(ts[1:])
    return out


def main(path):
    from neurodeploy.graph import save

    res = {"in_process": {}, "cli": {}}
    for b in (256, 1024):
        res["in_process"][str(b)] = {m: case(m, b) for m in ("emu", "gemm", "ref")}
        r = res["in_process"][str(b)]
        r["emu_f64_step"] = case("emu", b, env={"NEURODEPLOY_CPU_F32": "0"})
        r["emulator_over_gemm"] = r["emu"]["seconds"] / r["gemm"]["seconds"]
        r["emulator_over_reference"] = r["emu"]["seconds"] / r["ref"]["seconds"]
        print(b, json.dumps(r), flush=True)
    lo, hi = res["in_process"]["256"], res["in_process"]["1024"]
    res["peak_kb_per_sample"] = {m: (hi[m]["maxrss_mb"] - lo[m]["maxrss_mb"]) / 768 * 1024 for m in ("emu", "gemm", "ref")}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        save(dense_net(256, 3), d / "dense.nir")
        for b in (64, 1024):
            np.savez(d / f"x{b}.npz", x=spikes(b, 100, (256,), p=0.2, seed=b))
            cmd = [PY, "-m", "neurodeploy.cli", "--quiet", "run", str(d / "dense.nir"), "--target", "loihi2-emu",
                   "-i", str(d / f"x{b}.npz"), "-o", str(d / f"o{b}.npz")]
            timed(cmd)
            res["cli"][str(b)] = min(timed(cmd) for _ in range(2))
        res["cli_marginal_s_per_sample"] = (res["cli"]["1024"] - res["cli"]["64"]) / 960
    res["help_s"] = min(timed([PY, "-m", "neurodeploy.cli", "--help"]) for _ in range(5))
    res["run_help_s"] = min(timed([PY, "-m", "neurodeploy.cli", "run", "--help"]) for _ in range(5))
    res["dvs"] = case("dvs", 4, 20)
    res["check_finite_s"] = check_finite_cost()
    res["diagnose_s"] = diagnose_cost()
    print(json.dumps({k: v for k, v in res.items() if k != "in_process"}), flush=True)
    Path(path).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu_issue11.json")
