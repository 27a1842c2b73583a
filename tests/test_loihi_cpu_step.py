"""The emulator's float32 CPU step (neurodeploy/targets/loihi/cpu_step.py) and the merged
same-source GEMMs: bit-identical to the float64 path (which tests/test_loihi_emulator.py
checks against a numpy transcription of Lava, and tests/test_loihi_lava.py against Lava)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import random_program  # noqa: E402
from neurodeploy.targets.loihi import cpu_step  # noqa: E402
from neurodeploy.targets.loihi.emulator import EmulatorProgram, plan_of  # noqa: E402


def _run(prog, x, monkeypatch, f32: bool):
    monkeypatch.setenv("NEURODEPLOY_CPU_F32", "1" if f32 else "0")
    return prog.run(x, record="all", record_states=True, chunk=2, threads=2)


def _assert_same(a, b, what):
    for d in ("outputs", "records", "states"):
        for k in getattr(a, d):
            assert torch.equal(getattr(a, d)[k], getattr(b, d)[k]), (what, d, k)
    assert a.counts == b.counts, what
    ev = ("u_wrap_events", "v_saturation_events", "int32_wrap_events", "readout_spikes")
    assert {k: a.info[k] for k in ev} == {k: b.info[k] for k in ev}, what


def test_float32_step_equals_the_float64_path_on_random_programs(monkeypatch):
    """Random integer programs (every du/dv/vth, biases, delays, exponents; with overflow the
    wrap and clip paths): the float32 step gives the float64 path's spikes, potentials,
    counts and event counts, and it ran populations that wrapped and clipped."""
    ran = []
    real = cpu_step.run_block

    def spy(bp, pre, spk, vals, ev, *a):
        before = dict(ev)
        out = real(bp, pre, spk, vals, ev, *a)
        ran.append({k: ev[k] - before[k] for k in ("u_wrap_events", "v_saturation_events")})
        return out

    monkeypatch.setattr(cpu_step, "run_block", spy)
    for seed in range(24):
        prog, n_in = random_program(seed + (100 if seed % 2 else 0), overflow=bool(seed % 2))
        prog = EmulatorProgram.of(prog)
        x = (np.random.default_rng(seed).random((5, 24, n_in)) < 0.6).astype(np.float32)
        _assert_same(_run(prog, x, monkeypatch, True), _run(prog, x, monkeypatch, False), seed)
    assert len(ran) > 30
    assert sum(r["u_wrap_events"] for r in ran) > 0 and sum(r["v_saturation_events"] for r in ran) > 0


@pytest.mark.parametrize("m", [0, 1, 2047, 3277, 3891, 4094, 4095])
def test_decay_is_lavas_truncating_shift_over_the_whole_24_bit_range(m):
    """``decay`` = Lava's ``sign(x)·(|x·m| >> 12)`` for every magnitude up to 2^24 − 1
    (both signs, the edges and values just off multiples of 4096)."""
    edges = np.array([0, 1, 4095, 4096, 4097, (1 << 23) - 1, 1 << 23, (1 << 23) + 1, (1 << 24) - 1])
    rand = np.random.default_rng(m).integers(0, 1 << 24, 20000)
    mags = np.concatenate([edges, rand, rand // 4096 * 4096 + 4095])
    x = np.concatenate([mags, -mags]).astype(np.int64)
    want = np.sign(x) * ((np.abs(x) * m) >> 12)
    t = torch.as_tensor(x, dtype=torch.float32)
    cpu_step.decay(t, m / 4096, torch.empty(t.shape, dtype=torch.float64), torch.empty(t.shape, dtype=torch.int32))
    np.testing.assert_array_equal(t.numpy().astype(np.int64), want)


def _split(prog):
    """The same program with every synapse split into an excitatory and an inhibitory
    synapse (the inhibitory one at exponent e + 1 with halved weights where they are even):
    Lava shifts each synapse's sum on its own, so with e < 0 the split program's integers
    differ from the whole synapse's (a floor per synapse)."""
    syns = []
    for i, s in enumerate(prog.synapses):
        w = np.asarray(s.weights, np.int64)
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        e_neg = s.weight_exp + 1 if i % 2 and s.weight_exp < 7 and not (neg % 2).any() else s.weight_exp
        neg = neg >> (e_neg - s.weight_exp)
        syns += [dataclasses.replace(s, name=s.name + ":exc", weights=pos),
                 dataclasses.replace(s, name=s.name + ":inh", weights=neg, weight_exp=e_neg)]
    return EmulatorProgram.of(dataclasses.replace(prog, synapses=syns))


def test_same_source_synapses_run_as_one_gemm_and_stay_exact(monkeypatch):
    """Split excitatory / inhibitory synapses (weight_sign="split") into a fast-path
    population with weight_exp ≥ 0 are one GEMM in the plan; on both paths the results are
    Lava's integers (numpy transcription), also where e < 0 keeps them apart."""
    from test_loihi_emulator import _lava_numpy

    merged = 0
    for seed in range(12):
        prog, n_in = random_program(seed)
        split = _split(EmulatorProgram.of(prog))
        P = plan_of(split, "cpu")[0][0]
        merged += sum(1 for q in P.values() for s in q.incoming if s.syn is None)
        x = (np.random.default_rng(seed).random((3, 16, n_in)) < 0.5).astype(np.float32)
        ref_s, ref_v, ev = _lava_numpy(split, x)
        for f32 in (True, False):
            r = _run(split, x, monkeypatch, f32)
            for p in split.populations:
                v_int = (r.states[p.name].double() * torch.as_tensor(p.scale)).round().long().numpy()
                assert np.array_equal(v_int, ref_v[p.name]), (seed, p.name, f32)
            assert {k: r.info[k] for k in ev} == ev, (seed, f32)
    assert merged >= 5


def test_current_wrap_at_exactly_minus_2_pow_23():
    """Lava wraps u ≤ −2^23 (u > 2^23 above): a neuron driven to u = −2^23 exactly wraps
    to +2^23 on the float32 step as on the float64 path (du = 2047, three −256 · 2^7 weights:
    u = −2^22, then −2^21 − 3·256·2^13 = −2^23)."""
    from neurodeploy.targets.loihi.program import LoihiProgram, Population, Synapse

    pop = Population(name="p", kind="LIF", shape=(1,), spiking=True, du=2047, dv=100, vth=(1 << 17) - 1,
                     bias_mant=np.zeros(1, np.int64), bias_exp=6, scale=np.ones(1))
    syn = Synapse(name="s", src="in", dst="p", weights=np.full((1, 3), -256, np.int64), weight_exp=7)
    prog = EmulatorProgram.of(LoihiProgram(dt=1e-3, inputs={"in": (3,)}, populations=[pop], synapses=[syn],
                                           outputs={"out": "p"}))
    assert plan_of(prog, "cpu")[0][0]["p"].f32
    x = np.zeros((1, 6, 3), np.float32)
    x[0, 0, :2] = 1
    x[0, 1] = 1
    runs = {}
    for f32 in ("1", "0"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NEURODEPLOY_CPU_F32", f32)
            runs[f32] = prog.run(x, record="all", record_states=True)
    assert runs["1"].info["u_wrap_events"] == runs["0"].info["u_wrap_events"] == 1
    assert torch.equal(runs["1"].states["p"], runs["0"].states["p"])
