"""neurodeploy demo: the main job on bundled data, end to end.

1. Load the digits SNN shipped in examples/models (a norse model trained by
   examples/train_digits.py on scikit-learn's bundled digits, saved as NIR).
2. Encode the bundled digits test split as spike trains (rate code, seeded).
3. Compare the float reference, the bit-exact Loihi 2 emulator and the RRAM crossbar
   simulator on the whole split: accuracy, spikes, modelled energy and latency per
   inference on the hardware profiles, agreement with the reference.
4. Run the same quantized network in Intel Lava (fixed_pt) on a few samples and check it
   against the emulator spike for spike (Lava's CPU simulator is slow; skipped without Lava).
5. Compile for Loihi 2 (netx file, quantization and core mapping reports).

Writes build/demo/: digits_test.npz, report.json + report.html, loihi2/ (compile output).
The same steps as CLI commands are printed at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

import neurodeploy.graph as G
from neurodeploy.data import digits_spikes
from neurodeploy.graph.summary import summarize
from neurodeploy.measure.cli import _print_summary
from neurodeploy.measure.calibration import Calibration
from neurodeploy.measure.html import render_html
from neurodeploy.measure.report import compare_runs, write_report

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits_snn.nir"
OUT = ROOT / "build" / "demo"
LAVA_SAMPLES = 3


def _lava_check(con: Console, graph, x) -> None:
    try:
        import lava.proc.lif.process  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "no Lava here"
        con.print(f"[yellow]lava: skipped (Lava not importable: {type(exc).__name__})[/yellow]")
        return
    from neurodeploy.targets.loihi.emulator import EmulatorTarget
    from neurodeploy.targets.loihi.lava import LavaProgram

    program = EmulatorTarget().compile(graph)
    xs = x[:LAVA_SAMPLES]
    t0 = time.perf_counter()
    lava_out = LavaProgram(program, "fixed_pt").run(xs).output
    t_lava = time.perf_counter() - t0
    emu_out = program.run(xs).output
    same = bool((lava_out == emu_out).all())
    con.print(f"[bold]lava[/bold] fixed_pt, {LAVA_SAMPLES} samples × {x.shape[1]} steps in {t_lava:.1f} s: "
              f"output spikes {'identical to' if same else '[red]DIFFERENT from[/red]'} the loihi2-emu emulator")


def main() -> int:
    con = Console(width=None if sys.stdout.isatty() else 120)  # readable tables in CI logs too
    graph = G.load(MODEL)
    s = summarize(graph)
    con.print(f"[bold]model[/bold] {MODEL.relative_to(ROOT)}: {s['neurons']} neurons, {s['synapses']} synapses, "
              f"dt={graph.dt} s, reset={graph.reset}")
    (x_train, _), (x, y) = digits_spikes(steps=16, encoder="rate", seed=0)
    OUT.mkdir(parents=True, exist_ok=True)
    npz = OUT / "digits_test.npz"
    # x_train: the calibration split (RRAM ADC ranges), never evaluated
    np.savez(npz, x=np.asarray(x), y=np.asarray(y), x_train=np.asarray(x_train)[:64])
    con.print(f"[bold]data[/bold] sklearn digits test split: {x.shape[0]} samples × {x.shape[1]} steps × "
              f"{x.shape[2]} inputs (rate code) → {npz.relative_to(ROOT)}")

    cal = Calibration(np.asarray(x_train)[:64], "64 samples of the digits training split", True)
    report, results = compare_runs(str(MODEL), str(npz), graph, x, y, targets=["reference", "loihi2-emu", "rram"],
                                   calibration=cal)
    _print_summary(report, con)
    write_report(OUT, report, render_html(report, results))
    con.print(f"wrote {(OUT / 'report.json').relative_to(ROOT)} and {(OUT / 'report.html').relative_to(ROOT)}")

    _lava_check(con, graph, x)

    from neurodeploy.cli import app

    build = OUT / "loihi2"
    con.print("[bold]compile[/bold] for Loihi 2:")
    app(["compile", str(MODEL), "--target", "loihi2", "-o", str(build)], standalone_mode=False)

    rel = MODEL.relative_to(ROOT)
    con.print("\nThe same from the command line:\n"
              f"  neurodeploy inspect {rel}\n"
              f"  neurodeploy compare {rel} --targets reference,loihi2-emu,rram --input {npz.relative_to(ROOT)} -o build/demo\n"
              f"  neurodeploy profile {rel} --target loihi2-emu --hardware loihi2 --input {npz.relative_to(ROOT)} -o build/profile\n"
              f"  neurodeploy compile {rel} --target loihi2 -o build/demo/loihi2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
