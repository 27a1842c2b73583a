"""Assign a LoihiProgram's neurons and synapses to neuromorphic cores.

Each population is split into contiguous blocks of neurons, one block per core (cores are
not shared between populations, as Lava's compiler does). A block must satisfy the
profile's per-core limits:

* ``neurons_per_core``;
* ``synaptic_memory_per_core``: every nonzero incoming synapse of the block's neurons
  costs the profile's ``weight_bits`` (+ ``delay_bits`` when its synapse has delays) — a
  lower bound of Loihi's synapse encoding, which also stores indices. A convolution
  kernel (``Synapse.is_kernel``) is stored the way Loihi 2's convolutional encoding
  shares it: once per core for every output channel the core holds (its nonzero taps ×
  ``weight_bits``), not once per neuron — an estimate of the encoding, like the rest;
* ``max_fanin_axons_per_core``: distinct source neurons with a nonzero synapse into the
  block (input axons);
* ``max_fanout_axons_per_core``: distinct destination cores the block's spikes go to.

The largest block size that satisfies all limits is found per population (binary search;
vectorized over blocks). ``FitError`` names the population and the numbers when even one
neuron per core does not fit, or when more chips are needed than requested.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import FitError
from .program import LoihiProgram, conv_taps

BITMAP_MAX = 1 << 26  # entries of the blocks × sources bitmap of _distinct_per_block (bytes)
NEED = ["neurons_per_core", "synaptic_memory_per_core", "max_fanin_axons_per_core", "max_fanout_axons_per_core",
        "cores_per_chip", "weight_bits"]


def _profile(hardware):
    from ...hardware.profiles import HardwareProfile, load_profile

    return hardware if isinstance(hardware, HardwareProfile) else load_profile(hardware)


def has_core_limits(hardware) -> bool:
    prof = _profile(hardware)
    return all(k in prof for k in NEED)


def _limits(hardware, delays: bool = False) -> dict:
    prof = _profile(hardware)
    need = NEED + (["delay_bits"] if delays else [])
    missing = [k for k in need if k not in prof]
    if missing:
        raise FitError(f"hardware profile '{prof.name}' lacks {', '.join(missing)}: cannot map onto cores")
    lim = {k: int(prof.si(k)) for k in need}
    lim["profile"] = prof.name
    return lim


def _incoming(program: LoihiProgram, pop, lim: dict) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Per neuron: matrix synapse bits; the (n, total_src) nonzero mask of its matrix
    inputs, one column per source neuron (synapses from the same source, e.g. the
    excitatory and inhibitory parts of a split synapse, share its input axon); per kernel
    synapse ``(dst, src, per-channel bits, channel size)`` with the (dst, src) pairs of its
    nonzero taps; and the source population of each group of mask columns."""
    bits = np.zeros(pop.n, np.int64)
    by_src: dict[str, np.ndarray] = {}
    kernels = []
    for s in program.incoming(pop.name):
        if s.is_kernel:
            dst, src, tap, _ = conv_taps(s.conv)
            nz = (np.asarray(s.weights).reshape(-1) != 0)
            per_ch = nz.reshape(s.weights.shape[0], -1).sum(1) * lim["weight_bits"]
            keep = nz[tap]
            n_ch = int(np.prod(s.conv["out_shape"][1:]))
            kernels.append((dst[keep], src[keep], per_ch.astype(np.int64), n_ch))
            continue
        nz = np.asarray(s.weights) != 0
        per = lim["weight_bits"] + (lim["delay_bits"] if s.delays is not None else 0)
        bits += nz.sum(1) * per
        by_src[s.src] = by_src[s.src] | nz if s.src in by_src else nz
    mask = np.concatenate(list(by_src.values()), 1) if by_src else np.zeros((pop.n, 0), bool)
    return bits, mask, kernels, [(k, v.shape[1]) for k, v in by_src.items()]


def _block_stats(bits, mask, kernels, k):
    """Per block of ``k`` neurons: synapse bits and input axons (distinct sources)."""
    n = len(bits)
    nb = math.ceil(n / k)
    pad = nb * k - n
    b = np.pad(bits, (0, pad)).reshape(nb, k).sum(1)
    m = np.pad(mask, ((0, pad), (0, 0))).reshape(nb, k, -1).any(1).sum(1) if mask.shape[1] else np.zeros(nb, np.int64)
    for dst, src, per_ch, n_ch in kernels:
        m = m + _distinct_per_block(dst // k, src, nb)
        # the output channels each block holds: a kernel per (block, channel)
        lo, hi = np.arange(nb) * k, np.minimum(np.arange(nb) * k + k, n) - 1
        c_lo, c_hi = lo // n_ch, hi // n_ch
        cum = np.concatenate([[0], np.cumsum(per_ch)])
        b = b + cum[c_hi + 1] - cum[c_lo]
    return b, m


def _fanin_error(name: str, one_m: np.ndarray, mask: np.ndarray, groups: list, hardware, lim: dict) -> FitError:
    """The FitError of a neuron whose input axons exceed a core's: which sources, the
    constant's provenance, why the fan-in is not split across cores, and what to do."""
    worst = int(np.argmax(one_m))
    parts, col = [], 0
    for src, width in groups:
        parts.append(f"{int(mask[worst, col:col + width].sum())} from '{src}'")
        col += width
    if int(one_m[worst]) > int(mask[worst].sum()):
        parts.append(f"{int(one_m[worst]) - int(mask[worst].sum())} through conv kernels")
    c = _profile(hardware)["max_fanin_axons_per_core"]
    limit = lim["max_fanin_axons_per_core"]
    return FitError(
        f"population '{name}': one neuron has {int(one_m[worst])} input axons ({', '.join(parts)}), more than the "
        f"{limit} a core accepts (max_fanin_axons_per_core of profile '{lim['profile']}', {c.confidence}: {c.source}). "
        "A neuron's synapses are all stored in its own core and Loihi adds a neuron's dendritic input only within "
        "that core, so its fan-in cannot be split across cores without relay neurons that send partial sums as "
        "graded spikes (one more step on that path; this compiler does not build them). To fit: bring the fan-in "
        f"to ≤ {limit} — pool or stride before this layer (a 2×2 SumPool or one more stride-2 layer divides a "
        "2-D source's fan-in by 4), prune its weights (only nonzero synapses need an axon), or map with a profile "
        "whose max_fanin_axons_per_core is larger")


def _distinct_per_block(blk: np.ndarray, src: np.ndarray, nb: int) -> np.ndarray:
    """Per block: the distinct ``src`` among its (blk, src) pairs — a bitmap of blocks ×
    sources when it is small (≤ ``BITMAP_MAX`` entries), else one sort (np.unique)."""
    n_src = int(src.max(initial=0)) + 1
    key = blk.astype(np.int64) * n_src + src
    if nb * n_src <= BITMAP_MAX:
        seen = np.zeros(nb * n_src, bool)
        seen[key] = True
        return seen.reshape(nb, n_src).sum(1)
    return np.bincount(np.unique(key) // n_src, minlength=nb)[:nb]


def map_program(program: LoihiProgram, hardware="loihi2", chips: int | None = None) -> dict:
    lim = _limits(hardware, delays=any(s.delays is not None for s in program.synapses))
    mem_bits = lim["synaptic_memory_per_core"] * 8
    layers, assign = {}, {}
    core = 0
    for pop in program.populations:
        bits, mask, kernels, groups = _incoming(program, pop, lim)
        one_b, one_m = _block_stats(bits, mask, kernels, 1)
        if one_b.max(initial=0) > mem_bits:
            raise FitError(
                f"population '{pop.name}': one neuron needs {int(one_b.max())} bits of synapses, more than a core's "
                f"{mem_bits} ({lim['synaptic_memory_per_core']} bytes)"
            )
        if int(one_m.max(initial=0)) > lim["max_fanin_axons_per_core"]:
            raise _fanin_error(pop.name, one_m, mask, groups, hardware, lim)

        def ok(k):
            b, m = _block_stats(bits, mask, kernels, k)
            return b.max() <= mem_bits and m.max() <= lim["max_fanin_axons_per_core"]

        lo, hi = 1, min(pop.n, lim["neurons_per_core"])
        while lo < hi:  # largest k with ok(k); ok is monotone in k
            mid = (lo + hi + 1) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid - 1
        k = lo
        b, m = _block_stats(bits, mask, kernels, k)
        n_cores = len(b)
        assign[pop.name] = (core, k, n_cores)
        layers[pop.name] = {
            "neurons": pop.n, "cores": n_cores, "first_core": core, "neurons_per_core": k,
            "synaptic_bits_max": int(b.max(initial=0)), "fanin_axons_max": int(m.max(initial=0)),
            "neuron_utilization": pop.n / (n_cores * lim["neurons_per_core"]),
            "memory_utilization": float(b.sum()) / (n_cores * mem_bits),
        }
        core += n_cores
    # fan-out: destination cores reached by each source core
    for pop in program.populations:
        c0, k, nc = assign[pop.name]
        reach = np.zeros((nc, 0), bool)
        for s in program.synapses:
            if s.src != pop.name:
                continue
            d0, dk, dn = assign[s.dst]
            if s.is_kernel:  # (source core, destination core) pairs of the nonzero taps
                dst, src, tap, _ = conv_taps(s.conv)
                keep = (np.asarray(s.weights).reshape(-1) != 0)[tap]
                blk = np.zeros((nc, dn), bool)
                blk[src[keep] // k, dst[keep] // dk] = True
                reach = np.concatenate([reach, blk], 1)
                continue
            nz = (np.asarray(s.weights) != 0).T  # (n_src, n_dst)
            pad_s = nc * k - nz.shape[0]
            pad_d = dn * dk - nz.shape[1]
            blk = np.pad(nz, ((0, pad_s), (0, pad_d))).reshape(nc, k, dn, dk).any((1, 3))
            reach = np.concatenate([reach, blk], 1)
        fan = int(reach.sum(1).max(initial=0))
        layers[pop.name]["fanout_cores_max"] = fan
        if fan > lim["max_fanout_axons_per_core"]:
            raise FitError(f"population '{pop.name}': a core sends to {fan} cores, more than "
                           f"max_fanout_axons_per_core = {lim['max_fanout_axons_per_core']}")
    total = core
    need_chips = max(1, math.ceil(total / lim["cores_per_chip"]))
    if chips is not None and need_chips > chips:
        raise FitError(
            f"the network needs {total} cores = {need_chips} chip(s) of {lim['cores_per_chip']} cores, "
            f"but only {chips} chip(s) ({chips * lim['cores_per_chip']} cores) were requested; "
            + ", ".join(f"{n}: {d['cores']}" for n, d in layers.items())
        )
    return {
        "profile": lim["profile"], "cores": total, "chips": need_chips, "cores_per_chip": lim["cores_per_chip"],
        "core_utilization": total / (need_chips * lim["cores_per_chip"]),
        "neurons": int(sum(p.n for p in program.populations)),
        "limits": {k: v for k, v in lim.items() if k != "profile"},
        "layers": layers,
    }
