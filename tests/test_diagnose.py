"""Diagnostics at load (neurodeploy.graph.diagnose) and their warnings in the CLI."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.cli import main
from neurodeploy.graph.diagnose import diagnose

from .helpers import affine, chain, f32, lif
from .test_quirks import sinabs_graph
from .zoo.common import run_ours, spikes

DT = 1e-3


def codes(graph, **kw):
    return {(d.code, d.node) for d in diagnose(graph, **kw)}


def test_unstable_step_only_above_one():
    rng = np.random.default_rng(0)
    for tau, bad in ((0.5 * DT, True), (DT, False), (10 * DT, False)):
        g = G.load(chain(nir.Input(np.array([3])), affine(rng, 4, 3), lif(4, tau=tau), nir.Output(np.array([4]))), dt=DT)
        assert (("unstable-step", "lif") in codes(g)) is bad


def test_cannot_spike_is_true_and_spiking_layers_are_not_reported():
    rng = np.random.default_rng(1)
    x = spikes((4, 50, 6), seed=1)
    for thr, dead in ((1.0, False), (50.0, True)):
        g = G.load(chain(nir.Input(np.array([6])), affine(rng, 5, 6, scale=3), lif(5, thr=thr), nir.Output(np.array([5]))),
                   dt=DT)
        fired = run_ours(g, x).output.sum() > 0
        assert (("cannot-spike", "lif") in codes(g)) is dead and fired is not dead


def test_sinabs_if_cannot_spike_in_a_short_run_and_not_after_repair():
    g = G.load(sinabs_graph(np.random.default_rng(3)), dt=DT)
    assert {("cannot-spike", "if"), ("cannot-spike", "if_1")} <= codes(g, steps=30)
    assert run_ours(g, spikes((3, 30, 6))).records["if"].sum() == 0
    assert not codes(G.load(sinabs_graph(np.random.default_rng(3)), dt=DT, framework="sinabs"), steps=30)


def test_conv_bounds_follow_the_layers():
    nt = pytest.importorskip("norse.torch")
    from .zoo.test_norse_zoo import conv

    torch.manual_seed(0)
    m = conv(DT)
    assert not codes(G.load(m, torch.zeros(1, 2, 6, 6)))
    with torch.no_grad():
        m[0].weight.abs_().mul_(-1)  # inhibitory conv: the first layer can never spike, nor the next
    assert {("cannot-spike", "1"), ("cannot-spike", "5")} <= codes(G.load(m, torch.zeros(1, 2, 6, 6)))
    assert nt


def test_dt_mismatch_with_the_exporter():
    nt = pytest.importorskip("norse.torch")
    m = nt.SequentialState(torch.nn.Linear(3, 4), nt.LIFBoxCell(dt=DT))
    assert ("dt-mismatch", "") not in codes(G.load(m, torch.zeros(1, 3)))
    assert ("dt-mismatch", "") in codes(G.load(m, torch.zeros(1, 3), dt=2 * DT))
    assert ("dt-mismatch", "") in codes(G.load(m, torch.zeros(1, 3)).with_time(dt=2 * DT))


@pytest.fixture
def sinabs_file(tmp_path):
    g = sinabs_graph(np.random.default_rng(3))
    g.metadata = {"dt": DT}
    nir.write(str(tmp_path / "sinabs.nir"), g)
    np.savez(tmp_path / "x.npz", x=spikes((2, 30, 6)).numpy())
    return tmp_path


def test_run_warns_naming_the_nodes_quiet_silences_strict_refuses(sinabs_file, capsys):
    m, x, out = sinabs_file / "sinabs.nir", sinabs_file / "x.npz", sinabs_file / "out.npz"
    assert main(["--quiet", "run", str(m), "-i", str(x), "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["run", str(m), "-i", str(x), "-o", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert any("'if'" in line and "cannot-spike" in line for line in err)
    assert any("'if_1'" in line for line in err)
    assert any("--framework sinabs" in line for line in err)
    assert main(["run", str(m), "-i", str(x), "-o", str(out), "--framework", "sinabs"]) == 0
    assert "warning" not in capsys.readouterr().err and np.load(out)["outputs"].sum() > 0
    out.unlink()
    assert main(["--strict", "run", str(m), "-i", str(x), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot-spike" in err[0]
    assert not out.exists()


def test_inspect_lists_repairs_and_diagnostics(tmp_path, capsys):
    g = chain(nir.Input(np.array([2])), nir.Linear(weight=f32(np.eye(2))), lif(2, tau=0.5 * DT, thr=5.0),
              nir.Output(np.array([3])), dt=DT)  # Output typed with another shape, as Rockpool writes
    path = tmp_path / "m.nir"
    nir.write(str(path), g)
    assert main(["inspect", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["repairs"] == ["output-type"]
    assert {(d["code"], d["node"]) for d in summary["diagnostics"]} == {
        ("output-type", "output"), ("unstable-step", "lif"), ("cannot-spike", "lif")}
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "repairs applied at load: output-type" in text and "unstable-step" in text


def test_dead_and_saturated_layers_seen_in_a_run():
    from neurodeploy.graph.diagnose import diagnose_run

    rng = np.random.default_rng(2)
    x = spikes((3, 40, 6), seed=3)
    for thr, code in ((1e3, "dead-layer"), (-1.0, "saturated-layer"), (1.0, None)):
        g = G.load(chain(nir.Input(np.array([6])), affine(rng, 5, 6, scale=3), lif(5, thr=thr), nir.Output(np.array([5]))),
                   dt=DT)
        res = run_ours(g, x)
        rate = float(res.output.mean())
        found = {d.code for d in diagnose_run(g, res)}
        assert found == ({code} if code else set()), (thr, rate)
        assert (rate == 0) == (code == "dead-layer") and (rate >= 0.95) == (code == "saturated-layer")
