r"""Liquid state machine (LSM) on RRAM, after Lin et al. (Nature Computational Science 2025;
arXiv 2307.00771): the experiment around a reservoir and its readout.

* :func:`evaluate`: train a readout per variant (software / RRAM) on the reservoir's
  training-set spikes and test it (ADC ranges calibrated on training data only);
* :func:`event_digit_inputs`, :func:`audio_digit_inputs`: the event-digits (image) and
  audio-digits (cochlea) data binned for the LSM; :data:`PAPER_LSM` the paper's
  reservoir parameters for each;
* :func:`device_sweep` and :func:`parse_param`: accuracy vs one device parameter at a time.

The reservoir is :mod:`.reservoir` (:class:`LSMConfig`, :class:`Reservoir`), the readouts
:mod:`.readout`; both are re-exported here (``from neurodeploy.targets.rram.lsm import
Reservoir, RidgeReadout, ...`` keeps working). Large reservoirs: :mod:`.sparse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import InputError
from .device import DeviceConfig
from .readout import (READOUTS, MLPReadout, Readout, RidgeReadout, readout_from_state, readout_state,  # noqa: F401
                      ridge_cv_scores, spike_features, window_features)
from .reservoir import MAX_DENSE_GRAPH_NEURONS, MAX_DENSE_SYNAPSES, LSMConfig, Reservoir  # noqa: F401

__all__ = ["LSMConfig", "Reservoir", "MAX_DENSE_SYNAPSES", "MAX_DENSE_GRAPH_NEURONS", "spike_features", "Readout",
           "RidgeReadout", "MLPReadout", "READOUTS", "readout_state", "readout_from_state", "LSMResult", "evaluate",
           "event_digit_inputs", "audio_digit_inputs", "audio_speaker_folds", "PAPER_LSM", "PAPER_BINS", "PAPER_INPUT",
           "PAPER_READOUT", "READOUT_GRID", "select_readout", "baseline_comparison", "DATASETS", "device_sweep",
           "parse_param", "window_features", "ridge_cv_scores"]


# ------------------------------------------------------------------------------------ recipe
@dataclass
class LSMResult:
    """Accuracies of one LSM experiment (fractions)."""

    accuracy: dict = field(default_factory=dict)
    spike_rate: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    programs: dict = field(default_factory=dict, repr=False)  # the compiled (calibrated) program per variant


def evaluate(reservoir: Reservoir, x_train, y_train, x_test, y_test, *, variants=("software", "rram"),
             readout: str = "ridge", bins: int = 1, rram_config: DeviceConfig | None = None, mode: str = "formed",
             seed: int = 0, baseline: bool = True, readout_seed: int | None = None, kernel: str | None = None,
             calibration_samples: int = 128, batch_size: int = 512, device: str = "cpu", kind: str = "counts",
             tau: float | None = None, readout_options: dict | None = None):
    """Train a readout per variant on the reservoir's training-set spikes and test it.

    Variants: ``software`` (reference target, ideal weights), ``rram`` (RRAM target,
    ``rram_config`` or the reservoir's device config, ``mode``). ``seed`` seeds the device
    (programming, read noise), ``readout_seed`` (default ``seed``) the readout training.
    ``baseline`` adds the same readout on the raw binned input. Each variant is compiled
    once (``kernel``: see :meth:`Reservoir.compile`); a calibrated ADC range is calibrated
    on the first ``calibration_samples`` training samples and then kept for the training
    and the test set, as a deployed macro would be. ``device``: where the programs run.
    Features: ``kind`` ("counts" or "trace" with ``tau``, :func:`.readout.window_features`)
    in ``bins`` windows; ``readout_options`` go to the readout (e.g. ``{"alpha": 1000}``).
    Returns (LSMResult, {variant: Readout});
    ``LSMResult.programs`` holds the compiled programs."""
    res = LSMResult()
    n_classes = int(max(np.max(y_train), np.max(y_test))) + 1
    rseed = seed if readout_seed is None else readout_seed
    readouts = {}
    for v in variants:
        kw = dict(target="reference") if v == "software" else dict(target="rram", mode=mode, config=rram_config, seed=seed)
        prog = reservoir.compile(**kw, kernel=kernel, device=device)
        if getattr(prog, "needs_calibration", False):
            prog.calibrate(torch.as_tensor(x_train[:calibration_samples], dtype=torch.float32))
        res.programs[v] = prog
        f_tr, c_tr, rate = reservoir.features(x_train, bins, program=prog, batch_size=batch_size, kind=kind, tau=tau)
        f_te, _, _ = reservoir.features(x_test, bins, program=prog, batch_size=batch_size, kind=kind, tau=tau)
        ro = READOUTS[readout](seed=rseed, **(readout_options or {})).fit(f_tr, y_train, n_classes)
        res.accuracy[v] = ro.accuracy(f_te, y_test)
        res.spike_rate[v] = rate
        res.counts[v] = c_tr
        readouts[v] = ro
    if baseline:
        ro = READOUTS[readout](seed=rseed, **(readout_options or {})).fit(window_features(x_train, bins, kind, tau),
                                                                         y_train, n_classes)
        res.accuracy["input_only"] = ro.accuracy(window_features(x_test, bins, kind, tau), y_test)
        readouts["input_only"] = ro
    return res, readouts


# ------------------------------------------------------------------------------------ data
def event_digit_inputs(seed: int = 0, n_train: int | None = None, n_test: int | None = None, crop: int = 16,
                       n_bins: int = 50):
    """(x_train, y_train, x_test, y_test) of the event-digits set binned for the LSM."""
    from ...data.event_digits import load_event_digits, to_spike_tensor

    d = load_event_digits(seed=seed, n_train=n_train, n_test=n_test)
    return (to_spike_tensor(d.train, crop, n_bins), d.train.labels, to_spike_tensor(d.test, crop, n_bins), d.test.labels)


def audio_digit_inputs(n_bins: int = 129, words: str = "all", n_train: int | None = None, n_test: int | None = None,
                       path=None, binary: bool = False):
    """(x_train, y_train, x_test, y_test) of the shipped audio-digit events
    (:mod:`neurodeploy.data.audio_events`: 64 cochlea channels, split by speaker) in
    ``n_bins`` windows (129, as the paper's N-TIDIGITS): the event count per channel and
    window, or a spike where a channel had any (``binary``, as the paper's N-TIDIGITS
    loader does; :data:`PAPER_INPUT`)."""
    from ...data.audio_events import load_audio_digits, to_audio_tensor

    d = load_audio_digits(path, words=words)
    tr, te = d.train.subset(np.arange(min(len(d.train), n_train or len(d.train)))), \
        d.test.subset(np.arange(min(len(d.test), n_test or len(d.test))))
    return to_audio_tensor(tr, n_bins, binary=binary), tr.labels, to_audio_tensor(te, n_bins, binary=binary), te.labels


def audio_speaker_folds(n_train: int | None = None, words: str = "all", k: int = 5, path=None) -> np.ndarray:
    """Fold (0…k−1) of each training sample of :func:`audio_digit_inputs`, by speaker (a
    speaker's samples share a fold), so held-out accuracy is on unheard voices as the test
    set's is."""
    from ...data.audio_events import load_audio_digits

    spk = load_audio_digits(path, words=words).train_speakers
    spk = spk[:n_train] if n_train else spk
    order = {s: i for i, s in enumerate(dict.fromkeys(spk.tolist()))}
    return np.asarray([order[s] % k for s in spk.tolist()], np.int64)


#: the paper's reservoir sizes and LIF parameters per dataset (N-MNIST-like / N-TIDIGITS-like
#: inputs). The weight scales are ours: audio's input_scale = 8 was picked among 1, 2, 4, 8
#: (× recurrent 1, 2, 4) on a held-out 20 % of the audio training set (docs/lsm.md).
PAPER_LSM = {"event-digits": dict(n_inputs=256, n_neurons=200, decay=0.9, threshold=5.0),
             "audio-digits": dict(n_inputs=64, n_neurons=200, decay=0.97, threshold=5.3, input_scale=8.0)}
#: spike-count windows of the reservoir readout per dataset (audio: picked on the same held-out split)
PAPER_BINS = {"event-digits": 1, "audio-digits": 4}

DATASETS = ("event-digits", "audio-digits")


# ------------------------------------------------------------------------------------ sweep
def device_sweep(reservoir: Reservoir, data, params: dict, seeds: int = 3, base: DeviceConfig | None = None,
                 mode: str = "programmed", readout: str = "ridge", bins: int = 1, progress=None) -> dict:
    """Accuracy vs each device parameter, one parameter at a time from ``base`` (default:
    the reservoir's device config made ideal), ``seeds`` device seeds per point (the
    programming and read noise change with the seed; the reservoir and the readout's
    training seed do not, so a noiseless point has zero spread).

    Returns ``{"base": ..., "mode": ..., "params": {name: [{"value", "accuracy": [per
    seed], "mean", "std"}]}}``."""
    xtr, ytr, xte, yte = data
    base = base or reservoir.device_config.ideal()
    out = {"base": base.to_dict(), "mode": mode, "readout": readout, "seeds": seeds, "params": {}}
    total = sum(len(v) for v in params.values()) * seeds
    done = 0
    for name, values in params.items():
        rows = []
        for value in values:
            cfg = base.replace(**{name: value})
            accs = []
            for s in range(seeds):
                res, _ = evaluate(reservoir, xtr, ytr, xte, yte, variants=("rram",), readout=readout, bins=bins,
                                  rram_config=cfg, mode=mode, seed=s, baseline=False, readout_seed=0)
                accs.append(res.accuracy["rram"])
                done += 1
                if progress is not None:
                    progress(done, total)
            rows.append({"value": value, "accuracy": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs))})
        out["params"][name] = rows
    return out


def parse_param(text: str):
    """``name=v1,v2,...`` → (name, [values]) typed by the DeviceConfig field
    (``none`` = None for levels/adc_bits/dac_bits)."""
    from dataclasses import fields as dc_fields

    name, sep, vals = text.partition("=")
    name = name.strip()
    known = {f.name: f for f in dc_fields(DeviceConfig)}
    if not sep or not vals.strip():
        raise InputError(f"--param {text!r}: expected name=v1,v2,... (e.g. read_noise=0,0.02,0.05)")
    if name not in known or name in ("adc_range",):
        raise InputError(f"--param {text!r}: unknown device parameter {name!r} (known: {', '.join(k for k in known if k != 'adc_range')})")
    ints = {"levels", "slices", "adc_bits", "dac_bits", "array_rows", "array_cols"}
    out = []
    for v in vals.split(","):
        v = v.strip()
        if v.lower() == "none" and name in ("levels", "adc_bits", "dac_bits"):
            out.append(None)
            continue
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"--param {text!r}: {v!r} is not a number") from None
        if name in ints:
            if f != int(f):
                raise InputError(f"--param {text!r}: {name} takes integers, got {v!r}")
            out.append(int(f))
        elif name in ("programming_noise_state_dependent", "fault_compensation"):
            out.append(bool(f))
        else:
            out.append(f)
    try:
        for v in out:
            DeviceConfig().ideal().replace(**{name: v})
    except InputError as exc:
        raise InputError(f"--param {text!r}: {exc}") from None
    return name, out


# ------------------------------------------------------------------------------------ baselines
#: the audio LSM's input encoding for the reservoir-vs-raw comparison: binarized, as the
#: paper's N-TIDIGITS loader does (picked on held-out training speakers: binary inputs score
#: higher than event counts for the reservoir and for the raw baselines, docs/lsm.md)
PAPER_INPUT = {"audio-digits": {"binary": True}}
#: readout options searched on held-out training data (speaker folds), for the reservoir and
#: the raw baselines alike: feature kind (counts per window, or low-pass traces with tau
#: steps sampled at window ends), number of windows, ridge lambda
READOUT_GRID = {"features": (("counts", None), ("trace", 16.0), ("trace", 32.0), ("trace", 64.0)),
                "bins": (4, 8, 16), "alphas": (10.0, 100.0, 1000.0, 10000.0)}
#: what :func:`select_readout` picked over READOUT_GRID on the 5 speaker folds of the audio
#: training set (binary inputs; ``scripts/lsm_figures.py --part baselines``, docs/lsm.md):
#: the 200-neuron reservoir's readout (mean over reservoir seeds 0–2), the binned raw
#: baseline's and the raw totals' (counts over the whole sample, lambda only)
PAPER_READOUT = {"audio-digits": {"kind": "trace", "tau": 64.0, "bins": 16, "alpha": 1000.0}}
RAW_READOUT = {"audio-digits": {"binned": {"kind": "trace", "tau": 32.0, "bins": 16, "alpha": 1000.0},
                                "total": {"kind": "counts", "tau": None, "bins": 1, "alpha": 100.0}}}


def select_readout(signal, y_train, folds, grid=None, n_classes=None) -> dict:
    """The readout options of ``grid`` (default :data:`READOUT_GRID`) that score best on the
    held-out folds of the training set (:func:`.readout.ridge_cv_scores`; the test set is
    never looked at). ``signal``: (B, T, N) training inputs or spikes, or a list of them (one
    per reservoir seed: the options are picked on the mean score). Returns ``{"kind", "tau",
    "bins", "alpha", "cv_accuracy", "table": [...]}``."""
    grid = {**READOUT_GRID, **(grid or {})}
    signals = signal if isinstance(signal, (list, tuple)) else [signal]
    rows = []
    for kind, tau in grid["features"]:
        for b in grid["bins"]:
            sc = np.mean([ridge_cv_scores(window_features(s, b, kind, tau), y_train, folds, grid["alphas"], n_classes)
                          for s in signals], 0)
            i = int(np.argmax(sc))
            rows.append({"kind": kind, "tau": tau, "bins": int(b), "alpha": float(grid["alphas"][i]),
                         "cv_accuracy": float(sc[i])})
    best = max(rows, key=lambda r: r["cv_accuracy"])  # first best in grid order on ties
    return {**best, "table": rows}


def _spikes(reservoir, x, program, batch_size=512):
    out = [program.run(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32)).output.cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def baseline_comparison(data, lsm_kwargs: dict, reservoir_seeds=(0, 1, 2), device_seeds=(0, 1, 2), folds=None,
                        spec: dict | None = None, raw_spec: dict | None = None, total_spec: dict | None = None,
                        grid=None, rram_config=None, device_config=None, progress=None, device: str = "cpu") -> dict:
    """The reservoir against ridge readouts on its raw input: ``raw_total`` (counts per
    channel over the whole sample), ``raw_binned`` (the raw input through the readout
    options that score best on held-out training data, :func:`select_readout`: the same
    grid as the reservoir's), ``software`` (one per reservoir seed) and ``rram`` (formed,
    per reservoir × device seed). ``spec`` / ``raw_spec`` / ``total_spec``: readout options
    ``{"kind", "tau", "bins", "alpha"}`` of the reservoir / the binned baseline / the totals
    (their lambda); None = picked on the held-out ``folds`` of the training set (the
    reservoir's on the mean over the software reservoirs of ``reservoir_seeds``)."""
    xtr, ytr, xte, yte = data
    n_classes = int(max(np.max(ytr), np.max(yte))) + 1
    grid = {**READOUT_GRID, **(grid or {})}
    if None in (spec, raw_spec, total_spec) and folds is None:
        raise InputError("baseline_comparison: folds (held-out training folds) are needed to pick readout options "
                         "(or give spec, raw_spec and total_spec)")
    fit = lambda f_tr, f_te, a: RidgeReadout(alpha=a).fit(f_tr, ytr, n_classes).accuracy(f_te, yte)  # noqa: E731
    total = total_spec or select_readout(xtr, ytr, folds, {**grid, "features": (("counts", None),), "bins": (1,)},
                                         n_classes)
    raw_spec = raw_spec or select_readout(xtr, ytr, folds, grid, n_classes)
    feats = lambda x, sp: window_features(x, sp["bins"], sp["kind"], sp["tau"])  # noqa: E731
    reservoirs = {rs: Reservoir(LSMConfig(**{**lsm_kwargs, "seed": rs}), device_config) for rs in reservoir_seeds}
    if spec is None:
        spec = select_readout([_spikes(r, xtr, r.compile("reference", kernel="dense", device=device))
                               for r in reservoirs.values()], ytr, folds, grid, n_classes)
    out = {"raw_total": [fit(feats(xtr, total), feats(xte, total), total["alpha"])],
           "raw_binned": [fit(feats(xtr, raw_spec), feats(xte, raw_spec), raw_spec["alpha"])],
           "spec": spec, "raw_spec": raw_spec, "raw_total_spec": total, "software": [], "rram": [],
           "reservoir_seeds": list(reservoir_seeds), "device_seeds": list(device_seeds)}
    n_runs, done = len(reservoir_seeds) * (1 + len(device_seeds)), 0
    for rs, res in reservoirs.items():
        for ds in (None, *device_seeds):
            v = "software" if ds is None else "rram"
            r, _ = evaluate(res, xtr, ytr, xte, yte, variants=(v,), bins=spec["bins"], kind=spec["kind"], tau=spec["tau"],
                            readout_options={"alpha": spec["alpha"]}, rram_config=rram_config, seed=ds or 0,
                            baseline=False, readout_seed=0, kernel="dense", device=device)
            out[v].append(r.accuracy[v])
            done += 1
            if progress is not None:
                progress(done, n_runs)
    for k in ("raw_total", "raw_binned", "software", "rram"):
        out[f"{k}_mean"], out[f"{k}_std"] = (float(np.mean(out[k])), float(np.std(out[k]))) if out[k] else (None, None)
    return out
