"""Graph layer: read, normalize, validate and write NIR graphs."""

from .graph import Graph
from .io import graphs_equal, read_nir, write_nir
from .normalize import normalize

__all__ = ["Graph", "graphs_equal", "normalize", "read_nir", "write_nir", "load", "save"]


def load(model, sample=None, *, dt=None, reset=None, framework=None) -> Graph:
    """Load ``model`` as a normalized :class:`Graph`.

    ``model`` is a path to a ``.nir`` file (or a lava-dl ``.net``), a ``nir.NIRGraph``, an
    existing ``Graph`` (dt / reset overridden when given), or a torch module together with
    ``sample`` (one input batch, traced by neurodeploy's norse / snnTorch / torch frontend;
    ``framework`` forces one of "norse", "snntorch", "torch").

    A NIR graph or file goes through the exporter-quirk repairs first
    (:mod:`neurodeploy.frontends.quirks`): norse and snnTorch exports are detected from their
    parameters; ``framework`` ("norse", "snntorch", "sinabs", "rockpool") forces one. The
    repairs applied are listed in ``graph.metadata["repairs"]``.
    """
    import os

    import nir

    if isinstance(model, Graph):
        return model.with_time(dt, reset)
    if isinstance(model, (str, os.PathLike)):
        path = str(model)
        if path.endswith(".net"):
            from ..frontends.netx import from_netx  # noqa: WPS433 (optional frontend)

            return from_netx(path, dt=dt, reset=reset)
        return _load_nir(read_nir(path), dt, reset, framework, path)
    if isinstance(model, nir.NIRGraph):
        return _load_nir(model, dt, reset, framework, None)
    from ..frontends import from_module

    return from_module(model, sample, dt=dt, reset=reset, framework=framework)


def _load_nir(graph, dt, reset, framework, source):
    from ..frontends.quirks import repair_graph

    graph, dt = repair_graph(graph, dt=dt, reset=reset, framework=framework)
    return normalize(graph, dt=dt, reset=reset, source=source)


def save(graph, path):
    """Write a Graph (or NIRGraph) as a NIR file that plain ``nir.read`` reads back equal."""
    g = graph.nir if isinstance(graph, Graph) else graph
    return write_nir(g, path)
