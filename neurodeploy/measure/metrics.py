"""Metrics computed from a RunResult alone (measurement never knows which target ran)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

READOUTS = ("spikes", "membrane", "auto")


def predict(output: torch.Tensor, readout: str = "spikes") -> np.ndarray:
    """Class per sample from an output (batch, time, classes).

    ``spikes``: the class with the most spikes (ties → lowest index); ``membrane``: the class
    whose output (a non-spiking readout's potential) is largest at its maximum over time.
    """
    if readout not in ("spikes", "membrane"):
        raise InputError(f"readout must be 'spikes' or 'membrane', got {readout!r}")
    out = output.detach().float().cpu()
    if out.ndim != 3:
        out = out.reshape(out.shape[0], out.shape[1], -1)
    score = out.sum(1) if readout == "spikes" else out.max(1).values
    return score.argmax(1).numpy()


def is_binary(output: torch.Tensor) -> bool:
    return bool(((output == 0) | (output == 1)).all())


def accuracy(result, labels, readout: str = "auto") -> float:
    """Fraction of samples whose predicted class equals the label. ``auto`` reads spike
    counts when the output is binary and the membrane maximum otherwise."""
    out = result.output if hasattr(result, "output") else result
    y = np.asarray(labels).reshape(-1)
    if len(y) != out.shape[0]:
        raise InputError(f"{len(y)} labels for {out.shape[0]} samples")
    if readout == "auto":
        readout = "spikes" if is_binary(out) else "membrane"
    return float((predict(out, readout) == y).mean())
