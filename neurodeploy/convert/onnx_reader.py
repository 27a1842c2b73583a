"""Read an ONNX model (``onnx`` package) into plain records, and run it with onnxruntime.

:func:`read_model` checks the model, infers shapes, and returns an :class:`OnnxModel`: its
one graph input, its one graph output, its constants (initializers and ``Constant`` nodes)
and its nodes in topological order. :func:`run_ort` evaluates the original model (and, on
request, any intermediate tensors) with onnxruntime, batched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedError


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node: ``op`` (op_type), a printable ``name``, input/output tensor names and
    attributes as Python values."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OnnxModel:
    path: str
    proto: object = field(repr=False)
    input: str
    input_shape: tuple  # without batch
    batch: int | None  # fixed batch size of the input, None when dynamic
    output: str
    consts: dict = field(repr=False)
    nodes: tuple[OnnxNode, ...] = field(repr=False)
    shapes: dict = field(repr=False)  # tensor name -> inferred shape without batch (where ONNX inferred one)

    def consumers(self, tensor: str) -> list[OnnxNode]:
        return [n for n in self.nodes if tensor in n.inputs]


def _dims(value_info) -> list:
    t = value_info.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def _node_name(node, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _constant(node, where: str) -> np.ndarray:
    from onnx import numpy_helper

    a = {x.name: x for x in node.attribute}
    if "value" in a:
        return numpy_helper.to_array(a["value"].t)
    for k in ("value_float", "value_int"):
        if k in a:
            return np.asarray(a[k].f if k == "value_float" else a[k].i)
    for k in ("value_floats", "value_ints"):
        if k in a:
            return np.asarray(list(a[k].floats if k == "value_floats" else a[k].ints))
    raise UnsupportedError(f"{where}: Constant node '{node.name}' has no tensor/float/int value")


def _load(path: str):
    import onnx

    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: ONNX file not found")
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # DecodeError, ValidationError, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a valid ONNX model ({msg})") from None


def read_model(path) -> OnnxModel:
    """Read and check ``path``; one float input (batch first), one output."""
    from onnx import numpy_helper

    path = str(path)
    model = _load(path)
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedError(f"{path}: convert needs one graph input and one output, found {len(inputs)} and {len(g.output)}")
    dims = _dims(inputs[0])
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        raise UnsupportedError(f"{path}: input '{inputs[0].name}' must be (batch, *fixed shape), got {dims}")
    nodes = []
    for i, n in enumerate(g.node):
        name = _node_name(n, i)
        if n.op_type == "Constant":
            consts[n.output[0]] = _constant(n, path)
            continue
        nodes.append(OnnxNode(n.op_type, name, tuple(n.input), tuple(n.output), _attrs(n)))
    shapes = {}
    for vi in [*g.value_info, *g.input, *g.output]:
        d = _dims(vi)
        if len(d) >= 1 and all(v is not None for v in d[1:]):
            shapes[vi.name] = tuple(int(v) for v in d[1:])
    return OnnxModel(path, model, inputs[0].name, tuple(int(d) for d in dims[1:]), dims[0],
                     g.output[0].name, consts, tuple(nodes), shapes)


def _session(model: OnnxModel, extra: tuple[str, ...]):
    import onnx
    import onnxruntime as ort

    proto = model.proto
    if extra:
        proto = onnx.ModelProto()
        proto.CopyFrom(model.proto)
        known = {o.name for o in proto.graph.output}
        for name in extra:
            if name not in known:
                proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's Fail / InvalidGraph / NotImplemented
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UnsupportedError(f"{model.path}: onnxruntime cannot load the model ({msg[-200:]})") from None


def run_ort(model: OnnxModel, x: np.ndarray, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """onnxruntime outputs for ``x`` (N, *input_shape): the graph output and every tensor in
    ``extra``, each (N, ...). A model exported with a fixed batch size runs in chunks of it."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != model.input_shape:
        raise InputError(f"{model.path}: input of shape {tuple(x.shape[1:])} per sample, the model expects {model.input_shape}")
    sess = _session(model, tuple(extra))
    names = [model.output, *[e for e in extra if e != model.output]]
    chunk = model.batch or max(len(x), 1)
    if len(x) % chunk:
        raise InputError(f"{model.path}: the model's batch is fixed at {chunk}; {len(x)} samples do not divide into it")
    parts = [sess.run(names, {model.input: x[i:i + chunk]}) for i in range(0, len(x), chunk)]
    return {n: np.concatenate([p[k] for p in parts]) for k, n in enumerate(names)}
