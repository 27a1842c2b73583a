"""``neurodeploy sweep``: a parameter grid × seeds on a local process pool or on Ray
(:mod:`neurodeploy.sweep`). Heavy imports happen inside the command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import InputError


def _context(model, input, target, hardware, readout, evaluate) -> dict:
    if evaluate is None and (model is None or input is None):
        raise InputError("sweep needs MODEL and --input (or --eval module:function)")
    if readout not in ("spikes", "membrane", "auto"):
        raise InputError(f"--readout must be spikes, membrane or auto, got {readout!r}")
    ctx = {"target": target, "hardware": hardware, "readout": readout}
    if model is not None:
        if not Path(model).exists():
            raise InputError(f"{model}: model file not found")
        ctx["model"] = str(Path(model).resolve())
    if input is not None:
        from .cli import read_input_npz

        read_input_npz(input)  # fail early on a bad input file
        ctx["input"] = str(Path(input).resolve())
    return ctx


def _print(summary: dict, c) -> None:
    from rich.table import Table

    from .measure.report import fmt_si

    names = list(summary["params"])
    t = Table(title=f"sweep: {len(summary['points'])} point(s) × {summary['seeds']} seed(s)")
    for col in [*names, "accuracy", "spikes", "E/inf", "t/inf", "failed"]:
        t.add_column(col)
    for p in summary["points"]:
        m = p["metrics"]
        cell = lambda k, f: "—" if k not in m or m[k]["mean"] is None else f(m[k]["mean"], m[k]["std"])  # noqa: E731
        t.add_row(*[str(p["params"][n]) for n in names],
                  cell("accuracy", lambda a, s: f"{100 * a:.1f}±{100 * s:.1f} %"),
                  cell("spikes_per_sample", lambda a, s: f"{a:.1f}±{s:.1f}"),
                  cell("energy_per_inference_J", lambda a, s: fmt_si(a, "J")),
                  cell("latency_per_inference_s", lambda a, s: fmt_si(a, "s")), str(len(p["failed"])))
    c.print(t)


def register(app: typer.Typer) -> None:
    from . import cli as _cli

    @app.command("sweep")
    def sweep(
        model: Optional[str] = typer.Argument(None, help="A .nir file (not needed with --eval)."),
        param: List[str] = typer.Option(..., "--param", help="name=v1,v2,...: target, hardware, device.<field>, quant.<option> or option.<name>; repeatable (the grid is their product)."),
        input: Optional[Path] = typer.Option(None, "--input", "-i", help=".npz with x (batch, time, *shape) and optional labels y."),
        output: Path = typer.Option(..., "--output", "-o", help="Directory for spec.json, results.jsonl (incremental) and sweep.json."),
        seeds: int = typer.Option(1, help="Seeds per point (compile seed: RRAM programming and read noise)."),
        target: str = typer.Option("reference", help="Target of points whose grid has no 'target'."),
        hardware: Optional[str] = typer.Option(None, help="Profile of points whose grid has no 'hardware' (default per target, as profile)."),
        readout: str = typer.Option("auto", help="Accuracy readout: spikes | membrane | auto."),
        backend: str = typer.Option("local", help="local (process pool) | ray (needs neurodeploy[distributed])."),
        workers: Optional[int] = typer.Option(None, help="Worker processes (local) or CPUs of a local Ray instance (default: min(2, cores))."),
        address: Optional[str] = typer.Option(None, help="Join the Ray cluster at this address (else start a local instance)."),
        resume: bool = typer.Option(False, "--resume", help="Continue the sweep in OUTPUT: run only the tasks not done yet."),
        evaluate: Optional[str] = typer.Option(None, "--eval", help="module:function(params, seed, context) -> {metric: number} to sweep instead of the model."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar or table."),
    ):
        """Evaluate a grid of target/device/quantization parameters × seeds, one task each, locally or on Ray."""
        from . import sweep as sw

        if workers is not None and workers < 1:
            raise InputError(f"--workers must be >= 1, got {workers}")
        params = dict(sw.parse_param(p) for p in param)
        ctx = _context(model, input, target, hardware, readout, evaluate)
        fn = sw.fn_name(sw.resolve(evaluate)) if evaluate else sw.evaluate_model
        quiet = quiet or _cli.STATE["quiet"]
        bar = _cli.progress_bar("sweep: points") if not quiet else None
        try:
            if bar is None:
                summary = sw.run_sweep(fn, params, seeds, out=output, context=ctx, backend=backend, workers=workers,
                                       address=address, resume=resume)
            else:
                with bar as cb:
                    summary = sw.run_sweep(fn, params, seeds, out=output, context=ctx, backend=backend, workers=workers,
                                           address=address, resume=resume, progress=cb)
        except KeyboardInterrupt:
            print(f"error: interrupted; finished tasks are in {output / sw.RESULTS}: rerun with --resume to continue", file=sys.stderr)
            raise typer.Exit(130)
        if not quiet:
            c = _cli.console()
            _print(summary, c)
            c.print(f"wrote {output / sw.SUMMARY} ({summary['tasks']} tasks)")
        if summary["failed"]:
            first = next(f for p in summary["points"] for f in p["failed"])
            print(f"error: {summary['failed']} task(s) failed after a retry (first: {first['error']}); "
                  f"see {output / sw.SUMMARY}", file=sys.stderr)
            raise typer.Exit(1)
