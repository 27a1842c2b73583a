"""Normalize a NIR graph into a :class:`~neurodeploy.graph.graph.Graph`.

What normalization does (each step repairs something real exporters produce):

1. every parameter becomes a numpy array (torch tensors, numpy scalars and Python numbers
   from norse / snnTorch exporters included); floats become float32;
2. nested ``NIRGraph`` nodes are inlined into a flat execution view under dotted names;
3. a topological order is computed in which cycles are broken at edges leaving a stateful
   node (those edges carry the previous step's output);
4. shapes are propagated from the Input nodes: batch dimensions are stripped from Input and
   Output types, 0-d neuron parameters are broadcast to the node's shape, and every edge is
   checked for a shape mismatch;
5. the parameters are validated (positive time constants, finite values, delays ≥ 0);
6. a new ``nir.NIRGraph`` with every input/output type set is built, which ``nir.write``
   accepts (norse 1.1.0's graphs with 0-d tensors do not pass ``nir.write`` as exported).

Flatten: NIR's type inference counts ``start_dim``/``end_dim`` without the batch dimension,
while torch exporters write torch's dims, which count it. Normalization picks the reading
that agrees with the declared output type or with the consumer's expected input shape, and
stores the node in NIR's (batch-free) convention.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import nir
import numpy as np

from ..errors import GraphError, InputError, UnsupportedError
from .graph import RESET_MODES, STATEFUL_TYPES, Graph

FLOAT_PARAMS = {
    nir.Affine: ("weight", "bias"),
    nir.Linear: ("weight",),
    nir.Scale: ("scale",),
    nir.Conv1d: ("weight", "bias"),
    nir.Conv2d: ("weight", "bias"),
    nir.Delay: ("delay",),
    nir.Threshold: ("threshold",),
    nir.I: ("r",),
    nir.IF: ("r", "v_threshold", "v_reset"),
    nir.LI: ("tau", "r", "v_leak"),
    nir.LIF: ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    nir.CubaLI: ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    nir.CubaLIF: ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
}
#: parameters broadcast to the node's (neuron) shape
ELEMENTWISE = (nir.Delay, nir.Threshold, nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF)
TAU_PARAMS = ("tau", "tau_syn", "tau_mem")
SUPPORTED = tuple(FLOAT_PARAMS) + (
    nir.Input,
    nir.Output,
    nir.Flatten,
    nir.SumPool2d,
    nir.AvgPool2d,
    nir.NIRGraph,
)


# ---------------------------------------------------------------------------------------
# small helpers
def _np(value: Any, dtype=np.float32) -> np.ndarray:
    if value is None:
        return None
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if dtype is not None:
        arr = arr.astype(dtype, copy=True)
    return arr


def _pair(value: Any, n: int = 2) -> tuple[int, ...]:
    arr = np.asarray(_np(value, None)).reshape(-1)
    if arr.size == 1:
        return tuple(int(arr[0]) for _ in range(n))
    return tuple(int(v) for v in arr)


def _type_shape(types: Any) -> tuple[int, ...] | None:
    """The single shape in a NIR ``input_type``/``output_type`` dict, or None."""
    if not isinstance(types, dict) or len(types) == 0:
        return None
    value = next(iter(types.values()))
    if value is None:
        return None
    arr = np.asarray(_np(value, None))
    if arr.size == 0:
        return None
    return tuple(int(v) for v in arr.reshape(-1))


def check_dt(dt: Any, source: str | None = None) -> float:
    where = f"{source}: " if source else ""
    if dt is None:
        raise InputError(
            f"{where}no time step given: pass dt (seconds), e.g. --dt 1e-3, "
            "or store it in the graph's metadata as 'dt'"
        )
    try:
        value = float(np.asarray(_np(dt, None)).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise InputError(f"{where}dt must be a number of seconds, got {dt!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}dt must be a positive number of seconds, got {value!r}")
    return value


def check_reset(reset: Any) -> str:
    if isinstance(reset, bytes):
        reset = reset.decode()
    if reset not in RESET_MODES:
        raise InputError(f"reset must be one of {', '.join(RESET_MODES)}, got {reset!r}")
    return str(reset)


def _meta(graph: nir.NIRGraph) -> dict:
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict):
        return {}
    out = {}
    for k, v in meta.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray) and v.shape == ():
            v = v.item()
        elif isinstance(v, np.ndarray) and v.dtype.kind in "OSU":  # lists of strings read back from a file
            v = _listed(meta, k)
        out[k] = v
    return out


def _listed(meta: dict, key: str) -> list[str]:
    """``meta[key]`` as a list of strings (a list, an array of bytes read from a file, or one string)."""
    value = meta.get(key)
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value, object).reshape(-1)]


# ---------------------------------------------------------------------------------------
# 1. parameters to numpy
def _convert_node(name: str, node: nir.NIRNode, where: str) -> nir.NIRNode:
    """Return a copy of ``node`` with numpy parameters (not yet broadcast)."""
    if not isinstance(node, SUPPORTED):
        raise GraphError(f"{where}node '{name}' has unsupported type '{type(node).__name__}'")
    if isinstance(node, nir.NIRGraph):
        return _convert_graph(node, where, prefix=f"{name}.")
    if isinstance(node, nir.Input):
        return nir.Input(input_type={"input": np.asarray(_type_shape(node.input_type) or (), np.int64)})
    if isinstance(node, nir.Output):
        shp = _type_shape(node.output_type)
        return nir.Output(output_type={"output": np.asarray(shp if shp is not None else (), np.int64)})
    if isinstance(node, nir.Flatten):
        new = object.__new__(nir.Flatten)
        new.input_type = {"input": _type_shape(node.input_type)}
        new.output_type = {"output": _type_shape(getattr(node, "output_type", None))}
        new.start_dim = int(node.start_dim)
        new.end_dim = int(node.end_dim)
        new.metadata = {}
        return new
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        new = type(node)(
            kernel_size=np.asarray(_pair(node.kernel_size), np.int64),
            stride=np.asarray(_pair(node.stride), np.int64),
            padding=np.asarray(_pair(node.padding), np.int64),
        )
        return new
    params = {}
    for p in FLOAT_PARAMS[type(node)]:
        value = getattr(node, p, None)
        if value is None and p == "v_reset":
            value = 0.0
        if value is None:
            raise GraphError(f"{where}node '{name}' ({type(node).__name__}) has no parameter '{p}'")
        try:
            arr = _np(value)
        except (TypeError, ValueError):
            raise GraphError(f"{where}node '{name}': parameter '{p}' is not numeric") from None
        if not np.all(np.isfinite(arr)):
            raise GraphError(f"{where}node '{name}': parameter '{p}' has non-finite values")
        params[p] = arr
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        if params["weight"].ndim != nd + 2:
            raise GraphError(
                f"{where}node '{name}' ({type(node).__name__}): weight must have {nd + 2} dims, "
                f"got shape {params['weight'].shape}"
            )
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        if isinstance(padding, np.ndarray) and padding.dtype.kind in "SU":
            padding = str(padding.item() if padding.shape == () else padding[0])
            padding = padding.decode() if isinstance(padding, bytes) else padding
        if not isinstance(padding, str):
            padding = _pair(padding, nd)
        stride, dilation = _pair(node.stride, nd), _pair(node.dilation, nd)
        groups = int(np.asarray(_np(node.groups, None)).reshape(-1)[0])
        # input_shape is filled in after shape inference
        new = object.__new__(type(node))
        new.input_shape = None
        new.weight, new.bias = params["weight"], params["bias"]
        new.stride = stride[0] if nd == 1 else stride
        new.padding = padding if isinstance(padding, str) else (padding[0] if nd == 1 else padding)
        new.dilation = dilation[0] if nd == 1 else dilation
        new.groups = groups
        new.input_type = {"input": None}
        new.output_type = {"output": None}
        new.metadata = {}
        return new
    if isinstance(node, (nir.Affine, nir.Linear)) and params["weight"].ndim != 2:
        raise UnsupportedError(
            f"{where}node '{name}' ({type(node).__name__}): only 2-D weights are supported, "
            f"got shape {params['weight'].shape}"
        )
    new = object.__new__(type(node))
    for k, v in params.items():
        setattr(new, k, v)
    new.input_type = {"input": None}
    new.output_type = {"output": None}
    new.metadata = {}
    return new


def _convert_graph(graph: nir.NIRGraph, where: str, prefix: str = "") -> nir.NIRGraph:
    nodes = {}
    for name, node in graph.nodes.items():
        if not isinstance(name, str) or not name:
            raise GraphError(f"{where}node name {prefix}{name!r} is invalid (empty or not a string)")
        nodes[name] = _convert_node(prefix + name, node, where)
    edges = []
    for edge in graph.edges:
        a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
        edges.append((a, b))
    g = nir.NIRGraph.__new__(nir.NIRGraph)
    g.nodes, g.edges, g.metadata = nodes, edges, _meta(graph)
    g.input_type, g.output_type = {}, {}
    return g


# ---------------------------------------------------------------------------------------
# 2. flat view
def _resolve(graph: nir.NIRGraph, ref: str, where: str, prefix: str, end: str):
    """Map an edge endpoint of ``graph`` to the flat node names it stands for.

    ``end`` is "src" or "dst". A plain node name is itself; a subgraph ``s`` (or ``s.port``)
    stands for the nodes its Input port feeds (dst) or the node feeding its Output (src).
    """
    if ref in graph.nodes:  # names may contain dots (nirtorch writes "1.lif")
        head, rest = ref, ""
    else:
        head, _, rest = ref.partition(".")
    if head not in graph.nodes:
        raise GraphError(f"{where}edge refers to node '{prefix}{ref}', which does not exist")
    node = graph.nodes[head]
    if not isinstance(node, nir.NIRGraph):
        if rest:
            raise GraphError(f"{where}edge refers to '{prefix}{ref}', but '{prefix}{head}' is not a subgraph")
        return [prefix + head]
    kind = nir.Input if end == "dst" else nir.Output
    ports = [n for n, v in node.nodes.items() if isinstance(v, kind)]
    if rest:
        port_name, _, deeper = rest.partition(".")
        if deeper:
            return _resolve(node, rest, where, f"{prefix}{head}.", end)
        if port_name not in node.nodes:
            raise GraphError(f"{where}edge refers to '{prefix}{ref}', which does not exist")
        if not isinstance(node.nodes[port_name], kind) and not isinstance(node.nodes[port_name], nir.NIRGraph):
            return [f"{prefix}{head}.{port_name}"]
        ports = [port_name]
    if len(ports) != 1:
        raise GraphError(
            f"{where}edge to subgraph '{prefix}{head}' is ambiguous: it has {len(ports)} "
            f"{'Input' if end == 'dst' else 'Output'} nodes; name one as '{head}.<port>'"
        )
    return [f"{prefix}{head}.{ports[0]}"]


def _flatten(graph: nir.NIRGraph, where: str, prefix: str = ""):
    """Return (nodes, edges, ports) of the flat view; ports are the subgraph-internal
    Input/Output nodes, which are removed afterwards by rewiring."""
    nodes, edges, ports = {}, [], set()
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            n2, e2, p2 = _flatten(node, where, f"{prefix}{name}.")
            nodes.update(n2)
            edges.extend(e2)
            ports |= p2
        else:
            nodes[prefix + name] = node
            if prefix and isinstance(node, (nir.Input, nir.Output)):
                ports.add(prefix + name)
    for a, b in graph.edges:
        for src in _resolve(graph, a, where, prefix, "src"):
            for dst in _resolve(graph, b, where, prefix, "dst"):
                edges.append((src, dst))
    return nodes, edges, ports


def _remove_ports(nodes: dict, edges: list, ports: set):
    for port in sorted(ports):
        ins = [a for a, b in edges if b == port]
        outs = [b for a, b in edges if a == port]
        edges = [e for e in edges if port not in e]
        edges += [(a, b) for a in ins for b in outs]
        del nodes[port]
    # keep first occurrence order, drop duplicates
    seen, uniq = set(), []
    for e in edges:
        if e not in seen:
            seen.add(e)
            uniq.append(e)
    return nodes, uniq


# ---------------------------------------------------------------------------------------
# 3. order
def _order(nodes: dict, edges: list, where: str) -> tuple[list[str], set]:
    """Topological order with cycles broken at edges leaving stateful nodes."""
    delayed: set[tuple[str, str]] = set()
    succ = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    roots = [n for n in nodes if isinstance(nodes[n], nir.Input)]
    roots += [n for n in nodes if n not in roots]
    while True:
        back = _find_back_edge(nodes, succ, roots, delayed)
        if back is None:
            break
        cycle = back  # list of nodes v ... u with u -> v closing the cycle
        stateful = [i for i, n in enumerate(cycle) if isinstance(nodes[n], STATEFUL_TYPES)]
        if not stateful:
            path = " -> ".join(cycle + [cycle[0]])
            raise GraphError(f"{where}cycle {path} has no stateful (neuron or delay) node")
        i = stateful[-1]
        delayed.add((cycle[i], cycle[(i + 1) % len(cycle)]))
    # Kahn's algorithm on the forward edges, stable w.r.t. the declared node order
    indeg = {n: 0 for n in nodes}
    for a, b in edges:
        if (a, b) not in delayed:
            indeg[b] += 1
    order, ready = [], [n for n in roots if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for b in succ[n]:
            if (n, b) in delayed:
                continue
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    return order, delayed


def _find_back_edge(nodes, succ, roots, delayed):
    color = {n: 0 for n in nodes}  # 0 new, 1 on stack, 2 done
    for root in roots:
        if color[root]:
            continue
        stack = [(root, iter(succ[root]))]
        path = [root]
        color[root] = 1
        while stack:
            node, it = stack[-1]
            for nxt in it:
                if (node, nxt) in delayed:
                    continue
                if color[nxt] == 1:
                    return path[path.index(nxt):]
                if color[nxt] == 0:
                    color[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    path.append(nxt)
                    break
            else:
                color[node] = 2
                stack.pop()
                path.pop()
    return None


# ---------------------------------------------------------------------------------------
# 4. shapes
def _param_shape(node) -> tuple[int, ...] | None:
    shapes = [getattr(node, p).shape for p in FLOAT_PARAMS[type(node)] if getattr(node, p) is not None]
    shapes = [s for s in shapes if len(s) > 0 and int(np.prod(s)) > 1]
    if not shapes:
        return None
    return max(shapes, key=len)


def expected_input(node) -> tuple | None:
    """Shape a node expects on its input; ``None`` entries are free; None means any."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(node.weight.shape[1]),)
    if isinstance(node, nir.Conv2d):
        return (int(node.weight.shape[1]) * node.groups, None, None)
    if isinstance(node, nir.Conv1d):
        return (int(node.weight.shape[1]) * node.groups, None)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return (None, None, None)
    if isinstance(node, nir.Scale):
        return tuple(node.scale.shape) if node.scale.ndim > 0 and node.scale.size > 1 else None
    if isinstance(node, ELEMENTWISE):
        return _param_shape(node)
    if isinstance(node, nir.Flatten):
        return node.input_type.get("input")
    if isinstance(node, nir.Output):
        shp = _type_shape(node.output_type)
        return shp or None
    return None


def _matches(shape: tuple, expect: tuple | None) -> bool:
    if expect is None:
        return True
    if len(shape) != len(expect):
        # a parameter shape of the same size broadcasts (e.g. (N,) vs (N,) flattened)
        return False
    return all(e is None or int(s) == int(e) for s, e in zip(shape, expect))


def _strip_batch(declared: tuple, expect: tuple | None) -> tuple:
    if expect is None or _matches(declared, expect):
        return declared
    n = len(expect)
    if len(declared) > n and _matches(declared[len(declared) - n:], expect):
        return declared[len(declared) - n:]
    return declared


def _conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _output_shape(name, node, in_shape, where, consumer_expect):
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(node.weight.shape[0]),)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        spatial = in_shape[1:]
        k = node.weight.shape[2:]
        if isinstance(node.padding, str):
            if node.padding == "same":
                return (int(node.weight.shape[0]), *spatial)
            pads = (0,) * nd
        else:
            pads = _pair(node.padding, nd)
        strides, dils = _pair(node.stride, nd), _pair(node.dilation, nd)
        out = tuple(_conv_out(spatial[i], k[i], strides[i], pads[i], dils[i]) for i in range(nd))
        if any(o <= 0 for o in out):
            raise GraphError(f"{where}node '{name}': input shape {in_shape} is too small for its kernel")
        return (int(node.weight.shape[0]), *out)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k, s, p = node.kernel_size, node.stride, node.padding
        out = tuple(_conv_out(in_shape[1 + i], int(k[i]), int(s[i]), int(p[i]), 1) for i in range(2))
        if any(o <= 0 for o in out):
            raise GraphError(f"{where}node '{name}': input shape {in_shape} is too small for its pooling window")
        return (in_shape[0], *out)
    if isinstance(node, nir.Flatten):
        return _flatten_shape(name, node, in_shape, where, consumer_expect)
    return tuple(in_shape)


def _flatten_out(shape, start, end):
    n = len(shape)
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    if not (0 <= start <= end < n):
        return None
    return (*shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])


def _flatten_shape(name, node, in_shape, where, consumer_expect):
    s, e = node.start_dim, node.end_dim
    nir_reading = _flatten_out(in_shape, s, e)
    torch_reading = _flatten_out(in_shape, s - 1, e - 1 if e > 0 else e) if s >= 1 else None
    declared = node.output_type.get("output")
    chosen = None
    for target in (declared, consumer_expect):
        if target is None:
            continue
        if torch_reading is not None and _matches(torch_reading, target) and not (
            nir_reading is not None and _matches(nir_reading, target)
        ):
            chosen = "torch"
            break
        if nir_reading is not None and _matches(nir_reading, target):
            chosen = "nir"
            break
    if chosen is None:
        chosen = "nir" if nir_reading is not None else "torch"
    if chosen == "torch":
        node.start_dim, node.end_dim = s - 1, (e - 1 if e > 0 else e)
        out = torch_reading
    else:
        out = nir_reading
    if out is None:
        raise GraphError(f"{where}node '{name}' (Flatten): dims {s}..{e} do not fit input shape {in_shape}")
    return out


def _infer_shapes(nodes, edges, order, where, retyped: list) -> dict[str, tuple]:
    """Output shape of every node; Output nodes typed otherwise than they receive are
    appended to ``retyped`` as ``(name, declared, received)`` and typed from their input."""
    preds = {n: [a for a, b in edges if b == n] for n in nodes}
    succs = {n: [b for a, b in edges if a == n] for n in nodes}
    shapes: dict[str, tuple] = {}

    def consumer_expect(n):
        for c in succs[n]:
            e = expected_input(nodes[c])
            if e is not None:
                return e
        return None

    # Nodes whose output shape follows from parameters alone can be set first, so a
    # delayed (recurrent) input is known before its source is reached in the order.
    for n in order:
        node = nodes[n]
        if isinstance(node, (nir.Affine, nir.Linear)):
            shapes[n] = (int(node.weight.shape[0]),)
    queue, deferred = list(order), set()
    while queue:
        n = queue.pop(0)
        node = nodes[n]
        if isinstance(node, nir.Input):
            declared = _type_shape(node.input_type)
            if declared is None or len(declared) == 0:
                exp = consumer_expect(n)
                if exp is None or any(e is None for e in exp):
                    raise GraphError(f"{where}Input node '{n}' has no shape and none can be inferred")
                declared = tuple(exp)
            shapes[n] = _strip_batch(tuple(declared), consumer_expect(n))
            continue
        known = [shapes[p] for p in preds[n] if p in shapes]
        if not preds[n]:
            raise GraphError(f"{where}node '{n}' ({type(node).__name__}) has no input edge")
        if not known:
            exp = expected_input(node)
            ps = tuple(exp) if exp is not None and all(e is not None for e in exp) else None
            if ps is None and n not in deferred:  # fed only by a recurrent edge: after its source
                deferred.add(n)
                queue.append(n)
                continue
            if ps is None:
                raise GraphError(f"{where}cannot infer the input shape of node '{n}'")
            known = [ps]
        in_shape = known[0]
        expect = expected_input(node)
        if isinstance(node, nir.Output):
            declared = _type_shape(node.output_type)
            if declared and tuple(declared) != tuple(in_shape):
                stripped = _strip_batch(tuple(declared), tuple(in_shape))
                if tuple(stripped) != tuple(in_shape):  # quirk "output-type" (Rockpool files)
                    retyped.append((n, tuple(declared), tuple(in_shape)))
            shapes[n] = tuple(in_shape)
            continue
        for p in preds[n]:
            if p not in shapes:
                continue
            ok = _matches(shapes[p], expect)
            if not ok and isinstance(node, ELEMENTWISE) and expect is not None:
                ok = int(np.prod(shapes[p])) == int(np.prod(expect)) and len(expect) == 1 and len(shapes[p]) == 1
            if not ok:
                raise GraphError(
                    f"{where}shape mismatch on edge '{p}' -> '{n}': '{p}' outputs "
                    f"{tuple(shapes[p])} but '{n}' ({type(node).__name__}) expects "
                    f"{tuple('?' if e is None else e for e in expect)}"
                )
            if tuple(shapes[p]) != tuple(in_shape) and not isinstance(node, (nir.Affine, nir.Linear)):
                raise GraphError(
                    f"{where}node '{n}' sums inputs of different shapes: "
                    f"{tuple(in_shape)} and {tuple(shapes[p])} (from '{p}')"
                )
        shapes[n] = _output_shape(n, node, tuple(in_shape), where, consumer_expect(n))
    # recurrent (delayed) edges were not checked when their target came first
    for a, b in edges:
        if isinstance(nodes[b], nir.Output):
            continue
        expect = expected_input(nodes[b])
        if not _matches(shapes[a], expect) and not (
            isinstance(nodes[b], ELEMENTWISE) and int(np.prod(shapes[a])) == int(np.prod(expect or (0,)))
            and len(shapes[a]) == 1 and expect is not None and len(expect) == 1
        ):
            raise GraphError(
                f"{where}shape mismatch on edge '{a}' -> '{b}': '{a}' outputs {tuple(shapes[a])} "
                f"but '{b}' ({type(nodes[b]).__name__}) expects {tuple('?' if e is None else e for e in expect)}"
            )
    return shapes


# ---------------------------------------------------------------------------------------
# 5. parameters: broadcast + validate
def _finalize_node(name, node, in_shape, out_shape, where):
    if isinstance(node, ELEMENTWISE):
        for p in FLOAT_PARAMS[type(node)]:
            arr = getattr(node, p)
            try:
                arr = np.broadcast_to(arr.reshape(arr.shape if arr.size != 1 else ()), out_shape).astype(np.float32)
            except ValueError:
                raise GraphError(
                    f"{where}node '{name}': parameter '{p}' of shape {arr.shape} does not "
                    f"broadcast to the node's shape {tuple(out_shape)}"
                ) from None
            setattr(node, p, np.ascontiguousarray(arr))
        for p in TAU_PARAMS:
            if hasattr(node, p) and np.any(getattr(node, p) <= 0):
                bad = float(np.min(getattr(node, p)))
                raise GraphError(f"{where}node '{name}': time constant '{p}' must be positive, got {bad:g}")
        if isinstance(node, nir.Delay) and np.any(node.delay < 0):
            raise GraphError(f"{where}node '{name}': delay must be >= 0")
    if isinstance(node, nir.Scale) and node.scale.size == 1:
        node.scale = np.full(out_shape, float(node.scale.reshape(-1)[0]), np.float32)
    if isinstance(node, (nir.Affine,)) and node.bias.shape != (node.weight.shape[0],):
        try:
            node.bias = np.ascontiguousarray(np.broadcast_to(node.bias, (node.weight.shape[0],)), np.float32)
        except ValueError:
            raise GraphError(f"{where}node '{name}': bias shape {node.bias.shape} does not match weight {node.weight.shape}") from None
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        c_out = node.weight.shape[0]
        if node.bias.size == 1:
            node.bias = np.full((c_out,), float(node.bias.reshape(-1)[0]), np.float32)
        if node.bias.shape != (c_out,):
            raise GraphError(f"{where}node '{name}': bias shape {node.bias.shape} does not match {c_out} output channels")
        node.input_shape = int(in_shape[1]) if isinstance(node, nir.Conv1d) else tuple(int(v) for v in in_shape[1:])
    node.input_type = {"input": np.asarray(in_shape, np.int64)}
    node.output_type = {"output": np.asarray(out_shape, np.int64)}


def _rebuild(graph: nir.NIRGraph, prefix: str, shapes: dict, flat_in: dict, where: str):
    """Set types on the (converted) nested graph in place from the flat view's shapes."""
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            _rebuild(node, full + ".", shapes, flat_in, where)
            continue
        if isinstance(node, (nir.Input, nir.Output)):
            shp = shapes.get(full, flat_in.get(full))
            if shp is None:
                continue
            node.input_type = {"input": np.asarray(shp, np.int64)}
            node.output_type = {"output": np.asarray(shp, np.int64)}
            continue
        if full in shapes:
            _finalize_node(full, node, flat_in[full], shapes[full], where)
    ins = {k: v.output_type["output"] for k, v in graph.nodes.items() if isinstance(v, nir.Input)}
    outs = {k: v.input_type["input"] for k, v in graph.nodes.items() if isinstance(v, nir.Output)}
    graph.input_type, graph.output_type = ins, outs


def _port_shapes(nodes_before, edges_before, shapes):
    """Shapes of subgraph-internal Input/Output ports (from the nodes they connect)."""
    out = {}
    changed = True
    while changed:
        changed = False
        for a, b in edges_before:
            if a in shapes and b not in shapes and b not in out:
                out[b] = shapes[a]
                changed = True
            elif a in out and b not in shapes and b not in out:
                out[b] = out[a]
                changed = True
    return out


# ---------------------------------------------------------------------------------------
def normalize(
    graph: nir.NIRGraph,
    dt: float | None = None,
    reset: str | None = None,
    source: str | None = None,
) -> Graph:
    """Normalize and validate ``graph``; see the module docstring.

    ``dt`` and ``reset`` default to the graph's metadata (keys ``dt`` and ``reset``);
    ``dt`` is required from one or the other, ``reset`` defaults to "zero".
    """
    where = f"{source}: " if source else ""
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"{where}expected a nir.NIRGraph, got {type(graph).__name__}")
    meta = _meta(graph)
    dt = check_dt(dt if dt is not None else meta.get("dt"), source)
    reset = check_reset(reset if reset is not None else meta.get("reset", "zero"))

    converted = _convert_graph(graph, where)
    if not any(isinstance(n, nir.Input) for n in converted.nodes.values()):
        raise GraphError(f"{where}graph has no Input node")
    if not any(isinstance(n, nir.Output) for n in converted.nodes.values()):
        raise GraphError(f"{where}graph has no Output node")
    nodes, edges, ports = _flatten(converted, where)
    full_nodes, full_edges = dict(nodes), list(edges)
    nodes, edges = _remove_ports(nodes, edges, ports)
    order, delayed = _order(nodes, edges, where)
    unreachable = [n for n in nodes if n not in order]
    if unreachable:
        raise GraphError(f"{where}nodes {unreachable} are not reachable in a valid order")
    retyped: list = []
    shapes = _infer_shapes(nodes, edges, order, where, retyped)
    flat_in = {}
    for n in order:
        preds = [a for a, b in edges if b == n]
        flat_in[n] = shapes[n] if isinstance(nodes[n], nir.Input) else shapes[preds[0]]
    flat_in.update(_port_shapes(full_nodes, full_edges, shapes))
    _rebuild(converted, "", shapes, flat_in, where)
    meta_out = dict(meta)
    meta_out["dt"] = dt
    meta_out["reset"] = reset
    if retyped:
        meta_out["repairs"] = _listed(meta_out, "repairs") + ["output-type"]
        meta_out["load_warnings"] = _listed(meta_out, "load_warnings") + [
            f"output-type\t{n}\tthe file types Output '{n}' as {d}, but it receives {r}: typed from its input"
            for n, d, r in retyped]
    converted.metadata = meta_out
    return Graph(
        nir=converted,
        dt=dt,
        reset=reset,
        nodes=nodes,
        edges=tuple(edges),
        order=tuple(order),
        delayed=frozenset(delayed),
        shapes={n: tuple(int(v) for v in s) for n, s in shapes.items()},
        source=source,
        metadata=meta_out,
    )


def iter_params(node) -> Iterable[tuple[str, np.ndarray]]:
    for p in FLOAT_PARAMS.get(type(node), ()):
        yield p, getattr(node, p)
