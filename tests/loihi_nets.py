"""Small random NIR networks for the Loihi tests (dense, conv+pool+flatten, recurrent,
delays). Each returns a normalized Graph; sizes are tiny so Lava runs fast."""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.graph import load

DT = 1e-3


def _neuron(kind, n, rng, thr=None, leak=0.0):
    n_shape = (n,) if isinstance(n, int) else tuple(n)
    ones = np.ones(n_shape, np.float32)
    th = ones * (thr if thr is not None else float(rng.uniform(0.3, 1.0)))
    if kind == "LIF":
        return nir.LIF(tau=ones * float(rng.uniform(4e-3, 3e-2)), r=ones, v_leak=ones * leak, v_threshold=th,
                       v_reset=0 * ones)
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=ones * float(rng.uniform(2e-3, 1e-2)), tau_mem=ones * float(rng.uniform(4e-3, 3e-2)),
                           r=ones, v_leak=ones * leak, v_threshold=th, v_reset=0 * ones, w_in=ones)
    if kind == "IF":
        return nir.IF(r=ones * 100.0, v_threshold=th, v_reset=0 * ones)
    if kind == "LI":
        return nir.LI(tau=ones * float(rng.uniform(5e-3, 3e-2)), r=ones, v_leak=0 * ones)
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=ones * 5e-3, tau_mem=ones * 2e-2, r=ones, v_leak=0 * ones, w_in=ones)
    raise ValueError(kind)


def dense_net(seed: int, kinds=("CubaLIF", "LIF"), readout="LI", n_in=8, n_h=6, n_o=3):
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type=np.array([n_in]))}
    edges = []
    prev, width = "in", n_in
    for i, k in enumerate(kinds):
        w = (rng.normal(0.6, 1.5, (n_h, width)) * 3).astype(np.float32)
        nodes[f"fc{i}"] = nir.Affine(weight=w, bias=(rng.normal(0, 0.5, n_h) if k != "CubaLIF" else np.zeros(n_h)).astype(np.float32))
        nodes[f"n{i}"] = _neuron(k, n_h, rng)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        prev, width = f"n{i}", n_h
    nodes["fco"] = nir.Linear(weight=(rng.normal(0.5, 1.0, (n_o, width)) * 3).astype(np.float32))
    nodes["ro"] = _neuron(readout, n_o, rng)
    nodes["out"] = nir.Output(output_type=np.array([n_o]))
    edges += [(prev, "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def conv_net(seed: int, pool=True):
    rng = np.random.default_rng(seed)
    c_in, h = 1, 6
    c1 = 2
    nodes = {
        "in": nir.Input(input_type=np.array([c_in, h, h])),
        "conv": nir.Conv2d(input_shape=(h, h), weight=(rng.normal(0.5, 1.0, (c1, c_in, 3, 3)) * 2).astype(np.float32),
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(c1, np.float32)),
        "lif1": _neuron("LIF", (c1, h, h), rng),
    }
    edges = [("in", "conv"), ("conv", "lif1")]
    prev, shape = "lif1", (c1, h, h)
    if pool:
        nodes["pool"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        edges.append((prev, "pool"))
        prev, shape = "pool", (c1, h // 2, h // 2)
    nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
    n_flat = int(np.prod(shape))
    nodes["fc"] = nir.Linear(weight=(rng.normal(0.3, 0.7, (4, n_flat)) * 3).astype(np.float32))
    nodes["lif2"] = _neuron("CubaLIF", 4, rng)
    nodes["out"] = nir.Output(output_type=np.array([4]))
    edges += [(prev, "flat"), ("flat", "fc"), ("fc", "lif2"), ("lif2", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def recurrent_net(seed: int, n_in=5, n_h=6, n_o=2):
    rng = np.random.default_rng(seed)
    nodes = {
        "in": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=(rng.normal(0.6, 1.5, (n_h, n_in)) * 3).astype(np.float32)),
        "rnn": _neuron("CubaLIF", n_h, rng),
        "rec": nir.Linear(weight=(rng.normal(0, 0.8, (n_h, n_h)) * 3).astype(np.float32)),
        "fco": nir.Linear(weight=(rng.normal(0.5, 1.0, (n_o, n_h)) * 3).astype(np.float32)),
        "ro": _neuron("LIF", n_o, rng),
        "out": nir.Output(output_type=np.array([n_o])),
    }
    edges = [("in", "fc"), ("fc", "rnn"), ("rnn", "rec"), ("rec", "rnn"), ("rnn", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def delay_net(seed: int, n_in=5, n_h=5, n_o=3, where="pre"):
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type=np.array([n_in]))}
    d_n = n_in if where == "pre" else n_h
    nodes["dly"] = nir.Delay(delay=(rng.integers(0, 5, d_n) * DT).astype(np.float32))
    nodes["fc"] = nir.Linear(weight=(rng.normal(0.6, 1.5, (n_h, n_in)) * 3).astype(np.float32))
    nodes["lif"] = _neuron("CubaLIF", n_h, rng)
    nodes["fco"] = nir.Linear(weight=(rng.normal(0.5, 1.0, (n_o, n_h)) * 3).astype(np.float32))
    nodes["ro"] = _neuron("LIF", n_o, rng)
    nodes["out"] = nir.Output(output_type=np.array([n_o]))
    if where == "pre":
        edges = [("in", "dly"), ("dly", "fc"), ("fc", "lif")]
    else:
        edges = [("in", "fc"), ("fc", "dly"), ("dly", "lif")]
    edges += [("lif", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def chain_net(seed: int, n_in=8, n_mid=8, n_h=6, n_o=3):
    """Two NIR linear nodes in a row (folded into one Dense): NIR's synaptic depth of the
    first neuron node is 2, Lava's lag 1."""
    rng = np.random.default_rng(seed)
    nodes = {
        "in": nir.Input(input_type=np.array([n_in])),
        "fa": nir.Linear(weight=(rng.normal(0.5, 1.0, (n_mid, n_in))).astype(np.float32)),
        "fb": nir.Linear(weight=(rng.normal(0.5, 1.0, (n_h, n_mid))).astype(np.float32)),
        "n0": _neuron("LIF", n_h, rng, thr=1.0),
        "fco": nir.Linear(weight=(rng.normal(0.5, 1.0, (n_o, n_h)) * 3).astype(np.float32)),
        "ro": _neuron("LIF", n_o, rng, thr=1.0),
        "out": nir.Output(output_type=np.array([n_o])),
    }
    edges = [("in", "fa"), ("fa", "fb"), ("fb", "n0"), ("n0", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def spikes(seed: int, batch: int, steps: int, shape, p=0.3) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    return (rng.random((batch, steps, *shape)) < p).astype(np.float32)


def stress_net(n_in=40, kind="CubaLI"):
    """All-positive weights into a slow non-spiking readout: with dense input the 24-bit
    current wraps and the voltage saturates (Lava's overflow paths)."""
    ones = np.ones(2, np.float32)
    if kind == "CubaLI":
        neuron = nir.CubaLI(tau_syn=ones * 1.0, tau_mem=ones * 1.0, r=ones, v_leak=0 * ones, w_in=ones)
    else:
        neuron = nir.LI(tau=ones * 1.0, r=ones, v_leak=0 * ones)
    nodes = {
        "in": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=np.ones((2, n_in), np.float32) * np.array([[1.0], [0.5]], np.float32)),
        "ro": neuron,
        "out": nir.Output(output_type=np.array([2])),
    }
    edges = [("in", "fc"), ("fc", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)


def random_program(seed: int, overflow: bool = False):
    """A random LoihiProgram straight in integers (no quantization): 1–4 populations of
    any du/dv/vth/bias, spiking or not, 1–2 synapses each from the input or earlier
    populations, back edges and self loops, delays, weight exponents −8..7. With
    ``overflow`` large exponents and inputs push u/v/int32 into Lava's wrap and clip paths.
    Returns (program, n_in)."""
    from neurodeploy.targets.loihi.program import LoihiProgram, Population, Synapse

    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 400 if overflow else 40))
    pops = []
    for i in range(int(rng.integers(1, 5))):
        n = int(rng.integers(1, 12))
        spiking = bool(rng.random() < 0.7)
        du = int(rng.choice([4095, 0, int(rng.integers(0, 4096))]))
        dv = int(rng.choice([0, 4095, int(rng.integers(0, 4096))]))
        vth = int(rng.choice([int(rng.integers(0, 200)), int(rng.integers(0, 1 << 17))])) if spiking else (1 << 17) - 1
        bias = rng.integers(-4096, 4096, n) * (rng.random(n) < 0.5) if rng.random() < 0.5 else np.zeros(n, np.int64)
        pops.append(Population(name=f"p{i}", kind="LIF", shape=(n,), spiking=spiking, du=du, dv=dv, vth=vth,
                               bias_mant=np.asarray(bias, np.int64), bias_exp=6,
                               scale=np.ones(n) * float(rng.integers(1, 1000))))
    sizes = {"in": n_in, **{p.name: p.n for p in pops}}
    syns = []
    for i, p in enumerate(pops):
        cands = ["in"] + [q.name for q in pops[:i]]
        chosen = set(rng.choice(cands, size=min(int(rng.integers(1, 3)), len(cands)), replace=False).tolist())
        if rng.random() < 0.4:
            chosen.add(str(rng.choice([q.name for q in pops])))  # back edge or self loop
        for src in sorted(chosen):
            big = rng.random() < (0.8 if overflow else 0.3)
            w = rng.integers(-256, 255, (p.n, sizes[src]))
            if rng.random() < 0.3:
                w = np.abs(w)
            w = w * (rng.random(w.shape) < rng.uniform(0.2, 1))
            if big:
                e = int(rng.integers(0, 8)) if overflow else int(rng.integers(-8, 8))
            else:
                e = int(rng.integers(-3, 2))
            delays = rng.integers(0, 6, w.shape) if rng.random() < 0.3 else None
            syns.append(Synapse(name=f"s{len(syns)}", src=src, dst=p.name, weights=w.astype(np.int64),
                                weight_exp=e, delays=delays))
    prog = LoihiProgram(dt=DT, inputs={"in": (n_in,)}, populations=pops, synapses=syns,
                        outputs={"out": pops[-1].name})
    return prog, n_in


def _conv(rng, c_out, c_in, k, stride=1, padding=0, dilation=1, groups=1, input_shape=None, mean=0.6, gain=2.0):
    kh, kw = (k, k) if isinstance(k, int) else k
    w = (rng.normal(mean, 1.0, (c_out, c_in // groups, kh, kw)) * gain).astype(np.float32)
    return nir.Conv2d(input_shape=input_shape, weight=w, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=np.zeros(c_out, np.float32))


def conv_stack_net(seed: int, variant: str = "pool-conv", per_position: bool = False):
    """Conv networks for the Lava ``Conv`` lowering: non-square images, several channels,
    stride / padding / dilation / groups, pooling folded into a following conv, pooling
    alone between two neuron layers, conv into a flattened population, per-channel
    thresholds; always ending in flatten + dense + a readout.

    * ``pool-conv``: conv 3×3 p1 → LIF (per-channel thresholds) → SumPool 2 → conv 3×3 p1
      groups 2 → CubaLIF → flatten → dense → LI (pool∘conv is one Conv, stride 2, 6×6);
    * ``strided``: conv 3×2 stride 2 → IF → conv 2×2 p1 dilation 2 → flatten → LIF →
      dense → CubaLI (the second conv feeds a flat population);
    * ``pool-only``: conv 3×3 stride (2, 1) p (1, 0) → LIF → SumPool 2 → LIF → flatten →
      dense → LI (the pooling is a depthwise Conv of ones);
    * ``odd-pool``: like ``pool-conv`` on an odd height (pooling drops the last row, which
      the composed Conv would read: that synapse stays a matrix).

    * ``conv1d``: Conv1d k 3 stride 2 p 1 on (2, 11) → LIF → flatten → dense → LI (a Lava
      Conv over (L, 1, C)).

    ``per_position``: lif1's thresholds differ per position, not per channel (``pool-conv``,
    ``odd-pool``), so the quantized weights into it are no longer one kernel.
    """
    rng = np.random.default_rng(seed)
    c0, h, w = 2, 8, 6
    if variant == "odd-pool":
        h = 7
    nodes = {"in": nir.Input(input_type=np.array([c0, h, w] if variant != "conv1d" else [c0, 11]))}
    edges = []

    def add(name, node, src):
        nodes[name] = node
        edges.append((src, name))
        return name

    if variant in ("pool-conv", "odd-pool"):
        c1, c2 = 4, 4
        add("conv1", _conv(rng, c1, c0, 3, padding=1, input_shape=(h, w)), "in")
        thr = np.repeat(rng.uniform(0.4, 1.0, c1), h * w).reshape(c1, h, w).astype(np.float32)
        if per_position:
            thr = thr * rng.uniform(0.8, 1.2, thr.shape).astype(np.float32)
        lif1 = _neuron("LIF", (c1, h, w), rng)
        lif1.v_threshold = thr
        add("lif1", lif1, "conv1")
        add("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "lif1")
        hp, wp = h // 2, w // 2
        add("conv2", _conv(rng, c2, c1, 3, padding=1, groups=2, input_shape=(hp, wp), mean=0.4, gain=1.5), "pool")
        add("lif2", _neuron("CubaLIF", (c2, hp, wp), rng), "conv2")
        last, shape = "lif2", (c2, hp, wp)
    elif variant == "strided":
        c1, c2 = 3, 2
        add("conv1", _conv(rng, c1, c0, (3, 2), stride=2, input_shape=(h, w)), "in")
        h1, w1 = (h - 3) // 2 + 1, (w - 2) // 2 + 1
        add("lif1", _neuron("IF", (c1, h1, w1), rng), "conv1")
        add("conv2", _conv(rng, c2, c1, 2, padding=1, dilation=2, input_shape=(h1, w1), gain=3.0), "lif1")
        h2, w2 = h1 + 2 - 2 - 1 + 1, w1 + 2 - 2 - 1 + 1
        add("flat2", nir.Flatten(input_type={"input": np.array([c2, h2, w2])}, start_dim=0, end_dim=-1), "conv2")
        add("lif2", _neuron("LIF", c2 * h2 * w2, rng), "flat2")
        last, shape = "lif2", None
    elif variant == "pool-only":
        c1 = 3
        add("conv1", _conv(rng, c1, c0, 3, stride=(2, 1), padding=(1, 0), input_shape=(h, w)), "in")
        h1, w1 = (h + 2 - 3) // 2 + 1, w - 2
        add("lif1", _neuron("LIF", (c1, h1, w1), rng), "conv1")
        add("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "lif1")
        add("lif2", _neuron("LIF", (c1, h1 // 2, w1 // 2), rng, thr=0.3), "pool")
        last, shape = "lif2", (c1, h1 // 2, w1 // 2)
    elif variant == "conv1d":
        c1, n = 3, 11
        wk = (rng.normal(0.6, 1.0, (c1, c0, 3)) * 2).astype(np.float32)
        add("conv1", nir.Conv1d(input_shape=n, weight=wk, stride=2, padding=1, dilation=1, groups=1,
                                bias=np.zeros(c1, np.float32)), "in")
        add("lif1", _neuron("LIF", (c1, (n + 2 - 3) // 2 + 1), rng), "conv1")
        last, shape = "lif1", (c1, (n + 2 - 3) // 2 + 1)
    else:
        raise ValueError(variant)
    prev = last
    if shape is not None:
        prev = add("flat", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1), last)
        n_flat = int(np.prod(shape))
    else:
        n_flat = int(np.prod(nodes[last].v_threshold.shape))
    add("fc", nir.Linear(weight=(rng.normal(0.3, 0.7, (3, n_flat)) * 2).astype(np.float32)), prev)
    add("ro", _neuron("LI" if variant != "strided" else "CubaLI", 3, rng), "fc")
    add("out", nir.Output(output_type=np.array([3])), "ro")
    # NIR 1.0.8 infers a grouped Conv2d's input channels as weight.shape[1] (ignores groups)
    return load(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)


def sparse_net(seed: int, n_in=48, n_h=40, n_o=3, density=0.06):
    """A dense layer whose weights are mostly zero (``density`` nonzero), then a dense
    readout: the first synapse is a candidate for Lava's Sparse process."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(0.8, 1.0, (n_h, n_in)) * 4 * (rng.random((n_h, n_in)) < density)).astype(np.float32)
    nodes = {
        "in": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=w),
        "lif": _neuron("LIF", n_h, rng, thr=0.5),
        "fco": nir.Linear(weight=(rng.normal(0.5, 1.0, (n_o, n_h)) * 2).astype(np.float32)),
        "ro": _neuron("LI", n_o, rng),
        "out": nir.Output(output_type=np.array([n_o])),
    }
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "fco"), ("fco", "ro"), ("ro", "out")]
    return load(nir.NIRGraph(nodes=nodes, edges=edges), dt=DT)
