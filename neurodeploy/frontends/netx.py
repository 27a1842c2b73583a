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
weights, as lava-dl does.
"""

from __future__ import annotations

import nir
import numpy as np

from ..errors import InputError, UnsupportedError

VTH_MAX = (1 << 17) - 1


def from_netx(path, dt=None, reset=None):
    from ..graph.normalize import normalize
    from ..targets.loihi.netx import read_netx

    layers = read_netx(path)
    file_dt = None
    if layers and layers[-1]["type"] == "_dt":
        file_dt = layers.pop()["dt"]
    dt = dt if dt is not None else file_dt
    if dt is None:
        raise InputError(f"{path}: netx files carry no time step: pass dt (seconds), e.g. --dt 1e-3")
    dt = float(dt)
    if reset not in (None, "zero"):
        raise UnsupportedError(f"{path}: netx CUBA neurons reset to zero; reset={reset!r} is not expressible")
    nodes: dict = {}
    edges: list = []
    prev = None
    prev_n = None
    hints = {}
    for lay in layers:
        t = lay["type"]
        if t == "input":
            if "neuron" in lay:
                raise UnsupportedError(f"{path}: layer {lay['index']}: input layers with neurons are not supported")
            prev_n = int(np.prod(lay["shape"]))
            nodes["input"] = nir.Input(input_type=np.array([prev_n]))
            prev = "input"
            continue
        if t == "flatten":
            continue
        if t not in ("dense", "dense_rec"):
            raise UnsupportedError(f"{path}: layer {lay['index']} has type '{t}'; only dense/dense_rec are imported")
        nrn = lay.get("neuron")
        if nrn is None or nrn.get("type") not in ("CUBA", "LOIHI"):
            raise UnsupportedError(f"{path}: layer {lay['index']}: only CUBA neurons are imported")
        name = str(lay.get("name", f"layer{lay['index']}"))
        n = int(np.prod(lay["shape"]))
        w = np.asarray(lay["weight"], np.float64).reshape(n, -1)
        if prev is None:  # no input layer: lava-dl's Network feeds its input to the first layer
            prev, prev_n = "input", w.shape[1]
            nodes["input"] = nir.Input(input_type=np.array([prev_n]))
        if w.shape[1] != prev_n:
            raise InputError(f"{path}: layer {lay['index']}: weight shape {w.shape} does not follow {prev_n} inputs")
        i_dec, v_dec, vth = nrn.get("iDecay", 0), nrn.get("vDecay", 0), nrn.get("vThMant", VTH_MAX)
        spiking = bool(lay.get("spiking", vth < VTH_MAX))
        v_unit = float(vth) if spiking else 1.0
        bias = np.asarray(lay.get("bias", np.zeros(n)), np.float64).reshape(-1) * np.ones(n)
        a_syn, a_mem = i_dec / 4096.0, v_dec / 4096.0
        ones = np.ones(n, np.float32)
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
        fc_bias = None
        if i_dec >= 4096 and v_dec == 0:
            g = 1.0
            neuron = (nir.IF(r=ones / dt, v_threshold=ones, v_reset=0 * ones) if spiking else nir.I(r=ones / dt))
            fc_bias = bias / v_unit
        elif i_dec >= 4096:
            g = a_mem
            leak = f32(bias / (v_unit * a_mem))
            neuron = (nir.LIF(tau=ones * dt / a_mem, r=ones, v_leak=leak, v_threshold=ones, v_reset=0 * ones) if spiking
                      else nir.LI(tau=ones * dt / a_mem, r=ones, v_leak=leak))
        else:
            if i_dec < 1 or v_dec < 1:
                raise UnsupportedError(
                    f"{path}: layer {lay['index']}: iDecay={i_dec}, vDecay={v_dec} (a non-decaying current or "
                    "voltage with a decaying current) has no NIR equivalent"
                )
            g = a_mem * a_syn
            leak = f32(bias / (v_unit * a_mem))
            kw = dict(tau_syn=ones * dt / a_syn, tau_mem=ones * dt / a_mem, r=ones, v_leak=leak, w_in=ones)
            neuron = nir.CubaLIF(**kw, v_threshold=ones, v_reset=0 * ones) if spiking else nir.CubaLI(**kw)
        scale = 1.0 / (v_unit * g)
        if spiking:
            hints[f"loihi_vth:{name}"] = int(vth)
        fc = f"{name}_fc"
        nodes[fc] = (nir.Affine(weight=f32(w * scale), bias=f32(fc_bias)) if fc_bias is not None and np.any(fc_bias)
                     else nir.Linear(weight=f32(w * scale)))
        nodes[name] = neuron
        delay = lay.get("delay")
        if delay is not None and np.any(delay):
            d = np.broadcast_to(np.asarray(delay, np.int64), w.shape) if np.ndim(delay) == 2 else None
            if d is None:
                dv = np.asarray(delay, np.int64).reshape(-1)
                d = (np.repeat(dv[:, None], w.shape[1], 1) if dv.size == n else np.repeat(dv[None, :], n, 0))
            dm = np.where(w != 0, d, -1)
            col = [np.unique(c[c >= 0]) for c in dm.T]
            row = [np.unique(r_[r_ >= 0]) for r_ in dm]
            if all(c.size <= 1 for c in col):
                dvec = np.array([c[0] if c.size else 0 for c in col], np.float32)
                nodes[f"{name}_delay"] = nir.Delay(delay=dvec * dt)
                edges += [(prev, f"{name}_delay"), (f"{name}_delay", fc), (fc, name)]
            elif all(r_.size <= 1 for r_ in row):
                dvec = np.array([r_[0] if r_.size else 0 for r_ in row], np.float32)
                nodes[f"{name}_delay"] = nir.Delay(delay=dvec * dt)
                edges += [(prev, fc), (fc, f"{name}_delay"), (f"{name}_delay", name)]
            else:
                raise UnsupportedError(f"{path}: layer {lay['index']}: per-synapse delays that are neither per input "
                                       "nor per output cannot be expressed as a NIR Delay node")
        else:
            edges += [(prev, fc), (fc, name)]
        if "weight_rec" in lay:
            wr = np.asarray(lay["weight_rec"], np.float64).reshape(n, n)
            nodes[f"{name}_rec"] = nir.Linear(weight=f32(wr * scale))
            edges += [(name, f"{name}_rec"), (f"{name}_rec", name)]
        prev, prev_n = name, n
    if prev is None or prev == "input":
        raise InputError(f"{path}: netx file has no dense layers")
    nodes["output"] = nir.Output(output_type=np.array([prev_n]))
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "source_format": "netx", **hints})
    return normalize(graph, dt=dt, reset="zero", source=str(path))
