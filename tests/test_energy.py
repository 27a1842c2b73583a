"""Energy and latency models against hand-computed sums of events × profile constants."""

import math
import re

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import InputError
from neurodeploy.graph import load
from neurodeploy.hardware import load_profile
from neurodeploy.hardware.energy import estimate_energy
from neurodeploy.hardware.latency import barrier_time, cores_from_mapping, estimate_latency
from neurodeploy.hardware.profiles import BUNDLED_DIR
from neurodeploy.targets.base import RunResult, get_target

from .helpers import chain, f32, lif


def _tiny(rng):
    w1 = f32(rng.normal(1.0, 0.5, (4, 3)))
    w2 = f32(rng.normal(0.5, 0.5, (2, 4)))
    g = load(chain(nir.Input(np.array([3])), nir.Linear(weight=w1), lif(4, tau=0.002, thr=0.4), nir.Linear(weight=w2),
                   lif(2, tau=0.002, thr=0.4), nir.Output(np.array([2])), dt=1e-3))
    x = (rng.random((3, 10, 3)) < 0.5).astype(np.float32)
    return g, get_target("reference").compile(g).run(x)


def _custom_loihi(tmp_path, **values):
    """A copy of the bundled loihi2 profile with some constants replaced."""
    text = (BUNDLED_DIR / "loihi2.toml").read_text()
    for name, v in values.items():
        text = re.sub(rf"(\[constants\.{name}\]\nvalue = )[^\n]+", rf"\g<1>{v}", text)
    p = tmp_path / "custom.toml"
    p.write_text(text)
    return load_profile(p)


def test_loihi_energy_is_hand_sum(rng):
    g, r = _tiny(rng)
    prof = load_profile("loihi2")
    c = r.counts
    syn = sum(v.get("synaptic_events", 0) for v in c.values())
    upd = sum(v.get("neuron_updates", 0) for v in c.values())
    spk = sum(v.get("spikes", 0) for v in c.values())
    assert syn > 0 and spk > 0
    per = r.batch * r.steps
    # latency by hand: every layer fits one core; the busiest core's average step + 1-tile barrier
    work = []
    for lay, syn_node in zip(g.neuron_nodes(), g.synapse_nodes()):
        work.append((c[syn_node]["synaptic_events"] * prof.si("time_synop") + c[lay]["neuron_updates"] * prof.si("time_neuron_update_active")
                     + c[lay]["spikes"] * prof.si("time_spike_within_tile")) / per)
    step = max(work) + prof.si("time_barrier_sync_min")  # 2 cores -> 1 tile
    run_time = step * r.steps * r.batch
    expected = (syn * prof.si("energy_synop") + upd * prof.si("energy_neuron_update_active")
                + spk * prof.si("energy_spike_within_tile") + prof.si("static_power") * run_time)
    e = estimate_energy(r, prof, g)
    assert e["run_time_s"] == pytest.approx(run_time, rel=1e-12)
    assert e["total_J"] == pytest.approx(expected, rel=1e-12)
    assert e["per_inference_J"] == pytest.approx(expected / 3, rel=1e-12)
    assert e["static_J"] == pytest.approx(prof.si("static_power") * run_time)
    assert sum(e["by_kind"].values()) == pytest.approx(e["total_J"])
    assert sum(sum(d.values()) for d in e["by_layer"].values()) == pytest.approx(e["total_J"])
    assert e["by_kind"]["synop"] == pytest.approx(syn * prof.si("energy_synop"))
    # every figure names its constant, source and confidence, as in the profile
    for t in e["terms"]:
        k = prof[t["constant"]]
        assert t["source"] == k.source and t["confidence"] == k.confidence and t["per_event_J"] == k.si
    assert set(e["constants"]) == {t["constant"] for t in e["terms"]}
    assert any("active" in a for a in e["assumptions"])


def test_energy_follows_profile_constants(tmp_path, rng):
    g, r = _tiny(rng)
    prof = _custom_loihi(tmp_path, energy_synop=1.0, energy_neuron_update_active=0.0, energy_spike_within_tile=0.0, static_power=0.0)
    e = estimate_energy(r, prof, g)
    assert prof["energy_synop"].unit == "pJ"
    assert e["total_J"] == pytest.approx(r.total("synaptic_events") * 1e-12)
    assert e["static_J"] == 0


def test_inactive_updates_priced_when_counted():
    counts = {"a": {"neuron_updates": 100, "neuron_updates_active": 30, "spikes": 5}, "s": {"synaptic_events": 40, "dense_synops": 80}}
    r = RunResult(outputs={"o": torch.zeros(2, 5, 1)}, target="t", dt=1e-3, batch=2, steps=5, counts=counts)
    prof = load_profile("loihi2")
    e = estimate_energy(r, prof)
    dyn = (30 * prof.si("energy_neuron_update_active") + 70 * prof.si("energy_neuron_update_inactive")
           + 5 * prof.si("energy_spike_within_tile") + 40 * prof.si("energy_synop"))
    assert e["dynamic_J"] == pytest.approx(dyn)


def test_barrier_interpolation():
    prof = load_profile("loihi1")
    lo, hi = prof.si("time_barrier_sync_min"), prof.si("time_barrier_sync_max")
    assert lo == pytest.approx(113e-9) and hi == pytest.approx(465e-9)
    assert barrier_time(prof, 1)[0] == pytest.approx(lo)
    assert barrier_time(prof, 32)[0] == pytest.approx(hi)
    assert barrier_time(prof, 16)[0] == pytest.approx(lo + (hi - lo) * 15 / 31)
    t, note = barrier_time(prof, 64)
    assert t > hi and "extrapolated" in note
    assert "interpolation" in barrier_time(prof, 4)[1]


def test_loihi_latency_mapping_and_even_split(tmp_path, rng):
    g, r = _tiny(rng)
    prof = _custom_loihi(tmp_path, neurons_per_core=2)  # 4 neurons -> 2 cores, 2 neurons -> 1 core
    lat = estimate_latency(r, prof, g)
    lay = g.neuron_nodes()
    assert lat["layers"][lay[0]]["cores"] == 2 and lat["layers"][lay[1]]["cores"] == 1
    assert lat["cores"] == 3 and lat["tiles"] == 1
    lat4 = estimate_latency(r, prof, g, mapping={lay[0]: 4, lay[1]: [7, 8]})
    assert lat4["layers"][lay[0]]["cores"] == 4 and lat4["layers"][lay[0]]["cores_from"] == "mapping"
    assert lat4["layers"][lay[1]]["cores"] == 2
    assert lat4["layers"][lay[0]]["core_time_per_step_s"] == pytest.approx(lat["layers"][lay[0]]["core_time_per_step_s"] / 2)
    assert lat4["tiles"] == 2  # 6 cores / 4 per tile
    assert lat["per_inference_s"] == pytest.approx(lat["per_step_s"] * r.steps)
    for k, c in lat["constants"].items():
        assert c["source"] == prof[k].source
    with pytest.raises(InputError):
        cores_from_mapping({lay[0]: "many"})
    with pytest.raises(InputError):
        cores_from_mapping({lay[0]: 0})


def test_rram_energy_hand_sum_derived_counts(rng):
    g, r = _tiny(rng)
    prof = load_profile("rram_40nm")
    e = estimate_energy(r, prof, g)
    per = r.batch * r.steps
    s1, s2 = g.synapse_nodes()
    c = r.counts
    cells = c[s1]["synaptic_events"] + c[s2]["synaptic_events"]
    dac = c[s1]["synaptic_events"] / 4 + c[s2]["synaptic_events"] / 2  # active rows = events / output columns
    adc = (4 + 2) * per  # every column, one row tile, every step
    upd = c[g.neuron_nodes()[0]]["neuron_updates"] + c[g.neuron_nodes()[1]]["neuron_updates"]
    expected = (cells * prof.si("energy_cell_read") + dac * prof.si("energy_dac_conversion") + adc * prof.si("energy_adc_conversion")
                + upd * prof.si("energy_digital_neuron_update"))
    assert prof.si("static_power") == 0
    assert e["total_J"] == pytest.approx(expected, rel=1e-12)
    lat = estimate_latency(r, prof, g)
    step = 2 * prof.si("time_array_read") + (4 + 2) * prof.si("time_adc_conversion")
    assert lat["per_step_s"] == pytest.approx(step)


def test_rram_energy_uses_target_counts(rng):
    g, r = _tiny(rng)
    prof = load_profile("rram_40nm")
    s1, s2 = g.synapse_nodes()
    counts = {k: dict(v) for k, v in r.counts.items()}
    counts[s1].update(rows_activated=11, adc_conversions=13)
    counts[s2].update(rows_activated=0, adc_conversions=0)
    r2 = RunResult(outputs=r.outputs, target="rram", dt=r.dt, batch=r.batch, steps=r.steps, counts=counts)
    e = estimate_energy(r2, prof, g)
    assert e["by_kind"]["dac"] == pytest.approx(11 * prof.si("energy_dac_conversion"))
    assert e["by_kind"]["adc"] == pytest.approx(13 * prof.si("energy_adc_conversion"))
    with pytest.raises(InputError):
        estimate_energy(RunResult(outputs=r.outputs, target="rram", dt=r.dt, batch=r.batch, steps=r.steps, counts=r.counts), prof, None,
                        latency={"run_time_s": 0.0})


def test_rram_target_counts_priced(rng):
    """The rram target's own counts (rows_activated, adc_conversions) are what gets priced."""
    tgt = get_target("rram")
    g, _ = _tiny(rng)
    x = (rng.random((2, 6, 3)) < 0.5).astype(np.float32)
    r = tgt.compile(g, hardware=load_profile("rram_40nm")).run(x)
    s1 = g.synapse_nodes()[0]
    assert r.counts[s1]["adc_conversions"] > 0
    e = estimate_energy(r, load_profile("rram_40nm"), g)
    adc_terms = [t for t in e["terms"] if t["kind"] == "adc" and t["layer"] == s1]
    assert adc_terms[0]["count"] == r.counts[s1]["adc_conversions"]
    assert math.isfinite(e["total_J"]) and e["total_J"] > 0


def test_unknown_kind_rejected(rng):
    g, r = _tiny(rng)
    prof = load_profile("loihi2")
    fake = type(prof)(name="x", kind="gpu", description="", constants=dict(prof.constants), path=prof.path)
    with pytest.raises(InputError):
        estimate_energy(r, fake, g)


def test_mapping_forms_accepted(rng):
    assert cores_from_mapping({"cores": {"a": 2, "b": [1, 2, 2]}}) == {"a": 2, "b": 2}
    assert cores_from_mapping({"cores": 5, "layers": {"a": {"cores": 4, "neurons": 9}}}) == {"a": 4}

    class M:
        layer_cores = {"a": 3}

    assert cores_from_mapping(M()) == {"a": 3}
    g, r = _tiny(rng)
    lat = estimate_latency(r, load_profile("loihi2"), g, mapping={"no_such_layer": 5})
    assert any("names no layer" in a for a in lat["assumptions"])


def test_loihi_target_mapping_used_for_latency(rng):
    """The Loihi target's mapping ({"layers": {pop: {"cores": n}}}) sets the core counts."""
    tgt = get_target("loihi2-emu")
    g, _ = _tiny(rng)
    prog = tgt.compile(g, hardware=load_profile("loihi2"))
    assert isinstance(prog.mapping, dict)
    x = (rng.random((2, 6, 3)) < 0.5).astype(np.float32)
    r = prog.run(x)
    lat = estimate_latency(r, load_profile("loihi2"), g, cores_from_mapping(prog.mapping))
    for lay in g.neuron_nodes():
        assert lat["layers"][lay]["cores_from"] == "mapping"
        assert lat["layers"][lay]["cores"] == prog.mapping["layers"][lay]["cores"]
