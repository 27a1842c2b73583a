"""Hardware in the training loop: :class:`HardwareEval` (metrics of the current module on
targets, every N epochs) and :func:`finetune` / :func:`evaluate` (hardware-aware
fine-tuning of any Graph). Imports are lazy."""

__all__ = ["HardwareEval", "finetune", "evaluate"]


def __getattr__(name):
    if name == "HardwareEval":
        from .callback import HardwareEval

        return HardwareEval
    if name in ("finetune", "evaluate"):
        from . import tune as _ft

        return getattr(_ft, name)
    raise AttributeError(f"module 'neurodeploy.training' has no attribute {name!r}")
