"""``neurodeploy finetune``: hardware-aware fine-tuning of a NIR model (registered on the
main Typer app; imports nothing heavy until the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

CLI_TARGETS = ("loihi2-emu", "rram")


def _seeds(text: str, what: str) -> list[int]:
    from ..errors import InputError

    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, got {text!r}") from None


def _check(target: str, hardware, data: str, output: Path) -> None:
    """Every argument refused before any work (nothing is written on error)."""
    from ..errors import InputError
    from ..measure.report import load_hardware
    from ..targets.base import get_target
    from .data import splits

    if target not in CLI_TARGETS:
        raise InputError(f"--target must be one of {', '.join(CLI_TARGETS)}, got {target!r}")
    load_hardware(get_target(target), hardware)  # unknown profile, or one of another kind
    if output.suffix != ".nir":
        raise InputError(f"-o {output}: the tuned model is written as NIR; give a path ending in .nir")
    if output.exists() and output.is_dir():
        raise InputError(f"-o {output}: is a directory")
    if data != "digits":
        splits(data)  # a missing or malformed file fails here


def register(app: typer.Typer) -> None:
    from .. import cli as _cli

    @app.command()
    def finetune(
        model: str = typer.Argument(..., help="A .nir file (any loadable model)."),
        target: str = typer.Option(..., "--target", "-t", help=" | ".join(CLI_TARGETS)),
        hardware: Optional[str] = typer.Option(None, "--hardware", help="Hardware profile name or .toml (default: the target's)."),
        data: str = typer.Option("digits", "--data", help="digits | FILE.npz (x_train, y_train, x_test, y_test [, x_val, y_val] or x, y)."),
        output: Path = typer.Option(..., "--output", "-o", help="The tuned model, OUT.nir."),
        epochs: int = typer.Option(15, help="Training epochs."),
        seeds: int = typer.Option(256, help="Training device seeds (rram; the first 3 validate; never an evaluation seed)."),
        eval_seeds: str = typer.Option("0,1,2", "--eval-seeds", help="Device seeds of the before/after evaluation."),
        lr: float = typer.Option(2e-3, help="Adam learning rate (cosine decay to 0 over the run)."),
        clip: bool = typer.Option(True, "--clip/--no-clip", help="rram: clip each layer's weights to the conductance range with the least 4-level rounding error."),
        dt: Optional[float] = typer.Option(None, help="Time step in seconds (else from the file)."),
        reset: Optional[str] = typer.Option(None, help="zero | subtract (else from the file)."),
    ):
        """Fine-tune MODEL for a target's effects (Loihi fixed point or the RRAM device model); write OUT.nir."""
        from .. import save
        from .data import splits
        from .tune import evaluate, finetune as _finetune, train_seeds

        _check(target, hardware, data, output)
        ev = _seeds(eval_seeds, "--eval-seeds")
        train_seeds(seeds, ev)
        graph, _ = _cli.load_model(model, dt, reset)
        sp = splits(data)
        c = _cli.console()
        show = lambda what, r: c.print(f"{what}: {target} accuracy {100 * r['mean']:.2f} % "  # noqa: E731
                                       f"(± {100 * r['std']:.2f}, seeds {r['seeds']})" if r["seeds"] else
                                       f"{what}: {target} accuracy {100 * r['mean']:.2f} %")
        show("before", evaluate(graph, target, hardware, sp, ev))
        tuned = _finetune(graph, target, hardware, sp, epochs, seeds, eval_seeds=ev, lr=lr, clip=clip,
                          log=lambda r: c.print(f"epoch {r['epoch']}: loss {r['loss']:.4f}, "
                                                f"validation accuracy {100 * r['val_accuracy']:.2f} %"))
        show("after", evaluate(tuned, target, hardware, sp, ev))
        save(tuned, output)
        c.print(f"wrote {output}")
