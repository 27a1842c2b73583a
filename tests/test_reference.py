"""Reference simulator: each primitive against an analytic result or an independent numpy
implementation written here."""

import math

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.targets.reference import ReferenceTarget

from .conftest import spikes
from .helpers import affine, chain, cubalif, f32, graph, lif


def run(g, x, dt=1e-3, reset="zero", dtype="float32", **kw):
    return ReferenceTarget().compile(G.load(g, dt=dt, reset=reset), dtype=dtype).run(x, **kw)


def const_input(values, steps):
    v = torch.as_tensor(values, dtype=torch.float64)
    return v.expand(1, steps, len(values)).clone()


def test_lif_constant_current_spikes_at_closed_form_time():
    dt, tau, thr = 1e-3, 0.02, 1.0
    currents = np.array([1.2, 1.5, 2.0, 3.0, 8.0])
    g = chain(nir.Input(np.array([5])), lif(5, tau=tau, thr=thr), nir.Output(np.array([5])))
    z = run(g, const_input(currents, 400), dt=dt, dtype="float64").output[0].numpy()
    a = dt / tau
    # v_n = I (1 - (1-a)^n): first n with v_n > thr; reset to 0 repeats the same interval
    n_first = np.ceil(np.log(1 - thr / currents) / np.log(1 - a)).astype(int)
    for i, n in enumerate(n_first):
        times = np.flatnonzero(z[:, i]) + 1  # step index t produces v_{t+1}
        assert times[0] == n
        np.testing.assert_array_equal(np.diff(times), n)
    # and it is within Euler's O(dt/tau) error of the continuous-time ISI tau*ln(I/(I-thr))
    t_cont = tau * np.log(currents / (currents - thr))
    assert np.all(np.abs(n_first * dt - t_cont) <= dt + a * t_cont)


def test_if_subtract_reset_counts_charge():
    dt, thr = 1e-3, 1.0
    r = np.array([100.0, 250.0, 333.0])
    g = chain(nir.Input(np.array([3])), nir.IF(r=f32(r), v_threshold=f32(np.full(3, thr)), v_reset=f32(np.zeros(3))), nir.Output(np.array([3])))
    steps = 97
    z = run(g, const_input([1.0, 1.0, 1.0], steps), dt=dt, reset="subtract", dtype="float64").output[0].numpy()
    # each step adds dt*r; with subtraction no charge is lost: spikes = floor(total/thr),
    # except where total lands exactly on a multiple (strict >)
    total = steps * dt * r
    expected = np.floor(total / thr - 1e-9)
    np.testing.assert_array_equal(z.sum(0), expected)


def test_i_and_li_and_cubali_follow_their_recursions():
    dt = 1e-3
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(2, 30, 4)))
    r, tau, v_leak = rng.uniform(0.5, 2, 4), rng.uniform(0.005, 0.05, 4), rng.uniform(-1, 1, 4)
    tau_syn, w_in = rng.uniform(0.002, 0.01, 4), rng.uniform(0.5, 2, 4)
    nodes = {
        "I": nir.I(r=f32(r)),
        "LI": nir.LI(tau=f32(tau), r=f32(r), v_leak=f32(v_leak)),
        "CubaLI": nir.CubaLI(tau_syn=f32(tau_syn), tau_mem=f32(tau), r=f32(r), v_leak=f32(v_leak), w_in=f32(w_in)),
    }
    xs = x.numpy()
    for name, node in nodes.items():
        g = chain(nir.Input(np.array([4])), node, nir.Output(np.array([4])))
        out = run(g, x, dt=dt, dtype="float64").output.numpy()
        v = np.zeros((2, 4))
        i = np.zeros((2, 4))
        want = []
        # float32 parameters, as stored in the graph
        R, T, VL, TS, WI = (np.float32(a).astype(np.float64) for a in (r, tau, v_leak, tau_syn, w_in))
        for t in range(30):
            if name == "I":
                v = v + dt * R * xs[:, t]
            elif name == "LI":
                v = v + dt / T * (VL - v + R * xs[:, t])
            else:
                i = i + dt / TS * (-i + WI * xs[:, t])
                v = v + dt / T * (VL - v + R * i)
            want.append(v.copy())
        np.testing.assert_allclose(out, np.stack(want, 1), rtol=1e-9, atol=1e-12)


def test_per_neuron_parameters_and_both_resets():
    dt = 1e-3
    thr = np.array([0.5, 1.0, 2.0])
    g = chain(nir.Input(np.array([3])), lif(3, tau=0.01, thr=thr, v_reset=0.1), nir.Output(np.array([3])))
    x = const_input([5.0, 5.0, 5.0], 60)
    for reset in ("zero", "subtract"):
        res = ReferenceTarget().compile(G.load(g, dt=dt, reset=reset), dtype="float64").run(x, record=["lif"], record_states=True)
        z, v = res.output[0].numpy(), res.states["lif"][0].numpy()
        counts = z.sum(0)
        assert counts[0] > counts[1] > counts[2] > 0  # lower threshold, more spikes
        a = dt * (1 / np.float64(np.float32(0.01)))  # parameters are stored as float32
        vr = np.float64(np.float32(0.1))
        vv = np.zeros(3)
        for t in range(60):
            vv = vv + a * (5.0 - vv)
            s = vv > thr
            np.testing.assert_array_equal(z[t], s)
            vv = np.where(s, vr if reset == "zero" else vv - thr, vv)
            np.testing.assert_allclose(v[t], vv, rtol=1e-12)


def _np_conv2d(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, co, ho, wo))
    per = co // groups
    for oc in range(co):
        gi = oc // per
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, gi * cig:(gi + 1) * cig, i * dil[0]: i * dil[0] + stride[0] * ho: stride[0], j * dil[1]: j * dil[1] + stride[1] * wo: stride[1]]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
        out[:, oc] += b[oc]
    return out


@pytest.mark.parametrize("stride,pad,dil,groups", [((1, 1), (0, 0), (1, 1), 1), ((2, 1), (1, 2), (1, 1), 2), ((1, 2), (2, 1), (2, 1), 4)])
def test_conv2d_matches_numpy(stride, pad, dil, groups):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 4 // groups, 3, 2))
    b = rng.normal(size=4)
    conv = nir.Conv2d(input_shape=(7, 6), weight=f32(w), stride=stride, padding=pad, dilation=dil, groups=groups, bias=f32(b))
    x = rng.normal(size=(2, 3, 4, 7, 6))
    g = chain(nir.Input(np.array([4, 7, 6])), conv, nir.Output(np.array([1])), )
    g.nodes["output"] = nir.Output(output_type={"output": np.array([])})
    out = run(g, torch.as_tensor(x), dtype="float64").output.numpy()
    w32, b32 = f32(w).astype(np.float64), f32(b).astype(np.float64)
    for t in range(3):
        np.testing.assert_allclose(out[:, t], _np_conv2d(x[:, t], w32, b32, stride, pad, dil, groups), rtol=1e-10, atol=1e-10)


def test_conv1d_matches_numpy():
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(3, 2, 3)), rng.normal(size=3)
    conv = nir.Conv1d(input_shape=9, weight=f32(w), stride=2, padding=1, dilation=1, groups=1, bias=f32(b))
    x = rng.normal(size=(2, 2, 2, 9))
    g = graph({"in": nir.Input(np.array([2, 9])), "c": conv, "out": nir.Output(output_type={"output": np.array([])})}, [("in", "c"), ("c", "out")])
    out = run(g, torch.as_tensor(x), dtype="float64").output.numpy()
    want = _np_conv2d(x[:, 0][..., None, :], f32(w).astype(np.float64)[:, :, None, :], f32(b).astype(np.float64), (1, 2), (0, 1), (1, 1), 1)[:, :, 0]
    np.testing.assert_allclose(out[:, 0], want, rtol=1e-10)


def test_pools_flatten_scale_threshold():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=(2, 2, 3, 6, 6)).astype(np.float64)
    sum_pool = nir.SumPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 3]), padding=np.array([0, 0]))
    avg_pool = nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([1, 1]))
    for node, k, expect in (
        (sum_pool, (2, 3), lambda a: a.reshape(2, 3, 3, 2, 2, 3).sum((3, 5))),
        (avg_pool, None, None),
    ):
        g = graph({"in": nir.Input(np.array([3, 6, 6])), "p": node, "out": nir.Output(output_type={"output": np.array([])})}, [("in", "p"), ("p", "out")])
        out = run(g, torch.as_tensor(x), dtype="float64").output.numpy()
        if expect is not None:
            np.testing.assert_array_equal(out[:, 0], expect(x[:, 0]))
        else:  # 3x3 mean with zero padding counted (torch's count_include_pad default)
            xp = np.pad(x[:, 0], ((0, 0), (0, 0), (1, 1), (1, 1)))
            want = sum(xp[:, :, i:i + 6, j:j + 6] for i in range(3) for j in range(3)) / 9
            np.testing.assert_allclose(out[:, 0], want, rtol=1e-12)
    scale = f32(rng.normal(size=(3, 6, 6)))
    thr = f32(np.full(108, 0.5))
    g = chain(nir.Input(np.array([3, 6, 6])), nir.Scale(scale=scale), nir.Flatten(input_type={"input": np.array([3, 6, 6])}, start_dim=0, end_dim=-1),
              nir.Threshold(threshold=thr), nir.Output(np.array([108])))
    out = run(g, torch.as_tensor(x), dtype="float64").output.numpy()
    np.testing.assert_array_equal(out, (x * scale).reshape(2, 2, 108) > 0.5)


def test_delay_shifts_each_element():
    dt = 1e-3
    delays = np.array([0, 1, 3, 5]) * dt
    g = chain(nir.Input(np.array([4])), nir.Delay(delay=f32(delays)), nir.Output(np.array([4])))
    x = torch.as_tensor(np.random.default_rng(5).normal(size=(2, 12, 4)))
    out = run(g, x, dt=dt, dtype="float64").output.numpy()
    for i, d in enumerate([0, 1, 3, 5]):
        want = np.concatenate([np.zeros((2, d)), x.numpy()[:, : 12 - d, i]], 1)
        np.testing.assert_array_equal(out[:, :, i], want)


def test_recurrent_cubalif_matches_hand_loop():
    rng = np.random.default_rng(6)
    n, dt = 5, 1e-3
    w_in, w_rec = affine(rng, n, 3, scale=3), affine(rng, n, n, scale=2, bias=False)
    node = cubalif(n, tau_syn=0.004, tau_mem=0.01, thr=0.8, w_in=2.0)
    g = graph({"in": nir.Input(np.array([3])), "w": w_in, "lif": node, "rec": w_rec, "out": nir.Output(np.array([n]))},
              [("in", "w"), ("w", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")])
    x = spikes((2, 40, 3), p=0.5, seed=6).double()
    z = run(g, x, dt=dt, dtype="float64").output.numpy()
    W, b, R = (a.astype(np.float64) for a in (w_in.weight, w_in.bias, w_rec.weight))
    i = v = np.zeros((2, n))
    prev = np.zeros((2, n))
    a_s, a_m = dt / np.float64(np.float32(0.004)), dt / np.float64(np.float32(0.01))
    for t in range(40):
        drive = x.numpy()[:, t] @ W.T + b + prev @ R.T
        i = i + a_s * (2.0 * drive - i)
        v = v + a_m * (i - v)
        s = v > np.float32(0.8)
        v = np.where(s, 0.0, v)
        np.testing.assert_array_equal(z[:, t], s, err_msg=f"step {t}")
        prev = s.astype(np.float64)
    assert z.sum() > 0


def test_event_counts_for_known_spike_pattern():
    rng = np.random.default_rng(7)
    g = chain(nir.Input(np.array([4])), affine(rng, 3, 4), lif(3, thr=1e9), nir.Output(np.array([3])))
    x = torch.zeros(2, 5, 4)
    x[0, 0, [0, 2]] = 1
    x[1, 3, 1] = 1
    x[1, 4, :] = 1
    res = run(g, x)
    c = res.counts
    assert c["affine"]["synaptic_events"] == (2 + 1 + 4) * 3
    assert c["affine"]["dense_synops"] == 2 * 5 * 4 * 3
    assert c["lif"]["neuron_updates"] == 2 * 5 * 3
    assert c["lif"]["spikes"] == 0


def test_event_counts_graded_input_and_spiking_source():
    """Graded (negative, fractional) inputs count their nonzero entries; a synapse fed by a
    spiking layer counts that layer's spikes × fan-out."""
    rng = np.random.default_rng(9)
    nodes = {"in": nir.Input(np.array([4])), "a": affine(rng, 6, 4, scale=3), "l1": lif(6, thr=0.2),
             "b": affine(rng, 2, 6), "l2": lif(2), "out": nir.Output(np.array([2]))}
    edges = [("in", "a"), ("a", "l1"), ("l1", "b"), ("b", "l2"), ("l2", "out")]
    x = torch.from_numpy(rng.normal(size=(3, 12, 4)).astype(np.float32))
    x[x.abs() < 0.5] = 0.0
    res = run(graph(nodes, edges), x, record="all")
    assert res.counts["a"]["synaptic_events"] == int((x != 0).sum()) * 6
    assert res.records["l1"].sum() > 0
    assert res.counts["b"]["synaptic_events"] == int(res.records["l1"].sum()) * 2 == res.counts["l1"]["spikes"] * 2


def test_conv_fanout_counts_match_brute_force():
    rng = np.random.default_rng(8)
    conv = nir.Conv2d(input_shape=(5, 5), weight=f32(rng.normal(size=(3, 2, 3, 3))), stride=2, padding=1, dilation=1, groups=1, bias=f32(np.zeros(3)))
    g = graph({"in": nir.Input(np.array([2, 5, 5])), "c": conv, "out": nir.Output(output_type={"output": np.array([])})}, [("in", "c"), ("c", "out")])
    x = spikes((1, 1, 2, 5, 5), p=0.5, seed=8)
    res = run(g, x)
    # brute force: count (output position, out channel, kernel tap) triples reading a nonzero input
    xs = np.pad(x[0, 0].numpy(), ((0, 0), (1, 1), (1, 1)))
    ops = sum(int(xs[c, oy * 2 + i, ox * 2 + j] != 0) * 3 for c in range(2) for oy in range(3) for ox in range(3) for i in range(3) for j in range(3))
    assert res.counts["c"]["synaptic_events"] == ops


def test_multiple_outputs_and_recording(rng):
    nodes = {"in": nir.Input(np.array([3])), "w": affine(rng, 4, 3, scale=5), "a": lif(4), "o1": nir.Output(np.array([4])), "o2": nir.Output(np.array([4]))}
    edges = [("in", "w"), ("w", "a"), ("a", "o1"), ("w", "o2")]
    res = run(graph(nodes, edges), spikes((2, 10, 3), p=0.5), record="all")
    assert set(res.outputs) == {"o1", "o2"} and set(res.records) == {"a"}  # "all": neuron nodes
    assert torch.equal(res.outputs["o1"], res.records["a"])
    assert set(res.to_numpy()) == {"outputs.o1", "outputs.o2", "spikes.a"}
    # a synapse current recorded by name is a graded value, never written as spikes
    both = run(graph(nodes, edges), spikes((2, 10, 3), p=0.5), record=["w", "a"])
    assert set(both.spikes) == {"a"} and set(both.values) == {"w"}
    assert set(both.to_numpy()) == {"outputs.o1", "outputs.o2", "spikes.a", "values.w"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_equals_cpu(rng):
    g = chain(nir.Input(np.array([6])), affine(rng, 5, 6, scale=3), cubalif(5), nir.Output(np.array([5])))
    x = spikes((4, 30, 6), p=0.5)
    graph_ = G.load(g, dt=1e-3)
    cpu = ReferenceTarget().compile(graph_, dtype="float64").run(x).output
    gpu = ReferenceTarget().compile(graph_, dtype="float64", device="cuda").run(x).output.cpu()
    assert torch.equal(cpu, gpu)
