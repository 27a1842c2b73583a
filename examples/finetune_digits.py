"""Hardware-aware fine-tuning: the figures of docs/finetune.md.

    python examples/finetune_digits.py [--epochs 30] [--lr 5e-3] [--out build/finetune]

1. The shipped digits SNN (examples/models/digits_snn.nir, norse): accuracy on the reference,
   then fine-tuned for loihi2-emu (Loihi 2 fixed-point grid) and for rram on the
   ``rram_40nm`` and ``rram_40nm_worstcase`` profiles; before and after, over the device
   seeds 0, 1, 2 (never used in training: training seeds start at 1 000 000).
2. An snnTorch digits SNN trained here (examples/train_with_hardware_eval.py), the same on rram.
3. A robustness curve: rram accuracy vs the programming-noise level (σ as a fraction of the
   conductance window, the worst-case profile's other constants), before and after tuning.

Data: scikit-learn's digits, 16-step rate code; training split for training, validation
split for model selection and ADC calibration, the test split only for the figures.
Writes OUT/results.json, OUT/*.nir and docs/finetune_robustness.png; prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import neurodeploy as nd
from neurodeploy.training import evaluate, finetune
from neurodeploy.training.data import digits

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits_snn.nir"
SEEDS = (0, 1, 2)
NOISE = (0.0, 0.05, 0.1, 0.2)
ROWS = ("digits:loihi2-emu", "digits:rram_40nm", "digits:rram_40nm_worstcase", "snntorch:rram_40nm",
        "snntorch:rram_40nm_worstcase")


def _row(name, target, hw, ref, before, after, ref_after, epochs, seconds) -> dict:
    pct = lambda r: f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"  # noqa: E731
    lost = ref - before["mean"]
    rec = (after["mean"] - before["mean"]) / lost if lost > 0 else float("nan")
    print(f"| {name} | {target} | {hw or '—'} | {100 * ref:.1f} | {pct(before)} | {pct(after)} | {100 * ref_after:.1f} "
          f"| {100 * rec:.0f} % | {epochs} | {seconds:.0f} s |", flush=True)
    strip = lambda r: {k: v for k, v in r.items() if k != "entries"}  # noqa: E731
    return {"model": name, "target": target, "hardware": hw, "reference": ref, "before": strip(before),
            "after": strip(after), "reference_after": ref_after, "recovered_fraction": rec, "epochs": epochs,
            "train_seconds": round(seconds, 1)}


def tune(name, graph, target, hw, sp, epochs, out: Path, lr) -> tuple[dict, object]:
    ref = evaluate(graph, "reference", data=sp)["mean"]
    before = evaluate(graph, target, hw, sp, SEEDS)
    t0 = time.time()
    tuned = finetune(graph, target, hw, sp, epochs=epochs, lr=lr,
                     log=lambda r: print(f"  {name} {target} {hw}: epoch {r['epoch']}, val {100 * r['val_accuracy']:.1f} %",
                                         file=sys.stderr, flush=True))
    seconds = time.time() - t0
    after = evaluate(tuned, target, hw, sp, SEEDS)
    nd.save(tuned, out / f"{name}_{target}_{hw or 'default'}.nir")
    ref_after = evaluate(tuned, "reference", data=sp)["mean"]  # the tuned graph's own reference accuracy
    return _row(name, target, hw, ref, before, after, ref_after, epochs, seconds), tuned


def robustness(graphs: dict, sp, noise=NOISE, hw="rram_40nm_worstcase") -> dict:
    from neurodeploy.targets.rram.device import DeviceConfig

    curve = {}
    for label, g in graphs.items():
        curve[label] = []
        for sigma in noise:
            cfg = DeviceConfig.from_profile(hw, programming_noise=sigma)
            r = evaluate(g, "rram", hw, sp, SEEDS, options={"config": cfg})
            curve[label].append({"sigma": sigma, "mean": r["mean"], "std": r["std"], "accuracy": r["accuracy"]})
            print(f"  robustness {label}: σ = {sigma}: {100 * r['mean']:.1f} ± {100 * r['std']:.1f} %", flush=True)
    return curve


def plot(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    colors = {}
    for label, pts in curve.items():
        s = [p["sigma"] for p in pts]
        m = np.array([100 * p["mean"] for p in pts])
        e = np.array([100 * p["std"] for p in pts])
        model = label.split(",")[0]
        c = colors.setdefault(model, f"C{len(colors)}")
        ax.errorbar(s, m, yerr=e, marker="o", capsize=3, label=label, color=c, ls="--" if "before" in label else "-")
    ax.set_xlabel("programming noise σ (fraction of the window)")
    ax.set_ylabel("test accuracy on rram (%)")
    ax.set_title("rram_40nm_worstcase, device seeds 0-2", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def merge(paths: list[Path], out: Path, plot_path: Path) -> None:
    """The rows and robustness curves of several runs in one results.json and one plot."""
    rows, curve = [], {}
    for p in paths:
        r = json.loads(p.read_text())
        rows += r["rows"]
        curve.update(r.get("robustness", {}))
    out.mkdir(parents=True, exist_ok=True)
    if curve:
        plot(curve, plot_path)
    (out / "results.json").write_text(json.dumps({"rows": rows, "robustness": curve, "merged_from": [str(p) for p in paths]}, indent=1))
    print(f"wrote {out / 'results.json'}" + (f" and {plot_path}" if curve else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="rram fine-tuning epochs")
    ap.add_argument("--lr", type=float, default=5e-3, help="rram fine-tuning learning rate (cosine decay)")
    ap.add_argument("--noise", default=",".join(map(str, NOISE)), help="programming-noise levels of the curve")
    ap.add_argument("--loihi-epochs", type=int, default=2)
    ap.add_argument("--snn-epochs", type=int, default=6, help="snnTorch training epochs (before fine-tuning)")
    ap.add_argument("--rows", default=",".join(ROWS), help="model:target-or-profile pairs to tune (default: all)")
    ap.add_argument("--out", default=str(ROOT / "build" / "finetune"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "finetune_robustness.png"))
    ap.add_argument("--merge", nargs="+", metavar="RESULTS.json",
                    help="only merge the results.json of runs made with different --rows (in parallel) into OUT/results.json and the plot")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.merge:
        return merge([Path(p) for p in args.merge], out, Path(args.plot))
    out.mkdir(parents=True, exist_ok=True)
    sp = digits()
    shipped = nd.load(MODEL)
    print("| model | target | profile | reference % | before % (mean ± sd, seeds 0-2) | after % | tuned graph's reference % "
          "| loss recovered | epochs | training |\n|---|---|---|---|---|---|---|---|---|---|")
    rows, todo = [], [r.split(":") for r in args.rows.split(",") if r]
    models = {"digits": shipped}
    if any(m == "snntorch" for m, _ in todo):
        sys.path.insert(0, str(Path(__file__).parent))
        import torch
        import train_with_hardware_eval as snn

        model = snn.train(snn.build(), *sp.train, args.snn_epochs, log=lambda *a: None)
        models["snntorch"] = nd.load(model, torch.as_tensor(sp.train[0][:1, 0]))
        nd.save(models["snntorch"], out / "snntorch_digits.nir")
    curves = {}  # the models tuned on the worst case, before and after
    for m, what in todo:
        target, hw = ("loihi2-emu", None) if what == "loihi2-emu" else ("rram", what)
        epochs, lr = (args.loihi_epochs, 1e-3) if target == "loihi2-emu" else (args.epochs, args.lr)
        row, tuned = tune(f"{m}_snn" if m == "digits" else f"{m}_digits", models[m], target, hw, sp, epochs, out, lr)
        rows.append(row)
        if hw == "rram_40nm_worstcase":
            label = "shipped SNN" if m == "digits" else "snnTorch SNN"
            curves[f"{label}, before"], curves[f"{label}, after"] = models[m], tuned
    if not curves:
        (out / "results.json").write_text(json.dumps({"rows": rows}, indent=1))
        return
    curve = robustness(curves, sp, [float(v) for v in args.noise.split(",")])
    plot(curve, Path(args.plot))
    (out / "results.json").write_text(json.dumps({"rows": rows, "robustness": curve}, indent=1))
    print(f"wrote {out / 'results.json'} and {args.plot}")


if __name__ == "__main__":
    main()
