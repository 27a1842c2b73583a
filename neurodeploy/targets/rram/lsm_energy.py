"""The LSM energy claim: one workload priced on RRAM and on a digital baseline.

* RRAM: the reservoir runs on crossbars (its counted cell reads, row drives, ADC
  conversions and digital neuron updates priced by :func:`neurodeploy.hardware.estimate_energy`
  on an RRAM profile, static power included); the readout / projection head is digital.
* digital: the same reservoir on a 45 nm CMOS processor priced from per-operation energies
  (``hardware_profiles/digital_45nm.toml``, kind "digital", Horowitz ISSCC 2014), from the same
  protocol counts (docs/protocol.md): ``dense`` — every MAC of the reservoir as written
  (``dense_synops``: a float32 multiply, an add and half a 64-bit cache read for the
  weight, as a dense GEMM does); ``event`` — only the synapses of nonzero inputs
  (``synaptic_events``: an add and half a cache read each, an event-driven accelerator;
  a graded input is priced as one accumulation, which favours the digital side). Neuron
  updates cost a multiply (decay), two adds (input, threshold compare) and a read and a
  write of the potential from the smallest cache. Weights are read from the smallest
  cache level that holds them all. The digital head costs the same on both sides.

The ratio digital / RRAM per inference is the paper's "energy efficiency" figure; it is
given with the RRAM macro's static power (× its modelled run time) and without it
(``_dynamic``: the baseline has no static term).
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError

#: the bundled digital baseline (hardware_profiles/digital_45nm.toml, kind "digital")
BASELINE = "digital_45nm"
#: cache levels of the baseline (constant, capacity in bytes), smallest first
SRAM_LEVELS = (("energy_sram_read_8kb", 8 * 1024), ("energy_sram_read_32kb", 32 * 1024),
               ("energy_sram_read_1mb", 1024 * 1024))


def load_digital_profile(name_or_path=BASELINE):
    """A digital baseline profile (:func:`neurodeploy.hardware.load_profile`, validated
    against kind "digital"'s schema); a profile of another kind is a ProfileError."""
    from ...errors import ProfileError
    from ...hardware import load_profile

    prof = load_profile(name_or_path)
    if prof.kind != "digital":
        raise ProfileError(f"hardware profile '{prof.name}' is a {prof.kind} profile; the digital baseline of the "
                           "energy comparison needs a digital profile (e.g. digital_45nm)")
    return prof


def sram_read(profile, nbytes: int) -> tuple[str, float]:
    """(constant, J per 64-bit read) of the smallest cache level holding ``nbytes``."""
    for name, cap in SRAM_LEVELS:
        if nbytes <= cap:
            return name, profile.si(name)
    raise InputError(f"digital baseline: {nbytes} bytes of weights exceed the largest cache level (1 MB); "
                     "DRAM is not modelled")


def digital_energy(counts: dict, weight_bytes: int, profile, style: str = "dense") -> dict:
    """Energy (J) of the reservoir's counts on the digital baseline, by term."""
    if style not in ("dense", "event"):
        raise InputError(f"digital baseline: style must be 'dense' or 'event', got {style!r}")
    mult, add = profile.si("energy_fp32_mult"), profile.si("energy_fp32_add")
    wname, wread = sram_read(profile, weight_bytes)
    sname, sread = sram_read(profile, 0)
    syn = "dense_synops" if style == "dense" else "synaptic_events"
    per_syn = (mult + add if style == "dense" else add) + wread / 2
    ops = sum(c.get(syn, 0) for c in counts.values())
    neurons = sum(c.get("neuron_updates", 0) for c in counts.values())
    terms = {"synapses": ops * per_syn, "neurons": neurons * (mult + 2 * add + sread)}
    return {"style": style, "synapse_ops": int(ops), "neuron_updates": int(neurons), "weight_cache": wname,
            "terms_J": terms, "total_J": float(sum(terms.values()))}


def head_energy(n_features: int, n_out: int, profile) -> float:
    """J per sample of a digital linear head (standardize, then F × out MACs) on the baseline."""
    mult, add = profile.si("energy_fp32_mult"), profile.si("energy_fp32_add")
    _, read = sram_read(profile, 4 * n_features * (n_out + 2))
    return float((n_features * (n_out + 1)) * (mult + add + read / 2))


def compare(program, x, rram_profile, digital_profile=None, head=(200, 32)) -> dict:
    """Per-inference energy of the reservoir ``program`` (an RRAM program of the reservoir)
    run on ``x`` plus a digital head of ``head`` = (features, outputs): RRAM vs the digital
    baseline (dense and event-driven). Returns J per inference and the ratios."""
    from ...hardware.energy import estimate_energy

    if getattr(program, "config", None) is None:
        raise InputError("energy comparison: the program must be an RRAM program of the reservoir (target 'rram')")
    digital_profile = digital_profile or load_digital_profile()
    r = program.run(x)
    desc = program.describe()
    n = r.batch
    e = estimate_energy(r, rram_profile, desc)
    h = head_energy(*head, digital_profile)
    wbytes = 4 * int(desc["memory"]["weights"])
    rram = {"reservoir_J": e["total_J"] / n, "reservoir_dynamic_J": e["dynamic_J"] / n, "head_J": h,
            "by_kind_J": {k: v / n for k, v in e["by_kind"].items()}, "profile": rram_profile.name}
    rram["total_J"] = rram["reservoir_J"] + h
    out = {"samples": n, "steps": r.steps, "rram": rram, "digital_profile": digital_profile.name}
    for style in ("dense", "event"):
        d = digital_energy(r.counts, wbytes, digital_profile, style)
        tot = d["total_J"] / n + h
        out[f"digital_{style}"] = {"reservoir_J": d["total_J"] / n, "head_J": h, "total_J": tot,
                                   "synapse_ops": d["synapse_ops"] / n, "weight_cache": d["weight_cache"]}
        out[f"ratio_{style}"] = float(tot / rram["total_J"])
        out[f"ratio_{style}_dynamic"] = float(tot / (rram["reservoir_dynamic_J"] + h))
    out["spike_rate"] = float(np.asarray(r.output.float().mean()))
    return out
