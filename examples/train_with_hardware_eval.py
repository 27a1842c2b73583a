"""Hardware metrics during training: an snnTorch digits SNN, evaluated on the targets every epoch.

    python examples/train_with_hardware_eval.py [--epochs 8] [--every 1] [-o build/snntorch_digits.nir]

Network: 64 rate-encoded inputs → Linear(64, 64) → Leaky(β=0.9) → Linear(64, 10) → Leaky,
16 steps, trained with snnTorch's fast-sigmoid surrogate on spike counts (scikit-learn's
bundled digits, :func:`neurodeploy.data.digits_spikes`). After every ``--every`` epochs
:class:`neurodeploy.training.HardwareEval` exports the current module through neurodeploy's
snnTorch frontend, runs it on the reference and RRAM targets (rram_40nm) and prints
accuracy, spikes, energy per inference and fit, read from the measurement layer (the
numbers ``neurodeploy profile`` prints). The evaluation data is the validation part of the
training split; the test split is not looked at. The trained model is written as NIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

STEPS = 16
BETA = 0.9
ROOT = Path(__file__).resolve().parents[1]


def build(hidden: int = 64, seed: int = 0):
    import snntorch as snn
    from snntorch import surrogate

    torch.manual_seed(seed)
    grad = surrogate.fast_sigmoid(slope=25)
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden), snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True),
        torch.nn.Linear(hidden, 10), snn.Leaky(beta=BETA, spike_grad=grad, init_hidden=True, output=True),
    )


def forward(model, x):
    """(batch, time, 64) → output spikes (batch, time, 10)."""
    import snntorch.utils

    snntorch.utils.reset(model)
    out = []
    for t in range(x.shape[1]):
        spk, _ = model(x[:, t])
        out.append(spk)
    return torch.stack(out, 1)


def train(model, x, y, epochs: int, callback=None, lr: float = 5e-3, seed: int = 0, log=print):
    """Adam on the cross-entropy of output spike counts; ``callback(model, epoch)`` after
    every epoch (epochs count from 1)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(forward(model, x[idx]).sum(1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        metrics = callback(model, epoch) if callback is not None else None
        log(epoch, float(loss), metrics)
    return model


def _print(epoch, loss, metrics):
    line = f"epoch {epoch:2d}  loss {loss:.3f}"
    for t, m in (metrics or {}).items():
        if not m.get("fits", True):
            line += f"  | {t}: does not fit ({m['reason']})"
            continue
        e = m["energy_per_inference_J"]
        line += (f"  | {t}: acc {100 * m['accuracy']:.1f} %, {m['spikes_per_sample']:.0f} spikes, "
                 f"{'—' if e is None else f'{e * 1e9:.2f} nJ'}/inf")
        res = (m["fit"] or {}).get("resources") or {}
        if "tiles" in res:
            line += f", {res['tiles']} tiles"
    print(line, flush=True)


def main(argv=None):
    import neurodeploy as nd
    from neurodeploy.training import HardwareEval
    from neurodeploy.training.data import digits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--hardware", default="rram_40nm")
    ap.add_argument("-o", "--output", default=str(ROOT / "build" / "snntorch_digits.nir"))
    args = ap.parse_args(argv)
    sp = digits()
    cb = HardwareEval(every=args.every, targets=["reference", "rram"], hardware=args.hardware, data=sp.val,
                      calibration=sp.train[0][:128])  # the ADC ranges from training inputs, never the evaluated ones
    model = train(build(), *sp.train, args.epochs, callback=cb, log=_print)
    graph = cb.graph(model)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    nd.save(graph, args.output)
    print(f"wrote {args.output}")
    return graph


if __name__ == "__main__":
    main()
