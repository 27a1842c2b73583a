"""Zero-shot multimodal learning with two liquid state machines (after Lin et al., Nature
Computational Science 2025, arXiv 2307.00771, "zero-shot LSM").

Image events (event digits) and audio events (audio digits) each run through their own
fixed random reservoir (:class:`.reservoir.Reservoir`, the paper's parameters,
:data:`.lsm.PAPER_LSM`); only two digital *projection heads* are trained, one per
modality, mapping the reservoir's spike counts to a shared unit-norm embedding. They are
trained contrastively on cross-modal pairs of the **seen** classes only: every (image,
audio) pair of the same class is a positive, every other pair a negative (a symmetric,
class-aware InfoNCE: the target of an image row is uniform over the audio samples of its
class). On the **unseen** classes — never shown to the heads — a query of one modality is
assigned the class of the nearest class prototype (mean embedding) of the other modality
among the classes evaluated: audio→image and image→audio retrieval. Chance is 1/k for k
classes evaluated.

:func:`run_zeroshot` does it for software (reference) and RRAM (formed conductances read
through the device model, ADCs calibrated on training data) reservoirs over device seeds.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError

#: the paper's split: digits 1–7 seen, 8–9 unseen
PAPER_SPLIT = ((1, 2, 3, 4, 5, 6, 7), (8, 9))


def parse_split(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"1-7:8-9"`` or ``"0,2,4,6,8:1,3"`` → (seen, unseen) digit tuples."""
    def part(p):
        out = []
        for tok in p.split(","):
            tok = tok.strip()
            a, dash, b = tok.partition("-")
            try:
                out.extend(range(int(a), int(b) + 1) if dash else [int(a)])
            except ValueError:
                raise InputError(f"--split {text!r}: {tok!r} is not a digit or a range a-b") from None
        return tuple(out)

    seen_t, sep, unseen_t = text.partition(":")
    if not sep:
        raise InputError(f"--split {text!r}: expected SEEN:UNSEEN, e.g. 1-7:8-9")
    seen, unseen = part(seen_t), part(unseen_t)
    check_split(seen, unseen, f"--split {text!r}")
    return seen, unseen


def check_split(seen, unseen, where="split"):
    allc = list(seen) + list(unseen)
    if any(not 0 <= c <= 9 for c in allc):
        raise InputError(f"{where}: classes must be digits 0–9, got {allc}")
    if len(set(allc)) != len(allc):
        raise InputError(f"{where}: seen and unseen classes must be distinct, got {list(seen)} and {list(unseen)}")
    if len(seen) < 2 or len(unseen) < 2:
        raise InputError(f"{where}: need at least 2 seen and 2 unseen classes, got {list(seen)} and {list(unseen)}")


# ------------------------------------------------------------------------------------ heads
class ProjectionHead(torch.nn.Module):
    """Standardize reservoir features, one linear map to ``dim``, unit-normalize."""

    def __init__(self, mean, std, n_out: int):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.lin = torch.nn.Linear(len(mean), n_out)

    def forward(self, x):
        z = self.lin((x - self.mean) / self.std)
        return z / z.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    def embed(self, features) -> np.ndarray:
        with torch.no_grad():
            return self(torch.as_tensor(np.asarray(features), dtype=torch.float32)).numpy()

    def export_onnx(self, path):
        """The head as ONNX (input ``features`` (batch, F), output ``embedding`` (batch, dim))."""
        from pathlib import Path

        from ...graph.io import write_atomic

        def writer(tmp):
            torch.onnx.export(self, torch.zeros(1, self.mean.shape[0]), str(tmp), input_names=["features"],
                              output_names=["embedding"], dynamic_axes={"features": {0: "batch"}, "embedding": {0: "batch"}},
                              opset_version=17)

        return write_atomic(Path(path), writer)


def _head(features, dim, gen):
    x = np.asarray(features, np.float64)
    std = x.std(0)
    std[std == 0] = 1.0
    h = ProjectionHead(x.mean(0), std, dim)
    with torch.no_grad():
        h.lin.weight.copy_(torch.randn(h.lin.weight.shape, generator=gen) / np.sqrt(x.shape[1]))
        h.lin.bias.zero_()
    return h


def train_heads(fa, ya, fb, yb, classes, dim: int = 32, epochs: int = 300, lr: float = 1e-2,
                temperature: float = 0.1, weight_decay: float = 1e-3, seed: int = 0):
    """Projection heads (image, audio) trained on the samples of ``classes`` only, full
    batch with Adam on the symmetric class-aware InfoNCE (see the module docstring)."""
    ya, yb = np.asarray(ya), np.asarray(yb)
    ia, ib = np.isin(ya, classes), np.isin(yb, classes)
    if not ia.any() or not ib.any():
        raise InputError(f"train_heads: no training samples of classes {list(classes)} in one modality")
    gen = torch.Generator().manual_seed(int(seed))
    ha, hb = _head(fa[ia], dim, gen), _head(fb[ib], dim, gen)
    xa = torch.as_tensor(np.asarray(fa)[ia], dtype=torch.float32)
    xb = torch.as_tensor(np.asarray(fb)[ib], dtype=torch.float32)
    same = torch.as_tensor(ya[ia][:, None] == yb[ib][None, :], dtype=torch.float32)
    ta, tb = same / same.sum(1, keepdim=True), (same / same.sum(0, keepdim=True)).T
    opt = torch.optim.Adam([*ha.parameters(), *hb.parameters()], lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        logits = ha(xa) @ hb(xb).T / temperature
        loss = -(ta * logits.log_softmax(1)).sum(1).mean() - (tb * logits.T.log_softmax(1)).sum(1).mean()
        loss.backward()
        opt.step()
    return ha.eval(), hb.eval()


def retrieve(zq, yq, zg, yg, classes):
    """Class of each query embedding (of ``classes``) = the nearest prototype (mean unit
    embedding) of the gallery's ``classes``. Returns (accuracy, confusion (k, k) rows =
    true class, columns = predicted, in ``classes`` order)."""
    classes = np.asarray(classes)
    qm, gm = np.isin(yq, classes), np.isin(yg, classes)
    proto = np.stack([zg[gm][yg[gm] == c].mean(0) for c in classes])
    proto /= np.linalg.norm(proto, axis=1, keepdims=True).clip(1e-12)
    pred = classes[(zq[qm] @ proto.T).argmax(1)]
    true = yq[qm]
    conf = (true[:, None] == classes[None, :]).T.astype(np.int64) @ (pred[:, None] == classes[None, :]).astype(np.int64)
    return float((pred == true).mean()), conf


def evaluate_heads(ha, hb, fa, ya, fb, yb, seen, unseen) -> dict:
    """Retrieval accuracies (and confusions) on the test features, both directions, for
    the seen and the unseen classes."""
    za, zb = ha.embed(fa), hb.embed(fb)
    out = {}
    for name, cls in (("seen", seen), ("unseen", unseen)):
        a2i, ca = retrieve(zb, yb, za, ya, cls)
        i2a, cb = retrieve(za, ya, zb, yb, cls)
        out[name] = {"audio_to_image": a2i, "image_to_audio": i2a, "chance": 1 / len(cls),
                     "confusion_audio_to_image": ca.tolist(), "confusion_image_to_audio": cb.tolist()}
    return out


# ------------------------------------------------------------------------------------ experiment
#: torch intra-op threads while a reservoir runs (:func:`reservoir_features`): its work is
#: many small (batch × 200) operations per step, where more threads mostly synchronise — and
#: stall when the cores are shared (docs/lsm.md). The spikes do not depend on it (each
#: output of a product is summed by one thread); the heads' training does, so it keeps
#: torch's setting. None: torch's setting throughout.
THREADS = 1


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ZeroShotData:
    """Binned inputs of both modalities (labels 0–9)."""

    image: tuple  # x_train, y_train, x_test, y_test
    audio: tuple


def load_data(quick: bool = False, seed: int = 0) -> ZeroShotData:
    """Event digits (16×16 crop, 50 bins) and audio digits without "oh" (129 bins); quick:
    a subset (400 image / 480 audio training samples, 200 / 200 test)."""
    from .lsm import audio_digit_inputs, event_digit_inputs

    n = dict(n_train=400, n_test=200) if quick else {}
    img = event_digit_inputs(seed=seed, **n)
    aud = audio_digit_inputs(words="digits", **({"n_train": 480, "n_test": 200} if quick else {}))
    return ZeroShotData(img, aud)


def seen_training(data: ZeroShotData, seen) -> ZeroShotData:
    """The data with only the seen classes' training samples (the heads never see the
    others, so their reservoir runs are skipped); test sets unchanged."""
    def keep(d):
        m = np.isin(np.asarray(d[1]), seen)
        return d[0][torch.as_tensor(m)], np.asarray(d[1])[m], d[2], d[3]

    return ZeroShotData(keep(data.image), keep(data.audio))


def reservoirs(seed: int = 0, device_config=None):
    """The image and audio reservoirs with the paper's parameters (:data:`.lsm.PAPER_LSM`)."""
    from .lsm import PAPER_LSM
    from .reservoir import LSMConfig, Reservoir

    return {m: Reservoir(LSMConfig(**PAPER_LSM[d], seed=seed + k), device_config)
            for k, (m, d) in enumerate((("image", "event-digits"), ("audio", "audio-digits")))}


def reservoir_features(res, data, variant: str, device_seed: int = 0, bins: int = 1, rram_config=None,
                       calibration_samples: int = 128, device: str = "cpu", threads: int | None = THREADS):
    """(train features, test features, program) of one reservoir: ``variant`` "software"
    (reference) or "rram" (formed conductances; ADCs calibrated on training samples);
    ``threads``: torch threads meanwhile (:data:`THREADS`)."""
    xtr, _, xte, _ = data
    kw = dict(target="reference") if variant == "software" else dict(target="rram", mode="formed", config=rram_config,
                                                                      seed=device_seed)
    with torch_threads(threads):
        prog = res.compile(**kw, kernel="dense", device=device)
        if getattr(prog, "needs_calibration", False):
            prog.calibrate(torch.as_tensor(xtr[:calibration_samples], dtype=torch.float32), data="training samples")
        ftr, _, _ = res.features(xtr, bins, program=prog)
        fte, _, _ = res.features(xte, bins, program=prog)
    return ftr, fte, prog


@dataclass
class ZeroShotResult:
    """Per variant, a list (one per device seed) of :func:`evaluate_heads` dicts; the heads,
    test embeddings and programs of the first seed of each variant."""

    split: tuple
    runs: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict, repr=False)
    embeddings: dict = field(default_factory=dict, repr=False)
    programs: dict = field(default_factory=dict, repr=False)
    features: dict = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        """Mean and std over device seeds of each accuracy; the RRAM − software gap."""
        out = {}
        for v, runs in self.runs.items():
            out[v] = {}
            for part in ("seen", "unseen"):
                for d in ("audio_to_image", "image_to_audio"):
                    a = np.asarray([r[part][d] for r in runs])
                    out[v][f"{part}/{d}"] = {"mean": float(a.mean()), "std": float(a.std()), "values": a.tolist()}
        if "software" in out and "rram" in out:
            out["gap_rram_minus_software"] = {k: out["rram"][k]["mean"] - out["software"][k]["mean"]
                                              for k in out["software"]}
        return out


def run_zeroshot(data: ZeroShotData, split=PAPER_SPLIT, variants=("software", "rram"), device_seeds=(0, 1, 2),
                 reservoir_seed: int = 0, rram_config=None, dim: int = 32, epochs: int = 300, bins: dict | None = None,
                 progress=None, device: str = "cpu", threads: int | None = THREADS) -> ZeroShotResult:
    """Zero-shot retrieval for each variant; software runs once (it has no device seed),
    RRAM once per device seed. The heads' training seed is fixed (0), so the RRAM spread
    is the device's. ``bins``: spike-count windows per modality (default
    :data:`.lsm.PAPER_BINS`: image 1, audio 4). ``threads``: torch threads of the
    reservoir runs (:data:`THREADS`)."""
    from .lsm import PAPER_BINS

    seen, unseen = split
    check_split(seen, unseen)
    bins = {"image": PAPER_BINS["event-digits"], "audio": PAPER_BINS["audio-digits"], **(bins or {})}
    res = reservoirs(reservoir_seed)
    data = seen_training(data, seen)
    out = ZeroShotResult(split=(tuple(seen), tuple(unseen)))
    jobs = [(v, s) for v in variants for s in ((0,) if v == "software" else tuple(device_seeds))]
    for i, (v, s) in enumerate(jobs):
        _zeroshot_job(out, res, data, v, s, seen, unseen, bins, rram_config, dim, epochs, device, threads)
        if progress is not None:
            progress(i + 1, len(jobs))
    return out


def _zeroshot_job(out, res, data, v, s, seen, unseen, bins, rram_config, dim, epochs, device, threads):
    """One variant × device seed of :func:`run_zeroshot`: features, heads, retrieval."""
    f = {m: reservoir_features(res[m], getattr(data, m), v, s, bins[m], rram_config, device=device, threads=threads)
         for m in ("image", "audio")}
    (ia_tr, ia_te, pa), (au_tr, au_te, pb) = f["image"], f["audio"]
    ha, hb = train_heads(ia_tr, data.image[1], au_tr, data.audio[1], seen, dim=dim, epochs=epochs)
    out.runs.setdefault(v, []).append(evaluate_heads(ha, hb, ia_te, data.image[3], au_te, data.audio[3], seen, unseen))
    if v not in out.heads:
        out.heads[v] = (ha, hb)
        out.embeddings[v] = (ha.embed(ia_te), hb.embed(au_te))
        out.programs[v] = (pa, pb)
        out.features[v] = (ia_te, au_te)


def check_onnx(head: ProjectionHead, path, features) -> float:
    """Max |onnxruntime − torch| of the exported head on ``features``."""
    import onnxruntime as ort

    x = np.asarray(features, np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"features": x})[0]
    return float(np.abs(got - head.embed(x)).max())


# ------------------------------------------------------------------------------------ CLI body
def experiment(out_dir, *, quick: bool = False, split=PAPER_SPLIT, device_seeds=(0, 1, 2), hardware: str = "rram_40nm",
               reservoir_seed: int = 0, dim: int = 32, epochs: int = 300, energy_samples: int = 32,
               progress=None, device: str = "cpu", threads: int | None = THREADS) -> dict:
    """What ``neurodeploy lsm zeroshot`` writes into ``out_dir`` (an existing empty
    directory): ``zeroshot.json`` (accuracies per run, summary, RRAM gap, energy, ONNX
    check), ``report.html``, and the four heads as ONNX (``{image,audio}_head_{variant}.onnx``)."""
    import json
    from pathlib import Path

    from ...hardware import load_profile
    from . import lsm_energy
    from .device import DeviceConfig
    from .zeroshot_report import write_html

    prof = load_profile(hardware)
    dcfg = DeviceConfig.from_profile(prof)
    data = load_data(quick=quick, seed=reservoir_seed)
    res = run_zeroshot(data, split, device_seeds=device_seeds, reservoir_seed=reservoir_seed, rram_config=dcfg,
                       dim=dim, epochs=epochs, progress=progress, device=device, threads=threads)
    summary = res.summary()
    out = Path(out_dir)
    onnx = {}
    for v, (ha, hb) in res.heads.items():
        for m, h, f in (("image", ha, res.features[v][0]), ("audio", hb, res.features[v][1])):
            p = h.export_onnx(out / f"{m}_head_{v}.onnx")
            try:
                onnx[p.name] = {"max_abs_diff_vs_torch": check_onnx(h, p, f)}
            except ImportError as exc:  # onnxruntime is the optional 'onnx' extra
                onnx[p.name] = {"skipped": f"onnxruntime not installed ({exc})"}
    energy = {}
    with torch_threads(threads):
        for k, m in enumerate(("image", "audio")):
            prog = res.programs["rram"][k]
            x = getattr(data, m)[2][:energy_samples]
            energy[m] = lsm_energy.compare(prog, x, prof, head=(res.features["rram"][k].shape[1], dim))
    meta = {"quick": quick, "split": [list(split[0]), list(split[1])], "device_seeds": list(device_seeds),
            "hardware": prof.name, "reservoir_seed": reservoir_seed, "dim": dim, "epochs": epochs,
            "samples": {m: [len(getattr(data, m)[1]), len(getattr(data, m)[3])] for m in ("image", "audio")}}
    doc = {**meta, "summary": summary, "runs": res.runs, "energy": energy, "onnx": onnx}
    from ...graph.io import write_atomic

    write_atomic(out / "zeroshot.json", lambda tmp: tmp.write_text(json.dumps(doc, indent=2)))
    write_html(out / "report.html", res, summary, energy, {"image": data.image[3], "audio": data.audio[3]}, meta)
    return doc
