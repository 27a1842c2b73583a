"""The float reference target vs norse simulating the same NIR graph (``norse.from_nir``),
on the bundled digits SNN (64 → 64 LIF → 10 LIF, batch 450, 16 steps) and on a wider
random network (256 → 512 LIF → 512 LIF → 10 LIF, batch 256, 100 steps). Both produce the
same spikes (asserted). Records samples × steps per second; the ratio is printed.

Run: ``.venv/bin/python -m pytest -q benchmarks/bench_reference.py --benchmark-only -s``
(``make bench`` runs every benchmark). Numbers are per machine.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.targets.reference import ReferenceTarget

pytest.importorskip("pytest_benchmark")
norse = pytest.importorskip("norse.torch")

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits_snn.nir"
RESULTS: dict[tuple[str, str], float] = {}


def _wide():
    rng = np.random.default_rng(0)
    sizes = [256, 512, 512, 10]
    nodes, edges, prev = {"input": nir.Input(np.array([sizes[0]]))}, [], "input"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        one = np.ones(b, np.float32)
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, 2.5 / np.sqrt(a), (b, a)).astype(np.float32),
                                     bias=np.zeros(b, np.float32))
        nodes[f"lif{i}"] = nir.LIF(tau=one * 5e-3, r=one, v_leak=0 * one, v_threshold=one * 0.5, v_reset=0 * one)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(np.array([sizes[-1]]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), 1e-3


CASES = {
    "digits": (lambda: (nir.read(str(DIGITS)), 1e-3), 450, 16, 64),
    "wide": (_wide, 256, 100, 256),
}


def _setup(case):
    make, batch, steps, n_in = CASES[case]
    g, dt = make()
    x = (torch.rand(batch, steps, n_in, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    return g, dt, x


def _norse_run(module, x):
    state, outs = None, []
    for t in range(x.shape[1]):
        out, state = module(x[:, t], state)
        outs.append(out)
    return torch.stack(outs, 1)


@pytest.mark.parametrize("case", list(CASES))
def test_bench_reference(benchmark, case):
    g, dt, x = _setup(case)
    prog = ReferenceTarget().compile(G.load(g, dt=dt), v_init="leak")  # norse starts at v_leak
    res = benchmark.pedantic(prog.run, args=(x,), rounds=3, iterations=1, warmup_rounds=1)
    RESULTS[(case, "reference")] = x.shape[0] * x.shape[1] / benchmark.stats.stats.mean
    benchmark.extra_info["samples_x_steps_per_s"] = RESULTS[(case, "reference")]
    with torch.no_grad():
        theirs = _norse_run(norse.from_nir(g, dt=dt, ignore_warnings=True), x)
    assert torch.equal(res.output, theirs)


@pytest.mark.parametrize("case", list(CASES))
def test_bench_norse_from_nir(benchmark, case):
    g, dt, x = _setup(case)
    module = norse.from_nir(g, dt=dt, ignore_warnings=True)

    def run():
        with torch.no_grad():
            return _norse_run(module, x)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    RESULTS[(case, "norse")] = x.shape[0] * x.shape[1] / benchmark.stats.stats.mean
    benchmark.extra_info["samples_x_steps_per_s"] = RESULTS[(case, "norse")]
    if (case, "reference") in RESULTS:
        ratio = RESULTS[(case, "reference")] / RESULTS[(case, "norse")]
        benchmark.extra_info["reference_over_norse"] = ratio
        print(f"\n{case}: reference {RESULTS[(case, 'reference')]:.0f} samples×steps/s, norse from_nir "
              f"{RESULTS[(case, 'norse')]:.0f}; ratio {ratio:.2f}×")
