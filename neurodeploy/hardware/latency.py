"""Latency of one time step and of one inference, from a RunResult's event counts and a
HardwareProfile (see docs/energy-model.md).

* **Loihi** (``kind = "loihi"``): cores run in parallel and meet at a barrier every step.
  Each neuron layer is split evenly over its cores (``ceil(neurons / neurons_per_core)``
  unless a mapping gives the core count); a core's work per step is its share of the
  synaptic ops arriving at its layer × ``time_synop`` + neuron updates × ``time_neuron_
  update_active`` (or ``_inactive`` for updates a target counted as inactive) + spikes it
  sends × ``time_spike_within_tile``. The step takes the busiest core's time plus the
  barrier sync, interpolated linearly in the number of tiles between
  ``time_barrier_sync_min`` (1 tile) and ``time_barrier_sync_max`` (32 tiles) as quoted by
  Davies et al. 2018 (113–465 ns for 1–32 tiles on Loihi 1).
* **RRAM** (``kind = "rram"``): each synaptic layer is one crossbar read per step per
  output position (all its tiles in parallel) followed by the column ADC conversions (one
  ADC shared by the columns of an array, converting them one after another); layers run
  one after another within a step.

Counts are totals over samples and steps, so per-step figures are averages per sample.
Every result names the profile constants it used with their sources and confidence.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..errors import InputError


def cite(profile, name: str) -> dict:
    """JSON-ready record of one profile constant as used by a figure."""
    c = profile[name]
    return {"value": c.value, "unit": c.unit, "si": c.si, "source": c.source, "confidence": c.confidence}


def _per(result) -> int:
    return max(int(result.batch) * int(result.steps), 1)


def _neuron_type_names():
    return {"I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "Threshold"}


def layers_of(result, graph=None) -> dict[str, dict]:
    """Group a run's counted nodes into layers: each neuron (or spiking) node with the
    synaptic nodes that feed it. Without a graph every counted node is its own layer."""
    per = _per(result)
    layers: dict[str, dict] = {}
    if graph is None:
        for n, c in result.counts.items():
            neurons = int(c.get("neuron_updates", 0)) // per
            layers[n] = {"neurons": neurons or None, "synapses": [n] if "synaptic_events" in c else [], "nodes": [n]}
        return layers
    neuronish = _neuron_type_names()

    def owner(n):
        """The first neuron node downstream of synaptic node n (through stateless ops)."""
        seen, frontier = set(), [n]
        while frontier:
            a = frontier.pop(0)
            for b in graph.successors(a):
                if b in seen:
                    continue
                seen.add(b)
                if type(graph.nodes[b]).__name__ in neuronish:
                    return b
                if type(graph.nodes[b]).__name__ not in ("Affine", "Linear", "Conv1d", "Conv2d", "Output"):
                    frontier.append(b)
        return n

    for n in graph.order:
        c = result.counts.get(n)
        if c is None:
            continue
        if "synaptic_events" in c or "dense_synops" in c:
            lay = owner(n)
        else:
            lay = n
        d = layers.setdefault(lay, {"neurons": None, "synapses": [], "nodes": []})
        d["nodes"].append(n)
        if lay != n or "synaptic_events" in c:
            d["synapses"].append(n)
        if lay in graph.shapes:
            d["neurons"] = int(np.prod(graph.shapes[lay]))
    for n, c in result.counts.items():  # nodes a target added that the graph does not name
        if n not in graph.nodes:
            layers[n] = {"neurons": (int(c.get("neuron_updates", 0)) // per) or None,
                         "synapses": [n] if "synaptic_events" in c else [], "nodes": [n]}
    return layers


def cores_from_mapping(mapping) -> dict[str, int] | None:
    """Accept ``{layer: n_cores}``, ``{layer: [core ids]}``, ``{layer: {"cores": n}}``, such a
    dict under a ``layers`` / ``cores`` / ``layer_cores`` key (the Loihi target's
    ``map_program`` result), or an object with it in ``.cores`` / ``.layer_cores`` /
    ``to_dict()["cores"]``; return ``{layer: n_cores}``."""
    if mapping is None:
        return None
    if isinstance(mapping, Mapping):
        for key in ("layer_cores", "cores", "layers"):  # the Loihi target's map_program: {"layers": {pop: {"cores": n}}}
            if isinstance(mapping.get(key), Mapping):
                mapping = mapping[key]
                break
    if not isinstance(mapping, Mapping):
        for attr in ("layer_cores", "cores"):
            m = getattr(mapping, attr, None)
            if isinstance(m, Mapping):
                mapping = m
                break
        else:
            to_dict = getattr(mapping, "to_dict", None)
            m = to_dict() if callable(to_dict) else None
            if isinstance(m, Mapping) and isinstance(m.get("cores"), Mapping):
                mapping = m["cores"]
            else:
                raise InputError(f"mapping must be a dict {{layer: cores}}, got {type(mapping).__name__}")
    out = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping) and "cores" in v:
            v = v["cores"]
        if isinstance(v, (int, np.integer)):
            n = int(v)
        elif isinstance(v, (list, tuple, set, np.ndarray)):
            n = len(set(np.asarray(list(v)).reshape(-1).tolist()))
        else:
            raise InputError(f"mapping entry for layer '{k}' must be a core count or a list of core ids, got {v!r}")
        if n < 1:
            raise InputError(f"mapping gives layer '{k}' {n} cores; need at least 1")
        out[str(k)] = n
    return out


def barrier_time(profile, tiles: int) -> tuple[float, str]:
    """Barrier sync time for ``tiles`` tiles: linear between the profile's min (1 tile) and
    max (``barrier_tiles_max`` tiles); extrapolated linearly beyond (flagged in the note)."""
    lo, hi = profile.si("time_barrier_sync_min"), profile.si("time_barrier_sync_max")
    t0, t1 = 1, int(profile.si("barrier_tiles_max"))
    tiles = max(int(tiles), 1)
    t = hi if t1 <= t0 else lo + (hi - lo) * (tiles - t0) / (t1 - t0)
    note = (
        f"linear interpolation in tiles between {t0} tile ({lo * 1e9:.4g} ns) and {t1} tiles ({hi * 1e9:.4g} ns), "
        "the range the profile quotes; the curve between the end points is not published"
    )
    if tiles > t1:
        note += f"; {tiles} tiles is beyond the published range: extrapolated"
    return t, note


def loihi_latency(result, profile, graph=None, mapping=None) -> dict:
    per = _per(result)
    npc = int(profile.si("neurons_per_core"))
    cores_map = cores_from_mapping(mapping)
    t_syn = profile.si("time_synop")
    t_act = profile.si("time_neuron_update_active")
    t_inact = profile.si("time_neuron_update_inactive")
    t_spk = profile.si("time_spike_within_tile")
    layers = layers_of(result, graph)
    rows = {}
    total_cores = 0
    for lay, d in layers.items():
        c = result.counts.get(lay, {})
        synops = sum(int(result.counts[s].get("synaptic_events", 0)) for s in d["synapses"])
        updates = int(c.get("neuron_updates", 0))
        active = int(c.get("neuron_updates_active", updates))
        spikes = int(c.get("spikes", 0))
        neurons = d["neurons"] or 1
        if cores_map is not None and lay in cores_map:
            cores, src = cores_map[lay], "mapping"
        else:
            cores, src = max(1, math.ceil(neurons / npc)), "even split"
        total_cores += cores
        work = synops * t_syn + active * t_act + (updates - active) * t_inact + spikes * t_spk
        rows[lay] = {
            "cores": cores,
            "cores_from": src,
            "neurons": neurons,
            "synops_per_step": synops / per,
            "neuron_updates_per_step": updates / per,
            "spikes_per_step": spikes / per,
            "core_time_per_step_s": work / per / cores,
        }
    cpt = int(profile.si("cores_per_tile"))
    tiles = max(1, math.ceil(total_cores / cpt))
    barrier, bnote = barrier_time(profile, tiles)
    busiest = max(rows, key=lambda k: rows[k]["core_time_per_step_s"]) if rows else None
    compute = rows[busiest]["core_time_per_step_s"] if busiest else 0.0
    step = compute + barrier
    used = ["neurons_per_core", "time_synop", "time_neuron_update_active", "time_neuron_update_inactive",
            "time_spike_within_tile", "time_barrier_sync_min", "time_barrier_sync_max"]
    used += ["cores_per_tile", "barrier_tiles_max"]
    assumptions = [
        "per-step work is the average over samples and steps (counts are totals); bursts make real steps longer",
        "each layer's synaptic ops run on the cores of the layer they feed, split evenly over its cores",
        "all spikes are routed within a tile (no inter-tile hop latency)",
        f"barrier sync: {bnote}",
    ]
    if cores_map is not None and not any(r["cores_from"] == "mapping" for r in rows.values()):
        assumptions.append("a mapping was given but names no layer of this run: layers split evenly instead")
    if not any("neuron_updates_active" in c for c in result.counts.values()):
        assumptions.append("the target did not count inactive neuron updates: every update timed as active (upper bound)")
    return {
        "model": "loihi",
        "per_step_s": step,
        "per_inference_s": step * int(result.steps),
        "run_time_s": step * int(result.steps) * int(result.batch),
        "compute_per_step_s": compute,
        "barrier_per_step_s": barrier,
        "busiest_layer": busiest,
        "cores": total_cores,
        "tiles": tiles,
        "layers": rows,
        "constants": {k: cite(profile, k) for k in used},
        "assumptions": assumptions,
    }


def _crossbar_geometry(graph, node) -> tuple[int, int, int]:
    """(rows, cols, reads per step) of a synaptic node unrolled onto a crossbar: Dense →
    (n_in, n_out, 1); Conv → (in_ch/groups × kernel, out_ch, output positions)."""
    import nir

    n = graph.nodes[node]
    w = np.asarray(n.weight)
    if isinstance(n, (nir.Affine, nir.Linear)):
        return int(w.shape[1]), int(w.shape[0]), 1
    positions = int(np.prod(graph.shapes[node][1:]))
    return int(np.prod(w.shape[1:])), int(w.shape[0]), positions


def rram_latency(result, profile, graph=None, adcs_per_array: int = 1) -> dict:
    if graph is None:
        raise InputError("RRAM latency needs the graph (crossbar sizes come from the weight shapes)")
    rows_max, cols_max = int(profile.si("array_rows")), int(profile.si("array_cols"))
    t_read, t_adc = profile.si("time_array_read"), profile.si("time_adc_conversion")
    layers = {}
    step = 0.0
    for n in graph.synapse_nodes():
        rows, cols, reads = _crossbar_geometry(graph, n)
        row_tiles, col_tiles = math.ceil(rows / rows_max), math.ceil(cols / cols_max)
        cols_per_tile = min(cols, cols_max)
        t = reads * (t_read + math.ceil(cols_per_tile / adcs_per_array) * t_adc)
        layers[n] = {"rows": rows, "cols": cols, "tiles": row_tiles * col_tiles, "reads_per_step": reads, "time_per_step_s": t}
        step += t
    return {
        "model": "rram",
        "per_step_s": step,
        "per_inference_s": step * int(result.steps),
        "run_time_s": step * int(result.steps) * int(result.batch),
        "layers": layers,
        "constants": {k: cite(profile, k) for k in ("array_rows", "array_cols", "time_array_read", "time_adc_conversion")},
        "assumptions": [
            "every tile of a layer is read once per step and output position (no skipping of all-zero inputs)",
            f"{adcs_per_array} ADC per array, converting its columns one after another",
            "tiles of a layer run in parallel; layers run one after another within a step",
            "digital neuron updates and partial-sum accumulation across row tiles take no time (not in the profile)",
        ],
    }


def estimate_latency(result, profile, graph=None, mapping=None) -> dict[str, Any]:
    """Latency per step / inference / whole run for the profile's kind of hardware."""
    if profile.kind == "loihi":
        return loihi_latency(result, profile, graph, mapping)
    if profile.kind == "rram":
        return rram_latency(result, profile, graph)
    raise InputError(f"no latency model for hardware kind {profile.kind!r} (profile {profile.name})")
