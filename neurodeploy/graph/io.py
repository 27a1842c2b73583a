"""Read and write NIR files with errors that name the file and the node at fault.

``nir.read`` fails with bare ``AssertionError``/``KeyError``/``OSError`` on bad files; we
check the file ourselves first. Writing goes to a temporary file renamed into place, so an
error never leaves a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import nir
import numpy as np

from ..errors import GraphError, InputError

_KNOWN = {
    "Affine", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Delay", "Flatten", "I", "IF",
    "Input", "LI", "Linear", "LIF", "CubaLI", "CubaLIF", "NIRGraph", "Output", "Scale",
    "Threshold",
}


def _check_types(group: h5py.Group, path: str, prefix: str = "") -> None:
    for name in group.keys():
        node = group[name]
        if not isinstance(node, h5py.Group) or "type" not in node:
            raise GraphError(f"{path}: node '{prefix}{name}' has no 'type' field")
        kind = node["type"][()]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind not in _KNOWN:
            raise GraphError(f"{path}: node '{prefix}{name}' has unknown type '{kind}'")
        if kind == "NIRGraph":
            if "nodes" not in node:
                raise GraphError(f"{path}: subgraph '{prefix}{name}' has no nodes")
            _check_types(node["nodes"], path, f"{prefix}{name}.")


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a ``.nir`` (HDF5) file; raise InputError/GraphError naming what is wrong."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a .nir file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(".") or "unreadable"
        raise InputError(f"{p}: not a readable NIR/HDF5 file ({reason})") from None
    with f:
        if "node" not in f or not isinstance(f["node"], h5py.Group):
            raise InputError(f"{p}: HDF5 file is not a NIR graph (no 'node' group)")
        top = f["node"]
        try:
            kind = top["type"][()]
        except (KeyError, OSError):
            raise InputError(f"{p}: NIR file has no top-level node type") from None
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "NIRGraph":
            raise InputError(f"{p}: top-level NIR node is a '{kind}', expected a NIRGraph")
        try:
            _check_types(top["nodes"], str(p))
        except (KeyError, OSError) as exc:
            raise InputError(f"{p}: corrupt NIR file ({exc})") from None
    try:
        # nir's own type check refuses files whose Output is typed otherwise than it
        # receives (Rockpool's); normalize checks every edge itself and repairs that one
        graph = nir.read(str(p), type_check=False)
    except GraphError:
        raise
    except Exception as exc:  # nir.read raises bare asserts/KeyErrors/OSErrors
        raise InputError(f"{p}: corrupt NIR file ({type(exc).__name__}: {exc})") from None
    return graph


def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """A temporary file name in the same directory as ``path`` (for write + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=suffix or ".tmp", dir=p.parent)
    os.close(fd)
    return Path(tmp)


def write_atomic(path: str | os.PathLike, writer) -> Path:
    """Call ``writer(tmp_path)`` then rename to ``path``; remove the temp file on error."""
    p = Path(path)
    tmp = atomic_path(p, suffix=p.suffix)
    try:
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def write_npz(path: str | os.PathLike, arrays: dict) -> Path:
    """``arrays`` as an ``.npz`` (read with ``np.load``) to ``path``, atomically: bool arrays
    (spikes, one byte each) stored uncompressed — deflating them cost 20× the rest of a
    run — every other array deflate-compressed, as ``np.savez_compressed`` does."""
    import time
    import zipfile

    def writer(tmp):
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as z:
            for key, a in arrays.items():
                a = np.asanyarray(a)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=time.localtime()[:6])
                info.compress_type = zipfile.ZIP_STORED if a.dtype == np.bool_ else zipfile.ZIP_DEFLATED
                with z.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, a, allow_pickle=False)

    return write_atomic(path, writer)


def spiking_keys(arrays: dict, graph) -> set[str]:
    """Keys of ``RunResult.to_numpy()`` arrays that hold spikes: ``spikes.<node>`` and the
    outputs (``outputs`` / ``outputs.<name>``) of Output nodes fed by a spiking node."""
    from .graph import SPIKING_TYPES

    keys = {k for k in arrays if k.startswith("spikes.")}
    for k in arrays:
        if k == "outputs" or k.startswith("outputs."):
            out = graph.outputs[0] if k == "outputs" else k[len("outputs."):]
            preds = graph.predecessors(out) if out in graph.nodes else []
            if preds and all(isinstance(graph.nodes[p], SPIKING_TYPES) for p in preds):
                keys.add(k)
    return keys


def compact_spikes(arrays: dict, graph) -> dict:
    """``arrays`` with every spike array (:func:`spiking_keys`) that holds only 0 and 1 as
    bool (8× smaller than float64, 4× than float32; ``np.load`` gives the same values)."""
    out = dict(arrays)
    for k in spiking_keys(arrays, graph):
        a = np.asarray(out[k])
        if a.dtype != np.bool_ and bool(((a == 0) | (a == 1)).all()):
            out[k] = a.astype(bool)
    return out


def write_json(path: str | os.PathLike, obj, indent: int = 2, default=None) -> Path:
    """``obj`` as JSON text to ``path``, atomically."""
    import json

    return write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=indent, default=default)))


def write_nir(graph: nir.NIRGraph, path: str | os.PathLike) -> Path:
    """Write ``graph`` with ``nir.write`` atomically."""
    return write_atomic(path, lambda tmp: nir.write(str(tmp), graph))


def graphs_equal(a: nir.NIRNode, b: nir.NIRNode) -> bool:
    """Structural equality of two NIR nodes/graphs (NIR's dataclasses use eq=False)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, nir.NIRGraph):
        if set(a.nodes) != set(b.nodes):
            return False
        if sorted(map(tuple, a.edges)) != sorted(map(tuple, b.edges)):
            return False
        return all(graphs_equal(a.nodes[k], b.nodes[k]) for k in a.nodes)
    da, db = a.to_dict(), b.to_dict()
    da.pop("metadata", None)
    db.pop("metadata", None)
    if set(da) != set(db):
        return False
    for k in da:
        va, vb = da[k], db[k]
        if isinstance(va, dict) or isinstance(vb, dict):
            va = {kk: np.asarray(vv) for kk, vv in (va or {}).items()}
            vb = {kk: np.asarray(vv) for kk, vv in (vb or {}).items()}
            if set(va) != set(vb) or any(not np.array_equal(va[kk], vb[kk]) for kk in va):
                return False
            continue
        if isinstance(va, (str, bytes)) or isinstance(vb, (str, bytes)):
            if str(va) != str(vb) and not (
                isinstance(va, bytes) and va.decode() == vb or isinstance(vb, bytes) and vb.decode() == va
            ):
                return False
            continue
        if va is None or vb is None:
            if not (va is None and vb is None):
                return False
            continue
        if not np.array_equal(np.asarray(va), np.asarray(vb)):
            return False
    return True
