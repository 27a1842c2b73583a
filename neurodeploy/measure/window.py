"""The measurement window of a lagging target (issue 11, docs/protocol.md).

A target whose outputs trail the NIR reference by ``lag`` steps (Lava's Dense delivers one
step late per synapse) would be measured on a shorter effective window if it ran the input
as is: its last ``lag`` steps of response fall off the end. Measurement appends ``lag``
silent steps to the input and reads each output ``lag`` steps late, so accuracy and spikes
cover the same window as the reference's. The padding is stated in ``RunResult.info``
(``lag_padding``) and can be turned off.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


def output_lags(description: dict, graph) -> dict[str, int] | None:
    """{output node: steps} the description declares; None when an output has no single
    lag (paths of different length meet)."""
    lag = description.get("lag") or {}
    out = {o: lag.get(o, 0) for o in graph.outputs}
    if any(v is None for v in out.values()):
        return None
    return {o: int(v) for o, v in out.items()}


def pad_steps(x, n: int):
    """``x`` (an array, a tensor or a dict of them, (batch, time, ...)) with ``n`` silent
    steps appended."""
    if isinstance(x, dict):
        return {k: pad_steps(v, n) for k, v in x.items()}
    if not n:
        return x
    if isinstance(x, torch.Tensor):
        return torch.cat([x, torch.zeros((x.shape[0], n, *x.shape[2:]), dtype=x.dtype, device=x.device)], 1)
    a = np.asarray(x)
    return np.concatenate([a, np.zeros((a.shape[0], n, *a.shape[2:]), a.dtype)], 1)


def windowed(result, lags: dict[str, int], steps: int, padded: int):
    """``result`` of a run padded with ``padded`` silent steps, with every output read
    ``lags[output]`` steps late over the input's ``steps`` (records and counts untouched:
    the agreement applies the lag itself, and the counts are the work the run did)."""
    outputs = {o: t[:, lags.get(o, 0): lags.get(o, 0) + steps] for o, t in result.outputs.items()}
    info = {**(result.info or {}), "lag_padding": {
        "silent_steps": int(padded), "output_lag": dict(lags),
        "note": f"input padded with {padded} silent step(s); outputs read at their lag over the input's {steps} steps"}}
    return dataclasses.replace(result, outputs=outputs, info=info)


def steps_of(x) -> int:
    """The time steps of ``x`` (an array or a dict of them, (batch, time, ...))."""
    return int(np.shape(next(iter(x.values())) if isinstance(x, dict) else x)[1])


def run_windowed(run, description: dict, graph, x, pad_lag: bool = True):
    """``run(x_padded) -> RunResult`` on ``x`` plus the outputs' lag (from ``description``)
    in silent steps, read at that lag (:func:`windowed`); ``run(x)`` as is without a lag or
    with ``pad_lag=False``. The one place profile, compare, attribution, the testing
    helpers and fine-tuning run a program on the reference's window."""
    lags = output_lags(description, graph) if pad_lag else None
    pad = max(lags.values(), default=0) if lags else 0
    result = run(pad_steps(x, pad))
    return windowed(result, lags, steps_of(x), pad) if pad else result
