"""Import a lava-dl netx ``.net`` file (dense / dense_rec layers of CUBA neurons) as a Graph.

The integers of each layer are turned back into NIR's float model so that quantizing the
Graph again (:func:`neurodeploy.targets.loihi.quantize.quantize`) gives the same integers
when the file's largest weight into each layer uses the full mantissa (as
:func:`neurodeploy.targets.loihi.netx.export_netx` files do). Units: the membrane potential
is measured in thresholds (``v_threshold = 1``), i.e. ``v = v_int / (vThMant << 6)``; for
non-spiking readouts ``v = v_int / 64``. With ``α_syn = iDecay/4096`` and
``α_mem = vDecay/4096``:

* ``iDecay = 4096`` (current cleared) and ``vDecay = 0`` → IF (``r = 1/dt``),
  ``W = w/vth``, bias as an Affine bias ``b/vth``;
* ``iDecay = 4096``, ``vDecay > 0`` → LIF with ``τ = dt/α_mem``, ``W = w/(vth·α_mem)``,
  ``v_leak = b/(vth·α_mem)``;
* otherwise → CubaLIF with ``τ_syn = dt/α_syn``, ``τ_mem = dt/α_mem``,
  ``W = w/(vth·α_mem·α_syn)``, ``v_leak = b/(vth·α_mem)``.

(``b`` is the stored bias mantissa ×64/64: netx uses ``bias_exp = 6``, the same shift as
the threshold's.) Delays become a NIR Delay node before (per input) or after (per output)
the Linear; other delay patterns raise UnsupportedError. A file without an input layer
(which lava-dl's ``netx.hdf5.Network`` accepts) takes its input size from the first layer's
weights, as lava-dl does. ``conv`` layers (weights in torch's ``(out, in, kH, kW)`` layout,
stride/padding/dilation as ``(H, W)``, as lava-dl's ``create_conv`` reads them) become NIR
Conv2d; a ``flatten`` layer becomes a NIR Flatten (lava-dl flattens ``(C, H, W)`` in C
order); a conv bias is per channel (lava-dl broadcasts it over H, W). lava-dl itself cannot
read ``pool`` layers, nor run an ``input`` layer with a neuron (its ``Input`` block has no
model the simulator compiles, and does not connect its input to the neuron): such layers
are refused, as are SDNN (sigma-delta) neurons.
"""

from __future__ import annotations

import h5py
import nir
import numpy as np

from ..errors import InputError, UnsupportedError

VTH_MAX = (1 << 17) - 1
SYNAPSE_LAYERS = ("dense", "dense_rec", "conv")


def _f32(a):
    return np.asarray(a, np.float32)


def _cuba(path, lay, shape, dt):
    """The NIR neuron of a CUBA layer, the weight scale ``1/(v_unit·g)`` and an input bias
    for the synapse (IF only: it has no v_leak) — see the module docstring."""
    nrn = lay.get("neuron")
    kind = None if nrn is None else nrn.get("type")
    if kind == "SDNN":
        raise UnsupportedError(f"{path}: layer {lay['index']}: sigma-delta (SDNN) neurons send graded changes of an "
                               "activation, not spikes; NIR has no sigma-delta neuron (only CUBA layers are imported)")
    if kind not in ("CUBA", "LOIHI"):
        raise UnsupportedError(f"{path}: layer {lay['index']}: {kind or 'no'} neuron: only CUBA neurons are imported")
    i_dec, v_dec, vth = nrn.get("iDecay", 0), nrn.get("vDecay", 0), nrn.get("vThMant", VTH_MAX)
    spiking = bool(lay.get("spiking", vth < VTH_MAX))
    v_unit = float(vth) if spiking else 1.0
    bias = _layer_bias(path, lay, shape)
    a_syn, a_mem = i_dec / 4096.0, v_dec / 4096.0
    ones = np.ones(shape, np.float32)
    spike = dict(v_threshold=ones, v_reset=0 * ones)
    if i_dec >= 4096 and v_dec == 0:
        neuron = nir.IF(r=ones / dt, **spike) if spiking else nir.I(r=ones / dt)
        return neuron, 1.0 / v_unit, bias / v_unit, spiking, vth
    leak = _f32(bias / (v_unit * max(a_mem, 1e-300)))
    if i_dec >= 4096:
        kw = dict(tau=ones * dt / a_mem, r=ones, v_leak=leak)
        return (nir.LIF(**kw, **spike) if spiking else nir.LI(**kw)), 1.0 / (v_unit * a_mem), None, spiking, vth
    if i_dec < 1 or v_dec < 1:
        raise UnsupportedError(f"{path}: layer {lay['index']}: iDecay={i_dec}, vDecay={v_dec} (a non-decaying current "
                               "or voltage with a decaying current) has no NIR equivalent")
    kw = dict(tau_syn=ones * dt / a_syn, tau_mem=ones * dt / a_mem, r=ones, v_leak=leak, w_in=ones)
    neuron = nir.CubaLIF(**kw, **spike) if spiking else nir.CubaLI(**kw)
    return neuron, 1.0 / (v_unit * a_mem * a_syn), None, spiking, vth


def _layer_bias(path, lay, shape):
    """The bias mantissas as an array of the layer's shape: one value, one per neuron, or
    (conv) one per channel, as lava-dl's blocks broadcast them."""
    bias = np.asarray(lay.get("bias", np.zeros(1)), np.float64).reshape(-1)
    n = int(np.prod(shape))
    if bias.size in (1, n):
        return np.broadcast_to(bias, (n,)).reshape(shape).copy()
    if lay["type"] == "conv" and bias.size == shape[0]:
        return np.broadcast_to(bias.reshape(-1, *([1] * (len(shape) - 1))), shape).copy()
    raise InputError(f"{path}: layer {lay['index']}: a bias of {bias.size} values does not fit the layer's shape {shape}")


def _conv_fields(path, index):
    with h5py.File(path, "r") as f:
        g = f["layer"][str(index)]
        pair = lambda k, d: tuple(int(v) for v in np.broadcast_to(np.asarray(g[k][()]).reshape(-1), (2,))) \
            if k in g else (d, d)  # noqa: E731
        return dict(stride=pair("stride", 1), padding=pair("padding", 0), dilation=pair("dilation", 1),
                    groups=int(np.asarray(g["groups"][()]).reshape(-1)[0]) if "groups" in g else 1)


def _synapse(path, lay, w, scale, fc_bias, prev_shape):
    if lay["type"] == "conv":
        w = w.reshape(w.shape[:4])
        bias = np.zeros(w.shape[0], np.float32)
        if fc_bias is not None and np.any(fc_bias):  # an IF's bias (per channel: constant over H, W)
            per_channel = fc_bias.reshape(w.shape[0], -1)
            if np.any(per_channel != per_channel[:, :1]):
                raise UnsupportedError(f"{path}: layer {lay['index']}: a per-neuron bias on a conv IF layer has no "
                                       "NIR form (Conv2d biases are per channel)")
            bias = _f32(per_channel[:, 0])
        return nir.Conv2d(input_shape=tuple(prev_shape[1:]), weight=_f32(w * scale), bias=bias,
                          **_conv_fields(path, lay["index"]))
    w = w.reshape(w.shape[0], -1)
    if w.shape[1] != int(np.prod(prev_shape)):
        raise InputError(f"{path}: layer {lay['index']}: weight shape {w.shape} does not follow {prev_shape} inputs")
    if fc_bias is not None and np.any(fc_bias):
        return nir.Affine(weight=_f32(w * scale), bias=_f32(fc_bias.reshape(-1)))
    return nir.Linear(weight=_f32(w * scale))


def _delay_edges(path, lay, w, name, fc, prev, dt, nodes):
    """Edges of ``prev → fc → name`` with the layer's delays as a NIR Delay node."""
    delay = lay.get("delay")
    if delay is None or not np.any(delay):
        return [(prev, fc), (fc, name)]
    if lay["type"] == "conv":
        raise UnsupportedError(f"{path}: layer {lay['index']}: conv delays are not imported")
    n = w.shape[0]
    d = np.broadcast_to(np.asarray(delay, np.int64), w.shape) if np.ndim(delay) == 2 else None
    if d is None:
        dv = np.asarray(delay, np.int64).reshape(-1)
        d = (np.repeat(dv[:, None], w.shape[1], 1) if dv.size == n else np.repeat(dv[None, :], n, 0))
    dm = np.where(w != 0, d, -1)
    col = [np.unique(c[c >= 0]) for c in dm.T]
    row = [np.unique(r_[r_ >= 0]) for r_ in dm]
    if all(c.size <= 1 for c in col):
        nodes[f"{name}_delay"] = nir.Delay(delay=np.array([c[0] if c.size else 0 for c in col], np.float32) * dt)
        return [(prev, f"{name}_delay"), (f"{name}_delay", fc), (fc, name)]
    if all(r_.size <= 1 for r_ in row):
        nodes[f"{name}_delay"] = nir.Delay(delay=np.array([r_[0] if r_.size else 0 for r_ in row], np.float32) * dt)
        return [(prev, fc), (fc, f"{name}_delay"), (f"{name}_delay", name)]
    raise UnsupportedError(f"{path}: layer {lay['index']}: per-synapse delays that are neither per input "
                           "nor per output cannot be expressed as a NIR Delay node")


def _first_input(path, lay, nodes):
    """No input layer: lava-dl feeds the network's input to the first layer."""
    if lay["type"] == "conv":
        raise UnsupportedError(f"{path}: layer {lay['index']}: a conv first layer without an input layer has no "
                               "input shape (lava-dl needs input_shape=… then too)")
    shape = (int(np.asarray(lay["weight"]).reshape(int(np.prod(lay["shape"])), -1).shape[1]),)
    nodes["input"] = nir.Input(input_type=np.array(shape))
    return "input", shape


def _input_layer(path, lay, nodes):
    if "neuron" in lay:
        raise UnsupportedError(
            f"{path}: layer {lay['index']}: an input layer with a neuron has no behaviour to reproduce: "
            "lava-dl 0.6.0's Input block does not connect its input to the neuron, and Lava's simulator "
            "cannot compile it (no subcompiler for PyInputModel); remove the layer's neuron")
    shape = tuple(int(v) for v in np.asarray(lay["shape"]).reshape(-1))
    nodes["input"] = nir.Input(input_type=np.array(shape))
    return "input", shape


def _read(path, dt):
    from ..targets.loihi.netx import read_netx

    layers = read_netx(path)
    file_dt = layers.pop()["dt"] if layers and layers[-1]["type"] == "_dt" else None
    dt = dt if dt is not None else file_dt
    if dt is None:
        raise InputError(f"{path}: netx files carry no time step: pass dt (seconds), e.g. --dt 1e-3")
    return layers, float(dt)


def from_netx(path, dt=None, reset=None):
    from ..graph.normalize import normalize

    layers, dt = _read(path, dt)
    if reset not in (None, "zero"):
        raise UnsupportedError(f"{path}: netx CUBA neurons reset to zero; reset={reset!r} is not expressible")
    nodes, edges, hints = {}, [], {}
    prev, prev_shape, flatten = None, None, False
    for lay in layers:
        t = lay["type"]
        if t == "input":
            prev, prev_shape = _input_layer(path, lay, nodes)
            continue
        if t == "flatten":
            flatten = True
            continue
        if t not in SYNAPSE_LAYERS:
            raise UnsupportedError(f"{path}: layer {lay['index']} has type '{t}'; only dense/dense_rec/conv/flatten are imported")
        if prev is None:
            prev, prev_shape = _first_input(path, lay, nodes)
        if t != "conv" and len(prev_shape) > 1:
            if prev == "input" and not flatten:
                prev_shape = (int(np.prod(prev_shape)),)  # a flat input (as our exporter writes it)
                nodes["input"] = nir.Input(input_type=np.array(prev_shape))
            else:
                nodes[f"{prev}_flatten"] = nir.Flatten(input_type={"input": np.array(prev_shape)}, start_dim=0, end_dim=-1)
                edges.append((prev, f"{prev}_flatten"))
                prev, prev_shape = f"{prev}_flatten", (int(np.prod(prev_shape)),)
        flatten = False
        name = str(lay.get("name", f"layer{lay['index']}"))
        shape = tuple(int(v) for v in np.asarray(lay["shape"]).reshape(-1))
        neuron, scale, fc_bias, spiking, vth = _cuba(path, lay, shape, dt)
        if spiking:
            hints[f"loihi_vth:{name}"] = int(vth)
        w = np.asarray(lay["weight"], np.float64)
        fc = f"{name}_fc"
        nodes[fc], nodes[name] = _synapse(path, lay, w, scale, fc_bias, prev_shape), neuron
        edges += _delay_edges(path, lay, w.reshape(w.shape[0], -1), name, fc, prev, dt, nodes)
        if "weight_rec" in lay:
            n = int(np.prod(shape))
            nodes[f"{name}_rec"] = nir.Linear(weight=_f32(np.asarray(lay["weight_rec"], np.float64).reshape(n, n) * scale))
            edges += [(name, f"{name}_rec"), (f"{name}_rec", name)]
        prev, prev_shape = name, shape
    if prev is None or prev == "input":
        raise InputError(f"{path}: netx file has no dense or conv layers")
    nodes["output"] = nir.Output(output_type=np.array(prev_shape))
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "source_format": "netx", **hints}, type_check=False)
    return normalize(graph, dt=dt, reset="zero", source=str(path))
