"""Shared by the zoo: run a framework module step by step recording every layer, run
neurodeploy's reference on the loaded graph, compare spike for spike."""

from __future__ import annotations

import torch

from neurodeploy.targets.reference import ReferenceTarget


def spikes(shape, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def record_layers(module, names, step):
    """Outputs of the named submodules at every step: ``step(t)`` runs the module once."""
    mods = dict(module.named_modules())
    rec = {n: [] for n in names}

    def hook(name):
        return lambda mod, inp, out: rec[name].append((out[0] if isinstance(out, tuple) else out).detach().clone())

    handles = [mods[n].register_forward_hook(hook(n)) for n in names]
    try:
        with torch.no_grad():
            step()
    finally:
        for h in handles:
            h.remove()
    return {n: torch.stack(v, 1) for n, v in rec.items()}


def run_ours(graph, x):
    return ReferenceTarget().compile(graph).run(x, record="all")


def assert_layers_equal(ours, theirs, spiking):
    """Every spiking layer identical (and some spikes, or the test tests nothing); graded
    layers (readouts) equal to float32 rounding. Returns {layer: (spikes, mismatches)}."""
    report = {}
    for name, want in theirs.items():
        got = ours.records[name] if name in ours.records else ours.states[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if name in spiking:
            report[name] = (int(want.sum()), int((got != want).sum()))
            assert report[name][1] == 0, f"layer {name}: {report[name][1]} of {want.numel()} spike entries differ"
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert sum(s for s, _ in report.values()) > 0, "no spikes: the comparison would test nothing"
    assert all(s > 0 for s, _ in report.values()), f"a layer never spikes: {report}"
    return report
