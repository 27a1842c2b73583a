"""Every target's run priced on every bundled profile, from counts and Program.describe():
finite numbers, or one UnsupportedError line where the hardware kind prices counts the run
does not have (docs/protocol.md, "Pricing"); a digital baseline profile (kind "digital",
priced by neurodeploy.targets.rram.lsm_energy) is refused by both models in one line."""

import math

import nir
import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError, UnsupportedError
from neurodeploy.hardware import list_profiles, load_profile
from neurodeploy.hardware.profiles import PRICED_KINDS
from neurodeploy.hardware.energy import estimate_energy
from neurodeploy.hardware.latency import estimate_latency
from neurodeploy.targets.base import get_target

from .loihi_nets import conv_net, dense_net, spikes

TARGETS = {"reference": None, "loihi2-emu": "loihi2", "rram": "rram_40nm"}
NETS = {"conv-pool-dense": lambda: conv_net(3, pool=True), "dense": lambda: dense_net(4)}


@pytest.fixture(scope="module")
def runs():
    out = {}
    for net, build in NETS.items():
        g = build()
        x = spikes(5, 2, 8, g.shapes[g.inputs[0]])
        for target, hw in TARGETS.items():
            prog = get_target(target).compile(g, hardware=hw) if hw else get_target(target).compile(g)
            out[net, target] = (g, prog.run(x), prog.describe())
    return out


@pytest.mark.parametrize("profile", list_profiles())
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("net", list(NETS))
def test_every_run_on_every_profile(runs, net, target, profile):
    g, r, desc = runs[net, target]
    prof = load_profile(profile)
    if prof.kind not in PRICED_KINDS:  # a digital baseline: priced by lsm_energy, refused here
        for estimate in (estimate_latency, estimate_energy):
            with pytest.raises(NeurodeployError) as info:
                estimate(r, prof, desc, graph=g)
            msg = str(info.value)
            assert "\n" not in msg and f"'{prof.kind}'" in msg and profile in msg, msg  # names the kind and profile
        return
    if prof.kind == "rram" and target != "rram":
        with pytest.raises(UnsupportedError) as info:
            estimate_energy(r, prof, desc, graph=g)
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"hardware profile '{profile}' (kind rram)")
        assert f"the {target} run counted none" in msg
        return
    lat = estimate_latency(r, prof, desc, graph=g)
    e = estimate_energy(r, prof, desc, graph=g, latency=lat)
    for v in (e["total_J"], e["per_inference_J"], lat["per_step_s"], lat["per_inference_s"], lat["run_time_s"]):
        assert math.isfinite(v) and v > 0
    assert e["run_time_s"] == lat["run_time_s"]
    assert sum(e["by_kind"].values()) == pytest.approx(e["total_J"])
    counted = set(r.counts)
    assert {t["layer"] for t in e["terms"]} - {"(chip)", "(tiles)"} <= counted  # every term is a counted node


@pytest.mark.parametrize("net", list(NETS))
def test_loihi_prices_the_same_counts_on_any_target(runs, net):
    """Counts are keyed by NIR nodes on every target: the synop term of each synapse node
    is that node's counted synaptic_events, whichever target ran."""
    prof = load_profile("loihi2")
    for target in TARGETS:
        g, r, desc = runs[net, target]
        e = estimate_energy(r, prof, desc, graph=g)
        synop = {t["layer"]: t["count"] for t in e["terms"] if t["kind"] == "synop"}
        assert synop == {n: c["synaptic_events"] for n, c in r.counts.items() if c.get("synaptic_events")}
        assert set(synop) <= set(g.synapse_nodes())


@pytest.mark.parametrize("net", list(NETS))
def test_rram_cell_read_term_is_the_counted_cell_reads(runs, net):
    g, r, desc = runs[net, "rram"]
    assert desc["crossbars"], "the rram program describes its crossbars"
    e = estimate_energy(r, load_profile("rram_40nm"), desc, graph=g)
    cells = {t["layer"]: t["count"] for t in e["terms"] if t["kind"] == "cell_read"}
    assert cells == {n: c["cell_reads"] for n, c in r.counts.items() if c.get("cell_reads")}
    assert sum(cells.values()) == r.total("cell_reads")
    # a dense node reads cells_per_weight devices per synaptic event (both cells of a
    # differential pair): the count a pricing model would derive from synaptic_events is not it
    for n in g.synapse_nodes():
        # a binary input is one read cycle; a graded one streams through the bit-serial
        # drivers (input_cycles reads), so only binary-fed nodes equal events × cells per weight
        if isinstance(g.nodes[n], (nir.Affine, nir.Linear)) and not r.counts[n].get("dac_conversions"):
            per_weight = desc["crossbars"][n]["cells_per_weight"]
            assert per_weight >= 2
            assert cells.get(n, 0) == per_weight * r.counts[n]["synaptic_events"]


@pytest.mark.parametrize("net", list(NETS))
def test_rram_latency_uses_the_described_geometry(runs, net):
    g, r, desc = runs[net, "rram"]
    assert desc["crossbars"], "the rram program describes its crossbars"
    prof = load_profile("rram_40nm")
    lat = estimate_latency(r, prof, desc, graph=g)
    assert set(lat["layers"]) == set(desc["crossbars"]) == set(g.synapse_nodes())
    for n, xb in desc["crossbars"].items():
        per_tile = math.ceil(xb["cols"] / 2 / xb["col_tiles"])  # one conversion per differential pair
        cycles = xb["input_cycles"] if r.counts[n].get("dac_conversions") else 1  # bit-serial graded inputs
        assert lat["layers"][n]["read_cycles"] == cycles
        assert lat["layers"][n]["time_per_step_s"] == pytest.approx(
            xb["reads_per_step"] * cycles * (prof.si("time_array_read") + per_tile * prof.si("time_adc_conversion")))


def test_loihi_mapping_from_the_description_sets_cores(runs):
    g, r, desc = runs["conv-pool-dense", "loihi2-emu"]
    assert desc["mapping"], "a program compiled for loihi2 is mapped onto cores"
    lat = estimate_latency(r, load_profile("loihi2"), desc, graph=g)
    for lay in g.neuron_nodes():
        assert lat["layers"][lay]["cores_from"] == "mapping"
        assert lat["layers"][lay]["cores"] == desc["mapping"]["layers"][lay]["cores"]


def test_no_traceback_on_any_pairing(runs):
    """Every (run, profile, with or without description and graph) gives a number or a
    NeurodeployError — never another exception."""
    for (net, target), (g, r, desc) in runs.items():
        for profile in list_profiles():
            for d, graph in ((desc, g), (None, g), (desc, None), (None, None)):
                try:
                    e = estimate_energy(r, load_profile(profile), d, graph=graph)
                except NeurodeployError as exc:
                    assert "\n" not in str(exc)
                else:
                    assert np.isfinite(e["total_J"])
