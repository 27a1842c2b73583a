"""Energy of a run from its counts, the Program's description and a HardwareProfile (see
docs/energy-model.md):

    E = Σ_nodes Σ_kinds counted events × energy-per-event  +  static_power × run time

broken down by event kind and by node. Run time comes from :mod:`.latency`. Every term
names the profile constant it used, with the constant's source and confidence. Only counts
are priced; none is derived (docs/protocol.md, "Pricing").

Priced kinds per hardware kind (term kind ← counted kind × constant):

* loihi: ``synop`` ← synaptic_events × energy_synop; ``neuron_update`` ← neuron_updates
  (× energy_neuron_update_active, or split by a counted ``neuron_updates_active`` into
  active and inactive updates); ``spike`` ← spikes × energy_spike_within_tile (+ counted
  ``spike_hops`` × energy_spike_hop); ``static``. Any target's run can be priced.
* rram: ``cell_read`` ← cell_reads × energy_cell_read; ``dac`` ← rows_activated (row
  drives) × energy_dac_conversion; ``adc`` ← adc_conversions × energy_adc_conversion;
  ``periphery`` ← adc_conversions × energy_shift_add + rows_activated ×
  energy_input_register (where the profile has them); ``neuron_update`` ← neuron_updates ×
  energy_digital_neuron_update; ``static`` ← (static_power + static_power_per_tile × the
  tiles of ``description["crossbars"]``) × run time. Every crossbar kind is counted per read
  cycle, so bit-serial inputs cost one read per cycle. A run whose synapse nodes lack the
  crossbar kinds gets one UnsupportedError.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError, UnsupportedError
from .inputs import CROSSBAR_KINDS, check_description, checked_counts, cite, lacking, section, synapse_nodes
from .latency import estimate_latency

__all__ = ["estimate_energy"]


class _Terms:
    def __init__(self, profile):
        self.profile = profile
        self.terms: list[dict] = []

    def add(self, layer: str, kind: str, count: float, constant: str, how: str = "target count"):
        if not count:
            return
        c = self.profile[constant]
        self.terms.append({
            "layer": layer, "kind": kind, "count": float(count), "constant": constant,
            "per_event_J": c.si, "energy_J": float(count) * c.si, "count_from": how,
            "source": c.source, "confidence": c.confidence,
        })


def _loihi_terms(counts, T: _Terms, assumptions: list[str]):
    for n, c in counts.items():
        T.add(n, "synop", c.get("synaptic_events", 0), "energy_synop", "synaptic_events")
        upd = c.get("neuron_updates", 0)
        if "neuron_updates_active" in c:
            act = min(c["neuron_updates_active"], upd)
            T.add(n, "neuron_update", act, "energy_neuron_update_active", "neuron_updates_active")
            T.add(n, "neuron_update", upd - act, "energy_neuron_update_inactive", "neuron_updates - neuron_updates_active")
        else:
            T.add(n, "neuron_update", upd, "energy_neuron_update_active", "neuron_updates (all priced as active)")
        T.add(n, "spike", c.get("spikes", 0), "energy_spike_within_tile", "spikes")
        T.add(n, "spike", c.get("spike_hops", 0), "energy_spike_hop", "spike_hops")
    if not any("neuron_updates_active" in c for c in counts.values()):
        assumptions.append("the target did not count inactive neuron updates: every update priced as active (upper bound)")
    if not any("spike_hops" in c for c in counts.values()):
        assumptions.append("spikes priced as within-tile deliveries (no inter-tile hops counted)")
    assumptions.append("synaptic ops priced per nonzero input × fan-out as counted (synaptic_events)")


def _check_crossbar_counts(profile, counts, result, description):
    syn = synapse_nodes(counts)
    short = [n for n in syn if not all(k in counts[n] for k in CROSSBAR_KINDS)]
    if not short:
        return
    what = f"crossbar events ({', '.join(CROSSBAR_KINDS)})"
    if len(short) == len(syn):
        raise lacking(profile, what, result, description)
    raise lacking(profile, what, result, description, has=f"counted none for node(s) {', '.join(short)}")


def _rram_terms(profile, counts, result, description, T: _Terms, assumptions: list[str]):
    _check_crossbar_counts(profile, counts, result, description)
    for n, c in counts.items():
        if all(k in c for k in CROSSBAR_KINDS):
            T.add(n, "cell_read", c["cell_reads"], "energy_cell_read", "cell_reads")
            T.add(n, "dac", c["rows_activated"], "energy_dac_conversion", "rows_activated")
            T.add(n, "adc", c["adc_conversions"], "energy_adc_conversion", "adc_conversions")
            if "energy_shift_add" in profile:
                T.add(n, "periphery", c["adc_conversions"], "energy_shift_add", "adc_conversions (shift-and-add)")
            if "energy_input_register" in profile:
                T.add(n, "periphery", c["rows_activated"], "energy_input_register", "rows_activated (input register reads)")
        T.add(n, "neuron_update", c.get("neuron_updates", 0), "energy_digital_neuron_update", "neuron_updates")
    assumptions.append("cell reads, row drives (DAC) and ADC conversions priced as the crossbar target counted them, "
                       "per read cycle (a graded input streamed bit-serially is one read per cycle)")
    if not any(k in profile for k in ("energy_shift_add", "energy_input_register")):
        assumptions.append("the profile prices no digital periphery (shift-and-add, input registers): not included")


def _static_term(profile, latency, T: _Terms, description=None) -> float:
    """static_power × run time, plus (a profile with ``static_power_per_tile``) that power ×
    the crossbar tiles the program occupies (``description["crossbars"]``) × run time."""
    try:
        run_time = float(latency["run_time_s"])
    except (TypeError, KeyError, ValueError):
        raise InputError("latency must be the dict estimate_latency returns (with run_time_s)") from None
    parts = [("(chip)", "static_power", 1.0, "run time (s) from the latency model")]
    if "static_power_per_tile" in profile:
        tiles = sum(int(g.get("tiles", 0)) for g in (section(description, "crossbars") or {}).values())
        parts.append(("(tiles)", "static_power_per_tile", float(tiles), f"{tiles} tiles × run time (s) from the latency model"))
    total = 0.0
    for layer, name, mult, how in parts:
        c = profile[name]
        T.terms.append({
            "layer": layer, "kind": "static", "count": run_time * mult, "constant": name,
            "per_event_J": c.si, "energy_J": c.si * run_time * mult, "count_from": how,
            "source": c.source, "confidence": c.confidence,
        })
        total += c.si * run_time * mult
    return total


def _summary(profile, result, T: _Terms, static: float, run_time: float, assumptions) -> dict:
    by_kind: dict[str, float] = {}
    by_layer: dict[str, dict[str, float]] = {}
    for t in T.terms:
        by_kind[t["kind"]] = by_kind.get(t["kind"], 0.0) + t["energy_J"]
        lay = by_layer.setdefault(t["layer"], {})
        lay[t["kind"]] = lay.get(t["kind"], 0.0) + t["energy_J"]
    total = sum(t["energy_J"] for t in T.terms)
    batch = max(int(result.batch), 1)
    return {
        "profile": profile.name, "hardware_kind": profile.kind, "total_J": total, "dynamic_J": total - static,
        "static_J": static, "per_inference_J": total / batch, "dynamic_per_inference_J": (total - static) / batch,
        "run_time_s": run_time, "by_kind": by_kind, "by_layer": by_layer, "terms": T.terms,
        "constants": {k: cite(profile, k) for k in sorted({t["constant"] for t in T.terms})},
        "assumptions": assumptions,
    }


def estimate_energy(result, profile, description: dict | None = None, graph=None,
                    latency: dict | None = None) -> dict[str, Any]:
    """Energy breakdown of a run (JSON-ready): totals, per inference, by kind, by layer,
    every term with its constant, and the assumptions made. ``description`` is the
    Program's ``describe()``; ``latency`` (else computed) gives the run time for static power."""
    check_description(description)
    counts = checked_counts(result)
    T, assumptions = _Terms(profile), []
    if profile.kind == "loihi":
        _loihi_terms(counts, T, assumptions)
    elif profile.kind == "rram":
        _rram_terms(profile, counts, result, description, T, assumptions)
    else:
        raise UnsupportedError(f"no energy model for hardware kind {profile.kind!r} (profile {profile.name})")
    if latency is None:
        latency = estimate_latency(result, profile, description, graph)
    static = _static_term(profile, latency, T, description)
    assumptions.append("static power × modelled run time (samples run one after another at the modelled step latency)")
    return _summary(profile, result, T, static, float(latency["run_time_s"]), assumptions)
