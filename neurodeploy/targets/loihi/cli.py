"""``neurodeploy compile MODEL --target loihi2 --dt DT -o BUILD/``.

Writes into BUILD/: the Program (``program.json`` + ``program.npz`` + ``graph.nir``,
loadable with ``EmulatorTarget.load`` or ``LavaTarget.load``), ``model.net`` (lava-dl netx, when the program is a netx chain),
``quantization.json`` (per-layer report) and ``mapping.json`` (cores/chips). Imports
nothing heavy at import time; Lava is never imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

LOIHI_TARGETS = ("loihi2", "loihi2-emu", "lava")


def register(app: typer.Typer) -> None:
    @app.command("compile")
    def compile_cmd(
        model: str = typer.Argument(..., help="A .nir file (or lava-dl .net)."),
        target: str = typer.Option("loihi2", help="loihi2 (same as loihi2-emu / lava: one Loihi 2 program)."),
        dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file's metadata)."),
        reset: Optional[str] = typer.Option(None, help="zero (Loihi resets to zero)."),
        output: Path = typer.Option(..., "--output", "-o", help="Build directory."),
        weight_exp: str = typer.Option("auto", help="auto (per-synapse exponent) | zero (netx-compatible)."),
        hardware: str = typer.Option("loihi2", help="Hardware profile for the core mapping."),
        chips: Optional[int] = typer.Option(None, help="Fail (FitError) if more chips are needed."),
        allow_loop_delay: bool = typer.Option(False, "--allow-loop-delay",
                                              help="Accept loops through several synapses (each synapse adds a step "
                                                   "on Loihi); their extra delay goes into quantization.json."),
        bias: str = typer.Option("auto", help="auto (bias neuron only into decaying currents) | synapse (every bias "
                                              "through the bias neuron, from each layer's lag on)."),
        weight_sign: str = typer.Option("auto", help="auto (split; mixed with --weight-exp zero) | mixed (Lava's "
                                                     "mixed sign mode) | split (excitatory + inhibitory synapses: "
                                                     "8-bit weight magnitudes)."),
    ):
        """Quantize a model for Loihi 2 and write the program, netx file and reports."""
        from ...cli import console, load_model
        from ...errors import InputError, UnsupportedError
        from ...graph.io import write_json
        from .netx import export_netx
        from .target import EmulatorTarget

        if target not in LOIHI_TARGETS:
            raise InputError(f"compile: target must be one of {', '.join(LOIHI_TARGETS)}, got {target!r}")
        if chips is not None and chips < 1:
            raise InputError(f"--chips must be ≥ 1, got {chips}")
        graph, _ = load_model(model, dt, reset)
        prog = EmulatorTarget().compile(graph, hardware, weight_exp=weight_exp, chips=chips, bias=bias,
                                        weight_sign=weight_sign, allow_loop_delay=allow_loop_delay)
        if prog.mapping is None:
            from .mapping import map_program

            prog.mapping = map_program(prog, hardware, chips=chips)  # FitError naming what is missing
        out = Path(output)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        prog.save(out)
        write_json(out / "quantization.json", prog.report, indent=1)
        write_json(out / "mapping.json", prog.mapping, indent=1)
        c = console()
        try:
            export_netx(prog, out / "model.net")
            netx_note = "model.net"
        except UnsupportedError as exc:
            (out / "model.net").unlink(missing_ok=True)
            netx_note = f"no model.net ({exc})"
        m = prog.mapping
        c.print(f"wrote {out}/: program.json, program.npz, graph.nir, quantization.json, mapping.json, {netx_note}")
        c.print(f"{m['neurons']} neurons on {m['cores']} cores, {m['chips']} chip(s) "
                f"({m['core_utilization'] * 100:.1f} % of the cores); clipped weights: "
                f"{prog.report['totals']['clipped_weights']}")
        for loop in prog.report.get("loops", []):
            c.print(f"loop {' → '.join(loop['loop'])}: {loop['loihi_delay']} steps on Loihi, NIR's "
                    f"{loop['nir_delay']} ({loop['extra_delay']} extra)")
