"""ANN → SNN conversion from ONNX (docs/convert.md).

``neurodeploy.convert("model.onnx", calibration=x_cal, steps=T)`` reads the model with the
``onnx`` package, normalizes each ReLU layer from the calibration set (onnxruntime), builds a
NIR graph of rate-coded IF neurons and returns a :class:`Conversion` whose ``graph`` runs on
every target (``reset="zero"`` for Loihi). The implementation is in :mod:`.api`, imported on
first use, so that loading the CLI (which registers ``convert``) imports neither torch nor onnx.
"""

from __future__ import annotations

import sys
import types

__all__ = ["convert", "Conversion", "read_calibration", "DEFAULT_ZERO_RATIO"]


def __getattr__(name):
    if name in __all__ or name in ("CHECK_SAMPLES", "BALANCE_SAMPLES"):
        from . import api

        return getattr(api, name)
    raise AttributeError(name)


class _CallableModule(types.ModuleType):
    """``neurodeploy.convert`` is both this package and the public function: importing the
    package rebinds the name to the module, so the module calls :func:`.api.convert`."""

    def __call__(self, *args, **kwargs):
        from .api import convert

        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
