"""Input codes of a converted network: ``x`` (N, *shape) in ANN units → (N, T, *shape).

* ``regular``: deterministic rate code, ``p = clip(x / scale, 0, 1)``; step t spikes when
  ``floor((t+1)·p + ½)`` passes an integer, so a pixel fires ``round(T·p)`` times, evenly
  spread (binary: every target, Loihi included);
* ``rate``: Bernoulli spikes with probability p per step (:class:`~neurodeploy.data.encoders.RateEncoder`,
  seeded);
* ``graded``: the value ``x`` itself at every step (a constant input current; reference and
  rram — Loihi's inputs are binary spikes).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError

ENCODINGS = ("regular", "rate", "graded")


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise InputError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    return encoding


def regular(p: torch.Tensor, steps: int) -> torch.Tensor:
    t = torch.arange(steps + 1, dtype=torch.float64).reshape(1, -1, *([1] * (p.ndim - 1)))
    level = torch.floor(t * p.unsqueeze(1).double() + 0.5)
    return (level[:, 1:] - level[:, :-1]).float()


def encode(x, steps: int, encoding: str, scale: float, seed: int = 0) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise InputError("inputs contain NaN or infinite values")
    if encoding == "graded":
        return x.unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:]).contiguous()
    p = torch.clamp(x / scale, 0.0, 1.0)
    if encoding == "regular":
        return regular(p, steps)
    from ..data.encoders import RateEncoder

    return RateEncoder(steps=steps, gain=1.0, seed=seed)(p)
