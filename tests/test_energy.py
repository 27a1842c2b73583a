"""Energy and latency models against hand-computed sums of events × profile constants."""

import re

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import InputError, UnsupportedError
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
    e = estimate_energy(r, prof, graph=g)
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
    e = estimate_energy(r, prof, graph=g)
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
    lat = estimate_latency(r, prof, graph=g)
    lay = g.neuron_nodes()
    assert lat["layers"][lay[0]]["cores"] == 2 and lat["layers"][lay[1]]["cores"] == 1
    assert lat["cores"] == 3 and lat["tiles"] == 1
    mapping = {"cores": 6, "layers": {lay[0]: {"cores": 4}, lay[1]: {"cores": 2}}}
    lat4 = estimate_latency(r, prof, {"mapping": mapping}, graph=g)
    assert lat4["layers"][lay[0]]["cores"] == 4 and lat4["layers"][lay[0]]["cores_from"] == "mapping"
    assert lat4["layers"][lay[1]]["cores"] == 2
    assert lat4["layers"][lay[0]]["core_time_per_step_s"] == pytest.approx(lat["layers"][lay[0]]["core_time_per_step_s"] / 2)
    assert lat4["tiles"] == 2  # 6 cores / 4 per tile
    assert lat["per_inference_s"] == pytest.approx(lat["per_step_s"] * r.steps)
    for k, c in lat["constants"].items():
        assert c["source"] == prof[k].source
    with pytest.raises(InputError, match="layer 'a'"):
        cores_from_mapping({"layers": {"a": {"cores": "many"}}})
    with pytest.raises(InputError, match="layer 'a'"):
        cores_from_mapping({"a": 0})


def test_tiles_follow_the_profiles_cores_per_tile(tmp_path, rng):
    """cores_per_tile and barrier_tiles_max come from the profile, not from code."""
    g, r = _tiny(rng)
    lay = g.neuron_nodes()
    desc = {"mapping": {"layers": {lay[0]: {"cores": 4}, lay[1]: {"cores": 2}}}}
    prof = _custom_loihi(tmp_path, cores_per_tile=2, barrier_tiles_max=5)
    lat = estimate_latency(r, prof, desc, graph=g)
    assert lat["tiles"] == 3  # 6 cores / 2 per tile
    lo, hi = prof.si("time_barrier_sync_min"), prof.si("time_barrier_sync_max")
    assert lat["barrier_per_step_s"] == pytest.approx(lo + (hi - lo) * 2 / 4)


def test_mapping_for_another_profile_is_not_used(rng):
    g, r = _tiny(rng)
    lay = g.neuron_nodes()
    desc = {"mapping": {"profile": "loihi2", "cores": 9, "layers": {lay[0]: {"cores": 7}, lay[1]: {"cores": 2}}}}
    lat = estimate_latency(r, load_profile("loihi1"), desc, graph=g)
    assert all(row["cores_from"] == "even split" for row in lat["layers"].values())
    assert any("'loihi2'" in a for a in lat["assumptions"])
    assert estimate_latency(r, load_profile("loihi2"), desc, graph=g)["layers"][lay[0]]["cores"] == 7


def _rram_run(rng):
    g, _ = _tiny(rng)
    prog = get_target("rram").compile(g, hardware=load_profile("rram_40nm"))
    x = (rng.random((2, 6, 3)) < 0.5).astype(np.float32)
    return g, prog.run(x), prog.describe()


def test_rram_energy_is_hand_sum_of_counted_crossbar_events(rng):
    g, r, desc = _rram_run(rng)
    prof = load_profile("rram_40nm")
    c = r.counts
    tot = lambda k: sum(v.get(k, 0) for v in c.values())  # noqa: E731
    assert tot("cell_reads") > 0 and tot("rows_activated") > 0 and tot("adc_conversions") > 0
    expected = (tot("cell_reads") * prof.si("energy_cell_read") + tot("rows_activated") * prof.si("energy_dac_conversion")
                + tot("adc_conversions") * prof.si("energy_adc_conversion")
                + tot("neuron_updates") * prof.si("energy_digital_neuron_update")
                + tot("adc_conversions") * prof.si("energy_shift_add") + tot("rows_activated") * prof.si("energy_input_register"))
    e = estimate_energy(r, prof, desc, graph=g)
    assert e["dynamic_J"] == pytest.approx(expected, rel=1e-12)
    # static: the periphery of every occupied tile leaks for the whole modelled run time
    tiles = sum(xb["tiles"] for xb in desc["crossbars"].values())
    static = (prof.si("static_power") + tiles * prof.si("static_power_per_tile")) * e["run_time_s"]
    assert e["static_J"] == pytest.approx(static, rel=1e-12) and static > 0
    assert e["total_J"] == pytest.approx(expected + static, rel=1e-12)
    # one read per step per node (dense), one tile: the read, then one conversion per output on one ADC
    lat = estimate_latency(r, prof, desc, graph=g)
    assert all(xb["tiles"] == 1 for xb in desc["crossbars"].values())
    step = sum(prof.si("time_array_read") + g.shapes[n][0] * prof.si("time_adc_conversion") for n in desc["crossbars"])
    assert lat["per_step_s"] == pytest.approx(step)


def test_rram_prices_the_counts_given(rng):
    g, r, desc = _rram_run(rng)
    prof = load_profile("rram_40nm")
    s1, s2 = g.synapse_nodes()
    counts = {k: dict(v) for k, v in r.counts.items()}
    counts[s1].update(rows_activated=11, adc_conversions=13, cell_reads=17)
    counts[s2].update(rows_activated=0, adc_conversions=0, cell_reads=0)
    r2 = RunResult(outputs=r.outputs, target="rram", dt=r.dt, batch=r.batch, steps=r.steps, counts=counts)
    e = estimate_energy(r2, prof, desc, graph=g)
    assert e["by_kind"]["dac"] == pytest.approx(11 * prof.si("energy_dac_conversion"))
    assert e["by_kind"]["adc"] == pytest.approx(13 * prof.si("energy_adc_conversion"))
    assert e["by_kind"]["cell_read"] == pytest.approx(17 * prof.si("energy_cell_read"))


def test_rram_refuses_runs_without_crossbar_counts_or_geometry(rng):
    g, r_ref = _tiny(rng)
    prof = load_profile("rram_40nm")
    with pytest.raises(UnsupportedError) as info:
        estimate_energy(r_ref, prof, {"target": "reference"}, graph=g)
    msg = str(info.value)
    assert "\n" not in msg and "'rram_40nm'" in msg and "reference run counted none" in msg
    assert all(k in msg for k in ("cell_reads", "rows_activated", "adc_conversions"))
    _, r, desc = _rram_run(rng)
    with pytest.raises(UnsupportedError, match="crossbar geometry"):
        estimate_latency(r, prof, {**desc, "crossbars": None}, graph=g)
    s1 = g.synapse_nodes()[0]
    with pytest.raises(UnsupportedError, match=f"{s1}"):
        estimate_latency(r, prof, {**desc, "crossbars": {k: v for k, v in desc["crossbars"].items() if k != s1}})
    bad = {**desc, "crossbars": {**desc["crossbars"], s1: {"rows": 3}}}
    with pytest.raises(InputError, match=f"'{s1}'.*cols"):
        estimate_latency(r, prof, bad)


def test_bad_inputs_are_errors_not_tracebacks(rng):
    g, r = _tiny(rng)
    prof = load_profile("loihi2")
    with pytest.raises(InputError, match="describe"):
        estimate_energy(r, prof, g)  # a Graph where the description belongs
    counts = {k: dict(v) for k, v in r.counts.items()}
    counts[g.synapse_nodes()[0]]["synaptic_events"] = float("nan")
    r2 = RunResult(outputs=r.outputs, target="t", dt=r.dt, batch=r.batch, steps=r.steps, counts=counts)
    with pytest.raises(InputError, match=f"synaptic_events.*{g.synapse_nodes()[0]}"):
        estimate_energy(r2, prof, graph=g)
    with pytest.raises(InputError, match="mapping"):
        estimate_latency(r, prof, {"mapping": [1, 2]}, graph=g)
    with pytest.raises(InputError, match="run_time_s"):
        estimate_energy(r, prof, graph=g, latency={})


def test_unknown_kind_rejected(rng):
    g, r = _tiny(rng)
    prof = load_profile("loihi2")
    fake = type(prof)(name="x", kind="gpu", description="", constants=dict(prof.constants), path=prof.path)
    with pytest.raises(UnsupportedError, match="no energy model for hardware kind 'gpu' \\(profile x\\)"):
        estimate_energy(r, fake, graph=g)


def test_mapping_forms_accepted(rng):
    assert cores_from_mapping({"a": 2, "b": [1, 2, 2]}) == {"a": 2, "b": 2}
    assert cores_from_mapping({"cores": 5, "layers": {"a": {"cores": 4, "neurons": 9}}}) == {"a": 4}
    g, r = _tiny(rng)
    lat = estimate_latency(r, load_profile("loihi2"), {"mapping": {"layers": {"no_such_layer": {"cores": 5}}}}, graph=g)
    assert any("names no layer" in a for a in lat["assumptions"])


def test_loihi_target_mapping_used_for_latency(rng):
    """The Loihi program's mapping ({"layers": {pop: {"cores": n}}}) sets the core counts."""
    tgt = get_target("loihi2-emu")
    g, _ = _tiny(rng)
    prog = tgt.compile(g, hardware=load_profile("loihi2"))
    d = prog.describe()
    mapping = d["mapping"]
    x = (rng.random((2, 6, 3)) < 0.5).astype(np.float32)
    r = prog.run(x)
    lat = estimate_latency(r, load_profile("loihi2"), d, graph=g)
    for lay in g.neuron_nodes():
        assert lat["layers"][lay]["cores_from"] == "mapping"
        assert lat["layers"][lay]["cores"] == mapping["layers"][lay]["cores"]
