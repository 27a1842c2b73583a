"""neurodeploy: deploy spiking neural networks (NIR) to Loihi 2 and RRAM, and measure them.

Public API (imports are lazy, so ``import neurodeploy`` is cheap and never imports Lava)::

    graph = neurodeploy.load("model.nir", dt=1e-3)        # or a NIRGraph, or module + sample
    program = neurodeploy.compile(graph, target="reference")
    result = program.run(x)                               # x: (batch, time, *input_shape)
    neurodeploy.save(graph, "normalized.nir")
"""

__version__ = "0.1.0"

__all__ = ["load", "save", "compile", "run", "convert", "finetune", "__version__"]


def load(model, sample=None, *, dt=None, reset=None, framework=None):
    """Load a model as a normalized Graph (see :func:`neurodeploy.graph.load`)."""
    from .graph import load as _load

    return _load(model, sample, dt=dt, reset=reset, framework=framework)


def save(graph, path):
    """Write a Graph as a NIR file that plain ``nir.read`` reads back equal."""
    from .graph import save as _save

    return _save(graph, path)


def compile(graph, target: str = "reference", hardware=None, **options):  # noqa: A001
    """Compile a Graph (or anything :func:`load` accepts) for ``target``."""
    from .graph import Graph
    from .hardware import load_profile
    from .targets.base import get_target

    if not isinstance(graph, Graph):
        graph = load(graph)
    if isinstance(hardware, str):
        hardware = load_profile(hardware)
    return get_target(target).compile(graph, hardware=hardware, **options)


def run(graph, x, target: str = "reference", hardware=None, record=None, **options):
    """Compile and run in one call; returns a RunResult."""
    return compile(graph, target, hardware, **options).run(x, record=record)


def convert(onnx_path, calibration, steps: int = 32, **options):
    """Convert an ONNX ANN into a spiking Graph; returns a Conversion (see
    :func:`neurodeploy.convert.convert` and docs/convert.md). Once the subpackage is imported
    ``neurodeploy.convert`` is the module, which is callable with the same arguments."""
    from .convert import convert as _convert

    return _convert(onnx_path, calibration, steps, **options)


def finetune(graph, target: str, hardware=None, data="digits", **options):
    """Fine-tune a Graph for ``target``'s effects (Loihi fixed point, RRAM device model);
    returns the tuned Graph (options and their defaults: :func:`neurodeploy.training.tune.finetune`,
    docs/finetune.md)."""
    from .training.tune import finetune as _finetune

    return _finetune(graph, target, hardware, data, **options)
