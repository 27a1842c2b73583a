"""NIRData (nir 1.0.8 ``nir.data_ir``): a run's observables and a run's inputs in the NIR
community's exchange format, written and read with nir's own ``write_data``/``read_data``.

Layout (``NIRGraphData`` keyed by the graph's flat node names, ``sub.lif`` for node ``lif``
of subgraph ``sub``: nir 1.0.8's ``write_data`` recurses forever on a nested NIRGraphData — it
iterates the root's nodes at every level — so nodes are stored flat; nested files are read):

* each Output node: observable ``"output"``;
* each recorded spiking node: ``"spikes"`` (bool); recorded graded node: ``"output"``;
  membrane potentials: ``"v"``;
* inputs: the Input node's observable ``"output"`` (or its only observable).

Every observable is ``TimeGriddedData`` with ``data`` of shape ``(batch, time, n)`` — the
node's shape flattened in C order — and ``dt`` the graph's step. ``EventData`` inputs are
gridded at the graph's dt on reading.
"""

from __future__ import annotations

import nir
import numpy as np

from ..errors import InputError
from .io import spiking_keys, write_atomic

KINDS = {"outputs": "output", "spikes": "spikes", "values": "output", "v": "v"}


def _gridded(a, dt, boolean=False) -> nir.TimeGriddedData:
    a = np.asarray(a)
    a = a.reshape(a.shape[0], a.shape[1], -1)
    return nir.TimeGriddedData(data=a.astype(bool) if boolean else a.astype(np.float32), dt=float(dt))


def _place(tree: nir.NIRGraphData, name: str, observable: str, data) -> None:
    tree.nodes.setdefault(name, nir.NIRNodeData(observables={})).observables[observable] = data


def result_to_nirdata(result, graph) -> nir.NIRGraphData:
    """A RunResult's outputs, recorded spikes/values and membranes as NIRGraphData."""
    tree = nir.NIRGraphData(nodes={})
    arrays = result.to_numpy()
    spiking = spiking_keys(arrays, graph)  # spikes and outputs of spiking nodes: bool
    for key, arr in arrays.items():
        kind, _, node = key.partition(".")
        node = node or graph.outputs[0]
        _place(tree, node, KINDS[kind], _gridded(arr, graph.dt, boolean=key in spiking))
    return tree


def inputs_to_nirdata(x, graph) -> nir.NIRGraphData:
    """Input array(s) ``(batch, time, *shape)`` (a dict per Input node, or one array) as NIRGraphData."""
    xs = x if isinstance(x, dict) else {graph.inputs[0]: x}
    tree = nir.NIRGraphData(nodes={})
    for name, a in xs.items():
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        _place(tree, name, "output", _gridded(a, graph.dt))
    return tree


def write_nirdata(path, data: nir.NIRGraphData):
    """``nir.write_data`` to ``path``, atomically."""
    return write_atomic(path, lambda tmp: nir.write_data(str(tmp), data))


def read_nirdata(path) -> nir.NIRGraphData:
    try:
        return nir.read_data(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as exc:  # h5py OSError, nir's ValueError/KeyError
        raise InputError(f"{path}: not a NIRData (NIRGraphData) file ({type(exc).__name__}: {exc})") from None


def _find(tree: nir.NIRGraphData, name: str):
    """Node data by flat dotted name, or nested (``sub`` → ``lif`` for ``sub.lif``)."""
    if name in tree.nodes:
        return tree.nodes[name]
    head = next((k for k in tree.nodes if name.startswith(k + ".")), None)
    sub = tree.nodes.get(head)
    return _find(sub, name[len(head) + 1:]) if isinstance(sub, nir.NIRGraphData) else None


def read_inputs(path, graph):
    """The input of ``graph`` stored in a NIRData file: an array ``(batch, time, *shape)``
    (a dict per Input node when the graph has several)."""
    tree, xs = read_nirdata(path), {}
    for name in graph.inputs:
        node = _find(tree, name)
        if not isinstance(node, nir.NIRNodeData) or not node.observables:
            raise InputError(f"{path}: no data for Input node '{name}' (found: {', '.join(tree.nodes) or 'nothing'})")
        obs = node.observables.get("output", next(iter(node.observables.values())))
        if isinstance(obs, nir.EventData):
            obs = obs.to_time_gridded(graph.dt)
        shape = graph.shapes[name]
        if obs.data.shape[2] != int(np.prod(shape)):
            raise InputError(f"{path}: input '{name}' has {obs.data.shape[2]} channels, expected {int(np.prod(shape))} "
                             f"(shape {shape})")
        if not np.isclose(obs.dt, graph.dt, rtol=1e-9):
            raise InputError(f"{path}: input '{name}' is gridded at dt = {obs.dt:g} s, the graph runs at {graph.dt:g} s")
        xs[name] = obs.data.astype(np.float32).reshape(obs.data.shape[0], obs.data.shape[1], *shape)
    return xs if len(xs) > 1 else next(iter(xs.values()))
