"""Issue 11's GPU figures, in one process on one CUDA device (the device machine; no Lava).

    python3 benchmarks/gpu_issue11.py OUT.json

* dense 3-layer CubaLIF nets, 100 steps, widths 256…4096: ``loihi2-emu`` vs the
  ``reference`` target vs the bare float32 GEMMs of the same shapes (3 × (batch·steps, w) @
  (w, w), TF32 off), each the median of ``ROUNDS`` timed runs after a warm-up; peak CUDA
  memory per sample of each run;
* the DVS-gesture-sized CNN (benchmarks/nets.py), 20 steps: emulator vs reference;
* bit-identity: every emulator case's CUDA run equals its CPU run on a slice of the batch
  (outputs and counts);
* the fused CUDA step (:mod:`neurodeploy.targets.loihi.fused`) against the plain torch path:
  bit-identity on the test nets and random integer programs, and each dense case's time
  with the plain path (``emulator_plain_s``);
* a torch.profiler table of the widest case (where the emulator's time goes).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nets import dense_net, dvs_gesture_net, spikes  # noqa: E402

from neurodeploy.targets.base import get_target  # noqa: E402
from neurodeploy.targets.loihi.target import EmulatorTarget  # noqa: E402

ROUNDS = 5
DENSE = [(256, 4096), (512, 4096), (1024, 2048), (2048, 1024), (4096, 256)]
STEPS = 100


def timed(fn, rounds=ROUNDS):
    fn()
    ts = []
    for _ in range(rounds):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def peak_per_sample(fn, batch):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / batch


def same_as_cpu(prog, x, n=8):
    a, b = prog.run(x[:n], device="cuda"), prog.run(x[:n].cpu(), device="cpu")
    return all(torch.equal(a.outputs[k].cpu(), b.outputs[k]) for k in a.outputs) and a.counts == b.counts


def case(g, x, steps_note):
    batch = x.shape[0]
    emu = EmulatorTarget().compile(g, device="cuda")
    ref = get_target("reference").compile(g, device="cuda")
    r = {"batch": batch, "steps": x.shape[1], "note": steps_note}
    r["emulator_s"] = timed(lambda: emu.run(x))
    r["reference_s"] = timed(lambda: ref.run(x))
    r["emulator_bytes_per_sample"] = peak_per_sample(lambda: emu.run(x), batch)
    r["reference_bytes_per_sample"] = peak_per_sample(lambda: ref.run(x), batch)
    r["emulator_over_reference"] = r["emulator_s"] / r["reference_s"]
    r["cuda_equals_cpu"] = same_as_cpu(emu, x)
    out = emu.run(x[:64], record="all").records
    r["spike_rates"] = {k: float(v.float().mean()) for k, v in out.items()}
    return r, emu


def fused_identity() -> dict:
    """The fused CUDA step against the plain torch path (NEURODEPLOY_FUSED=0), on the test
    suite's nets and random integer programs (wraps, clips, delays, recurrence): records,
    potentials, counts and event counts equal."""
    import os

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import numpy as np
    from loihi_nets import conv_net, conv_stack_net, dense_net as small_dense, random_program, stress_net

    from neurodeploy.targets.loihi.emulator import EmulatorProgram

    progs = [EmulatorTarget().compile(g) for g in (small_dense(1), conv_net(2), conv_stack_net(3, "pool-conv"),
                                                  stress_net(n_in=700, kind="CubaLI"), stress_net(n_in=700, kind="CubaLIF"))]
    progs += [EmulatorProgram.of(random_program(s, overflow=s % 2 == 1)[0]) for s in range(12)]
    out = {"programs": len(progs), "identical": 0, "failed": []}
    for i, prog in enumerate(progs):
        shape = next(iter(prog.inputs.values()))
        x = torch.as_tensor((np.random.default_rng(i).random((5, 25, *shape)) < 0.5).astype(np.float32), device="cuda")
        os.environ["NEURODEPLOY_FUSED"] = "1"
        a = prog.run(x, record="all", record_states=True)
        os.environ["NEURODEPLOY_FUSED"] = "0"
        b = prog.run(x, record="all", record_states=True)
        os.environ["NEURODEPLOY_FUSED"] = "1"
        same = (all(torch.equal(a.records[k], b.records[k]) for k in a.records)
                and all(torch.equal(a.states[k], b.states[k]) for k in a.states) and a.counts == b.counts
                and all(a.info[k] == b.info[k] for k in ("u_wrap_events", "v_saturation_events", "int32_wrap_events")))
        out["identical"] += same
        if not same:
            out["failed"].append(i)
    return out


def main(path):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dense": {}, "conv": {}}
    import os

    res["fused_identity"] = fused_identity()
    print("fused vs plain:", res["fused_identity"], flush=True)
    widest = None
    for w, batch in DENSE:
        g = dense_net(w, 3)
        x = torch.as_tensor(spikes(batch, STEPS, (w,), p=0.2), device="cuda")
        r, emu = case(g, x, "3 x CubaLIF")
        Ws = [torch.randn(w, w, device="cuda") for _ in range(3)]
        a = x.reshape(-1, w)
        r["gemm_s"] = timed(lambda: [a @ W for W in Ws])
        r["emulator_over_gemm"] = r["emulator_s"] / r["gemm_s"]
        os.environ["NEURODEPLOY_FUSED"] = "0"
        r["emulator_plain_s"] = timed(lambda: emu.run(x))
        os.environ["NEURODEPLOY_FUSED"] = "1"
        res["dense"][str(w)] = r
        print(w, json.dumps(r), flush=True)
        widest = (emu, x)
    for batch in (16, 64):
        g = dvs_gesture_net()
        x = torch.as_tensor(spikes(batch, 20, g.shapes["in"], p=0.1), device="cuda")
        r, _ = case(g, x, "DVS-gesture-sized CNN")
        res["conv"][str(batch)] = r
        print("dvs", batch, json.dumps(r), flush=True)
    from torch.profiler import ProfilerActivity, profile

    emu, x = widest
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        emu.run(x)
        torch.cuda.synchronize()
    res["profile_widest"] = p.key_averages().table(sort_by="cuda_time_total", row_limit=15)
    print(res["profile_widest"])
    Path(path).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gpu_issue11.json")
