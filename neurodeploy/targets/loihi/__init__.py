"""Loihi 2 target: quantize a Graph to Lava's fixed-point LIF/Dense integers (quantize.py,
program.py: pure data), emulate them bit-exactly in torch (emulator.py, target "loihi2-emu"),
run them in Lava (lava.py, target "lava"), export/import lava-dl netx files (netx.py), map them
onto cores (mapping.py); the Target classes are in target.py, the protocol's counts in
counts.py and describe() in describe.py. See docs/loihi.md. Nothing here imports Lava at
import time."""

__all__ = ["LoihiProgram", "Population", "Synapse"]


def __getattr__(name):  # lazy: the CLI imports this package; numpy waits for real work
    if name in __all__:
        from . import program

        return getattr(program, name)
    raise AttributeError(name)
