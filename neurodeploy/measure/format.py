"""Number formatting shared by the report pages and the CLI."""

from __future__ import annotations

import math


def fmt_si(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if v == 0:
        return f"0 {unit}"
    for p, s in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(v) >= p:
            return f"{v / p:.4g} {s}{unit}"
    return f"{v:.3g} {unit}"


def pct(v):
    return "—" if v is None else f"{100 * v:.2f} %"
