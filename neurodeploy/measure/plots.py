"""Figures for the HTML report, rendered with matplotlib (Agg) to base64 PNG strings so
the report is one self-contained file."""

from __future__ import annotations

import base64
import io

import numpy as np

KIND_COLORS = {
    "synop": "#4477aa", "neuron_update": "#66ccee", "spike": "#228833", "static": "#bbbbbb",
    "cell_read": "#4477aa", "dac": "#ccbb44", "adc": "#ee6677", "other": "#aa3377",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def raster(records: dict, layers: list[str], sample: int, dt: float, title: str = "") -> str | None:
    """Spike raster of one sample: one panel per layer (neuron index vs step)."""
    layers = [n for n in layers if n in records and records[n].numel()]
    if not layers:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.2 + 1.3 * len(layers)), sharex=True, squeeze=False)
    for ax, n in zip(axes[:, 0], layers):
        r = records[n].detach().float().cpu()
        s = min(sample, r.shape[0] - 1)
        a = r[s].reshape(r.shape[1], -1).numpy()
        t, i = np.nonzero(a)
        ax.scatter(t, i, s=30 if a.shape[1] <= 64 else 8, marker="|", linewidths=1.2, color="k")
        ax.set_ylabel(f"{n}\nneuron", fontsize=8)
        ax.set_ylim(-0.5, a.shape[1] - 0.5)
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel(f"step (dt = {dt:g} s)")
    axes[0, 0].set_title(title or f"spike raster, sample {sample}", fontsize=9)
    return _png(fig)


def layer_counts(per_target: dict[str, dict[str, float]], ylabel: str = "spikes / sample") -> str | None:
    """Grouped bars: per layer (x) and target (colour), e.g. spikes per sample."""
    per_target = {k: v for k, v in per_target.items() if v}
    if not per_target:
        return None
    plt = _plt()
    layers = list(dict.fromkeys(n for v in per_target.values() for n in v))
    x = np.arange(len(layers))
    w = 0.8 / len(per_target)
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(layers) + 2), 3))
    for j, (t, v) in enumerate(per_target.items()):
        ax.bar(x + j * w - 0.4 + w / 2, [v.get(n, 0) for n in layers], w, label=t)
    ax.set_xticks(x, layers, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return _png(fig)


def energy_stacked(groups: dict[str, dict[str, float]], scale: float = 1e6, unit: str = "µJ", title: str = "") -> str | None:
    """Stacked bars: one bar per group (a layer or a target), stacked by event kind."""
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    plt = _plt()
    kinds = list(dict.fromkeys(k for v in groups.values() for k in v))
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(names) + 2.5), 3))
    bottom = np.zeros(len(names))
    for k in kinds:
        vals = np.array([groups[n].get(k, 0.0) * scale for n in names])
        ax.bar(names, vals, bottom=bottom, label=k, color=KIND_COLORS.get(k, KIND_COLORS["other"]))
        bottom += vals
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel(f"energy ({unit})")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _png(fig)


def accuracy_bars(acc: dict[str, float]) -> str | None:
    acc = {k: v for k, v in acc.items() if v is not None}
    if not acc:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(3.5, 1.0 * len(acc) + 2), 2.8))
    bars = ax.bar(list(acc), [100 * v for v in acc.values()], color="#4477aa")
    for b, v in zip(bars, acc.values()):
        ax.text(b.get_x() + b.get_width() / 2, 100 * v, f"{100 * v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    return _png(fig)


def attribution_bars(attribution: dict) -> str | None:
    """Grouped bars with error bars: per non-ideality, its accuracy cost alone (ideal − only
    it) and in context (all but it − all), in percentage points, mean ± std over seeds."""
    per = attribution.get("per") or {}
    if not per:
        return None
    plt = _plt()
    names = list(per)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(names) + 2.5), 3))
    for j, (key, label, color) in enumerate((("cost_alone", "alone", "#4477aa"), ("cost_in_context", "in context", "#ee6677"))):
        mean = np.array([100 * per[n][key]["mean"] for n in names])
        std = np.array([100 * per[n][key]["std"] for n in names])
        ax.bar(x + (j - 0.5) * 0.4, mean, 0.4, yerr=std, capsize=3, label=label, color=color)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy cost (pp)")
    where = f"{attribution.get('target')} on {attribution.get('hardware') or 'its default profile'}"
    ax.set_title(f"accuracy cost of each non-ideality, {where} ({len(attribution.get('seeds') or [])} device seeds, ± std)",
                 fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)
