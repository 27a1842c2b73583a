"""ONNX → SNN on the bundled digits: accuracy, synaptic events and energy vs time steps T on
reference, loihi2-emu and rram, against the ANN's onnxruntime accuracy (docs/convert.md).

    python examples/convert_digits.py            # full sweep (a few minutes on 1 CPU thread)
    python examples/convert_digits.py --quick    # CI: CNN only, T = 8, 32, 120 test samples

Trains the digits CNN and the residual net (examples/convert_models.py, seeded), exports them
with torch.onnx.export, converts each at every T (reset by subtraction for reference/rram;
balanced reset to zero for Loihi), runs the test split and prints markdown tables; ``--json``
writes every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_models  # noqa: E402

import neurodeploy  # noqa: E402
from neurodeploy.hardware import load_profile  # noqa: E402
from neurodeploy.hardware.energy import estimate_energy  # noqa: E402


def _acc(conv, res, y) -> float:
    return float((conv.predict(res) == y).mean())


def _events(res) -> float:
    return sum(c.get("synaptic_events", 0) for c in res.counts.values()) / res.batch


def _run(conv, x, y, target, profile):
    hw = load_profile(profile)
    prog = conv.compile(target, hardware=hw) if target != "reference" else conv.compile(target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = conv.run(x, target=target, program=prog)
    e = estimate_energy(res, hw, prog.describe(), conv.graph)
    return {"accuracy": _acc(conv, res, y), "synaptic_events_per_sample": _events(res),
            "spikes_per_sample": sum(c.get("spikes", 0) for c in res.counts.values()) / res.batch,
            "energy_per_inference_J": e["per_inference_J"], "dynamic_energy_per_inference_J": e["dynamic_per_inference_J"],
            "overflow_warnings": [str(w.message) for w in caught]}


def sweep(path, x_cal, x, y, steps, rram: bool = True) -> dict:
    conv = neurodeploy.convert(path, x_cal, steps=steps[0])
    out = {"ann_accuracy": float((conv.ann(x).argmax(1) == y).mean()),
           "saturated_rate_ann_accuracy": float((conv.saturated_ann(x).argmax(1) == y).mean()), "T": {}}
    for T in steps:
        sub = neurodeploy.convert(path, x_cal, steps=T)
        t0 = time.perf_counter()
        zero = neurodeploy.convert(path, x_cal, steps=T, reset="zero")
        row = {"convert_zero_s": time.perf_counter() - t0,
               "reference": _run(sub, x, y, "reference", "loihi2"),
               "reference_zero_unbalanced": _run(neurodeploy.convert(path, x_cal, steps=T, reset="zero", balance=False), x, y, "reference", "loihi2"),
               "reference_zero": _run(zero, x, y, "reference", "loihi2"),
               "loihi2-emu": _run(zero, x, y, "loihi2-emu", "loihi2")}
        if rram:
            row["rram"] = _run(sub, x, y, "rram", "rram_40nm")
        out["T"][T] = row
        print(f"  T={T}: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in row.items() if isinstance(v, dict)), file=sys.stderr)
    return out


def table(name: str, r: dict) -> str:
    cols = [c for c in ("reference", "rram", "reference_zero_unbalanced", "reference_zero", "loihi2-emu") if c in next(iter(r["T"].values()))]
    head = ["T", *[f"{c} acc" for c in cols], "syn. events/inf (ref)", "Loihi E/inf (dyn)", "RRAM E/inf"]
    lines = [f"**{name}** — ANN (onnxruntime) {100 * r['ann_accuracy']:.1f} %, rate network with 1 spike/step "
             f"ceiling {100 * r['saturated_rate_ann_accuracy']:.1f} %", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for T, row in r["T"].items():
        rr = row.get("rram")
        cells = [str(T), *[f"{100 * row[c]['accuracy']:.1f}" + (" ⚠" if row[c]["overflow_warnings"] else "") for c in cols],
                 f"{row['reference']['synaptic_events_per_sample']:.3g}",
                 f"{row['loihi2-emu']['energy_per_inference_J'] * 1e6:.2f} µJ ({row['loihi2-emu']['dynamic_energy_per_inference_J'] * 1e6:.2f})",
                 "—" if rr is None else f"{rr['energy_per_inference_J'] * 1e9:.1f} nJ"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CNN only, T = 8 and 32, 120 test samples")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = convert_models.build(tmp, seed=0)
        x, y = data["x_test"], data["y_test"]
        steps, nets = ((8, 32), ("digits_cnn",)) if args.quick else ((8, 16, 32, 64, 128), ("digits_cnn", "digits_resnet"))
        if args.quick:
            x, y = x[:120], y[:120]
        results = {}
        for net in nets:
            print(f"{net}:", file=sys.stderr)
            results[net] = sweep(data["paths"][net], data["x_train"], x, y, steps)
    print(f"test samples: {len(y)}; ⚠ = a fixed-point overflow warning during the run\n")
    for net, r in results.items():
        print(table(net, r) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
