"""The LSM figures of docs/lsm.md: reservoir vs raw-input baselines (audio and image events,
several reservoir and device seeds), zero-shot retrieval on several splits (software and
RRAM over device seeds) and the energy comparison. Writes one JSON per part.

Usage: python scripts/lsm_figures.py --part baselines|zeroshot|all [--device cuda] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SPLITS = ("1-7:8-9", "0-4:5-9", "2-8:0,1,9")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def baselines(device: str, seeds: int, rram_reservoirs: int | None = None, rows_only=None) -> dict:
    """Reservoir vs raw baselines. Audio: binarized inputs (lsm.PAPER_INPUT), the readout
    options of the reservoir and of the binned baseline each picked on held-out training
    speakers (lsm.select_readout over lsm.READOUT_GRID); the test set is only scored."""
    import numpy as np

    from neurodeploy.targets.rram import lsm

    out = {}
    audio = lsm.audio_digit_inputs(**lsm.PAPER_INPUT["audio-digits"])
    afolds = lsm.audio_speaker_folds()
    rows = (("audio-digits", "audio-digits", audio, {}, afolds), ("audio-digits-500", "audio-digits", audio, {"n_neurons": 500}, afolds),
            ("event-digits", "event-digits", None, {}, None))
    for key, name, data, extra, folds in rows:
        if rows_only and key not in rows_only:
            continue
        if data is None:
            data = lsm.event_digit_inputs()
            folds = np.arange(len(data[1])) % 5  # independent samples (a stratified, shuffled split)
        t = time.time()
        kw = dict(device=device, folds=folds, progress=lambda i, n: log(key, i, n, f"{time.time() - t:.0f}s"))
        cfg = {**lsm.PAPER_LSM[name], **extra}
        if rram_reservoirs is None:  # RRAM on every reservoir seed
            out[key] = lsm.baseline_comparison(data, cfg, tuple(range(seeds)), tuple(range(seeds)), **kw)
        else:  # software on every reservoir seed, RRAM on the first rram_reservoirs of them
            out[key] = lsm.baseline_comparison(data, cfg, tuple(range(seeds)), (), **kw)
            r = lsm.baseline_comparison(data, cfg, tuple(range(rram_reservoirs)), tuple(range(seeds)),
                                        **{**kw, "spec": out[key]["spec"], "raw_spec": out[key]["raw_spec"]})
            out[key].update({k: r[k] for k in ("rram", "rram_mean", "rram_std")}, rram_reservoir_seeds=rram_reservoirs)
        out[key]["lsm"] = cfg
        out[key]["seconds"] = round(time.time() - t, 1)
    return out


def zeroshot(device: str, seeds: int, splits=SPLITS) -> dict:
    from neurodeploy.targets.rram import zeroshot as zs

    out = {}
    for split in splits:
        t = time.time()
        with tempfile.TemporaryDirectory() as d:
            doc = zs.experiment(d, split=zs.parse_split(split), device_seeds=tuple(range(seeds)), device=device,
                                progress=lambda i, n: log(split, i, n, f"{time.time() - t:.0f}s"))
        out[split] = {k: doc[k] for k in ("summary", "energy", "onnx", "samples")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("baselines", "zeroshot", "all"), default="all")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--output", default=".")
    ap.add_argument("--rram-reservoirs", type=int, default=None,
                    help="baselines: run RRAM on only this many reservoir seeds (CPU time)")
    ap.add_argument("--rows", nargs="*", default=None, help="baselines: only these rows")
    ap.add_argument("--splits", nargs="*", default=list(SPLITS), help="zeroshot: these splits")
    a = ap.parse_args(argv)
    parts = ("baselines", "zeroshot") if a.part == "all" else (a.part,)
    for p in parts:
        res = baselines(a.device, a.seeds, a.rram_reservoirs, a.rows) if p == "baselines" else \
            zeroshot(a.device, a.seeds, a.splits)
        path = Path(a.output) / f"lsm_{p}.json"
        path.write_text(json.dumps(res, indent=2))
        log("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
