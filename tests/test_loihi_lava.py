"""Emulator vs Lava's own fixed-point process models: bit-identical spikes at every step.

Each case builds a small random network, compiles it once, runs it through the torch
emulator (batched) and through real Lava processes (``Loihi2SimCfg(select_tag="fixed_pt")``,
sample by sample) and compares every neuron population's spikes (and the readout
potentials, which are the same integers divided by the same scale) step by step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import conv_net, delay_net, dense_net, recurrent_net, spikes, stress_net  # noqa: E402

from neurodeploy.errors import NeurodeployError  # noqa: E402
from neurodeploy.targets.loihi.emulator import EmulatorTarget  # noqa: E402

try:
    import lava.proc.lif.process  # noqa: F401

    HAVE_LAVA = True
except Exception:  # pragma: no cover - environment without lava
    HAVE_LAVA = False

pytestmark = [pytest.mark.lava, pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not importable (needs Python 3.10)")]

STEPS = 25

CASES = (
    [("dense", s, dict(kinds=k, readout=r)) for s, (k, r) in enumerate([
        (("CubaLIF", "LIF"), "LI"), (("LIF",), "LIF"), (("IF", "LIF"), "CubaLI"), (("CubaLIF",), "CubaLIF"),
        (("LIF", "CubaLIF"), "LI"), (("IF",), "IF"), (("CubaLIF", "CubaLIF"), "LIF"), (("LIF", "LIF"), "LI"),
    ])]
    + [("conv", s, dict(pool=p)) for s, p in [(10, True), (11, False), (12, True), (13, True)]]
    + [("recurrent", s, {}) for s in (20, 21, 22, 23)]
    + [("delay", s, dict(where=w)) for s, w in [(30, "pre"), (31, "post"), (32, "pre"), (33, "post")]]
    + [("dense-zero-exp", 40, dict(kinds=("CubaLIF", "LIF"), readout="LI"))]
)
BUILD = {"dense": dense_net, "dense-zero-exp": dense_net, "conv": conv_net, "recurrent": recurrent_net, "delay": delay_net}


def _compare(graph, seed, batch=1, **compile_kw):
    from neurodeploy.targets.loihi.lava import LavaProgram

    prog = EmulatorTarget().compile(graph, **compile_kw)
    x = spikes(seed, batch, STEPS, graph.shapes[graph.inputs[0]], p=0.35)
    emu = prog.run(x, record="all", record_states=True)
    lav = LavaProgram(prog, "fixed_pt").run(x, record="all", record_states=True)
    total = 0
    for p in prog.populations:
        a, b = emu.records[p.name], lav.records[p.name]
        assert a.shape == b.shape == (batch, STEPS, *p.shape)
        diff = (a != b).nonzero()
        assert diff.numel() == 0, f"{p.name}: first mismatch at (sample, step, ...) {diff[0].tolist()}"
        assert torch.equal(emu.states[p.name], lav.states[p.name]), f"{p.name}: membrane potentials differ"
        if p.spiking:
            total += int(a.sum())
    for o in emu.outputs:
        assert torch.equal(emu.outputs[o], lav.outputs[o])
    assert emu.counts == lav.counts
    assert emu.info["lag"] == lav.info["lag"]  # both declare the same per-layer Dense lag
    return prog, emu, total


@pytest.mark.parametrize("kind,seed,kw", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_emulator_matches_lava_fixed_pt(kind, seed, kw):
    graph = BUILD[kind](seed, **kw)
    compile_kw = {"weight_exp": "zero"} if kind == "dense-zero-exp" else {}
    prog, emu, total = _compare(graph, seed, **compile_kw)
    assert total > 0, "the network did not spike at all: the comparison would be vacuous"
    if kind == "delay":
        assert any(s.delays is not None and s.max_delay > 0 for s in prog.synapses)
    if kind == "recurrent":
        assert any(s.src == s.dst for s in prog.synapses)


def test_negative_weight_exponent_and_two_samples():
    """A population fed by a strong and a weak synapse: the weak one gets weight_exp < 0,
    whose floor shift of the accumulated sum must match Lava; two samples reset state."""
    seed = next(s for s in range(24, 60) if min(x.weight_exp for x in EmulatorTarget().compile(recurrent_net(s)).synapses) < 0)
    graph = recurrent_net(seed)
    _compare(graph, seed, batch=2)


@pytest.mark.parametrize("kind,n_in", [("CubaLI", 40), ("LI", 40), ("CubaLI", 700), ("LI", 700)])
def test_overflow_paths_match_lava(kind, n_in):
    """Dense all-positive input into a slow readout: u wraps at 24 bits (CubaLI) and v
    saturates at ±(2^23 − 1); the emulator must count the events and still match Lava.
    With 700 inputs the static bound exceeds 2^23, so the int32-wrap path runs; with 40
    the fast path (no int32 checks) does."""
    from neurodeploy.targets.loihi.lava import LavaProgram

    graph = stress_net(n_in=n_in, kind=kind)
    prog = EmulatorTarget().compile(graph)
    x = np.ones((1, 40, n_in), np.float32)
    emu = prog.run(x, record_states=True, record="ro")
    lav = LavaProgram(prog).run(x, record_states=True, record="ro")
    assert torch.equal(emu.states["ro"], lav.states["ro"])
    assert emu.info["v_saturation_events"] > 0
    if kind == "CubaLI":
        assert emu.info["u_wrap_events"] > 0


def test_floating_pt_lava_matches_reference_with_lag():
    """Lava's floating_pt models run the un-rounded parameters: the NIR reference shifted by
    the synaptic lag (one step per synapse on the path) must give the same spikes."""
    from neurodeploy.targets.loihi.lava import LavaProgram
    from neurodeploy.targets.reference import ReferenceProgram

    # no biases: a constant bias acts from step 0 while the (lagged) inputs do not, so only
    # bias-free networks are an exact time shift of the reference
    graph = dense_net(3, kinds=("CubaLIF", "CubaLIF"), readout="CubaLIF")
    prog = EmulatorTarget().compile(graph)
    x = spikes(3, 1, 20, graph.shapes["in"], p=0.4)
    flt = LavaProgram(prog, "floating_pt").run(x, record="all")
    ref = ReferenceProgram(graph, "float64").run(x, record=[p.name for p in prog.populations])
    for i, p in enumerate(prog.populations):
        lag = i + 1
        a, b = ref.records[p.name][:, : 20 - lag], flt.records[p.name][:, lag:]
        assert float((a != b).float().mean()) <= 0.01, p.name
        assert a.sum() > 0


def test_lava_timeout_becomes_neurodeploy_error():
    from neurodeploy.targets.loihi.lava import LavaProgram

    graph = dense_net(5, kinds=("LIF",), readout="LIF")
    prog = EmulatorTarget().compile(graph)
    x = spikes(5, 1, 400, graph.shapes["in"])
    with pytest.raises(NeurodeployError, match="did not finish"):
        LavaProgram(prog, "fixed_pt", timeout=0.05).run(x)


def test_lava_target_via_registry():
    from neurodeploy.targets.base import get_target

    graph = dense_net(6, kinds=("LIF",), readout="LIF")
    lp = get_target("lava").compile(graph)
    x = spikes(6, 1, 10, graph.shapes["in"])
    r = lp.run(x)
    assert r.target == "lava" and r.output.shape == (1, 10, 3)
    assert torch.equal(r.output, EmulatorTarget().compile(graph).run(x).output)


@pytest.mark.slow
def test_lava_exception_does_not_hang():
    """A Lava process that raises inside the runtime (here DelayDense with a delay beyond
    Loihi's 63) leaves Lava's runtime waiting forever; the run must end with a
    NeurodeployError at the timeout and leave no processes behind."""
    import os

    from neurodeploy.targets.loihi.lava import LavaProgram

    graph = delay_net(30)
    prog = EmulatorTarget().compile(graph)
    syn = next(s for s in prog.synapses if s.delays is not None)
    syn.delays = syn.delays + 70  # bypasses quantize's check on purpose
    before = set(os.listdir("/proc")) if os.path.isdir("/proc") else set()
    with pytest.raises(NeurodeployError, match="lava"):
        LavaProgram(prog, "fixed_pt", timeout=8).run(spikes(0, 1, 10, (5,)))
    if before:
        import time

        time.sleep(0.5)
        mine = []
        for pid in set(os.listdir("/proc")) - before:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().split(") ")[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid():
                mine.append(pid)
        assert not mine, f"left child processes {mine}"
