"""Regenerate the shipped audio-digit events (neurodeploy/data/audio_digits.npz).

Needs espeak-ng (Debian: apt-get install espeak-ng) and scipy. Seeded: the same espeak-ng
and scipy versions give the same file (tests/test_audio_events.py regenerates a subset and
compares exactly). Usage: python scripts/make_audio_events.py [--speakers N] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from neurodeploy.data import audio_events as ae


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speakers", type=int, default=ae.AudioConfig.n_speakers)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=str(ae.DATA_FILE))
    a = ap.parse_args(argv)
    cfg = replace(ae.AudioConfig(), n_speakers=a.speakers, seed=a.seed)
    arrays = ae.generate(cfg, progress=lambda i, n: print(f"\r{i}/{n} samples", end="", file=sys.stderr))
    print(file=sys.stderr)
    path = ae.save(arrays, cfg, a.output)
    d = ae.load_audio_digits(path)
    print(json.dumps({"file": str(path), "bytes": path.stat().st_size, "train": d.train.stats(), "test": d.test.stats()},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
