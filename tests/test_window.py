"""A lagging target is measured on the reference's window (issue 11 item 4): the input is
padded with its output lag in silent steps and the outputs are read at their lag."""

import nir
import numpy as np
import pytest

import neurodeploy.graph as G
from neurodeploy.measure.report import profile_run, run_target
from neurodeploy.measure.window import pad_steps

from .helpers import chain, f32, lif


@pytest.fixture
def last_step_net():
    """One input drives class 1 over threshold in a single step (tau = dt: no leak memory)."""
    g = chain(nir.Input(np.array([1])), nir.Linear(weight=f32([[0.0], [4.0]])), lif(2, tau=1e-3),
              nir.Output(np.array([2])), dt=1e-3)
    x = np.zeros((2, 10, 1), np.float32)
    x[:, -1, 0] = 1  # the only input event is on the last step
    return G.load(g), x, np.array([1, 1])


def test_the_last_steps_response_is_inside_the_window(last_step_net):
    g, x, y = last_step_net
    _, ref = run_target("reference", g, x)
    assert ref.output[:, -1, 1].tolist() == [1.0, 1.0]  # the reference answers at once
    prog, plain = run_target("loihi2-emu", g, x, pad_lag=False)
    lag = prog.describe()["lag"][g.outputs[0]]
    assert lag >= 1 and plain.output.sum() == 0  # without padding the answer falls off the end
    _, padded = run_target("loihi2-emu", g, x)
    assert padded.output.shape == ref.output.shape  # the input's steps, read at the lag
    assert padded.output.equal(ref.output)
    assert padded.info["lag_padding"]["silent_steps"] == lag and "lag_padding" not in plain.info
    on = profile_run("m", "x", g, x, y, target="loihi2-emu")[0]["targets"][0]["metrics"]["accuracy"]
    off = profile_run("m", "x", g, x, y, target="loihi2-emu", pad_lag=False)[0]["targets"][0]["metrics"]["accuracy"]
    assert (on, off) == (1.0, 0.0)


def test_padding_keeps_the_input_and_appends_silence():
    import torch

    x = np.ones((2, 3, 4), np.float32)
    p = pad_steps({"a": x, "b": torch.ones(2, 3, 1)}, 2)
    assert p["a"].shape == (2, 5, 4) and p["a"][:, :3].all() and not p["a"][:, 3:].any()
    assert tuple(p["b"].shape) == (2, 5, 1) and float(p["b"][:, 3:].abs().sum()) == 0
    assert pad_steps(x, 0) is x
