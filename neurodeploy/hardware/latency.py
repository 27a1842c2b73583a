"""Latency of one time step and of one inference, from a RunResult's counts, the Program's
description and a HardwareProfile (see docs/energy-model.md).

    estimate_latency(result, profile, description=None, graph=None) -> dict

* **Loihi** (``kind = "loihi"``): cores run in parallel and meet at a barrier every step.
  A neuron layer gets the cores ``description["mapping"]["layers"][layer]["cores"]`` gives
  (a mapping made for this profile), else ``ceil(neurons / neurons_per_core)``. A core's
  work per step is its share of the layer's counted ``synaptic_events`` (those of the
  synapse nodes that feed the layer in ``graph``) × ``time_synop`` + neuron updates ×
  ``time_neuron_update_active`` (``_inactive`` for those a target counted as inactive) +
  ``spikes`` × ``time_spike_within_tile`` (+ counted ``spike_hops`` × ``time_spike_hop``).
  The step is the busiest core's time plus the barrier, linear in tiles
  (``ceil(cores / cores_per_tile)``) between ``time_barrier_sync_min`` (1 tile) and
  ``time_barrier_sync_max`` (``barrier_tiles_max`` tiles).
* **RRAM** (``kind = "rram"``): from ``description["crossbars"]``: each synapse node is
  ``reads_per_step`` crossbar reads per step (its tiles in parallel), each followed by one
  conversion per differential pair of a tile's bit lines (``ceil(cols / 2 / col_tiles)``,
  as the target counts ``adc_conversions``) on one ADC per array; a node that drove graded
  inputs (counted ``dac_conversions``) takes ``input_cycles`` read cycles per read (the
  bit-serial drivers); nodes run one after another. A run without that geometry gets one UnsupportedError.

Counts are totals over samples and steps, so per-step figures are averages per sample.
Every result names the profile constants it used with their sources and confidence.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..errors import InputError, UnsupportedError
from .inputs import check_description, cite, checked_counts, lacking, positive_int, samples_steps, section, synapse_nodes

__all__ = ["estimate_latency", "barrier_time", "cores_from_mapping", "layers_of", "cite"]


def layers_of(counts: Mapping[str, Mapping[str, int]], graph=None, per: int = 1) -> dict[str, dict]:
    """Group counted nodes into layers: each neuron node with the synapse nodes that feed it
    (through stateless nodes, in ``graph``). Without a graph every counted node is its own layer."""
    syn = set(synapse_nodes(counts))
    if graph is None:
        return {n: {"neurons": (c.get("neuron_updates", 0) // per) or None, "synapses": [n] if n in syn else []}
                for n, c in counts.items()}
    layers: dict[str, dict] = {}
    for n in [m for m in graph.order if m in counts] + [m for m in counts if m not in graph.nodes]:
        lay = _owner(graph, n) if n in syn and n in graph.nodes else n
        d = layers.setdefault(lay, {"neurons": None, "synapses": []})
        if n in syn:
            d["synapses"].append(n)
        if lay in graph.shapes:
            d["neurons"] = int(np.prod(graph.shapes[lay]))
        elif d["neurons"] is None:
            d["neurons"] = (counts.get(lay, {}).get("neuron_updates", 0) // per) or None
    return layers


def _owner(graph, n: str) -> str:
    """The first neuron node downstream of synapse node ``n`` through stateless nodes."""
    from ..graph.graph import NEURON_TYPES, SYNAPSE_TYPES

    import nir

    seen, frontier = set(), [n]
    while frontier:
        for b in graph.successors(frontier.pop(0)):
            if b in seen:
                continue
            seen.add(b)
            node = graph.nodes[b]
            if isinstance(node, NEURON_TYPES):
                return b
            if not isinstance(node, SYNAPSE_TYPES + (nir.Output,)):
                frontier.append(b)
    return n


def cores_from_mapping(mapping) -> dict[str, int] | None:
    """``{layer: n_cores}`` from a description's ``mapping`` ({"layers": {layer: {"cores": n}}});
    also accepts ``{layer: n}`` / ``{layer: [core ids]}`` directly. InputError for bad entries."""
    if mapping is None:
        return None
    if not isinstance(mapping, Mapping):
        raise InputError(f"mapping must be a dict {{'layers': {{layer: {{'cores': n}}}}}}, got {type(mapping).__name__}")
    if isinstance(mapping.get("layers"), Mapping):
        mapping = mapping["layers"]
    out = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            v = v.get("cores")
        if isinstance(v, (list, tuple, set, np.ndarray)):
            v = len(set(np.asarray(list(v)).reshape(-1).tolist()))
        out[str(k)] = positive_int(f"mapping: cores of layer '{k}'", v)
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


def _mapped_cores(profile, description, assumptions: list[str]) -> dict[str, int] | None:
    mapping = section(description, "mapping")
    if mapping is None:
        assumptions.append("the program has no core mapping: each layer split evenly over ceil(neurons / neurons_per_core) cores")
        return None
    made_for = mapping.get("profile")
    if made_for is not None and made_for != profile.name:
        assumptions.append(f"the program was mapped onto '{made_for}' cores, not '{profile.name}': "
                           "layers split evenly over ceil(neurons / neurons_per_core) cores instead")
        return None
    return cores_from_mapping(mapping)


def _loihi_layer(profile, counts, lay: str, d: dict, cores_map, per: int) -> dict:
    c = counts.get(lay, {})
    synops = sum(counts[s].get("synaptic_events", 0) for s in d["synapses"])
    updates = c.get("neuron_updates", 0)
    active = min(c.get("neuron_updates_active", updates), updates)
    spikes, hops = c.get("spikes", 0), c.get("spike_hops", 0)
    neurons = d["neurons"] or 1
    if cores_map is not None and lay in cores_map:
        cores, src = cores_map[lay], "mapping"
    else:
        cores, src = max(1, math.ceil(neurons / int(profile.si("neurons_per_core")))), "even split"
    work = (synops * profile.si("time_synop") + active * profile.si("time_neuron_update_active")
            + (updates - active) * profile.si("time_neuron_update_inactive")
            + spikes * profile.si("time_spike_within_tile") + hops * profile.si("time_spike_hop"))
    return {"cores": cores, "cores_from": src, "neurons": neurons, "synops_per_step": synops / per,
            "neuron_updates_per_step": updates / per, "spikes_per_step": spikes / per,
            "core_time_per_step_s": work / per / cores}


def loihi_latency(result, profile, description=None, graph=None) -> dict:
    counts, per = checked_counts(result), samples_steps(result)
    assumptions = ["per-step work is the average over samples and steps (counts are totals); bursts make real steps longer",
                   "each layer's synaptic ops run on the cores of the layer they feed, split evenly over its cores"]
    if graph is None:
        assumptions.append("no graph given: every counted node timed as its own layer")
    cores_map = _mapped_cores(profile, description, assumptions)
    rows = {lay: _loihi_layer(profile, counts, lay, d, cores_map, per) for lay, d in layers_of(counts, graph, per).items()}
    if cores_map is not None and not any(r["cores_from"] == "mapping" for r in rows.values()):
        assumptions.append("the mapping names no layer of this run: layers split evenly instead")
    total_cores = sum(r["cores"] for r in rows.values())
    tiles = max(1, math.ceil(total_cores / int(profile.si("cores_per_tile"))))
    barrier, bnote = barrier_time(profile, tiles)
    busiest = max(rows, key=lambda k: rows[k]["core_time_per_step_s"]) if rows else None
    compute = rows[busiest]["core_time_per_step_s"] if busiest else 0.0
    step = compute + barrier
    hops = any("spike_hops" in c for c in counts.values())
    assumptions += [f"barrier sync: {bnote}",
                    "spike hops timed as counted" if hops else "all spikes routed within a tile (no inter-tile hops counted)"]
    if not any("neuron_updates_active" in c for c in counts.values()):
        assumptions.append("the target did not count inactive neuron updates: every update timed as active (upper bound)")
    used = ["neurons_per_core", "time_synop", "time_neuron_update_active", "time_neuron_update_inactive",
            "time_spike_within_tile", "time_barrier_sync_min", "time_barrier_sync_max", "cores_per_tile",
            "barrier_tiles_max"] + (["time_spike_hop"] if hops else [])
    return {"model": "loihi", "per_step_s": step, "per_inference_s": step * int(result.steps),
            "run_time_s": step * int(result.steps) * int(result.batch), "compute_per_step_s": compute,
            "barrier_per_step_s": barrier, "busiest_layer": busiest, "cores": total_cores, "tiles": tiles,
            "layers": rows, "constants": {k: cite(profile, k) for k in used}, "assumptions": assumptions}


def _geometry(node: str, geo) -> dict[str, int]:
    """The crossbar geometry of one synapse node from ``description["crossbars"][node]``."""
    if not isinstance(geo, Mapping):
        raise InputError(f"description['crossbars']['{node}'] must be a dict, got {type(geo).__name__}")
    need = {"rows": 1, "cols": 1, "row_tiles": 1, "col_tiles": 1, "reads_per_step": 0}
    missing = [k for k in need if k not in geo]
    if missing:
        raise InputError(f"description['crossbars']['{node}'] lacks {', '.join(missing)}")
    out = {k: positive_int(f"description['crossbars']['{node}']['{k}']", geo[k], m) for k, m in need.items()}
    out["tiles"] = positive_int(f"description['crossbars']['{node}']['tiles']", geo.get("tiles", out["row_tiles"] * out["col_tiles"]))
    return out


def rram_latency(result, profile, description=None, graph=None, adcs_per_array: int = 1) -> dict:
    counts = checked_counts(result)
    xbars = section(description, "crossbars")
    if not xbars:
        raise lacking(profile, "crossbar reads with the program's crossbar geometry (describe()['crossbars'])",
                      result, description, has="has none")
    off = [n for n in synapse_nodes(counts) if n not in xbars]
    if off:
        raise lacking(profile, "every synapse node as crossbar reads", result, description,
                      has=f"has node(s) {', '.join(off)} on no crossbar")
    t_read, t_adc = profile.si("time_array_read"), profile.si("time_adc_conversion")
    layers, step = {}, 0.0
    for n, geo in xbars.items():
        g = _geometry(n, geo)
        pairs = math.ceil(g["cols"] / 2 / g["col_tiles"])  # one conversion per differential pair of bit lines
        graded = counts.get(n, {}).get("dac_conversions", 0) > 0  # inputs through the bit-serial drivers
        cycles = positive_int(f"description['crossbars']['{n}']['input_cycles']", geo.get("input_cycles", 1)) if graded else 1
        t = g["reads_per_step"] * cycles * (t_read + math.ceil(pairs / adcs_per_array) * t_adc)
        layers[n] = {"rows": g["rows"], "cols": g["cols"], "tiles": g["tiles"], "reads_per_step": g["reads_per_step"],
                     "read_cycles": cycles, "time_per_step_s": t}
        step += t
    return {"model": "rram", "per_step_s": step, "per_inference_s": step * int(result.steps),
            "run_time_s": step * int(result.steps) * int(result.batch), "layers": layers,
            "constants": {k: cite(profile, k) for k in ("time_array_read", "time_adc_conversion")},
            "assumptions": [
                "geometry from the program's description (crossbars: rows, cols, tiles, reads per step)",
                "every tile of a node is read reads_per_step times per step (no skipping of all-zero inputs: upper bound)",
                "a node that drove graded inputs (counted dac_conversions) takes input_cycles read cycles per read "
                "(bit-serial drivers, non-negative inputs; a signed input takes twice as many), one with binary inputs one",
                f"{adcs_per_array} ADC per array, converting a tile's differential pairs (cols / 2) one after another",
                "tiles of a node run in parallel; nodes run one after another within a step",
                "digital neuron updates and partial-sum accumulation across row tiles take no time (not in the profile)"]}


def estimate_latency(result, profile, description: dict | None = None, graph=None) -> dict[str, Any]:
    """Latency per step / inference / whole run for the profile's kind of hardware, from the
    run's counts, the Program's ``describe()`` dict and (Loihi) the user's graph."""
    check_description(description)
    if profile.kind == "loihi":
        return loihi_latency(result, profile, description, graph)
    if profile.kind == "rram":
        return rram_latency(result, profile, description, graph)
    raise UnsupportedError(f"no latency model for hardware kind {profile.kind!r} (profile {profile.name})")
