"""CLI commands of the RRAM target: ``neurodeploy lsm train|eval|sweep|zeroshot``.

``neurodeploy run MODEL --target rram --hardware rram_40nm`` needs nothing here: it goes
through the target registry (:mod:`neurodeploy.targets.base`). Heavy imports happen inside
the commands.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from ...errors import InputError

lsm_app = typer.Typer(no_args_is_help=True, help="Liquid state machines on RRAM (after Lin et al. 2025).")


def _cli():
    from ... import cli

    return cli


class _OutDir:
    """Build an output directory under a temporary sibling name, rename when complete."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise InputError(f"{self.path}: output directory exists and is not empty")

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        os.chmod(self.tmp, 0o755)
        os.replace(self.tmp, self.path)
        return False


def _check_data(data: str):
    from .lsm import DATASETS

    if data not in DATASETS:
        raise InputError(f"--data {data!r}: unknown dataset (choose one of {', '.join(DATASETS)})")


def _pct(a: float) -> str:
    return f"{a * 100:.2f} %"


@lsm_app.command("train")
def lsm_train(
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (must not exist or be empty)."),
    data: str = typer.Option("event-digits", help="Dataset: event-digits."),
    neurons: int = typer.Option(200, help="Reservoir size."),
    hardware: str = typer.Option("rram_40nm", help="RRAM hardware profile (name or .toml)."),
    readout: str = typer.Option("ridge", help="ridge | mlp"),
    mode: str = typer.Option("formed", help="formed (the paper: random conductances read as they are) | programmed (ideal weights written with write-verify)."),
    bins: int = typer.Option(1, help="Time windows of the spike-count features."),
    seed: int = typer.Option(0, help="Seed of the reservoir, device noise and data split."),
    n_train: Optional[int] = typer.Option(None, help="Use only this many training samples."),
    n_test: Optional[int] = typer.Option(None, help="Use only this many test samples."),
    input_density: float = typer.Option(0.1, help="Breakdown probability of input-array cells."),
    recurrent_density: float = typer.Option(0.05, help="Breakdown probability of recurrent-array cells."),
    input_scale: float = typer.Option(2.0, help="Input weight of a full-window conductance difference."),
    recurrent_scale: float = typer.Option(2.0, help="Recurrent weight of a full-window conductance difference."),
    excitatory_fraction: Optional[float] = typer.Option(None, help="E/I split of the recurrent weights (Dale's law)."),
    fan_in: Optional[int] = typer.Option(None, "--fan-in", help="Recurrent synapses per neuron: a sparse (fixed fan-in) reservoir, for large --neurons; --recurrent-density is then unused."),
    input_fan_in: Optional[int] = typer.Option(None, "--input-fan-in", help="Input synapses per neuron of a sparse reservoir (default: the dense input array's expected count, n_inputs·(1 − (1 − input_density)²)); needs --fan-in."),
    kernel: Optional[str] = typer.Option(None, help="Product kernel of a sparse reservoir: csr (default) | gather | dense."),
):
    """Build a reservoir from the device's random weights, train readouts on software and
    RRAM spikes, print both accuracies (and the input-only baseline). The RRAM program
    (calibrated ADC ranges included) is saved in OUTPUT/rram_program."""
    import numpy as np

    from ...hardware import load_profile
    from .device import DeviceConfig
    from .lsm import READOUTS, LSMConfig, Reservoir, evaluate, event_digit_inputs, readout_state

    _check_data(data)
    if readout not in READOUTS:
        raise InputError(f"--readout {readout!r}: choose ridge or mlp")
    prof = load_profile(hardware)
    dcfg = DeviceConfig.from_profile(prof)
    if kernel is not None and fan_in is None:
        raise InputError("--kernel applies to sparse reservoirs: set --fan-in")
    cfg = LSMConfig(n_neurons=neurons, input_density=input_density, recurrent_density=recurrent_density,
                    input_scale=input_scale, recurrent_scale=recurrent_scale,
                    excitatory_fraction=excitatory_fraction, seed=seed, fan_in=fan_in, input_fan_in=input_fan_in)
    c = _cli().console()
    out = _OutDir(output)
    xtr, ytr, xte, yte = event_digit_inputs(seed=seed, n_train=n_train, n_test=n_test)
    res_ = Reservoir(cfg, dcfg)
    res, readouts = evaluate(res_, xtr, ytr, xte, yte, readout=readout, bins=bins, mode=mode, seed=seed, kernel=kernel)
    with out as d:
        res_.save(d)
        np.savez_compressed(d / "readouts.npz", **{f"{v}/{k}": a for v, ro in readouts.items() for k, a in readout_state(ro).items()})
        onnx_files = {}
        try:
            for v in ("software", "rram"):
                onnx_files[v] = readouts[v].export_onnx(d / f"readout_{v}.onnx").name
        except Exception as exc:  # onnx is an optional extra
            c.print(f"note: ONNX export skipped ({type(exc).__name__}: {exc})")
        res.programs["rram"].save(d / "rram_program")  # as evaluated: ADC ranges calibrated on training data
        meta = {
            "data": data, "data_seed": seed, "n_train": n_train, "n_test": n_test, "samples": [len(ytr), len(yte)],
            "readout": readout, "bins": bins, "mode": mode, "seed": seed, "hardware": prof.name,
            "fan_in": fan_in, "input_fan_in": cfg.input_k if cfg.sparse else None, "kernel": kernel,
            "accuracy": res.accuracy, "spike_rate": res.spike_rate, "onnx": onnx_files,
            "rram_counts": res.counts.get("rram", {}),
        }
        (d / "results.json").write_text(json.dumps(meta, indent=2))
    sparse_txt = f", fan-in {fan_in} (input {cfg.input_k})" if cfg.sparse else ""
    c.print(f"wrote {output}  ({len(ytr)} train / {len(yte)} test samples, {neurons} neurons{sparse_txt}, {readout} readout, {mode} RRAM)")
    c.print(f"software accuracy: {_pct(res.accuracy['software'])}")
    c.print(f"RRAM accuracy:     {_pct(res.accuracy['rram'])}  ({prof.name})")
    c.print(f"input-only readout: {_pct(res.accuracy['input_only'])}")


@lsm_app.command("eval")
def lsm_eval(
    lsm_dir: Path = typer.Argument(..., help="Directory written by `neurodeploy lsm train`."),
    read_seed: Optional[int] = typer.Option(None, help="Read-noise seed: that of a program compiled with this seed (default: the training seed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the accuracies as JSON."),
):
    """Re-run a trained LSM's reservoir (software and the saved RRAM program, with its
    calibrated ADC ranges) on the test split and score the stored readouts."""
    import numpy as np

    from .lsm import Reservoir, event_digit_inputs, readout_from_state, spike_features
    from .sparse import load_program

    if not (lsm_dir / "results.json").exists():
        raise InputError(f"{lsm_dir}: not an LSM directory (no results.json)")
    meta = json.loads((lsm_dir / "results.json").read_text())
    res_ = Reservoir.load(lsm_dir)
    st = np.load(lsm_dir / "readouts.npz")
    states: dict = {}
    for k in st.files:
        v, _, rest = k.partition("/")
        states.setdefault(v, {})[rest] = st[k]
    _, _, xte, yte = event_digit_inputs(seed=meta["data_seed"], n_train=meta["n_train"], n_test=meta["n_test"])
    prog = load_program(lsm_dir / "rram_program")
    acc = {}
    for v in ("software", "rram"):
        kw = dict(target="reference") if v == "software" else dict(
            program=prog, read_seed=None if read_seed is None else read_seed + 1)  # a program's read seed is its seed + 1
        f, _, _ = res_.features(xte, meta["bins"], **kw)
        acc[v] = readout_from_state(states[v]).accuracy(f, yte)
    if "input_only" in states:
        acc["input_only"] = readout_from_state(states["input_only"]).accuracy(spike_features(xte, meta["bins"]), yte)
    if as_json:
        typer.echo(json.dumps({"accuracy": acc, "samples": len(yte)}))
        return
    c = _cli().console()
    c.print(f"software accuracy: {_pct(acc['software'])}")
    c.print(f"RRAM accuracy:     {_pct(acc['rram'])}")
    if "input_only" in acc:
        c.print(f"input-only readout: {_pct(acc['input_only'])}")


def sweep(
    param: List[str] = typer.Option(..., "--param", help="name=v1,v2,... of a DeviceConfig field; repeatable."),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (sweep.json, sweep.png)."),
    seeds: int = typer.Option(3, help="Device seeds per point (error bars)."),
    neurons: int = typer.Option(200, help="Reservoir size."),
    hardware: str = typer.Option("rram_40nm", help="RRAM hardware profile (window, geometry, base values)."),
    base: str = typer.Option("ideal", help="ideal (every other non-ideality off) | profile (the profile's values)."),
    mode: str = typer.Option("programmed", help="programmed (levels/programming noise apply) | formed."),
    readout: str = typer.Option("ridge", help="ridge | mlp"),
    data: str = typer.Option("event-digits", help="Dataset: event-digits."),
    n_train: Optional[int] = typer.Option(None, help="Use only this many training samples."),
    n_test: Optional[int] = typer.Option(None, help="Use only this many test samples."),
    seed: int = typer.Option(0, help="Seed of the reservoir and the data split."),
):
    """LSM accuracy vs RRAM device parameters (one at a time): JSON + PNG with error bars over seeds."""
    from ...hardware import load_profile
    from .device import DeviceConfig
    from .lsm import LSMConfig, Reservoir, device_sweep, event_digit_inputs, parse_param

    _check_data(data)
    if seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {seeds}")
    if base not in ("ideal", "profile"):
        raise InputError(f"--base {base!r}: choose ideal or profile")
    params = dict(parse_param(p) for p in param)
    dcfg = DeviceConfig.from_profile(load_profile(hardware))
    out = _OutDir(output)
    data_ = event_digit_inputs(seed=seed, n_train=n_train, n_test=n_test)
    res_ = Reservoir(LSMConfig(n_neurons=neurons, seed=seed), dcfg)
    cli = _cli()
    with cli.progress_bar("sweep") as cb:
        result = device_sweep(res_, data_, params, seeds=seeds, base=dcfg if base == "profile" else dcfg.ideal(),
                              mode=mode, readout=readout, progress=cb)
    result.update({"neurons": neurons, "hardware": hardware, "samples": [len(data_[1]), len(data_[3])]})
    with out as d:
        (d / "sweep.json").write_text(json.dumps(result, indent=2))
        plot_sweep(result, d / "sweep.png")
    c = cli.console()
    for name, rows in result["params"].items():
        c.print(f"{name}: " + ", ".join(f"{r['value']}→{r['mean'] * 100:.1f}±{r['std'] * 100:.1f} %" for r in rows))
    c.print(f"wrote {output}/sweep.json and sweep.png")


def plot_sweep(result: dict, path: Path) -> Path:
    """One panel per parameter: mean accuracy ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["params"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = result["params"][name]
        labels = [str(r["value"]) for r in rows]
        xs = list(range(len(rows)))
        ax.errorbar(xs, [r["mean"] * 100 for r in rows], yerr=[r["std"] * 100 for r in rows], marker="o", capsize=4)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels)
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"LSM ({result.get('neurons', '?')} neurons) on RRAM, {result['seeds']} seeds, {result['mode']} weights")
    fig.tight_layout()
    from ...graph.io import write_atomic

    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


@lsm_app.command("zeroshot")
def lsm_zeroshot(
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (zeroshot.json, report.html, heads as ONNX)."),
    quick: bool = typer.Option(False, "--quick", help="Subsets of both datasets (demo/CI time budget)."),
    split: str = typer.Option("1-7:8-9", help="SEEN:UNSEEN digit classes (the paper's 1-7:8-9)."),
    device_seeds: int = typer.Option(3, help="RRAM device seeds (the RRAM gap's spread)."),
    hardware: str = typer.Option("rram_40nm", help="RRAM hardware profile (name or .toml)."),
    seed: int = typer.Option(0, help="Seed of the reservoirs and the image data split."),
    epochs: int = typer.Option(300, help="Training epochs of the projection heads."),
    device: str = typer.Option("cpu", help="Torch device of the reservoir runs (cpu | cuda)."),
):
    """Zero-shot audio↔image retrieval with two reservoirs (event digits, audio digits) and
    contrastively trained projection heads, software and RRAM; JSON + HTML report + ONNX heads."""
    from .zeroshot import experiment, parse_split

    sp = parse_split(split)
    if device_seeds < 1:
        raise InputError(f"--device-seeds must be >= 1, got {device_seeds}")
    cli = _cli()
    with _OutDir(output) as d, cli.progress_bar("zeroshot runs") as cb:
        doc = experiment(d, quick=quick, split=sp, device_seeds=tuple(range(device_seeds)), hardware=hardware,
                         reservoir_seed=seed, epochs=epochs, progress=cb, device=device)
    c = cli.console()
    for v in ("software", "rram"):
        s = doc["summary"][v]
        c.print(f"{v}: unseen audio→image {_pct(s['unseen/audio_to_image']['mean'])}, image→audio "
                f"{_pct(s['unseen/image_to_audio']['mean'])}; seen audio→image {_pct(s['seen/audio_to_image']['mean'])}")
    c.print("energy digital/RRAM (dense, event): " + ", ".join(
        f"{m} {e['ratio_dense']:.1f}×, {e['ratio_event']:.1f}×" for m, e in doc["energy"].items()))
    c.print(f"wrote {output}/zeroshot.json, report.html")


def register(app) -> None:
    app.add_typer(lsm_app, name="lsm")
    lsm_app.command("sweep")(sweep)
