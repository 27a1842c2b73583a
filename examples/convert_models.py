"""ANNs for the ONNX → SNN conversion examples and tests: a digits CNN and a residual net,
trained in torch on the bundled 8×8 digits (sklearn) and exported with ``torch.onnx.export``.

    python examples/convert_models.py OUT_DIR      # writes digits_cnn.onnx, digits_resnet.onnx, digits.npz

Training is seeded and takes a few seconds on one CPU thread.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


def digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): images (N, 1, 8, 8) in [0, 1]."""
    from neurodeploy.data.digits import load_digits_dataset

    d = load_digits_dataset(test_fraction=0.25, seed=seed)
    return d.x_train[:, None], d.y_train, d.x_test[:, None], d.y_test


def digits_cnn() -> nn.Module:
    """conv 3×3 (8) + BN + ReLU → avgpool 2 → conv 3×3 (16) + ReLU → avgpool 2 → flatten → linear 10."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64, 10),
    )


class Residual(nn.Module):
    """y = ReLU(x + BN(conv(ReLU(BN(conv(x))))))"""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(x + self.body(x))


def digits_resnet() -> nn.Module:
    """conv 3×3 (8) + ReLU → residual block → avgpool 2 → flatten → linear 10."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), Residual(8), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def train(model: nn.Module, x, y, epochs: int = 30, seed: int = 0, lr: float = 3e-3) -> nn.Module:
    torch.manual_seed(seed)
    for m in model.modules():  # re-initialize under the seed
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def export(model: nn.Module, path, shape=(1, 8, 8)) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), torch.zeros((1, *shape)), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
    return path


def build(out_dir, seed: int = 0, epochs: int = 30) -> dict:
    """Train and export both nets; returns their paths and the data."""
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits(seed)
    out = Path(out_dir)
    paths = {name: export(train(make(), xtr, ytr, epochs, seed), out / f"{name}.onnx")
             for name, make in (("digits_cnn", digits_cnn), ("digits_resnet", digits_resnet))}
    return {"paths": paths, "x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


if __name__ == "__main__":
    res = build(sys.argv[1] if len(sys.argv) > 1 else "build/convert")
    np.savez(Path(res["paths"]["digits_cnn"]).parent / "digits.npz", x=res["x_train"], y=res["y_train"])
    print("\n".join(str(p) for p in res["paths"].values()))
