"""Train a small norse SNN on scikit-learn's bundled digits and export it as NIR.

    python examples/train_digits.py [-o examples/models/digits_snn.nir] [--epochs 30]

Network: 64 rate-encoded inputs → Linear(64, 64) → LIFBoxCell → Linear(64, 10) → LIFBoxCell,
dt = 1 ms, 16 steps; trained with norse's SuperSpike surrogate gradient on spike counts.
The export goes through neurodeploy's norse frontend (which repairs norse 1.1.0's to_nir)
and is written with neurodeploy.save; the script prints the reference-target accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import norse.torch as nt
import torch

import neurodeploy.graph as G
from neurodeploy.data import digits_spikes
from neurodeploy.measure.metrics import accuracy
from neurodeploy.targets.reference import ReferenceTarget

DT = 1e-3
STEPS = 16
TAU_INV = 1 / 0.02  # τ_mem = 20 ms
GAIN = 8.0  # initial weight scale


def build(hidden=64):
    p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(TAU_INV), v_th=torch.tensor(1.0))
    model = nt.SequentialState(
        torch.nn.Linear(64, hidden), nt.LIFBoxCell(p, dt=DT),
        torch.nn.Linear(hidden, 10), nt.LIFBoxCell(p, dt=DT),
    )
    with torch.no_grad():  # with dt/τ = 0.05 the default init rarely reaches threshold
        for layer in (model[0], model[2]):
            layer.weight.mul_(GAIN)
            layer.bias.mul_(GAIN)
    return model


def forward(model, x):
    state, outs = None, []
    for t in range(x.shape[1]):
        z, state = model(x[:, t], state)
        outs.append(z)
    return torch.stack(outs, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=str(Path(__file__).parent / "models" / "digits_snn.nir"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    (xtr, ytr), (xte, yte) = digits_spikes(steps=STEPS, encoder="rate", seed=args.seed)
    xtr, ytr = torch.as_tensor(xtr), torch.as_tensor(ytr)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            counts = forward(model, xtr[idx]).sum(1)
            loss = torch.nn.functional.cross_entropy(counts, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    graph = G.load(model, xtr[:1, 0], dt=DT)
    G.save(graph, args.output)
    program = ReferenceTarget().compile(G.load(args.output))
    acc = accuracy(program.run(xte), yte, readout="spikes")
    print(f"wrote {args.output}; reference accuracy on the digits test split: {acc * 100:.2f} %")
    return acc


if __name__ == "__main__":
    main()
