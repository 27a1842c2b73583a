"""Energy of a run from its event counts and a HardwareProfile (see docs/energy-model.md):

    E = Σ_layers Σ_kinds events × energy-per-event  +  static_power × run time

broken down by event kind and by node. Run time comes from :mod:`.latency`. Every term
names the profile constant it used, with the constant's source and confidence.

Event kinds per hardware kind:

* loihi: ``synop`` (synaptic_events × energy_synop), ``neuron_update`` (active updates ×
  energy_neuron_update_active + inactive × energy_neuron_update_inactive; a target that does
  not count ``neuron_updates_active`` has all its updates priced as active, an upper bound),
  ``spike`` (spikes × energy_spike_within_tile, plus ``spike_hops`` × energy_spike_hop when
  a target counts hops), ``static``.
* rram: ``cell_read`` (cells read: a target's ``cell_reads`` count, else synaptic_events —
  each active input row reads every cell on it), ``dac`` (row activations: ``dac_conversions``
  or synaptic_events / output columns), ``adc`` (``adc_conversions`` or every column of every
  tile once per step and output position), ``neuron_update`` (neuron_updates ×
  energy_digital_neuron_update), ``static``.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError
from .latency import _crossbar_geometry, cite, estimate_latency

#: names targets may use for their own event kinds (first found wins)
ALIASES = {
    "cell_reads": ("cell_reads", "crossbar_cell_reads", "cells_read"),
    # row drives: the rram target counts active rows per tile read as rows_activated
    # (its dac_conversions counts graded rows only)
    "dac_conversions": ("rows_activated", "row_activations", "dac_conversions", "dac"),
    "adc_conversions": ("adc_conversions", "adc"),
    "spike_hops": ("spike_hops", "hops"),
}


def _count(c: dict, kind: str):
    for k in ALIASES.get(kind, (kind,)):
        if k in c:
            return int(c[k])
    return None


class _Terms:
    def __init__(self, profile):
        self.profile = profile
        self.terms: list[dict] = []

    def add(self, layer: str, kind: str, count: float, constant: str, how: str = "target count"):
        if not count:
            return
        e = self.profile.si(constant)
        c = self.profile[constant]
        self.terms.append({
            "layer": layer, "kind": kind, "count": float(count), "constant": constant,
            "per_event_J": e, "energy_J": float(count) * e, "count_from": how,
            "source": c.source, "confidence": c.confidence,
        })


def _loihi_terms(result, profile, T: _Terms, assumptions: list[str]):
    any_active = False
    for n, c in result.counts.items():
        T.add(n, "synop", c.get("synaptic_events", 0), "energy_synop")
        if "neuron_updates" in c:
            upd = int(c["neuron_updates"])
            act = c.get("neuron_updates_active")
            if act is None:
                T.add(n, "neuron_update", upd, "energy_neuron_update_active", "all updates priced as active")
            else:
                any_active = True
                T.add(n, "neuron_update", int(act), "energy_neuron_update_active")
                T.add(n, "neuron_update", upd - int(act), "energy_neuron_update_inactive")
        T.add(n, "spike", c.get("spikes", 0), "energy_spike_within_tile")
        hops = _count(c, "spike_hops")
        if hops:
            T.add(n, "spike", hops, "energy_spike_hop")
    if not any_active:
        assumptions.append("the target did not count inactive neuron updates: every update priced as active (upper bound)")
    if not any(_count(c, "spike_hops") for c in result.counts.values()):
        assumptions.append("spikes priced as within-tile deliveries (no inter-tile hops counted)")
    assumptions.append("synaptic ops priced per nonzero input × fan-out as counted by the target (synaptic_events)")


def _rram_terms(result, profile, graph, T: _Terms, assumptions: list[str]):
    per = max(int(result.batch) * int(result.steps), 1)
    rows_max = int(profile.si("array_rows"))
    derived = set()
    for n, c in result.counts.items():
        if "synaptic_events" in c or any(_count(c, k) is not None for k in ("cell_reads", "adc_conversions", "dac_conversions")):
            ev = int(c.get("synaptic_events", 0))
            cells = _count(c, "cell_reads")
            T.add(n, "cell_read", ev if cells is None else cells, "energy_cell_read", "synaptic_events" if cells is None else "target count")
            dac, adc = _count(c, "dac_conversions"), _count(c, "adc_conversions")
            if dac is None or adc is None:
                if graph is None or n not in graph.nodes:
                    raise InputError(f"RRAM energy of node '{n}': the target did not count DAC/ADC conversions; pass the graph to derive them")
                rows, cols, reads = _crossbar_geometry(graph, n)
                if dac is None:
                    dac = ev / cols
                    derived.add("dac")
                    T.add(n, "dac", dac, "energy_dac_conversion", "synaptic_events / output columns")
                else:
                    T.add(n, "dac", dac, "energy_dac_conversion")
                if adc is None:
                    adc = cols * math.ceil(rows / rows_max) * reads * per
                    derived.add("adc")
                    T.add(n, "adc", adc, "energy_adc_conversion", "all columns × row tiles × reads × steps × samples")
                else:
                    T.add(n, "adc", adc, "energy_adc_conversion")
            else:
                T.add(n, "dac", dac, "energy_dac_conversion")
                T.add(n, "adc", adc, "energy_adc_conversion")
        if "neuron_updates" in c:
            T.add(n, "neuron_update", c["neuron_updates"], "energy_digital_neuron_update")
    if "dac" in derived:
        assumptions.append("DAC conversions = active input rows (1-bit inputs; graded inputs would need bit-serial cycles)")
    if "adc" in derived:
        assumptions.append("ADC: every column of every row tile converted once per step and output position (no skipping, upper bound)")
    assumptions.append("cell reads = nonzero inputs × fan-out (one cell per weight; a differential pair would double it)")


def estimate_energy(result, profile, graph=None, latency: dict | None = None, mapping=None) -> dict[str, Any]:
    """Energy breakdown of a run (JSON-ready): totals, per inference, by kind, by layer,
    every term with its constant, and the assumptions made."""
    if latency is None:
        latency = estimate_latency(result, profile, graph, mapping)
    T = _Terms(profile)
    assumptions: list[str] = []
    if profile.kind == "loihi":
        _loihi_terms(result, profile, T, assumptions)
    elif profile.kind == "rram":
        _rram_terms(result, profile, graph, T, assumptions)
    else:
        raise InputError(f"no energy model for hardware kind {profile.kind!r} (profile {profile.name})")
    run_time = float(latency["run_time_s"])
    static_w = profile.si("static_power")
    static = static_w * run_time
    T.terms.append({
        "layer": "(chip)", "kind": "static", "count": run_time, "constant": "static_power",
        "per_event_J": static_w, "energy_J": static, "count_from": "run time (s) from the latency model",
        "source": profile["static_power"].source, "confidence": profile["static_power"].confidence,
    })
    assumptions.append("static power × modelled run time (samples run one after another at the modelled step latency)")
    by_kind: dict[str, float] = {}
    by_layer: dict[str, dict[str, float]] = {}
    for t in T.terms:
        by_kind[t["kind"]] = by_kind.get(t["kind"], 0.0) + t["energy_J"]
        lay = by_layer.setdefault(t["layer"], {})
        lay[t["kind"]] = lay.get(t["kind"], 0.0) + t["energy_J"]
    total = sum(t["energy_J"] for t in T.terms)
    batch = max(int(result.batch), 1)
    used = sorted({t["constant"] for t in T.terms})
    return {
        "profile": profile.name,
        "hardware_kind": profile.kind,
        "total_J": total,
        "dynamic_J": total - static,
        "static_J": static,
        "per_inference_J": total / batch,
        "dynamic_per_inference_J": (total - static) / batch,
        "run_time_s": run_time,
        "by_kind": by_kind,
        "by_layer": by_layer,
        "terms": T.terms,
        "constants": {k: cite(profile, k) for k in used},
        "assumptions": assumptions,
    }
