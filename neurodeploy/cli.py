"""The ``neurodeploy`` command line (Typer + rich).

Every user error is one line ``error: <message>`` on stderr and exit code 2; ``--debug``
shows the traceback instead. Output files are written to a temporary name and renamed when
complete, so a failed command leaves nothing behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import InputError, NeurodeployError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Deploy spiking neural networks (NIR) to Loihi 2 and RRAM, and measure them.",
    pretty_exceptions_enable=False,
    # plain (click) help and usage errors: typer's rich formatter costs ~0.2 s of imports on
    # every --help, 40 % of the start-up goal (docs/benchmarks.md); no help text uses markup
    rich_markup_mode=None,
)
STATE = {"debug": False, "quiet": False, "strict": False}


def _version(value: bool):
    if value:
        typer.echo(f"neurodeploy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, summaries or warnings."),
    strict: bool = typer.Option(False, "--strict", help="Diagnostics (graph/diagnose.py) are errors, not warnings."),
):
    STATE["debug"] = debug
    STATE["quiet"] = quiet
    STATE["strict"] = strict


# --------------------------------------------------------------------------------------
# helpers
def console():
    from rich.console import Console

    return Console(stderr=False, quiet=STATE["quiet"])


DT_CODES = ("unstable-step", "cannot-spike", "dt-mismatch")  # diagnostics that need a real dt


def load_model(model: str, dt: float | None, reset: str | None, *, need_dt: bool = True, framework: str | None = None):
    """Load ``model``; returns ``(graph, has_dt)``. With ``need_dt=False`` a model without a
    dt (neither given, nor in the file, nor an exporter's convention) loads at a placeholder
    dt of 1 s and ``has_dt`` is False."""
    from .graph import load

    try:
        return load(model, dt=dt, reset=reset, framework=framework), True
    except InputError as exc:
        if need_dt or dt is not None or model.endswith(".net") or "no time step" not in str(exc):
            raise
    return load(model, dt=1.0, reset=reset, framework=framework), False


def read_input_npz(path: Path):
    import numpy as np

    if not path.exists():
        raise InputError(f"{path}: input file not found")
    try:
        data = np.load(path, allow_pickle=False)
        keys = list(data.keys())
    except Exception as exc:  # zipfile/ValueError/OSError on non-npz files
        raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    if "x" not in keys:
        raise InputError(f"{path}: no array 'x' (found: {', '.join(keys) or 'nothing'}); expected x of shape (batch, time, *input_shape)")
    x = data["x"]
    y = data["y"] if "y" in keys else None
    if x.ndim < 3:
        raise InputError(f"{path}: array 'x' has shape {x.shape}, expected (batch, time, *input_shape)")
    if y is not None and (y.ndim != 1 or len(y) != x.shape[0]):
        raise InputError(f"{path}: labels 'y' have shape {y.shape}, expected ({x.shape[0]},)")
    return x, y


def progress_bar(total_label: str):
    """A context manager yielding a callback(done, total) that drives a rich progress bar."""
    from contextlib import contextmanager

    @contextmanager
    def cm():
        if STATE["quiet"]:
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True, console=console()) as prog:
            task = prog.add_task(total_label, total=None)

            def cb(done, total):
                prog.update(task, completed=done, total=total)

            yield cb

    return cm()


def _parse_record(record: Optional[str]):
    if record is None:
        return None
    if record == "all":
        return "all"
    return [r.strip() for r in record.split(",") if r.strip()]


# --------------------------------------------------------------------------------------
@app.command()
def inspect(
    model: str = typer.Argument(..., help="A .nir file."),
    dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file's metadata)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    steps: Optional[int] = typer.Option(None, help="Run length to check that every layer can reach threshold in."),
    framework: Optional[str] = typer.Option(None, help="Repair this exporter's quirks: norse | snntorch | sinabs | rockpool (else detected)."),
):
    """Show a model's nodes, shapes, counts, parameters, load repairs and diagnostics."""
    from .graph.summary import summarize

    graph, has_dt = load_model(model, dt, None, need_dt=False, framework=framework)
    summary = summarize(graph, steps=steps)
    if not has_dt:  # dt-dependent diagnostics would be about the placeholder dt
        summary["dt"] = None
        summary["diagnostics"] = [d for d in summary["diagnostics"] if d["code"] not in DT_CODES]
    if STATE["strict"] and summary["diagnostics"]:
        raise NeurodeployError(f"{model}: {len(summary['diagnostics'])} diagnostic(s) [--strict]: "
                               f"{summary['diagnostics'][0]['message']}")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rich.table import Table

    c = console()
    t = Table(title=f"{model}  (dt={'not set' if summary['dt'] is None else summary['dt']}, reset={summary['reset']})")
    for col in ("node", "type", "input", "output", "parameters"):
        t.add_column(col)
    for n in summary["nodes"]:
        t.add_row(n["name"], n["type"], str(tuple(n["input_shape"])), str(tuple(n["output_shape"])), n["params_text"])
    c.print(t)
    c.print(
        f"neurons: {summary['neurons']}   synapses (weights): {summary['synapses']} "
        f"(nonzero {summary['synapses_nonzero']})   recurrent edges: {len(summary['recurrent_edges'])}"
    )
    c.print(f"repairs applied at load: {', '.join(summary['repairs']) or 'none'}", markup=False)
    for a in summary["assumptions"]:
        c.print(f"assumed (the file cannot say): {a}", markup=False)
    for d in summary["diagnostics"]:
        c.print(f"diagnostic {d['code']}" + (f" (node '{d['node']}')" if d["node"] else "") + f": {d['message']}", markup=False)


@app.command()
def run(
    model: str = typer.Argument(..., help="A .nir file (or lava-dl .net where supported)."),
    target: str = typer.Option("reference", help="reference | loihi2-emu | lava | rram"),
    input: Path = typer.Option(..., "--input", "-i", help=".npz with x (batch, time, *shape) and optional y, or .nird (NIRData)."),
    dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file)."),
    reset: Optional[str] = typer.Option(None, help="zero | subtract (else from the file, default zero)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .npz (or .nird: NIRData)."),
    fmt: str = typer.Option("auto", "--format", help="Output format: npz | nirdata | auto (from the suffix)."),
    record: Optional[str] = typer.Option(None, help="'all' or comma-separated node names to record."),
    hardware: Optional[str] = typer.Option(None, help="Hardware profile name or .toml path."),
    device: str = typer.Option("cpu", help="torch device for simulated targets (cpu, cuda)."),
    readout: str = typer.Option("auto", help="Accuracy readout: spikes | membrane | auto."),
    framework: Optional[str] = typer.Option(None, help="Repair this exporter's quirks: norse | snntorch | sinabs | rockpool (else detected)."),
    device_param: Optional[List[str]] = typer.Option(None, "--device-param", help="KEY=VALUE device parameter of the target (repeatable; e.g. read_time=86400 on rram)."),
    compile_option: Optional[List[str]] = typer.Option(None, "--compile-option", help="KEY=VALUE compile option of the target (repeatable; e.g. allow_loop_delay=true on the Loihi targets)."),
):
    """Run a model on a target and write its outputs (and recorded spikes) to an .npz."""
    from .measure.metrics import READOUTS
    from .measure.cli import parse_compile_options, parse_device_params
    from .measure.report import check_labels, load_hardware, target_options
    from .targets.base import get_target, record_set

    if readout not in READOUTS:  # every option is checked before any work or output
        raise InputError(f"--readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    if fmt not in ("auto", "npz", "nirdata"):
        raise InputError(f"--format must be npz, nirdata or auto, got {fmt!r}")
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: directory {output.parent} does not exist")
    tgt = get_target(target)
    nirdata_in = input.suffix == ".nird"
    x, y = (None, None) if nirdata_in else read_input_npz(input)
    graph, _ = load_model(model, dt, reset, framework=framework)
    if nirdata_in:
        from .graph.nirdata import read_inputs

        x = read_inputs(input, graph)
    rec = record_set(_parse_record(record), graph)
    check_labels(y, graph, input)
    hw = load_hardware(tgt, hardware) if hardware else None
    options = target_options(tgt, device, parse_device_params(device_param), parse_compile_options(compile_option))
    program = tgt.compile(graph, hardware=hw if hw is not None and hw.kind in tgt.hardware_kinds else None, **options)
    try:
        with progress_bar(f"{target}: steps") as cb:
            result = program.run(x, record="all" if record == "all" else rec, progress=cb)
    except InputError as exc:
        raise InputError(f"{input}: {exc}") from None
    from .graph.diagnose import warn_once

    warn_once(graph, quiet=STATE["quiet"], strict=STATE["strict"], x=x, result=result)  # x is valid after the run
    from .graph.io import compact_spikes, write_npz

    if fmt == "nirdata" or fmt == "auto" and output.suffix == ".nird":
        from .graph.nirdata import result_to_nirdata, write_nirdata

        write_nirdata(output, result_to_nirdata(result, graph))
    else:
        write_npz(output, compact_spikes(result.to_numpy(), graph))
    c = console()
    c.print(f"wrote {output}  ({result.batch} samples × {result.steps} steps, target {target})")
    totals = result.totals()
    c.print("events: " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    if y is not None:
        from .measure.metrics import accuracy

        acc = accuracy(result, y, readout=readout)
        c.print(f"accuracy: {acc * 100:.2f} % on {len(y)} labelled samples ({readout} readout)")


def main(argv: List[str] | None = None) -> int:
    """Entry point: run the Typer app, turn NeurodeployErrors into ``error:`` lines.

    Usage errors are reported by Typer itself (exit code 2)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        app(args=argv, prog_name="neurodeploy", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except NeurodeployError as exc:
        if debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        msg = out_of_memory(exc)
        if msg is None or debug:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


def out_of_memory(exc: BaseException) -> str | None:
    """One line for an allocation failure (torch's CPU/CUDA out-of-memory errors, Python's
    MemoryError): the size asked for and what to change; None for any other error."""
    import re

    text = str(exc)
    oom = isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or re.search(
        r"not enough memory|out of memory|can.t allocate memory|failed to allocate", text, re.I)
    if not oom:
        return None
    m = re.search(r"allocate (\d+) bytes", text) or re.search(r"allocate ([\d.]+ [KMGT]i?B)", text)
    size = (f"{int(m.group(1)) / 1e9:.1f} GB" if m.group(1).isdigit() else m.group(1)) if m else "more memory than is free"
    return (f"out of memory: the run asked for {size}; run fewer samples at once (split the input's batch), "
            f"fewer steps, or on another --device")



# Commands of the other subsystems register themselves (their modules import nothing heavy
# at import time; Lava is imported only when a Lava command runs).
PLUGINS = (
    "neurodeploy.targets.loihi.cli",
    "neurodeploy.targets.rram.cli",
    "neurodeploy.measure.cli",
    "neurodeploy.convert.cli",  # convert: ONNX ANN -> SNN
    "neurodeploy.sweep_cli",  # sweep: parameter grids x seeds, local pool or Ray
    "neurodeploy.training.cli",  # finetune: hardware-aware fine-tuning
)


def _register_plugins() -> None:
    import importlib

    for mod in PLUGINS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and (mod == exc.name or mod.startswith(exc.name + ".")):
                continue  # that subsystem is not part of this installation
            raise
        module.register(app)


_register_plugins()


if __name__ == "__main__":  # pragma: no cover
    # `python -m neurodeploy.cli`: run the package's module, not this __main__ copy, so the
    # plugins (which import neurodeploy.cli) share one app and one STATE (--quiet, --debug).
    from neurodeploy.cli import main as _package_main

    sys.exit(_package_main())
