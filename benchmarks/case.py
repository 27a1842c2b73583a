"""One benchmark case in a fresh process (so that its peak memory is its own):

    python benchmarks/case.py MODE BATCH [STEPS]

MODE: ``emu`` / ``ref`` (3 × 256 CubaLIF, in process), ``gemm`` (the bare float32 GEMMs of the
same shapes), ``dvs`` (compile + run the DVS-gesture-sized CNN). Prints one JSON line:
``seconds`` (median of 3 runs after a warm-up; ``dvs``: compile and one run), ``maxrss_mb``
(peak resident memory of the process) and the spike rates."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nets import dense_net, dvs_gesture_net, spikes  # noqa: E402


def _median(fn, rounds=3):
    fn()
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(mode: str, batch: int, steps: int = 100) -> dict:
    out: dict = {"mode": mode, "batch": batch, "steps": steps}
    if mode == "dvs":
        from neurodeploy.targets.loihi.target import EmulatorTarget

        t = time.perf_counter()
        g = dvs_gesture_net()
        prog = EmulatorTarget().compile(g)
        out["compile_s"] = time.perf_counter() - t
        x = torch.as_tensor(spikes(batch, steps, g.shapes["in"], p=0.1))
        t = time.perf_counter()
        r = prog.run(x, record="all")
        out["seconds"] = time.perf_counter() - t
        out["spike_rates"] = {k: float(v.mean()) for k, v in r.records.items() if k != "ro"}
    else:
        g = dense_net(256, 3)
        x = torch.as_tensor(spikes(batch, steps, (256,), p=0.2))
        if mode == "gemm":
            Ws = [torch.randn(256, 256) for _ in range(3)]
            a = x.reshape(-1, 256)
            out["seconds"] = _median(lambda: [a @ W for W in Ws])
        else:
            from neurodeploy.targets.base import get_target

            prog = get_target("loihi2-emu" if mode == "emu" else "reference").compile(g)
            out["seconds"] = _median(lambda: prog.run(x))
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), *(int(a) for a in sys.argv[3:]))))
