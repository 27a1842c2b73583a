"""Fine-tuning (neurodeploy.training): the differentiable simulation is the reference's
forward pass bit for bit, its gradients are real, the Loihi grid is the emulator's, tuning
helps on unseen device seeds, and the CLI refuses bad input before any work."""

from pathlib import Path

import nir
import numpy as np
import pytest
import torch

import neurodeploy as nd
from neurodeploy import dynamics
from neurodeploy.errors import InputError, UnsupportedError
from neurodeploy.training import surrogate
from neurodeploy.training.data import Splits, digits, from_npz
from neurodeploy.training.effects import LoihiGrid
from neurodeploy.training.simulate import Simulator
from neurodeploy.training.tune import evaluate, finetune, train_seeds

from .helpers import affine, chain, cubalif, f32, lif

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "models" / "digits_snn.nir"


def _x(shape, p=0.3, seed=0):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def _neurons(n):
    full = lambda v: f32(np.broadcast_to(v, (n,)))  # noqa: E731
    return {
        "LIF": lif(n, thr=0.5), "CubaLIF": cubalif(n, thr=0.3),
        "IF": nir.IF(r=full(50.0), v_threshold=full(0.4), v_reset=full(0.0)),
        "LI": nir.LI(tau=full(0.01), r=full(1.0), v_leak=full(0.1)),
        "CubaLI": nir.CubaLI(tau_syn=full(0.005), tau_mem=full(0.01), r=full(1.0), v_leak=full(0.0), w_in=full(1.0)),
        "I": nir.I(r=full(20.0)),
    }


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "IF", "LI", "CubaLI", "I"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_surrogate_step_is_the_reference_step_bit_for_bit(kind, reset):
    node = _neurons(6)[kind]
    p = dynamics.prepare(node, 1e-3)
    state = dynamics.init_state(p, 4)
    s_state = {k: v.clone() for k, v in state.items()}
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        x = torch.randn(4, 6, generator=g) * 30
        ref, state = dynamics.step(x, state, p, reset)
        out, s_state = surrogate.step(x.requires_grad_(), s_state, p, reset)
        assert torch.equal(out.detach(), ref)
        assert all(torch.equal(s_state[k].detach(), state[k]) for k in state)


def _graph(rng):
    """Input → Affine → CubaLIF → Linear → LIF → Affine → LI → Output, at scales that spike."""
    nodes = [nir.Input(np.array([8])), affine(rng, 12, 8, scale=60), cubalif(12, thr=0.4),
             nir.Linear(weight=f32(rng.normal(0, 3, (10, 12)))), lif(10, thr=0.2),
             affine(rng, 3, 10, scale=2), nir.LI(tau=f32(np.full(3, 0.01)), r=f32(np.ones(3)), v_leak=f32(np.zeros(3))),
             nir.Output(np.array([3]))]
    return nd.load(chain(*nodes, dt=1e-3))


@pytest.fixture(scope="module")
def data():
    return digits()


def test_simulator_forward_equals_the_reference_target(rng, data):
    for g, x in [(_graph(rng), _x((16, 30, 8))), (nd.load(MODEL), torch.as_tensor(data.test[0][:64]))]:
        out = Simulator(g)(x)[g.outputs[0]]
        ref = nd.compile(g, "reference").run(x).output
        assert out.requires_grad and torch.equal(out.detach(), ref)
        assert ref.abs().sum() > 0  # the comparison is not between two silent networks


def test_gradients_are_finite_and_nonzero_for_every_parameter(rng):
    g = _graph(rng)
    sim = Simulator(g)
    out = sim(_x((16, 30, 8)))[g.outputs[0]]
    out.max(1).values.sum().backward()
    for k, p in sim.params.items():
        assert torch.isfinite(p.grad).all(), k
        assert p.grad.abs().sum() > 0, k


def test_ste_forward_weights_are_the_loihi_emulators():
    g = nd.load(MODEL)
    sim = Simulator(g)
    grid = LoihiGrid(g)
    step = grid(sim.values(), None)
    loihi = grid.program  # the quantizer's program of the same weights
    emu = nd.compile(g, "loihi2-emu")  # what the emulator runs
    ratios, _ = grid.decays(loihi)
    assert any(s.name.endswith(":inh") for s in loihi.synapses)  # the quantizer's default splits mixed-sign matrices
    for s in loihi.synapses:
        (node,) = s.nodes
        w = np.asarray(g.nodes[node].weight, np.float64)
        wq = step.weights[node][0].detach().double().numpy()
        nz = np.asarray(s.weights_f) != 0  # the entries this synapse (or split part) carries
        rv, ru = ratios[s.dst]
        # the forward weight delivers Loihi's integer input: w_q/w = mant·2^e·64 / (float w in v units)
        want = np.asarray(s.weights)[nz] * 2.0 ** s.weight_exp * 64 / np.asarray(s.weights_f)[nz]
        np.testing.assert_allclose((wq[nz] / w[nz]) * rv * ru, want, rtol=1e-6)
    # and those mantissas are the ones the emulator runs
    emu_w = {s.name: (np.asarray(s.weights), s.weight_exp) for s in emu.synapses}
    assert all(np.array_equal(emu_w[s.name][0], s.weights) and emu_w[s.name][1] == s.weight_exp for s in loihi.synapses)


def test_ste_grid_moves_with_the_weights_and_passes_gradients(data):
    g = nd.load(MODEL)
    sim = Simulator(g)
    out = sim(torch.as_tensor(data.train[0][:32]), LoihiGrid(g))["output"]
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in sim.params.values())


def test_loihi_grid_refuses_folded_chains(rng):
    nodes = [nir.Input(np.array([8])), affine(rng, 8, 8), nir.Scale(scale=f32(np.full(8, 2.0))), lif(8),
             nir.Output(np.array([8]))]
    g = nd.load(chain(*nodes, dt=1e-3))
    with pytest.raises(UnsupportedError, match="folds"):
        LoihiGrid(g)(Simulator(g).values(), None)


def test_training_seeds_never_include_evaluation_seeds():
    assert train_seeds(3, (0, 1, 2)) == [1_000_000, 1_000_001, 1_000_002]
    with pytest.raises(InputError, match=r"\[1\]"):
        train_seeds([5, 1], (0, 1, 2))


def test_npz_splits_are_disjoint(tmp_path):
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1).repeat(2, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(100) % 3)
    sp = from_npz(tmp_path / "d.npz")
    ids = [set(part[0][:, 0, 0].tolist()) for part in (sp.train, sp.val, sp.test)]
    assert sum(map(len, ids)) == 100 and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_rram_finetune_improves_accuracy_on_unseen_device_seeds(data):
    """A real gain on the three evaluation seeds (never trained on), against the same seeds."""
    full = data
    sp = Splits(train=(full.train[0][:320], full.train[1][:320]), val=(full.val[0][:128], full.val[1][:128]),
                test=(full.test[0][:200], full.test[1][:200]))
    g = nd.load(MODEL)
    before = evaluate(g, "rram", "rram_40nm_worstcase", sp, seeds=(0, 1, 2))
    tuned = finetune(g, "rram", "rram_40nm_worstcase", sp, epochs=2, seeds=8, lr=2e-3)
    after = evaluate(tuned, "rram", "rram_40nm_worstcase", sp, seeds=(0, 1, 2))
    assert after["mean"] > before["mean"], (before["accuracy"], after["accuracy"])


@pytest.mark.parametrize("args, needle", [
    (["--target", "lava"], "--target must be one of loihi2-emu, rram"),
    (["--target", "rram", "--data", "{bad}"], "not a readable .npz"),
    (["--target", "rram", "--data", "{missing}"], "data file not found"),
    (["--target", "rram", "--data", "{nox}"], "expected arrays x_train"),
    (["--target", "rram", "--hardware", "loihi2"], "needs a rram profile"),
    (["--target", "loihi2-emu", "--data", "digits.csv"], "--data must be 'digits' or a .npz"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, needle):
    from neurodeploy.cli import main

    (tmp_path / "bad.npz").write_text("not a zip")
    np.savez(tmp_path / "nox.npz", z=np.zeros(3))
    fill = {"bad": tmp_path / "bad.npz", "missing": tmp_path / "missing.npz", "nox": tmp_path / "nox.npz"}
    args = [a.format(**fill) for a in args]
    out = tmp_path / "out" / "tuned.nir"
    assert main(["finetune", str(MODEL), *args, "-o", str(out), "--epochs", "0"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_tuned_graph(tmp_path, capsys):
    """--epochs 0 keeps the best-validation parameters, i.e. the model itself: the file is a
    loadable NIR graph equal to the input's weights."""
    from neurodeploy.cli import main

    out = tmp_path / "tuned.nir"
    assert main(["finetune", str(MODEL), "--target", "loihi2-emu", "-o", str(out), "--epochs", "0"]) == 0
    a, b = nd.load(MODEL), nd.load(out)
    for n in ("0", "2"):
        np.testing.assert_array_equal(a.nodes[n].weight, b.nodes[n].weight)
    text = capsys.readouterr().out
    assert "before: loihi2-emu accuracy" in text and "after: loihi2-emu accuracy" in text


def test_rram_clip_bound_is_a_scale_the_target_programs_with_and_rounds_finer():
    """The bound is window × a power of two inside which the target's own programming picks
    that scale, and on a levels-only device the clipped weights are programmed closer to the
    loaded ones than the unclipped weights are (the grid of a max|w| just above a power of
    two is twice as coarse as it needs to be)."""
    from neurodeploy.targets.rram.crossbar import Crossbar
    from neurodeploy.targets.rram.device import DeviceConfig, make_generator, weight_scale
    from neurodeploy.training.effects import clip_bound

    cfg = DeviceConfig.from_profile("rram_40nm_worstcase").keep(["levels"])
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 64, generator=g, dtype=torch.float64) * 0.1
    w[0, 0] = 1.01 * cfg.window * weight_scale(float(w.abs().max()), cfg) / 2  # one weight just above a power of two
    c = clip_bound(w, cfg)
    s = weight_scale(c, cfg)
    assert c < cfg.window * s and c > cfg.window * s * (1 - 1e-5)  # just inside window × s
    clipped = w.clamp(-c, c)
    assert weight_scale(float(clipped.to(torch.float32).abs().max()), cfg) == s < weight_scale(float(w.abs().max()), cfg)
    err = lambda v: float(((Crossbar.program(v, cfg, make_generator(0)).weight64 - w) ** 2).mean())  # noqa: E731
    assert err(clipped) < err(w)


def test_rram_validation_devices_are_never_trained_on():
    from neurodeploy.training.effects import VAL_DEVICES, RRAMDevice

    g = nd.load(MODEL)
    eff = RRAMDevice(g, "rram_40nm_worstcase", seeds=train_seeds(8, (0, 1, 2)))
    trained = {next(eff._cycle) for _ in range(40)}
    assert len(eff.val_seeds) == VAL_DEVICES and trained == set(train_seeds(8, (0, 1, 2))) - set(eff.val_seeds)
    v = eff.validation()
    assert [next(v._cycle) for _ in range(VAL_DEVICES)] == eff.val_seeds == [next(eff.validation()._cycle) for _ in range(1)] + eff.val_seeds[1:]
    with pytest.raises(InputError, match="at least 4"):
        RRAMDevice(g, "rram_40nm_worstcase", seeds=train_seeds(3, (0, 1, 2)))
