"""``neurodeploy convert MODEL.onnx --calibration X.npz --steps T -o OUT.nir`` (a plugin of the
main Typer app). Errors are NeurodeployErrors: the app prints ``error: ...`` and exits 2;
files are written only after the conversion succeeded, each atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _summary(conv, x, y) -> dict:
    out = {"nodes": len(conv.graph.nodes), "if_layers": len(conv.scales), "steps": conv.steps,
           "reset": conv.reset, "encoding": conv.encoding, "percentile": conv.percentile,
           "threshold_ratio": conv.threshold_ratio, "input_scale": conv.input_scale,
           "scales": conv.scales, "balance": conv.balance, "check_error": conv.check_error}
    if y is not None:
        out["ann_accuracy"] = float((conv.ann(x).reshape(len(y), -1).argmax(1) == y).mean())
        out["snn_reference_accuracy"] = float((conv.predict(conv.run(x)) == y).mean())
    return out


def _labels(path: Path, n: int):
    import numpy as np

    from ..errors import InputError

    with np.load(path, allow_pickle=False) as d:
        y = d["y"] if "y" in d.files else None
    if y is not None and (y.ndim != 1 or len(y) != n):
        raise InputError(f"{path}: labels 'y' have shape {y.shape}, expected ({n},)")
    return y


def _outputs(output: Path, write_input: Optional[Path]) -> None:
    from ..errors import InputError

    if output.suffix != ".nir":
        raise InputError(f"{output}: the output must be a .nir file")
    if write_input is not None and write_input.suffix != ".npz":
        raise InputError(f"{write_input}: --write-input must be an .npz file")


def register(app: typer.Typer) -> None:
    from .. import cli as _cli

    @app.command()
    def convert(
        model: Path = typer.Argument(..., help="An ONNX ANN (.onnx)."),
        calibration: Path = typer.Option(..., "--calibration", "-c", help=".npz with x (N, *input_shape) (and optional labels y)."),
        steps: int = typer.Option(32, "--steps", "-T", help="Time steps per presentation."),
        output: Path = typer.Option(..., "--output", "-o", help="Output .nir file."),
        percentile: float = typer.Option(99.9, help="Percentile of each layer's positive activations used as its scale."),
        reset: str = typer.Option("subtract", help="subtract (reference, rram) | zero (Loihi: balanced reset-to-zero)."),
        threshold_ratio: Optional[float] = typer.Option(None, help="Threshold ratio k ≥ 1 (reset zero; default 1)."),
        balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="Spike-rate balancing (default: on for reset zero)."),
        encoding: str = typer.Option("regular", help="regular | rate | graded (graded: not on Loihi)."),
        dt: float = typer.Option(1e-3, help="Time step in seconds written to the graph."),
        write_input: Optional[Path] = typer.Option(None, "--write-input", help="Also write the encoded calibration inputs (x, y) for `neurodeploy run`."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ):
        """Convert an ONNX ANN into a spiking NIR graph (rate-coded IF neurons)."""
        from . import convert as _convert
        from . import read_calibration

        _outputs(output, write_input)
        conv = _convert(model, calibration, steps, percentile=percentile, reset=reset, threshold_ratio=threshold_ratio,
                        balance=balance, encoding=encoding, dt=dt)
        x = read_calibration(calibration)
        y = _labels(calibration, len(x))
        summary = _summary(conv, x, y)
        conv.save(output)
        if write_input is not None:
            from ..graph.io import write_npz

            arrays = {"x": conv.encode(x).numpy(), **({} if y is None else {"y": y})}
            write_npz(write_input, arrays)
        if as_json:
            typer.echo(json.dumps({"output": str(output), **summary}, indent=1))
            return
        c = _cli.console()
        c.print(f"wrote {output}  ({summary['nodes']} nodes, {summary['if_layers']} IF layers, reset {conv.reset}, "
                f"T = {conv.steps}, {conv.encoding} input)")
        if "ann_accuracy" in summary:
            c.print(f"calibration set: ANN (onnxruntime) {100 * summary['ann_accuracy']:.2f} %, "
                    f"SNN reference {100 * summary['snn_reference_accuracy']:.2f} %")
