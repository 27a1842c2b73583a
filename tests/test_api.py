"""Top-level API and the promise that the core never needs Lava."""

import subprocess
import sys

import nir
import numpy as np
import torch

import neurodeploy

from .helpers import affine, chain, lif


def test_load_compile_run_save_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    g = chain(nir.Input(np.array([3])), affine(rng, 4, 3, scale=4), lif(4), nir.Output(np.array([4])))
    graph = neurodeploy.load(g, dt=1e-3)
    x = (torch.rand(2, 15, 3) < 0.5).float()
    r1 = neurodeploy.run(graph, x)
    neurodeploy.save(graph, tmp_path / "g.nir")
    r2 = neurodeploy.compile(tmp_path / "g.nir").run(x)
    assert torch.equal(r1.output, r2.output) and r1.output.sum() > 0


def test_core_imports_and_runs_without_lava():
    code = (
        "import sys; sys.modules['lava'] = None; sys.modules['lava.lib'] = None\n"
        "import numpy as np, nir, torch, neurodeploy, neurodeploy.cli\n"
        "g = nir.NIRGraph.from_list(nir.Input(np.array([2])), nir.Affine(np.eye(2, dtype='f4')*5, np.zeros(2,'f4')),"
        " nir.LIF(tau=np.full(2,.01,'f4'), r=np.ones(2,'f4'), v_leak=np.zeros(2,'f4'), v_threshold=np.ones(2,'f4')),"
        " nir.Output(np.array([2])), type_check=False)\n"
        "r = neurodeploy.run(neurodeploy.load(g, dt=1e-3), torch.ones(1, 10, 2))\n"
        "assert r.output.sum() > 0\n"
        "assert not any(m.startswith('lava') and sys.modules[m] is not None for m in sys.modules)\n"
        "print('ok')"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
