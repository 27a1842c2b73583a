"""The RRAM fidelity figures of docs/rram.md (issue 12), measured on the shipped digits SNN.

(a) accuracy vs read time (1 s, 1 h, 1 day, 1 month after programming) with drift
    compensation global (default), per column and none, over device seeds; on rram_40nm as
    it is (RRAM drift: a zero-mean spread of the exponent ν) and, to show what compensation
    corrects, with a hypothetical systematic decay ``drift_nu_mean = DECAY_NU`` (PCM-like;
    not a value of either profile);
(b) where the accuracy goes: each non-ideality alone and all but each
    (:func:`neurodeploy.measure.attribution.attribute`) on rram_40nm and rram_40nm_worstcase.

Data: ``digits_spikes(steps=16, encoder="rate", seed=0)``; the ADCs are calibrated on the
first ``--calibration`` samples of the training split (never evaluated), accuracy is
measured on the test split (450 samples; ``--samples`` takes the first N). Run::

    .venv/bin/python examples/rram_fidelity.py [--seeds 3] [--json fidelity.json]
    .venv/bin/python examples/rram_fidelity.py --quick      # a few samples, for the test

Prints the two sections as Markdown tables; ``--json`` writes every value (per seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent / "models" / "digits_snn.nir"
READ_TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0, "1 month": 2592000.0}
MODES = ("global", "per_column", "none")
PROFILES = ("rram_40nm", "rram_40nm_worstcase")
DECAY_NU = 0.05  # hypothetical mean drift exponent of the second drift table (labelled so)


def stats(values) -> dict:
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}


def spread(s: dict) -> str:
    """``mean ± std (min–max)`` in percent."""
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} ({100 * s['min']:.1f}–{100 * s['max']:.1f})"


def load_data(samples: int | None, calibration: int):
    """(x_test, y_test, x_cal): the test split (first ``samples``) and the first
    ``calibration`` training samples."""
    from neurodeploy.data.digits import digits_spikes

    (x_train, _), (x_test, y_test) = digits_spikes(steps=16, encoder="rate", seed=0)
    n = len(x_test) if samples is None else samples
    return x_test[:n], y_test[:n], x_train[:calibration]


def rram_accuracy(graph, x, y, x_cal, *, hardware: str, seed: int, params: dict) -> float:
    """Accuracy (most output spikes) of the RRAM program compiled with ``params`` and device
    ``seed``, its ADCs calibrated on ``x_cal`` (the rram target's outputs do not lag)."""
    from neurodeploy.measure.metrics import accuracy
    from neurodeploy.targets.base import get_target

    prog = get_target("rram").compile(graph, hardware=hardware, seed=seed, device_params=params, calibration=x_cal)
    assert not any(prog.describe()["lag"].values()), "rram outputs lag: this script reads them unpadded"
    return accuracy(prog.run(x), y, "spikes")


def drift_curve(graph, x, y, x_cal, *, hardware: str, seeds, read_times: dict, modes=MODES, extra=None) -> dict:
    """{mode: {read time label: stats over seeds}}; ``extra``: further device parameters."""
    return {m: {label: stats([rram_accuracy(graph, x, y, x_cal, hardware=hardware, seed=s,
                                            params={"read_time": t, "drift_compensation": m, **(extra or {})})
                              for s in seeds])
                for label, t in read_times.items()} for m in modes}


def attribution(graph, x, y, x_cal, *, hardware: str, seeds) -> dict:
    from neurodeploy.measure.attribution import attribute
    from neurodeploy.measure.calibration import Calibration

    cal = Calibration(x_cal, f"the first {len(x_cal)} samples of the training split", True)
    return attribute(graph, x, y, target="rram", hardware=hardware, seeds=seeds, calibration=cal)


def reference_accuracy(graph, x, y) -> float:
    from neurodeploy.measure.metrics import accuracy
    from neurodeploy.targets.base import get_target

    return accuracy(get_target("reference").compile(graph).run(x), y, "spikes")


def markdown(res: dict) -> str:
    from neurodeploy.measure.attribution import COLUMNS, caption, table

    out = [f"reference {100 * res['reference']:.1f} % on {res['samples']} test samples; ADCs calibrated on "
           f"{res['calibration_samples']} training samples; device seeds {res['seeds']}; {res['seconds']:.0f} s", ""]
    for key, what in (("drift", res["drift_profile"]),
                      ("drift_decay", f"{res['drift_profile']} with drift_nu_mean = {DECAY_NU} (hypothetical decay)")):
        curve = res[key]
        labels = list(next(iter(curve.values())))
        out += [f"(a) accuracy vs read time on {what}, % mean ± std (min–max) over seeds", "",
                "| drift compensation | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        out += [f"| {m} | " + " | ".join(spread(curve[m][t]) for t in labels) + " |" for m in curve] + [""]
    for hw, a in res["attribution"].items():
        out += [f"(b) where the accuracy goes on {hw}: {caption(a)}", "",
                "| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
        out += ["| " + " | ".join(r) + " |" for r in table(a)] + [""]
    return "\n".join(out).rstrip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="device seeds 0 … N-1 (default 10)")
    ap.add_argument("--samples", type=int, default=None, help="evaluate the first N test samples (default: all 450)")
    ap.add_argument("--calibration", type=int, default=128, help="training samples that calibrate the ADCs (default 128)")
    ap.add_argument("--quick", action="store_true", help="16 test samples, 8 calibration samples, 1 seed, 1 s and 1 month")
    ap.add_argument("--json", type=Path, default=None, help="write every value (per seed) to this file")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared machine more threads "
                    "mostly wait for each other)")
    args = ap.parse_args(argv)
    import torch

    from neurodeploy.graph import load

    torch.set_num_threads(args.threads)

    seeds = list(range(1 if args.quick else args.seeds))
    read_times = {k: READ_TIMES[k] for k in ("1 s", "1 month")} if args.quick else READ_TIMES
    x, y, x_cal = load_data(16 if args.quick else args.samples, 8 if args.quick else args.calibration)
    graph = load(MODEL)
    t0 = time.perf_counter()
    res = {"model": str(MODEL.name), "samples": len(x), "calibration_samples": len(x_cal), "seeds": seeds,
           "reference": reference_accuracy(graph, x, y), "drift_profile": PROFILES[0],
           "drift": drift_curve(graph, x, y, x_cal, hardware=PROFILES[0], seeds=seeds, read_times=read_times),
           "drift_decay": drift_curve(graph, x, y, x_cal, hardware=PROFILES[0], seeds=seeds, read_times=read_times,
                                      extra={"drift_nu_mean": DECAY_NU}),
           "attribution": {hw: attribution(graph, x, y, x_cal, hardware=hw, seeds=seeds) for hw in PROFILES}}
    res["seconds"] = time.perf_counter() - t0
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
