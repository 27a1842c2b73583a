"""neurodeploy demo: the main job on bundled data, end to end.

Loads the digits SNN shipped in examples/models (trained by examples/train_digits.py),
encodes the bundled scikit-learn digits test split as spike trains, runs every available
target on it and prints a summary: accuracy, spikes and synaptic events per layer, and —
where the measurement subsystem is present — estimated energy on the hardware profiles.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import neurodeploy.graph as G
from neurodeploy.data import digits_spikes
from neurodeploy.errors import NeurodeployError
from neurodeploy.graph.summary import summarize
from neurodeploy.measure.metrics import accuracy
from neurodeploy.targets.base import get_target

MODEL = Path(__file__).parent / "models" / "digits_snn.nir"


def main() -> int:
    con = Console()
    graph = G.load(MODEL)
    s = summarize(graph)
    con.print(f"[bold]model[/bold] {MODEL.name}: {s['neurons']} neurons, {s['synapses']} synapses, dt={graph.dt} s, reset={graph.reset}")
    _, (x, y) = digits_spikes(steps=16, encoder="rate", seed=0)
    con.print(f"[bold]data[/bold] sklearn digits test split: {x.shape[0]} samples × {x.shape[1]} steps × {x.shape[2]} inputs (rate code)")
    table = Table(title="targets")
    for col in ("target", "accuracy", "spikes/sample", "synaptic events/sample", "note"):
        table.add_column(col)
    for name in ("reference", "loihi2-emu", "rram"):
        try:
            program = get_target(name).compile(graph)
            result = program.run(x)
        except NeurodeployError as exc:
            table.add_row(name, "-", "-", "-", f"skipped: {exc}")
            continue
        acc = accuracy(result, y, readout="spikes")
        n = result.batch
        table.add_row(name, f"{acc * 100:.2f} %", f"{result.total('spikes') / n:.1f}", f"{result.total('synaptic_events') / n:.0f}", "")
    con.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
