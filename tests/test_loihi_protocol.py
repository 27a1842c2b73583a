"""The Loihi targets follow the measurement protocol (docs/protocol.md): counts keyed by NIR
nodes with the protocol's definitions, record="all", describe(), checked options, target
attributes, and hardware numbers read from the profile."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import conv_net, conv_stack_net, delay_net, dense_net, recurrent_net, spikes  # noqa: E402

from neurodeploy.errors import InputError, UnsupportedError  # noqa: E402
from neurodeploy.targets.base import COMMON_RUN_OPTIONS, EVENT_KINDS, EXTRA_KINDS, get_target, populations  # noqa: E402
from neurodeploy.targets.counting import SynapseInputs  # noqa: E402
from neurodeploy.targets.loihi.emulator import RUN_OPTIONS, EmulatorTarget  # noqa: E402
from neurodeploy.targets.loihi.target import LavaTarget  # noqa: E402
from neurodeploy.targets.reference import ReferenceProgram  # noqa: E402

PROFILES = Path(__file__).resolve().parents[1] / "hardware_profiles"
NETS = {"conv-pool-dense": lambda: conv_net(1, pool=True), "conv-stack": lambda: conv_stack_net(1, "pool-conv"),
        "recurrent": lambda: recurrent_net(2)}


def _feeder_values(graph, res, x):
    """The emulator's feeder outputs as SynapseInputs wants them: input spikes, population spikes."""
    si = SynapseInputs(graph)
    vals = {}
    for f in si.feeders():
        v = torch.as_tensor(x) if f in graph.inputs else res.records[f]
        vals[f] = v.reshape(v.shape[0], v.shape[1], -1)
    return si, vals


@pytest.mark.parametrize("net", list(NETS))
def test_counts_follow_the_protocol_definitions(net):
    """Same node keys as the reference target; dense_synops equal exactly; synaptic_events
    the NIR definition applied to the emulator's own spikes (its feeders' recorded trains)."""
    g = NETS[net]()
    x = spikes(3, 4, 24, g.shapes[g.inputs[0]], p=0.35)
    emu = EmulatorTarget().compile(g).run(x, record="all", chunk=3, threads=2)  # two chunks: counts add up
    ref = ReferenceProgram(g, "float64").run(x)
    assert list(emu.counts) == list(ref.counts)
    protocol = lambda c: {k: v for k, v in c.items() if k in EVENT_KINDS}  # noqa: E731
    assert {n: sorted(protocol(c)) for n, c in emu.counts.items()} == {n: sorted(c) for n, c in ref.counts.items()}
    si, vals = _feeder_values(g, emu, x)
    own = si.counts(vals, 4, 24)
    for n in g.synapse_nodes():
        assert emu.counts[n]["dense_synops"] == ref.counts[n]["dense_synops"], n
        assert emu.counts[n]["synaptic_events"] == own[n]["synaptic_events"], n
    kinds = {k for c in emu.counts.values() for k in c}
    assert kinds <= set(EVENT_KINDS) | set(EXTRA_KINDS)
    for n in populations(g):
        assert emu.counts[n]["neuron_updates"] == int(np.prod(g.shapes[n])) * 4 * 24
        if "spikes" in emu.counts[n]:
            assert emu.counts[n]["spikes"] == int(emu.records[n].sum())


def test_conv_dense_synops_are_kernel_macs_not_an_unrolled_matrix():
    """A conv's dense_synops are its kernel MACs (the taps inside the padded input, per
    output position), not the folded (n_dst × n_src) matrix the emulator multiplies."""
    g = conv_net(1, pool=True)  # conv 3×3, padding 1, 1 → 2 channels on 6×6
    prog = EmulatorTarget().compile(g)
    x = spikes(1, 2, 10, g.shapes["in"])
    c = prog.run(x).counts["conv"]
    pos = np.arange(6)[:, None] - 1 + np.arange(3)[None, :]  # input row of each (output row, tap)
    taps_1d = int(((pos >= 0) & (pos < 6)).sum())  # 2 + 3·4 + 2 = 16
    assert c["dense_synops"] == 2 * 1 * taps_1d ** 2 * 2 * 10  # C_out · C_in · taps · samples · steps
    folded = int(np.prod(next(s for s in prog.synapses if "conv" in s.nodes).shape))  # the unrolled 72 × 36
    assert c["dense_synops"] < folded * 2 * 10
    # the pool → flatten → fc synapse counts fc's 4 × 18 MACs, not a (4 × 72) folded matrix
    assert prog.run(x).counts["fc"]["dense_synops"] == 4 * 18 * 2 * 10


def test_synaptic_events_equal_the_reference_where_the_inputs_are_equal():
    """A synapse node whose feeders' spike trains are the reference's (the input, and any
    population whose lag-shifted train equals the reference's, with silent steps appended
    so nothing falls off the end) has the reference's synaptic_events."""
    seen = []
    for g in (conv_net(1, pool=True), recurrent_net(2), dense_net(0)):
        prog = EmulatorTarget().compile(g)
        x = spikes(5, 3, 20, g.shapes[g.inputs[0]], p=0.35)
        xp = np.concatenate([x, np.zeros((3, 8, *x.shape[2:]), np.float32)], 1)
        emu = prog.run(xp, record="all")
        ref = ReferenceProgram(g, "float64").run(xp, record="all")
        lag = emu.info["lag"]
        same = set(g.inputs)
        for p in prog.populations:
            a, b = ref.records[p.name], emu.records[p.name]
            L = lag[p.name]
            # equal up to the lag, and silent at the end long enough (lag + a recurrent edge's
            # step) that the lagged train loses nothing the reference counts
            if p.spiking and b[:, :L].sum() == 0 and torch.equal(a[:, : a.shape[1] - L].float(), b[:, L:]) \
                    and a[:, a.shape[1] - L - 1:].sum() == 0:
                same.add(p.name)
        checked = 0
        si = SynapseInputs(g)
        for n, path in si.paths.items():
            if {f for f, _ in path.feeders} <= same:
                assert emu.counts[n]["synaptic_events"] == ref.counts[n]["synaptic_events"], n
                checked += 1
        assert checked >= 1  # at least the input-fed synapse
        seen.append((checked, len(same) - len(g.inputs)))
    assert any(pops for _, pops in seen), seen  # some deeper synapse was compared too


def test_record_all_and_spikes_values_split():
    """record="all" records every neuron node; spiking ones land in .spikes (they count
    spikes), the LI readout in .values; unknown and folded nodes are refused by name."""
    g = dense_net(0)  # CubaLIF, LIF, LI readout
    prog = EmulatorTarget().compile(g)
    x = spikes(0, 2, 12, (8,))
    r = prog.run(x, record="all")
    assert list(r.records) == populations(g)
    assert set(r.spikes) == {"n0", "n1"} and set(r.values) == {"ro"}
    assert "spikes" not in r.counts["ro"]
    np.testing.assert_array_equal(r.to_numpy()["spikes.n0"], r.records["n0"].numpy())
    with pytest.raises(InputError, match="--record: no node 'nope'"):
        prog.run(x, record="nope")
    with pytest.raises(InputError, match="folded"):
        prog.run(x, record=[n for n in g.synapse_nodes()][0])
    assert torch.equal(prog.run(x, record="in").values["in"], torch.as_tensor(x))


def test_describe_is_the_protocol_description():
    g = delay_net(3)
    prog = EmulatorTarget().compile(g)
    d = prog.describe()
    json.dumps(d)
    assert set(d) >= {"target", "dt", "lag", "quantization", "mapping", "resources", "memory", "calibration",
                      "crossbars", "run_options", "compile_options"}
    r = prog.run(spikes(3, 1, 6, (5,)))
    assert d["lag"] == r.info["lag"] and "lag_steps" not in r.info
    assert d["target"] == "loihi2-emu" and d["mapping"] is None  # compiled without hardware: not mapped
    assert d["quantization"]["layers"].keys() == {p.name for p in prog.populations}
    assert set(d["run_options"]) == set(COMMON_RUN_OPTIONS) | set(RUN_OPTIONS)
    assert d["compile_options"]["weight_exp"] == "auto"
    # memory: every NIR weight at the profile's weight_bits, every state variable at state_bits
    mem = d["memory"]
    assert (mem["bytes_per_weight"], mem["bytes_per_state_var"]) == (prog.hardware["weight_bits"] / 8,
                                                                    prog.hardware["state_bits"] / 8)
    assert mem["weights_bytes"] == mem["weights"] * mem["bytes_per_weight"]
    mapped = EmulatorTarget().compile(g, hardware="loihi2").describe()["mapping"]
    assert mapped["cores"] == sum(lay["cores"] for lay in mapped["layers"].values())
    assert set(mapped["layers"]) == {p.name for p in prog.populations}


def test_options_are_checked_on_both_targets():
    g = dense_net(1)
    prog = EmulatorTarget().compile(g)
    x = spikes(1, 1, 5, (8,))
    with pytest.raises(InputError, match="unknown option.*bogus"):
        prog.run(x, bogus=1)
    lava = LavaTarget().compile(g)
    with pytest.raises(InputError, match="unknown option.*device"):
        lava.run(x, device="cpu")  # refused before any Lava process starts
    with pytest.raises(InputError, match="unknown option.*bogus"):
        LavaTarget().compile(g, bogus=1)
    assert set(lava.describe()["run_options"]) == set(COMMON_RUN_OPTIONS)
    assert lava.describe()["compile_options"]["select_tag"] == "fixed_pt"
    assert lava.describe()["compile_options"]["readback"] == "var"  # a declared option: the CLI passes it on
    assert LavaTarget().compile(g, readback="file").describe()["compile_options"]["readback"] == "file"
    with pytest.raises(InputError, match="readback must be one of"):
        LavaTarget().compile(g, readback="bogus")


def test_target_attributes_and_profile_kind():
    for name in ("loihi2-emu", "lava"):
        t = get_target(name)
        assert t.hardware_kinds == ("loihi",) and t.default_hardware == "loihi2"
        assert {"weight_exp", "vth", "chips"} <= set(t.compile_options)
        with pytest.raises(InputError, match="rram profile"):
            t.compile(dense_net(1), hardware="rram_40nm")
    assert "device" in EmulatorTarget.compile_options and "select_tag" in LavaTarget.compile_options


def _profile(tmp_path, **changes):
    """A copy of loihi2.toml with some constants' values changed."""
    import re

    text = (PROFILES / "loihi2.toml").read_text()
    for k, v in changes.items():
        text, n = re.subn(rf"(\[constants\.{k}\]\nvalue = )\S+", rf"\g<1>{v}", text)
        assert n == 1, k
    text = text.replace('name = "loihi2"', 'name = "loihi2-test"')
    p = tmp_path / "loihi2_test.toml"
    p.write_text(text)
    return str(p)


def test_hardware_numbers_come_from_the_profile(tmp_path):
    """max_delay bounds the Delay nodes, weight_bits is Lava's num_weight_bits and the
    memory's bytes per weight, state_bits the bytes per state variable, delay_bits the
    synapse memory of delayed synapses in the core mapping."""
    g = delay_net(3)
    steps = int(max(s.max_delay for s in EmulatorTarget().compile(g).synapses))
    assert steps >= 1
    with pytest.raises(UnsupportedError, match="max_delay"):
        EmulatorTarget().compile(g, hardware=_profile(tmp_path, max_delay=steps - 1))
    prof = _profile(tmp_path, weight_bits=7, state_bits=16, delay_bits=3)
    prog = EmulatorTarget().compile(g, hardware=prof)
    assert {k: prog.hardware[k] for k in ("weight_bits", "state_bits", "delay_bits")} == \
        {"weight_bits": 7, "state_bits": 16, "delay_bits": 3}
    mem = prog.describe()["memory"]
    assert (mem["bytes_per_weight"], mem["bytes_per_state_var"]) == (7 / 8, 2.0)
    from neurodeploy.targets.loihi.lava import LavaProgram

    kw = [s.kwargs for s in LavaProgram(prog).lowering().synapses]
    assert all(k["num_weight_bits"] == 7 for k in kw)
    default = EmulatorTarget().compile(g, hardware="loihi2")
    per = {n: lay["synaptic_bits_max"] for n, lay in prog.mapping["layers"].items()}
    per_default = {n: lay["synaptic_bits_max"] for n, lay in default.mapping["layers"].items()}
    delayed = {s.dst for s in prog.synapses if s.delays is not None}
    for n in delayed:  # nonzero synapses × (weight_bits + delay_bits): 10 vs 14 bits each
        assert per[n] * 14 == per_default[n] * 10, n
