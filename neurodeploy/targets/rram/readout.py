"""Digital readouts of an LSM on spike-count features: :func:`spike_features`,
:class:`RidgeReadout` (closed form, lambda picked on a held-out split), :class:`MLPReadout`
(torch, Adam); both export to ONNX and save as arrays (:func:`readout_state`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import InputError


#: readout feature kinds (:func:`window_features`)
FEATURE_KINDS = ("counts", "trace")


def window_features(signal, bins: int = 1, kind: str = "counts", tau: float | None = None) -> np.ndarray:
    """Readout features of a signal (B, T, ...) in ``bins`` equal time windows, (B, bins·N)
    float32: ``counts`` — the sum of the signal in each window (spike counts);
    ``trace`` — the signal low-pass filtered, ``r_t = exp(−1/tau) r_{t−1} + s_t`` (``tau``
    in steps), sampled at the last step of each window (what a leaky synapse of a digital
    readout holds there)."""
    s = torch.as_tensor(signal, dtype=torch.float32)
    b, t = s.shape[:2]
    s = s.reshape(b, t, -1)
    edges = np.linspace(0, t, bins + 1).round().astype(int)
    if kind == "counts":
        return torch.cat([s[:, edges[i]:edges[i + 1]].sum(1) for i in range(bins)], 1).numpy()
    if kind != "trace":
        raise InputError(f"readout features: kind must be one of {', '.join(FEATURE_KINDS)}, got {kind!r}")
    if tau is None or not tau > 0:
        raise InputError(f"readout features: kind 'trace' needs a time constant tau > 0 (steps), got {tau!r}")
    a = float(np.exp(-1.0 / tau))
    r, parts = torch.zeros(b, s.shape[2]), []
    for i in range(bins):  # per window: decay the carried trace, add the window's decayed inputs
        lo, hi = edges[i], edges[i + 1]
        w = torch.as_tensor(a ** np.arange(hi - lo - 1, -1, -1), dtype=torch.float32)
        r = r * a ** (hi - lo) + torch.einsum("btn,t->bn", s[:, lo:hi], w)
        parts.append(r)
    return torch.cat(parts, 1).numpy()


def spike_features(spikes: torch.Tensor, bins: int = 1) -> np.ndarray:
    """Spike counts per neuron in ``bins`` equal time windows: (B, bins·N) float32."""
    return window_features(spikes, bins, "counts")


class _Linear(torch.nn.Module):
    def __init__(self, mean, std, weight, bias):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.lin = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.lin.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x):
        return self.lin((x - self.mean) / self.std)


class _MLP(torch.nn.Module):
    def __init__(self, n_in, hidden, n_out, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_out))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def _standardize(x):
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    std = x.std(0)
    std[std == 0] = 1.0
    return mean, std


class Readout:
    """A trained digital readout: ``module`` maps features (B, F) to class scores."""

    module: torch.nn.Module
    n_classes: int

    def scores(self, features) -> np.ndarray:
        with torch.no_grad():
            return self.module(torch.as_tensor(np.asarray(features), dtype=torch.float32)).numpy()

    def predict(self, features) -> np.ndarray:
        return self.scores(features).argmax(1)

    def accuracy(self, features, labels) -> float:
        return float((self.predict(features) == np.asarray(labels)).mean())

    def export_onnx(self, path) -> Path:
        """Write the readout as an ONNX model (input ``features`` (batch, F), output
        ``scores`` (batch, classes)); written to a temp name and renamed."""
        from ...graph.io import write_atomic

        n_in = self.module.mean.shape[0]

        def writer(tmp):
            torch.onnx.export(self.module, torch.zeros(1, n_in), str(tmp), input_names=["features"],
                              output_names=["scores"], dynamic_axes={"features": {0: "batch"}, "scores": {0: "batch"}},
                              opset_version=17)

        return write_atomic(Path(path), writer)


class RidgeReadout(Readout):
    """Closed-form ridge regression on standardized features to one-hot targets:
    ``W = (XᵀX + λI)⁻¹ XᵀY`` (bias = the target mean). ``alpha=None`` picks λ from
    ``alphas`` on a seeded 20 % held-out part of the training set."""

    def __init__(self, alpha: float | None = None, alphas=(0.1, 1.0, 10.0, 100.0, 1000.0), seed: int = 0):
        self.alpha, self.alphas, self.seed = alpha, tuple(alphas), seed

    @staticmethod
    def _solve(x, y1h, alpha):
        """``(XᵀX + λI)⁻¹ XᵀY``; with more features than samples the identical dual form
        ``Xᵀ(XXᵀ + λI)⁻¹ Y`` (an n × n solve: large reservoirs)."""
        n, f = x.shape
        if f > n:
            return x.T @ np.linalg.solve(x @ x.T + alpha * np.eye(n), y1h)
        xtx = x.T @ x
        return np.linalg.solve(xtx + alpha * np.eye(f), x.T @ y1h)

    def fit(self, features, labels, n_classes: int | None = None) -> "RidgeReadout":
        x = np.asarray(features, np.float64)
        y = np.asarray(labels, np.int64)
        self.n_classes = int(n_classes or y.max() + 1)
        mean, std = _standardize(x)
        xs = (x - mean) / std
        y1h = np.eye(self.n_classes)[y]
        ym = y1h.mean(0)
        alpha = self.alpha
        if alpha is None:
            rng = np.random.default_rng(self.seed)
            perm = rng.permutation(len(y))
            nv = max(1, len(y) // 5)
            va, tr = perm[:nv], perm[nv:]
            best = None
            for a in self.alphas:
                w = self._solve(xs[tr], y1h[tr] - ym, a)
                acc = float((((xs[va] @ w) + ym).argmax(1) == y[va]).mean())
                if best is None or acc > best[0]:
                    best = (acc, a)
            alpha = best[1]
        self.alpha_ = alpha
        w = self._solve(xs, y1h - ym, alpha)
        self.module = _Linear(mean, std, w.T, ym)
        return self


def ridge_cv_scores(features, labels, folds, alphas, n_classes: int | None = None) -> np.ndarray:
    """Held-out accuracy of a :class:`RidgeReadout` for each λ of ``alphas``, over the folds
    ``folds`` (an int per sample: fold ``k`` is held out once, trained on the others, each
    fold standardized on its training part). One eigendecomposition per fold serves every
    λ. Returns (len(alphas),) fractions of all samples classified right when held out."""
    x, y, folds = np.asarray(features, np.float64), np.asarray(labels, np.int64), np.asarray(folds)
    k = int(n_classes or y.max() + 1)
    right = np.zeros(len(alphas))
    for f in np.unique(folds):
        va, tr = folds == f, folds != f
        mean, std = _standardize(x[tr])
        xt, xv = (x[tr] - mean) / std, (x[va] - mean) / std
        y1h = np.eye(k)[y[tr]]
        ym = y1h.mean(0)
        if xt.shape[1] > xt.shape[0]:  # dual: W = Xᵀ U (Λ + λ)⁻¹ Uᵀ Y, XXᵀ = U Λ Uᵀ
            ev, u = np.linalg.eigh(xt @ xt.T)
            proj, rhs = xv @ xt.T @ u, u.T @ (y1h - ym)
        else:  # primal: W = V (Λ + λ)⁻¹ Vᵀ Xᵀ Y, XᵀX = V Λ Vᵀ
            ev, u = np.linalg.eigh(xt.T @ xt)
            proj, rhs = xv @ u, u.T @ xt.T @ (y1h - ym)
        for i, a in enumerate(alphas):
            right[i] += int(((proj @ (rhs / (ev + a)[:, None]) + ym).argmax(1) == y[va]).sum())
    return right / len(y)


class MLPReadout(Readout):
    """A one-hidden-layer MLP (ReLU) trained with Adam on cross-entropy (full batch,
    seeded, weight decay)."""

    def __init__(self, hidden: int = 128, epochs: int = 300, lr: float = 3e-3, weight_decay: float = 1e-3, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.weight_decay, self.seed = hidden, epochs, lr, weight_decay, seed

    def fit(self, features, labels, n_classes: int | None = None) -> "MLPReadout":
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.n_classes = int(n_classes or int(y.max()) + 1)
        mean, std = _standardize(x.numpy())
        torch.manual_seed(self.seed)
        self.module = _MLP(x.shape[1], self.hidden, self.n_classes, mean, std)
        opt = torch.optim.Adam(self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = loss_fn(self.module(x), y)
            loss.backward()
            opt.step()
        self.module.eval()
        return self


READOUTS = {"ridge": RidgeReadout, "mlp": MLPReadout}


# ------------------------------------------------------------------------------------ persistence
def readout_state(ro: Readout) -> dict:
    """Arrays that rebuild a readout (see :func:`readout_from_state`)."""
    st = {f"param/{k}": v.detach().cpu().numpy() for k, v in ro.module.state_dict().items()}
    st["kind"] = np.asarray("mlp" if isinstance(ro, MLPReadout) else "ridge")
    st["n_classes"] = np.asarray(ro.n_classes)
    if isinstance(ro, MLPReadout):
        st["hidden"] = np.asarray(ro.hidden)
    return st


def readout_from_state(st) -> Readout:
    params = {k[len("param/"):]: torch.as_tensor(np.asarray(st[k])) for k in st if str(k).startswith("param/")}
    kind = str(np.asarray(st["kind"]))
    n_classes = int(np.asarray(st["n_classes"]))
    mean, std = params["mean"], params["std"]
    if kind == "mlp":
        ro = MLPReadout(hidden=int(np.asarray(st["hidden"])))
        ro.module = _MLP(mean.shape[0], ro.hidden, n_classes, mean, std)
    else:
        ro = RidgeReadout()
        ro.module = _Linear(mean, std, params["lin.weight"], params["lin.bias"])
    ro.module.load_state_dict(params)
    ro.module.eval()
    ro.n_classes = n_classes
    return ro
