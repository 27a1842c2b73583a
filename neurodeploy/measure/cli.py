"""``neurodeploy profile`` and ``neurodeploy compare`` (registered on the main Typer app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

if TYPE_CHECKING:
    import numpy as np

from ..errors import InputError
from ..options import key_values
from ..targets.registry import REFERENCE, REGISTRY


def _parse_hardware_map(text: Optional[str]) -> dict:
    """``"loihi2-emu=loihi2,rram=my.toml"`` → {target: profile}; a bare name applies to
    every target of the matching kind (loihi profiles to Loihi targets, rram to rram)."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            k, _, v = part.partition("=")
            out[k.strip()] = v.strip()
        else:
            out["*"] = part
    return out


def _readout(readout: str) -> str:
    from .metrics import READOUTS

    if readout not in READOUTS:
        raise InputError(f"--readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    return readout


def _lag_text(lag) -> str:
    """Short lag for the table: ``2``, or ``1-2`` for per-layer lags (listed in full below it)."""
    if lag is None:
        return "—"
    if isinstance(lag, dict):
        vals = sorted(set(int(v) for v in lag.values())) or [0]
        return str(vals[0]) if len(vals) == 1 else f"{vals[0]}-{vals[-1]}"
    return str(lag)


def _print_summary(report: dict, c) -> None:
    from rich.table import Table

    from .report import fmt_si

    pct = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    short = lambda v, u: fmt_si(v, u).replace(".0 ", " ") if v is None else f"{float(fmt_si(v, u).split()[0]):.3g} {fmt_si(v, u).split()[1]}"  # noqa: E731
    compare = report["kind"] == "compare"
    t = Table(title=f"neurodeploy {report['kind']}: {report['inputs']['model']}")
    cols = ["target", "status", "acc", "spikes", "E/inf", "E dyn/inf", "t/inf", "profile"] + (["match", "lag"] if compare else [])
    for col in cols:
        t.add_column(col)
    for s in report["summary"]:
        row = [s["target"], s["status"], pct(s["accuracy"]),
               "—" if s["spikes_per_sample"] is None else f"{s['spikes_per_sample']:.1f}",
               short(s["energy_per_inference_J"], "J"), short(s.get("dynamic_energy_per_inference_J"), "J"),
               short(s["latency_per_inference_s"], "s"), s.get("hardware") or "—"]
        if compare:
            row += [pct(s["spike_match"]), _lag_text(s["lag"])]
        t.add_row(*row)
    c.print(t)
    c.print("spikes: per inference; E/inf: modelled energy per inference on the profile (dynamic + static), "
            "E dyn/inf: its dynamic part; t/inf: modelled latency per inference; "
            + ("match: spike-train match with the reference after the lag" if compare else ""))
    for s in report["summary"]:
        if s.get("reason"):
            c.print(f"{s['target']}: {s['status']}: {s['reason']}")
    if compare:
        for e in report["targets"]:
            ag = e.get("agreement")
            if ag and e["target"] != report["reference"]:
                fd = ag["first_divergence"]
                c.print(f"{e['target']}: lag {json.dumps(ag['lag'])} step(s); first divergence: "
                        + (f"step {fd['step']} in layer {fd['layer']}" if fd else "none"))


def _print_attribution(a: dict, c) -> None:
    """``profile --attribute``: the accuracy cost of each non-ideality as a table."""
    from rich.table import Table

    from .attribution import COLUMNS, caption, table

    t = Table(title="where the accuracy goes")
    for i, col in enumerate(COLUMNS):
        t.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in table(a):
        t.add_row(*row)
    c.print(t)
    c.print(caption(a))


def _json_summary(report: dict, outdir) -> str:
    out = {
        "kind": report["kind"],
        "model": report["inputs"]["model"],
        "report": None if outdir is None else str(Path(outdir) / "report.json"),
        "html": None if outdir is None else str(Path(outdir) / "report.html"),
        "targets": report["summary"],
    }
    if report.get("attribution"):
        out["attribution"] = report["attribution"]
    return json.dumps(out, indent=1)


def _diagnostics(report: dict, state: dict) -> None:
    """The report's diagnostics (model and runs) as ``warning: …`` lines on stderr, once per
    process (none with --quiet); with --strict the first one is the error (nothing written)."""
    import sys

    from ..errors import GraphError
    from ..graph.diagnose import _SHOWN, Diagnostic

    found = [(None, d) for d in report.get("diagnostics") or []]
    found += [(e["target"], d) for e in report["targets"] for d in e.get("diagnostics") or []]
    if state.get("strict") and found:
        where, d = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise GraphError(f"{(where + ': ') if where else ''}{Diagnostic(**d)}{more} [--strict]")
    for where, d in found:
        text = f"{(where + ': ') if where else ''}{Diagnostic(**d)}"
        if not state.get("quiet") and (report["inputs"]["model"], text) not in _SHOWN:
            print(f"warning: {text}", file=sys.stderr)
            _SHOWN.add((report["inputs"]["model"], text))


def _finish(report: dict, results: dict, output, as_json: bool) -> None:
    """Write the report files (when ``output`` is given), then print the JSON summary or
    the table."""
    from .. import cli as _cli
    from .html import render_html
    from .report import write_report

    _diagnostics(report, _cli.STATE)
    if output is not None:
        write_report(output, report, render_html(report, results))
    if as_json:
        typer.echo(_json_summary(report, output))
        return
    c = _cli.console()
    _print_summary(report, c)
    if report.get("attribution"):
        _print_attribution(report["attribution"], c)
    if output is not None:
        c.print(f"wrote {Path(output) / 'report.json'} and {Path(output) / 'report.html'}")



def parse_device_params(items) -> dict:
    """``--device-param KEY=VALUE`` (repeatable) → {KEY: typed value}; the target checks the
    names and values (the DeviceConfig fields of ``sweep --param device.<field>``)."""
    return key_values(items, "--device-param", "read_time=3600")


def parse_compile_options(items) -> dict:
    """``--compile-option KEY=VALUE`` (repeatable) → {KEY: typed value}; the target's declared
    compile options say which keys exist."""
    return key_values(items, "--compile-option", "allow_loop_delay=true")


def _device_param_error(exc: Exception, items) -> InputError | None:
    """A target's error about a device parameter as one line naming the option and the
    ``KEY=VALUE`` it is about (the first given key the message names); None if it names none."""
    import re

    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for text in items or ():
        key = text.partition("=")[0].strip()
        if key and re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", msg):
            reason = re.sub(r"^[A-Za-z_]\w*: ", "", msg)  # drop the target's own prefix (e.g. its config class)
            return InputError(f"--device-param {text.strip()}: {reason}")
    return None


def check_device_params(graph, targets, hardware: dict, params: dict, items) -> None:
    """Refuse bad ``--device-param`` values before anything runs: each target that declares
    ``device_params`` compiles ``graph`` with them (ideal, where it declares ``nonidealities``,
    so the check costs no programming noise); its error on a parameter becomes one line
    ``--device-param KEY=VALUE: …``. Errors that name no parameter are left to the real run."""
    from ..targets.base import get_target
    from .report import load_hardware

    if not params:
        return
    takers = [t for t in targets if "device_params" in get_target(t).compile_options]
    if not takers:
        raise InputError(f"--device-param: none of the targets ({', '.join(targets)}) takes device parameters")
    for t in takers:
        tgt = get_target(t)
        profile = load_hardware(tgt, hardware.get(t))
        hw = profile if profile is not None and profile.kind in tgt.hardware_kinds else None
        ideal = {"nonidealities": []} if "nonidealities" in tgt.compile_options else {}
        try:
            tgt.compile(graph, hardware=hw, device_params=dict(params), **ideal)
        except Exception as exc:  # noqa: BLE001 - only parameter errors are ours to report here
            err = _device_param_error(exc, items)
            if err is not None:
                raise err from None


def _calibration_file(path: Path, spec: str) -> np.ndarray:
    """The array ``x`` of a ``--calibration`` .npz file (one-line errors naming the file)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in getattr(f, "files", ()):
                raise InputError(f"--calibration {spec}: the file has no array 'x'")
            return np.asarray(f["x"])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"--calibration {spec}: not a readable .npz file ({exc})") from None


def calibration_split(input_path, x, y, spec: Optional[str], on_eval: bool):
    """(x, y, Calibration): ``--calibration FILE|N`` (a .npz with x, or N held-out samples),
    else the input file's training split (``x_train``) where it has one."""
    import numpy as np

    from .calibration import split

    train = None
    with np.load(input_path, allow_pickle=False) as f:
        if "x_train" in f.files:
            train = f["x_train"]
    if spec is not None and spec.strip().isdigit():
        return split(x, y, int(spec), on_eval=on_eval)
    if spec is not None:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"--calibration {spec}: not a file of inputs (.npz with x) nor a number of samples")
        xc = _calibration_file(path, spec)
        if isinstance(x, np.ndarray) and (xc.ndim != x.ndim or xc.shape[2:] != x.shape[2:] or not len(xc)):
            want = ", ".join(["batch", "time", *map(str, np.shape(x)[2:])])
            raise InputError(f"--calibration {spec}: x has shape {tuple(xc.shape)}, expected ({want}) as the input's x")
        from .calibration import Calibration

        return split(x, y, Calibration(xc, f"file {spec}", True), on_eval=on_eval)
    return split(x, y, None, train=train, on_eval=on_eval)

def _attribution(graph, x, y, target, hardware, seeds: int, device, readout, cal, params, quiet: bool) -> dict:
    """``profile --attribute``: :func:`.attribution.attribute` over ``seeds`` device seeds,
    with a progress bar unless ``quiet`` (one tick per non-ideality set)."""
    from contextlib import nullcontext

    from .. import cli as _cli
    from .attribution import attribute

    if seeds < 1:
        raise InputError(f"--seeds {seeds}: --attribute needs at least one device seed")
    bar = nullcontext(None) if quiet else _cli.progress_bar(f"{target}: attribution (sets × {seeds} seeds)")
    with bar as cb:
        return attribute(graph, x, y, target=target, hardware=hardware, seeds=range(seeds), device=device, readout=readout,
                         calibration=cal, options={"device_params": params} if params else None, progress=cb)


def register(app: typer.Typer) -> None:
    from .. import cli as _cli

    @app.command()
    def profile(
        model: str = typer.Argument(..., help="A .nir file."),
        target: str = typer.Option(REFERENCE, "--target", "-t", help=" | ".join(REGISTRY)),
        hardware: Optional[str] = typer.Option(None, "--hardware", help="Hardware profile name or .toml (default: loihi2 for reference/Loihi targets, rram_40nm for rram)."),
        input: Path = typer.Option(..., "--input", "-i", help=".npz with x (batch, time, *shape) and optional labels y."),
        dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file)."),
        reset: Optional[str] = typer.Option(None, help="zero | subtract (else from the file)."),
        output: Path = typer.Option(..., "--output", "-o", help="Directory for report.json and report.html."),
        readout: str = typer.Option("spikes", help="Accuracy readout: spikes (most spikes) | membrane (max potential) | auto."),
        sample: int = typer.Option(0, help="Sample whose spike raster the HTML report shows."),
        lag_padding: bool = typer.Option(True, "--lag-padding/--no-lag-padding", help="Append a lagging target's output lag in silent steps and read its outputs at their lag, so it is measured on the reference's window (default on)."),
        device: str = typer.Option("cpu", help="torch device for simulated targets."),
        calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration data for targets that calibrate on data (ADC ranges): a .npz with x, or N (the first N samples, held out and not evaluated). Default: the input's x_train, else none."),
        calibrate_on_eval: bool = typer.Option(False, "--calibrate-on-eval", help="Calibrate on the evaluated samples themselves (flagged in the report as not disjoint)."),
        device_param: Optional[List[str]] = typer.Option(None, "--device-param", help="KEY=VALUE device parameter (repeatable; the names of sweep --param device.<field>), e.g. read_time=2592000."),
        compile_option: Optional[List[str]] = typer.Option(None, "--compile-option", help="KEY=VALUE compile option of the target (repeatable; e.g. allow_loop_delay=true, bias=synapse, weight_sign=mixed on the Loihi targets)."),
        attribute: bool = typer.Option(False, "--attribute", help="Also measure the accuracy cost of each non-ideality (alone and all but it) over --seeds device seeds."),
        seeds: int = typer.Option(3, "--seeds", help="Device seeds for --attribute."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    ):
        """Run a model on one target and write a report (metrics, energy, latency) to DIR."""
        from .report import profile_run

        readout_ = _readout(readout)
        x, y = _cli.read_input_npz(input)
        graph, _ = _cli.load_model(model, dt, reset)
        if hardware is not None:
            from ..hardware import load_profile

            load_profile(hardware)  # fail early on a bad profile, before running anything
        quiet = _cli.STATE["quiet"] or as_json
        params = parse_device_params(device_param)
        check_device_params(graph, [target], {target: hardware}, params, device_param)
        x, y, cal = calibration_split(input, x, y, calibration, calibrate_on_eval)
        kw = dict(target=target, hardware=hardware, readout=readout_, device=device, sample=sample, pad_lag=lag_padding,
                  device_params=params, calibration=cal, compile_options=parse_compile_options(compile_option))
        try:
            if quiet:
                report, results = profile_run(model, input, graph, x, y, **kw)
            else:
                with _cli.progress_bar(f"{target}: steps") as cb:
                    report, results = profile_run(model, input, graph, x, y, progress=cb, **kw)
            if attribute:
                report["attribution"] = _attribution(graph, x, y, target, hardware, seeds, device, readout_, cal, params, quiet)
        except InputError as exc:
            if "shape" in str(exc) and str(input) not in str(exc):
                raise InputError(f"{input}: {exc}") from None
            raise
        _finish(report, results, output, as_json)

    @app.command()
    def compare(
        model: str = typer.Argument(..., help="A .nir file."),
        targets: str = typer.Option(",".join(REGISTRY), "--targets", help="Comma-separated targets (the reference is always run)."),
        input: Path = typer.Option(..., "--input", "-i", help=".npz with x (batch, time, *shape) and optional labels y."),
        hardware: Optional[str] = typer.Option(None, "--hardware", help="Profiles per target, e.g. 'loihi2-emu=loihi2,rram=rram_40nm'; a bare name or .toml applies to every target of its kind (defaults: loihi2 for reference and Loihi targets, rram_40nm for rram)."),
        dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file)."),
        reset: Optional[str] = typer.Option(None, help="zero | subtract (else from the file)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory for report.json and report.html (none: print only)."),
        readout: str = typer.Option("spikes", help="Accuracy readout: spikes | membrane | auto."),
        sample: int = typer.Option(0, help="Sample whose spike rasters the HTML report shows."),
        lag_padding: bool = typer.Option(True, "--lag-padding/--no-lag-padding", help="Append a lagging target's output lag in silent steps and read its outputs at their lag, so it is measured on the reference's window (default on)."),
        device: str = typer.Option("cpu", help="torch device for simulated targets."),
        calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration data for targets that calibrate on data (ADC ranges): a .npz with x, or N (the first N samples, held out and not evaluated). Default: the input's x_train, else none."),
        calibrate_on_eval: bool = typer.Option(False, "--calibrate-on-eval", help="Calibrate on the evaluated samples themselves (flagged in the report as not disjoint)."),
        device_param: Optional[List[str]] = typer.Option(None, "--device-param", help="KEY=VALUE device parameter (repeatable; the names of sweep --param device.<field>), e.g. read_time=2592000."),
        compile_option: Optional[List[str]] = typer.Option(None, "--compile-option", help="KEY=VALUE compile option of the target (repeatable; e.g. allow_loop_delay=true, bias=synapse, weight_sign=mixed on the Loihi targets)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    ):
        """Run a model on several targets; tabulate accuracy, spikes, energy and agreement with the reference."""
        from ..targets.base import get_target
        from .report import applies, compare_runs

        readout_ = _readout(readout)
        names = [t.strip() for t in targets.split(",") if t.strip()]
        unknown = [t for t in names if t not in REGISTRY]
        if unknown:
            raise InputError(f"unknown target {unknown[0]!r}: choose from {', '.join(REGISTRY)}")
        hw = _parse_hardware_map(hardware)
        for k in hw:
            if k != "*" and k not in names and k != REFERENCE:
                raise InputError(f"--hardware names target {k!r}, which is not in --targets")
        if "*" in hw:
            from ..hardware import load_profile

            spec = hw.pop("*")
            prof = load_profile(spec)
            fits = [t for t in [REFERENCE, *names] if applies(get_target(t), prof)]
            if not fits:
                raise InputError(f"--hardware {spec}: a {prof.kind} profile applies to none of the targets "
                                 f"({', '.join([REFERENCE, *names])}); name the target (--hardware TARGET=PROFILE)")
            for t in fits:
                hw.setdefault(t, prof)
        x, y = _cli.read_input_npz(input)
        graph, _ = _cli.load_model(model, dt, reset)
        quiet = _cli.STATE["quiet"] or as_json
        factory = None if quiet else (lambda t: _cli.progress_bar(f"{t}: steps"))
        params = parse_device_params(device_param)
        check_device_params(graph, names, hw, params, device_param)
        x, y, cal = calibration_split(input, x, y, calibration, calibrate_on_eval)
        report, results = compare_runs(model, input, graph, x, y, targets=names, hardware=hw, readout=readout_,
                                       device=device, sample=sample, progress_factory=factory, pad_lag=lag_padding,
                                       device_params=params, calibration=cal,
                                       compile_options=parse_compile_options(compile_option))
        _finish(report, results, output, as_json)
