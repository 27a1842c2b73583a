"""The target names and where their Target classes live, importable without torch (the CLI
builds its help from it)."""

from __future__ import annotations

import importlib

from ..errors import InputError

#: the target every other is compared with: NIR's float semantics, step by step
REFERENCE = "reference"

#: target name → "module:attribute" (imported lazily, so Lava is only imported for "lava")
REGISTRY: dict[str, str] = {
    "reference": "neurodeploy.targets.reference:ReferenceTarget",
    "loihi2-emu": "neurodeploy.targets.loihi.target:EmulatorTarget",
    "lava": "neurodeploy.targets.loihi.target:LavaTarget",
    "rram": "neurodeploy.targets.rram.program:RRAMTarget",
}


def get_target(name: str):
    if name not in REGISTRY:
        raise InputError(f"unknown target {name!r}: choose one of {', '.join(REGISTRY)}")
    mod, _, attr = REGISTRY[name].partition(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("neurodeploy"):
            raise InputError(f"target {name!r} is not available in this version") from None
        raise InputError(f"target {name!r} needs the package {exc.name!r}, which is not installed") from None
    return getattr(module, attr)()
