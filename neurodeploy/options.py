"""Typed ``KEY=VALUE`` options from the command line (``--device-param``, ``--compile-option``,
``sweep --param``): one parser, one typing rule."""

from __future__ import annotations

from .errors import InputError


def typed(v: str):
    """``none``/``null`` → None, ``true``/``false`` → bool, then int, float, else the text."""
    low = v.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v.strip()


def key_values(items, option: str, example: str) -> dict:
    """Repeated ``option KEY=VALUE`` texts → {KEY: typed value}; a malformed one is an
    InputError naming the option and showing ``example``."""
    out = {}
    for text in items or ():
        key, sep, val = text.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise InputError(f"{option} {text!r}: expected KEY=VALUE (e.g. {example})")
        out[key.strip()] = typed(val)
    return out
