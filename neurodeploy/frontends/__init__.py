"""Frontends: turn framework models into NIR graphs that run as the framework runs them.

norse.py and snntorch.py trace a module with their own extractor (the frameworks' exporters
are wrong or crash, see quirks.py); foreign.py exports Sinabs and Rockpool modules with their
own exporter and repairs the result, refusing what the export cannot carry; torch.py holds the tracer and the plain torch layers;
netx.py imports lava-dl files; quirks.py repairs graphs exported by other tools, one named
repair per known quirk. docs/frontends.md says what each route supports.
"""

from __future__ import annotations

from ..errors import InputError


def detect_framework(module) -> str:
    """Guess which framework built ``module``: "norse", "snntorch", "sinabs", "rockpool" or "torch"."""
    import torch

    # torch's own modules(): Rockpool's modules override it with a dict of names
    names = {type(m).__module__.split(".")[0] for m in torch.nn.Module.modules(module)}
    for framework in ("norse", "snntorch", "sinabs", "rockpool"):
        if framework in names:
            return framework
    return "torch"


def from_module(module, sample, *, dt=None, reset=None, framework=None):
    """Export a torch module to NIR with its framework's exporter and normalize it."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        raise InputError("loading a torch module needs torch") from None
    if not isinstance(module, torch.nn.Module):
        raise InputError(
            f"cannot load a {type(module).__name__}: expected a .nir path, a nir.NIRGraph, "
            "a neurodeploy Graph or a torch.nn.Module with a sample input"
        )
    if sample is None:
        raise InputError("loading a torch module needs a sample input (one batch) to trace it")
    framework = framework or detect_framework(module)
    if framework == "norse":
        from .norse import from_norse

        return from_norse(module, sample, dt=dt, reset=reset)
    if framework == "snntorch":
        from .snntorch import from_snntorch

        return from_snntorch(module, sample, dt=dt, reset=reset)
    if framework == "torch":
        from .torch import from_torch

        return from_torch(module, sample, dt=dt, reset=reset)
    if framework in ("sinabs", "rockpool"):
        from . import foreign

        return getattr(foreign, f"from_{framework}")(module, sample, dt=dt, reset=reset)
    raise InputError(f"unknown framework {framework!r}: use norse, snntorch, sinabs, rockpool or torch")
