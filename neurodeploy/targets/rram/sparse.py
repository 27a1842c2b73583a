r"""Large reservoirs with a fixed fan-in: weights stored per postsynaptic neuron (``K``
presynaptic indices and the formed conductance pair of each synapse) and simulated with
sparse products, never as an N × N matrix.

* :class:`SparseWeights`: one layer, ``index`` (n_post, K) presynaptic indices (distinct,
  ascending per row) and ``dg_pos``/``dg_neg`` (n_post, K) conductance offsets above
  ``g_min`` (S); the weight of synapse ``(j, k)`` is ``scale·(dg_pos − dg_neg)``, every
  other weight is 0 (both cells at ``g_min``).
* :func:`sparse_random_weights`: the forming model of :func:`.device.random_weights`
  restricted to ``K`` synapses per neuron. Each neuron's ``K`` presynaptic partners are a
  uniformly random ``K``-subset; each synapse is a differential pair of which at least one
  cell broke down, with the pair statistics of a dense array whose cells break down with
  probability ``p``, ``1 − (1 − p)² = K / n_candidates`` (so the expected fan-in of the
  dense array is ``K``): both cells formed with probability ``p²/q``, only ``G+`` or only
  ``G−`` with ``p(1 − p)/q`` each (``q = 1 − (1 − p)²``); a formed cell has
  ``clip(N(0.5, 0.25)·W, 0, W)`` as in :func:`.device.formed_conductances`.
* :class:`SparseReservoirProgram`: a reservoir (``input → w_in → lif ⇄ w_rec``) run on the
  reference semantics or on the RRAM device model, state kept neuron-major ``(N, batch)``,
  one product per layer and step (CSR with 32-bit indices; a gather over ``(N, K, batch)``,
  bitwise deterministic on CUDA; or one dense GEMM, also for dense reservoirs), the same
  LIF step function as every target (:mod:`...dynamics`), event counts in bulk after the
  time loop. cuSPARSE's CSR product is not bitwise deterministic on CUDA.

Non-idealities on the sparse path (target ``"rram"``):

* applied: read noise (per column and read, ``σ_r s sqrt(Σ x²(G+² + G−²))``, the cells at
  ``g_min`` outside the stored synapses included), ADC (signed mid-tread, one full scale per
  column tile of ``array_cols/2`` neurons: calibrated on data, the worst case
  ``max_j Σ_k |W_jk|`` or a fraction of it, as the dense crossbar), DAC for graded inputs,
  drift of the stored cells and its compensation (``drift_compensation``: one digital output
  scale per layer or per neuron from a noise-free reference read, as the crossbar; the
  cells outside the stored synapses count at ``g_min``); in ``mode="programmed"`` write-verify of the stored synapses
  (levels, programming noise, device-to-device bounds, stuck-at faults of those cells and
  their compensation by the partner cell).
* not applied: IR drop (``wire_resistance > 0`` is refused: it depends on the cell's
  position in a tile); bit slicing (``slices > 1`` in programmed mode is refused); faults
  and drift of the cells *outside* the stored synapses (a stuck-on cell there would add a
  full-scale synapse; with ``g_min = 0`` those cells read exactly 0 otherwise); the ADC
  digitizes each neuron's whole column sum once, which is what the dense crossbar does when
  the layer fits one row tile (``n_pre ≤ array_rows``) — larger dense layers digitize each
  row tile's partial sum.

Programs save and load (:meth:`SparseReservoirProgram.save`, :func:`load_program`).

Event counts are those of the dense path on the same weights (the layer laid out on
crossbar tiles as :mod:`.crossbar` does): ``synaptic_events`` (nonzero input × n_post),
``dense_synops``, ``array_reads``, ``rows_activated``, ``cell_reads``, ``adc_conversions``,
``dac_conversions``, ``adc_saturations``, ``tiles``; plus ``stored_synaptic_events``
(nonzero input × the synapses it actually drives).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import nir
import numpy as np
import torch

from ...errors import InputError, UnsupportedError
from ..base import RunResult, as_inputs, check_options, describe_base
from ..counting import synapse_counts
from . import crossbar as xbar
from . import device as dev
from .device import DeviceConfig

#: below this many candidates per row (or when duplicates would be frequent) the
#: K-subsets are drawn as the top K of random keys instead of by rejection
_KEYS_MAX_CANDIDATES = 4096
_KERNELS = ("auto", "csr", "gather", "dense")


# ------------------------------------------------------------------------------------ weights
@dataclass
class SparseWeights:
    """One fixed-fan-in layer: ``index`` (n_post, K) int64 presynaptic indices, distinct and
    ascending per row; ``dg_pos``/``dg_neg`` (n_post, K) float64 conductance offsets (S)."""

    index: torch.Tensor
    dg_pos: torch.Tensor
    dg_neg: torch.Tensor
    n_pre: int

    @property
    def n_post(self) -> int:
        return int(self.index.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.index.shape[1])

    @property
    def device(self) -> torch.device:
        return self.index.device

    def to(self, device) -> "SparseWeights":
        return SparseWeights(self.index.to(device), self.dg_pos.to(device), self.dg_neg.to(device), self.n_pre)

    def to_dense(self):
        """The same conductance offsets as dense (n_post, n_pre) float64 arrays (zeros off
        the stored synapses)."""
        shape = (self.n_post, self.n_pre)
        gp = torch.zeros(shape, dtype=torch.float64, device=self.device).scatter_(1, self.index, self.dg_pos)
        gn = torch.zeros(shape, dtype=torch.float64, device=self.device).scatter_(1, self.index, self.dg_neg)
        return gp, gn

    def out_degree(self) -> torch.Tensor:
        """Stored synapses driven by each presynaptic element (n_pre,)."""
        return torch.bincount(self.index.reshape(-1), minlength=self.n_pre)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.index, self.dg_pos, self.dg_neg))


def sample_indices(n_post: int, n_pre: int, k: int, gen: torch.Generator, device="cpu",
                   exclude_self: bool = False) -> torch.Tensor:
    """(n_post, k) int64: for each row a uniformly random k-subset of ``range(n_pre)``
    (without the row's own index when ``exclude_self``), ascending. Small candidate sets:
    the top k of random keys (in row chunks); large ones: k draws with replacement, rows
    with a repeat redrawn whole (rejection, so the subset stays uniform)."""
    m = n_pre - 1 if exclude_self else n_pre
    if not 1 <= k <= m:
        raise InputError(f"fan-in {k} must be in [1, {m}] ({n_pre} presynaptic elements{', no self-connections' if exclude_self else ''})")
    if m <= _KEYS_MAX_CANDIDATES or k * k > 0.2 * m:
        rows = max(1, (1 << 24) // m)
        parts = []
        for r0 in range(0, n_post, rows):
            keys = torch.rand((min(rows, n_post - r0), m), generator=gen, device=device)
            parts.append(keys.topk(k, dim=1).indices)
        idx = torch.cat(parts).sort(1).values
    else:
        idx = torch.randint(0, m, (n_post, k), generator=gen, device=device).sort(1).values
        bad = (idx[:, 1:] == idx[:, :-1]).any(1).nonzero().reshape(-1)
        while bad.numel():  # expected fraction of rows ≈ k²/(2m) ≤ 10 %, shrinking geometrically
            new = torch.randint(0, m, (bad.numel(), k), generator=gen, device=device).sort(1).values
            idx[bad] = new
            bad = bad[(new[:, 1:] == new[:, :-1]).any(1)]
    if exclude_self:  # candidates 0..n−2 → skip the row's own index (keeps the order)
        idx = idx + (idx >= torch.arange(n_post, device=idx.device)[:, None])
    return idx.to(torch.int64)


def cell_probability(fan_in: int, candidates: int) -> float:
    """Per-cell breakdown probability ``p`` whose dense array has ``fan_in`` expected
    nonzero weights per row: ``1 − (1 − p)² = fan_in / candidates``."""
    d = min(max(fan_in / candidates, 0.0), 1.0)
    return 1.0 - math.sqrt(1.0 - d)


def formed_pairs(shape, p: float, config: DeviceConfig, gen: torch.Generator, device="cpu",
                 g_mean: float = dev.FORMED_G_MEAN, g_std: float = dev.FORMED_G_STD):
    """(dg_pos, dg_neg) of differential pairs conditioned on at least one formed cell, for
    cells that break down with probability ``p`` (see the module docstring)."""
    kw = dict(dtype=torch.float64, device=device)
    q = 1.0 - (1.0 - p) ** 2
    p_both, p_one = p * p / q, p * (1.0 - p) / q
    u = torch.rand(shape, generator=gen, **kw)
    pos = u < p_both + p_one  # [0, p_both): both; [p_both, p_both + p_one): G+ only; rest: G− only
    neg = (u < p_both) | ~pos
    g = torch.clamp((g_mean + g_std * torch.randn((2, *shape), generator=gen, **kw)) * config.window, 0.0, config.window)
    return torch.where(pos, g[0], torch.zeros_like(g[0])), torch.where(neg, g[1], torch.zeros_like(g[1]))


def sparse_random_weights(n_post: int, n_pre: int, fan_in: int, config: DeviceConfig, gen: torch.Generator,
                          device="cpu", exclude_self: bool = False) -> SparseWeights:
    """A formed random layer with ``fan_in`` synapses per postsynaptic neuron (the
    fixed-fan-in counterpart of :func:`.device.random_weights`)."""
    index = sample_indices(n_post, n_pre, fan_in, gen, device, exclude_self)
    p = cell_probability(fan_in, n_pre - 1 if exclude_self else n_pre)
    gp, gn = formed_pairs(tuple(index.shape), p, config, gen, device)
    return SparseWeights(index, gp, gn, n_pre)


def dale(w: SparseWeights, n_excitatory: int) -> SparseWeights:
    """Dale's law on presynaptic columns, as the dense reservoir's ``_dale``: presynaptic
    ``j < n_E`` excitatory (larger formed conductance on G+, scaled by n_I/n_E when that is
    < 1), the others inhibitory (on G−, scaled by n_E/n_I when < 1)."""
    n_i = w.n_pre - n_excitatory
    gain = n_i / n_excitatory if n_excitatory > 0 and n_i > 0 else 1.0
    mag = torch.maximum(w.dg_pos, w.dg_neg)
    exc = w.index < n_excitatory
    z = torch.zeros_like(mag)
    return SparseWeights(w.index, torch.where(exc, mag * min(gain, 1.0), z), torch.where(exc, z, mag * min(1.0 / gain, 1.0)), w.n_pre)


# ------------------------------------------------------------------------------------ layer
def _csr(index: torch.Tensor, values: torch.Tensor, n_pre: int):
    n, k = index.shape
    itype = torch.int32 if n * k < 2 ** 31 - 1 and n_pre < 2 ** 31 - 1 else torch.int64
    crow = torch.arange(0, n * k + 1, k, dtype=itype, device=index.device)
    with warnings.catch_warnings():  # "sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, index.reshape(-1).to(itype), values.reshape(-1), (n, n_pre))


class SparseLayer:
    """One layer's product ``y = W x`` on neuron-major vectors ``x`` (n_pre, B) → (n_post, B),
    with the RRAM periphery when ``config`` is given (None = the ideal reference weights).

    ``index`` (n_post, K) with ``w64`` (n_post, K) for a fixed-fan-in layer, or ``index=None``
    with a dense ``w64`` (n_post, n_pre). ``kernel``: "csr" (torch.sparse CSR, 32-bit
    indices), "gather" (``x[index]``, chunked over neurons: bitwise deterministic on CUDA)
    or "dense" (one GEMM). The periphery is the crossbar's (:mod:`.crossbar`: the same
    :class:`~.crossbar.TileGeometry`, :func:`~.crossbar.dac`, :func:`~.crossbar.add_read_noise`,
    :class:`~.crossbar.ADC` with one partial sum per column, :func:`~.crossbar.count_reads`).
    Event counts are taken in bulk from all steps' inputs (:meth:`count`); only ADC
    saturations are counted per step."""

    def __init__(self, index, w64, scale, config: DeviceConfig | None, n_pre: int, dtype, device, kernel: str,
                 g2=None):
        self.n_pre, self.n_post = int(n_pre), int(w64.shape[0])
        self.config = config
        self.kernel = kernel
        self.dtype, self.device = dtype, device
        if index is not None:
            index = index.to(device)
            self.outdeg = torch.bincount(index.reshape(-1), minlength=n_pre).to(torch.float64)
        else:
            self.outdeg = (w64 != 0).sum(0).to(device=device, dtype=torch.float64)
        if index is None and kernel != "dense":
            raise InputError(f"a dense reservoir layer runs with kernel='dense' only, got {kernel!r}")
        if index is not None and kernel == "dense" and self.n_post * n_pre > 2 ** 28:
            raise InputError(f"kernel='dense' would need a {self.n_post} × {n_pre} matrix: use 'csr' or 'gather'")
        self._index = index
        self.index = index if kernel == "gather" else None
        self.w = self._place(w64)
        self.noise = config is not None and config.read_noise > 0
        if self.noise:  # per-synapse G² (weight units²) minus the two g_min cells counted for every row
            self.c0 = float(2.0 * (config.g_min * scale) ** 2)
            self.g2 = self._place(g2 - self.c0)
        self.geometry = None if config is None else xbar.TileGeometry.of(self.n_pre, self.n_post, config)
        self.adc = None  # one partial sum per neuron: the whole column sum is digitized once
        if config is not None and config.adc_bits is not None:
            self.adc = xbar.ADC(config, w64.abs().sum(1).to(device)[None], self.geometry.pairs, dtype)
        self.generator = None
        self.compensation = None  # (n_post,) drift compensation scale, set by the program
        self.reset_counts()

    def _place(self, v64):
        """Per-synapse values → the kernel's operand."""
        v = v64.to(device=self.device, dtype=self.dtype)
        if self._index is None or self.kernel == "gather":
            return v
        if self.kernel == "csr":
            return _csr(self._index, v, self.n_pre)
        return torch.zeros((self.n_post, self.n_pre), dtype=self.dtype, device=self.device).scatter_(1, self._index, v)

    @property
    def tiles(self) -> int:
        return self.geometry.tiles

    @property
    def adc_range(self) -> torch.Tensor | None:
        """Full scale per ADC group (column tiles,), weight units; None if not set / no ADC."""
        return None if self.adc is None or self.adc.range is None else self.adc.range[0]

    @property
    def needs_calibration(self) -> bool:
        return self.adc is not None and self.config.adc_calibrated and self.adc.range is None

    def set_adc_range(self, rng) -> None:
        self.adc.set_range(rng)

    def begin_calibration(self) -> None:
        if self.adc is not None:
            self.adc.begin_calibration()

    def end_calibration(self) -> None:
        if self.adc is not None:
            self.adc.end_calibration()

    def abort_calibration(self) -> None:
        if self.adc is not None:
            self.adc.abort_calibration()

    def nbytes(self) -> int:
        ts = [self.outdeg] + [t for t in (self.index,) if t is not None]
        for name in ("w", "g2"):
            m = getattr(self, name, None)
            if m is None:
                continue
            ts += [m.crow_indices(), m.col_indices(), m.values()] if m.layout == torch.sparse_csr else [m]
        return sum(t.numel() * t.element_size() for t in ts)

    def reset_counts(self):
        kinds = ("stored_synaptic_events",) + (xbar.COUNT_KINDS if self.config is not None else ())
        self._counts = xbar.zero_counts(self.device, kinds)
        self._nonzero = torch.zeros(self.n_pre, dtype=torch.float64, device=self.device)
        self._steps = 0

    def counts(self, batch: int) -> dict:
        """The protocol counts (:func:`..counting.synapse_counts`: ``synaptic_events`` with
        fan-out ``n_post``, ``dense_synops``) and the crossbar's, of what :meth:`count` saw."""
        fan = torch.full((self.n_pre,), float(self.n_post), dtype=torch.float64, device=self.device)
        c = synapse_counts(fan, self._nonzero, batch, self._steps)
        c.update({k: int(round(float(v))) for k, v in self._counts.items()})
        return c

    def count(self, xs: torch.Tensor, graded=None, binary: bool = False, steps: int | None = None):
        """Add the events of inputs ``xs`` (T, n_pre, B), all steps at once (in time
        chunks); ``graded`` (T,) bools mark the steps whose input went through the DAC;
        ``binary``: ``xs`` holds only 0/1 (spikes), so it is its own nonzero mask; ``steps``:
        the steps these inputs stand for (default T; a recurrent layer reads no input at
        step 0)."""
        self._steps += int(xs.shape[0] if steps is None else steps)
        if xs.shape[0] == 0:
            return
        t_all, n, b = xs.shape
        chunk = max(1, (1 << 24) // max(1, b))
        for t0 in range(0, t_all, chunk):
            xc = xs[t0:t0 + chunk]
            nz = xc if binary else xc.abs().sign()  # 0/1 of the same dtype
            per_pre = nz.sum(2).sum(0, dtype=torch.float64)  # partial sums ≤ B: exact
            self._nonzero += per_pre
            self._counts["stored_synaptic_events"] += (per_pre * self.outdeg).sum()
            if self.geometry is None:
                continue
            if graded is not None and any(graded[t0:t0 + chunk]):  # the read cycles of the drivers
                u = xbar.stream(xc, self.config, 1)[0]  # (K, t, n_pre, B)
                xbar.count_stream(self._counts, self.geometry, u.movedim(2, -1), ((xc != 0) & (xc != 1)).any(1))
            else:
                xbar.count_reads(self._counts, self.geometry, xbar.active_rows(nz, self.geometry, 1))

    def _mm(self, vals, x):
        if self.kernel == "csr":
            return torch.sparse.mm(vals, x)
        if self.kernel == "dense":
            return torch.mm(vals, x)
        n, k = self.index.shape
        b = x.shape[1]
        out = torch.empty((n, b), dtype=x.dtype, device=x.device)
        step = max(1, (1 << 26) // max(1, k * b))  # bounds the (chunk, K, B) gather
        for s in range(0, n, step):
            xi = x[self.index[s:s + step]]  # (c, K, B)
            v = vals[s:s + step]
            if x.is_cuda:
                out[s:s + step] = (xi * v[:, :, None]).sum(1)
            else:
                out[s:s + step] = torch.bmm(v[:, None, :], xi)[:, 0]
        return out

    def __call__(self, x: torch.Tensor, graded: bool = False) -> torch.Tensor:
        """Column currents of ``x`` (n_pre, B) through the crossbar periphery: the crossbar's
        (P = 1, N = B, out = n_post) layout is the transposed view ``y.T[None]``."""
        c = self.config
        if c is None:
            return self._mm(self.w, x)
        if not graded:
            y = self._convert(self._read(x))
        else:
            u, f, m = xbar.stream(x, c, 0)  # (K, n_pre, B): K read cycles, batched as K·B vectors
            k, b = u.shape[0], x.shape[1]
            y = self._convert(self._read(u.permute(1, 0, 2).reshape(self.n_pre, k * b)))
            y = xbar.recombine(y.reshape(self.n_post, k, b).transpose(0, 1), f, m)
        # the drift compensation's digital output scale, after the ADC as on the crossbar
        return y if self.compensation is None else y * self.compensation[:, None]

    def _read(self, x: torch.Tensor) -> torch.Tensor:
        """Analog column currents (n_post, B) of drives ``x`` (n_pre, B), read noise included."""
        c = self.config
        y = self._mm(self.w, x)
        if self.noise:
            x2 = x * x
            var = self._mm(self.g2, x2)
            if self.c0:
                var = var + self.c0 * x2.sum(0, keepdim=True)
            y = xbar.add_read_noise(y.T[None], var.T[None], c.read_noise, self.generator)[0].T
        return y

    def _convert(self, y: torch.Tensor) -> torch.Tensor:
        """Column currents (n_post, B) through the ADCs (unchanged without ADC)."""
        if self.adc is None:
            return y
        q, sat = self.adc(y.T[None])
        self._counts["adc_saturations"] += sat
        return q[0].T


def sparse_drift_compensation(dg0: torch.Tensor, dgt: torch.Tensor, n_pre: int, config: DeviceConfig):
    """:func:`.crossbar.drift_compensation` for stored synapses: ``dg0``/``dgt`` (2, n_post, K)
    (or (2, n_post, n_pre) dense) offsets at programming and at read time; the reference read
    also sees the ``2 · n_pre`` cells per output pair at ``g_min`` (undrifted outside the stored
    synapses, as this path models them). None for ``"none"``."""
    mode = config.drift_compensation
    if mode == "none":
        return None
    floor = 2.0 * n_pre * config.g_min
    r0, rt = dg0.sum((0, 2)) + floor, dgt.sum((0, 2)) + floor  # per output: both bit lines
    if mode == "global":
        r0, rt = r0.sum().expand_as(r0), rt.sum().expand_as(rt)
    return torch.where(rt > 0, r0 / rt.clamp(min=torch.finfo(torch.float64).tiny), torch.ones_like(r0))


# ------------------------------------------------------------------------------------ program
class SparseReservoirProgram:
    """A reservoir compiled for one target, simulated neuron-major with one product per
    layer and step: ``"reference"`` (the ideal weights, float32) or ``"rram"``
    (``mode="formed"``: the formed conductances read through the device model;
    ``"programmed"``: the ideal weights written with write-verify on the stored synapses,
    stuck cells compensated by their partner when ``config.fault_compensation``).
    Fixed-fan-in reservoirs run with ``kernel`` "csr" (default), "gather" or "dense"; dense
    reservoirs with "dense". ``run`` returns the same :class:`RunResult` as the Graph
    programs (output ``(B, T, N)`` spikes; counts per node). ADC ranges
    (``adc_range="calibrated"``) are calibrated as the Graph programs calibrate them
    (:meth:`calibrate`, or the first batch :meth:`run` sees). :meth:`save` / :meth:`load`
    store the reservoir, the compile arguments, the conductances when they differ from the
    formed ones (programmed or drifted) and the calibrated ADC ranges."""

    program_kind = "reservoir"

    def __init__(self, reservoir, target: str = "reference", mode: str = "formed", config: DeviceConfig | None = None,
                 seed: int = 0, device="cpu", dtype=torch.float32, kernel: str = "auto", _stored: dict | None = None):
        from ..reference import _device, _dtype

        if target not in ("reference", "rram"):
            raise InputError(f"LSM: target must be 'reference' or 'rram', got {target!r}")
        if mode not in ("formed", "programmed"):
            raise InputError(f"LSM: mode must be 'formed' or 'programmed', got {mode!r}")
        if kernel not in _KERNELS:
            raise InputError(f"LSM: kernel must be one of {', '.join(_KERNELS)}, got {kernel!r}")
        sparse = reservoir.sparse is not None
        if kernel == "auto":
            kernel = "csr" if sparse else "dense"
        if not sparse and kernel != "dense":
            raise InputError(f"LSM: a dense reservoir runs with kernel='dense', got {kernel!r}")
        self.reservoir = reservoir
        self.target = target
        self.mode = mode
        self.device = _device(device)
        self.dtype = _dtype(dtype)
        dtype = self.dtype
        self.seed = int(seed)
        self.kernel = kernel
        self.calibration_data: dict | None = None  # what the ADC ranges were calibrated on
        rc = reservoir.config
        cfg = (config or reservoir.device_config) if target == "rram" else None
        self.config = cfg
        if cfg is not None and cfg.wire_resistance > 0:
            raise UnsupportedError("reservoir program: IR drop (wire_resistance > 0) is not modelled on this path; "
                                   "compile a dense reservoir without kernel, or set wire_resistance=0")
        if cfg is not None and mode == "programmed" and cfg.slices > 1 and cfg.levels is not None:
            raise UnsupportedError("reservoir program: bit slicing (slices > 1) is not modelled on this path")
        self._compensation: dict[str, torch.Tensor | None] = {}  # drift compensation per layer
        cond = self._conductances() if _stored is None else {
            k: (torch.as_tensor(v["dg_pos"], dtype=torch.float64), torch.as_tensor(v["dg_neg"], dtype=torch.float64),
                float(v["scale"])) for k, v in _stored.items() if "dg_pos" in v}
        self.layers: dict[str, SparseLayer] = {}
        for name in ("w_in", "w_rec"):
            index, gp, gn, n_pre = self._source(name)
            s = reservoir.scale[name]
            if cfg is None:
                w64 = ((gp - gn) * s).to(torch.float32).to(torch.float64)  # the ideal float32 weights
                self.layers[name] = SparseLayer(index, w64, s, None, n_pre, dtype, self.device, kernel)
                continue
            if name in cond:
                gp, gn, s = cond[name]
                gp, gn = gp.to(index.device if index is not None else gp.device), gn.to(gp.device)
            gp_abs, gn_abs = gp + cfg.g_min, gn + cfg.g_min
            w64 = ((gp_abs - cfg.g_min) - (gn_abs - cfg.g_min)) * s
            g2 = (gp_abs ** 2 + gn_abs ** 2) * s ** 2 if cfg.read_noise > 0 else None
            layer = SparseLayer(index, w64, s, cfg, n_pre, dtype, self.device, kernel, g2=g2)
            if _stored is not None and "adc_range" in _stored.get(name, {}) and cfg.adc_calibrated:
                layer.set_adc_range(torch.as_tensor(_stored[name]["adc_range"]))
            comp = self._compensation.get(name)
            if _stored is not None and "compensation" in _stored.get(name, {}):
                comp = self._compensation[name] = torch.as_tensor(_stored[name]["compensation"], dtype=torch.float64)
            if comp is not None:
                layer.compensation = comp.to(device=self.device, dtype=dtype)
            self.layers[name] = layer
        n = rc.n_neurons
        tau = rc.dt / (1 - rc.decay)
        full = lambda v: np.full(n, v, np.float32)  # noqa: E731
        lif = nir.LIF(tau=full(tau), r=full(tau / rc.dt), v_leak=full(0.0), v_threshold=full(rc.threshold), v_reset=full(0.0))
        from ... import dynamics

        p = dynamics.prepare(lif, rc.dt, dtype, self.device)
        col = lambda t: None if t is None else t.reshape(-1, 1)  # noqa: E731  neuron-major
        self.params = replace(p, shape=(n, 1), **{f: col(getattr(p, f)) for f in ("a_mem", "r", "v_leak", "v_threshold", "v_reset")})

    def _source(self, name):
        """(index or None, dg_pos, dg_neg, n_pre) of the reservoir's formed layer ``name``."""
        r = self.reservoir
        if r.sparse is not None:
            w = r.sparse[name]
            return w.index, w.dg_pos, w.dg_neg, w.n_pre
        gp, gn = r.dg[name]
        return None, gp, gn, gp.shape[1]

    def _conductances(self) -> dict:
        """``{layer: (dg_pos, dg_neg, scale)}`` for the layers whose conductances are not the
        formed ones: write-verify (``mode="programmed"``) and/or drift. Deterministic in the
        program seed (layers in sorted order, the dense program's generator order)."""
        cfg = self.config
        if cfg is None or (self.mode == "formed" and not cfg.drifts):
            return {}
        gen = dev.make_generator(self.seed, self._source("w_in")[1].device)
        out = {}
        for name in ("w_in", "w_rec"):
            _, gp, gn, n_pre = self._source(name)
            s = self.reservoir.scale[name]
            if self.mode == "programmed":
                w = ((gp - gn) * s).to(torch.float32).to(torch.float64)
                s = dev.weight_scale(float(w.abs().max()) if w.numel() else 0.0, cfg)
                tp, tn = dev.weights_to_targets(w, s, cfg)
                dg, devices = dev.program_pair(tp, tn, cfg, gen)
                if cfg.drifts:
                    dg0, dg = dg, dev.drift(dg, devices, cfg)
                    self._compensation[name] = sparse_drift_compensation(dg0, dg, n_pre, cfg)
            else:
                devices = dev.DeviceArray.sample((2, *gp.shape), cfg.replace(stuck_on=0.0, stuck_off=0.0, d2d=0.0), gen, gp.device)
                dg0 = torch.stack([gp, gn])
                dg = dev.drift(dg0, devices, cfg)
                self._compensation[name] = sparse_drift_compensation(dg0, dg, n_pre, cfg)
            out[name] = (dg[0], dg[1], float(s))
        return out

    @property
    def tiles(self) -> dict[str, int]:
        return {n: l.tiles for n, l in self.layers.items()} if self.config is not None else {}

    def nbytes(self) -> int:
        """Bytes of the compiled weights on the run device."""
        return sum(l.nbytes() for l in self.layers.values())

    #: run options besides base.COMMON_RUN_OPTIONS
    run_options = {"seed": "read-noise seed (default: the program's seed + 1, as the dense RRAM program)",
                   "calibration": "inputs to calibrate the ADC ranges on before this run (replaces an earlier calibration)"}

    def describe(self) -> dict:
        """The protocol description (:func:`..base.describe_base`) of the reservoir's nodes
        ``input → w_in → lif ⇄ w_rec → output``: ``crossbars`` (the tiles the layers occupy
        laid out as a dense crossbar would, as the counts are), ``memory`` (stored synapses;
        cells on the rram target), ``calibration`` (None without ADC)."""
        rc = self.reservoir.config
        itemsize = torch.tensor([], dtype=self.dtype).element_size()
        weights = {n: int(l.outdeg.sum()) if self.reservoir.sparse is not None else l.n_pre * l.n_post
                   for n, l in self.layers.items()}
        layers = {"w_in": {"weights": weights["w_in"], "state_vars": 0, "bytes": weights["w_in"] * itemsize},
                  "lif": {"weights": 0, "state_vars": rc.n_neurons, "bytes": rc.n_neurons * itemsize},
                  "w_rec": {"weights": weights["w_rec"], "state_vars": 0, "bytes": weights["w_rec"] * itemsize}}
        w, s = sum(weights.values()), rc.n_neurons
        memory = {"weights": w, "state_vars": s, "weights_bytes": w * itemsize, "state_bytes": s * itemsize,
                  "total_bytes": (w + s) * itemsize, "bytes_per_weight": float(itemsize),
                  "bytes_per_state_var": float(itemsize), "layers": layers,
                  "method": f"stored synapses (fan-in {rc.fan_in}) and LIF potentials, {itemsize}-byte" if rc.sparse
                  else f"dense weights and LIF potentials, {itemsize}-byte"}
        bars = None
        if self.config is not None:
            bars = {n: l.geometry.describe(1, xbar.input_cycles(l.config)) for n, l in self.layers.items()}
            memory["cells"] = 2 * w  # the devices of the stored synapses (the others stay at g_min)
            memory["method"] += "; weights as conductance cells, 2 per stored synapse"
        nodes = ("input", "w_in", "lif", "w_rec", "output")
        return describe_base(
            self.target, None, dt=float(rc.dt), lag={n: 0 for n in nodes}, memory=memory, crossbars=bars,
            calibration=self._describe_calibration(),
            resources=None if bars is None else {"tiles": sum(b["tiles"] for b in bars.values())},
            run_options=self.run_options,
            compile_options={"mode": self.mode, "seed": self.seed, "kernel": self.kernel, "device": self.device,
                             "dtype": str(self.dtype).replace("torch.", ""),
                             "config": None if self.config is None else self.config.to_dict()})

    def _describe_calibration(self) -> dict | None:
        c = self.config
        if c is None or c.adc_bits is None:
            return None
        ranges = {n: r.tolist() for n, r in self.adc_ranges().items()}
        d = (self.calibration_data or {"data": None, "samples": 0, "steps": 0}) if c.adc_calibrated else \
            {"data": None, "samples": 0, "steps": 0}
        return {"adc_range": c.adc_range, "calibrated": c.adc_calibrated and not self.needs_calibration, **d,
                "ranges": ranges, "needs_data": c.adc_calibrated, "data_option": "calibration" if c.adc_calibrated else None}

    # --- ADC calibration -----------------------------------------------------------------
    @property
    def needs_calibration(self) -> bool:
        return any(l.needs_calibration for l in self.layers.values())

    def adc_ranges(self) -> dict[str, np.ndarray]:
        """Full scale per ADC group (column tiles) of each layer whose range is known."""
        return {n: l.adc_range.cpu().numpy() for n, l in self.layers.items() if l.adc_range is not None}

    def calibrate(self, x, data: str = "calibrate(x)") -> dict[str, np.ndarray]:
        """ADC calibration pass on inputs ``x`` (B, T, n_inputs), as
        :meth:`.program.RRAMProgram.calibrate`: ADCs bypassed, read noise from the
        calibration seed, each group's range = the largest |column current| it saw;
        ``data`` names the calibration data in :meth:`describe`."""
        xin, graded = self._prepare_inputs(x)
        cal = [(i, l) for i, (n, l) in enumerate(sorted(self.layers.items())) if l.adc is not None and l.config.adc_calibrated]
        if not cal:  # no calibrated ADC: nothing to do
            return self.adc_ranges()
        for i, layer in cal:
            layer.generator = dev.calibration_generator(self.seed, i, self.device)
            layer.begin_calibration()
        try:
            self._loop(xin, graded, [], False, None)
        except BaseException:
            for _, layer in cal:
                layer.abort_calibration()
            raise
        for _, layer in cal:
            layer.end_calibration()
        self.calibration_data = {"data": data, "samples": int(xin.shape[2]), "steps": int(xin.shape[0])}
        return self.adc_ranges()

    def _prepare_inputs(self, x):
        rc = self.reservoir.config
        x = as_inputs(x, ["input"], {"input": (rc.n_inputs,)}, self.dtype, self.device)["input"]
        xin = x.permute(1, 2, 0)  # (T, n_inputs, B); a column-major view is as fast on the CPU,
        if xin.is_cuda:  # cuSPARSE's CSR product is ~3× slower on column-major operands
            xin = xin.contiguous()
        graded = None
        if self.config is not None and self.config.input_resolution is not None:
            graded = ((xin != 0) & (xin != 1)).flatten(1).any(1).tolist()
        return xin, graded

    def _loop(self, xin, graded, recs_names, record_states, progress):
        """The time loop: spikes (T, N, B), records {name: [per step]}, membrane potentials."""
        from ... import dynamics

        steps, _, b = xin.shape
        n = self.reservoir.config.n_neurons
        out = torch.empty((steps, n, b), dtype=self.dtype, device=self.device)
        recs = {r: [] for r in recs_names if r != "lif"}
        vs = []
        state = {"v": torch.zeros((n, b), dtype=self.dtype, device=self.device)}  # v_init "zero", as the Graph programs
        z = torch.zeros((n, b), dtype=self.dtype, device=self.device)
        w_in, w_rec = self.layers["w_in"], self.layers["w_rec"]
        p = self.params
        with torch.no_grad():
            for t in range(steps):
                y_in = w_in(xin[t], bool(graded[t]) if graded else False)
                y_rec = w_rec(z)  # the previous step's spikes
                z, state = dynamics.step(y_in + y_rec, state, p, "zero")
                out[t] = z
                if recs:
                    if "w_in" in recs:
                        recs["w_in"].append(y_in)
                    if "w_rec" in recs:
                        recs["w_rec"].append(y_rec)
                if record_states:
                    vs.append(state["v"])
                if progress is not None:
                    progress(t + 1, steps)
        return out, recs, vs

    def run(self, x, record=None, record_states: bool = False, progress=None, **options) -> RunResult:
        """Simulate inputs ``x`` (B, T, n_inputs). ``record``: any of "lif", "w_in", "w_rec"
        ("all": the neuron node "lif", as every program); ``seed``: read-noise seed
        (default: the program's seed + 1, as the dense RRAM program); any other option is an
        InputError. Uncalibrated ADC ranges are first calibrated on ``x``."""
        check_options(f"{self.target} reservoir run", options, self.run_options)
        seed = options.get("seed")
        rc = self.reservoir.config
        names = ["lif", "w_in", "w_rec"]
        rec = ["lif"] if record == "all" else ([] if not record else ([record] if isinstance(record, str) else list(record)))
        for r in rec:
            if r not in names:
                raise InputError(f"cannot record node '{r}' of a reservoir program (nodes: {', '.join(names)})")
        xin, graded = self._prepare_inputs(x)
        if options.get("calibration") is not None:
            self.calibrate(options["calibration"], data="run(calibration=...)")
        elif self.needs_calibration:
            self.calibrate(x, data="the first batch run() saw (its own inputs)")
        steps, _, b = xin.shape
        n = rc.n_neurons
        rseed = self.seed + 1 if seed is None else int(seed)
        for i, (name, layer) in enumerate(sorted(self.layers.items())):
            layer.generator = dev.make_generator(rseed * 7919 + i, self.device)
            layer.reset_counts()
        out, recs, vs = self._loop(xin, graded, rec, record_states, progress)
        w_in, w_rec = self.layers["w_in"], self.layers["w_rec"]
        with torch.no_grad():
            w_in.count(xin, graded)
            w_rec.count(out[:-1], binary=True, steps=steps)  # step t reads the spikes of step t − 1 (none at t = 0)
            spikes = out.sum(2).sum(dtype=torch.float64)  # (T, N) partial sums ≤ B: exact
        spk = out.permute(2, 0, 1)  # (B, T, N)
        records = {k: torch.stack(v, 0).permute(2, 0, 1) for k, v in recs.items()}
        if "lif" in rec:
            records["lif"] = spk
        states = {"lif": torch.stack(vs, 0).permute(2, 0, 1)} if record_states else {}
        counts = {}
        for name, layer in self.layers.items():
            c = layer.counts(b)
            if self.config is not None:
                c["tiles"] = layer.tiles
            counts[name] = c
        counts["lif"] = {"neuron_updates": n * b * steps, "spikes": int(round(float(spikes)))}
        sp = self.reservoir.sparse
        info = {"dtype": str(self.dtype).replace("torch.", ""), "device": self.device, "sparse": sp is not None,
                "kernel": self.kernel}
        if sp is not None:
            info["fan_in"] = {k: int(sp[k].fan_in) for k in self.layers}
        if self.config is not None:
            info.update({"tiles": self.tiles, "adc_saturations": sum(c.get("adc_saturations", 0) for c in counts.values()),
                         "config": self.config.to_dict(), "seed": self.seed, "read_seed": rseed, "mode": self.mode})
        return RunResult(outputs={"output": spk}, records=records, states=states, counts=counts,
                         target=self.target, dt=rc.dt, batch=int(b), steps=int(steps), info=info)

    # --- persistence ---------------------------------------------------------------------
    def save(self, path) -> Path:
        """A directory: ``program.json`` (target, mode, seed, kernel, dtype, device config),
        ``reservoir/`` (:meth:`.lsm.Reservoir.save`: the formed conductances and sizes) and
        ``conductances.npz`` (per layer the programmed/drifted conductance offsets and
        scale when they differ from the formed ones, and the calibrated ADC ranges).
        :meth:`load` rebuilds the identical program."""
        from ...graph.io import write_json, write_npz

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.reservoir.save(d / "reservoir")
        arrays = {}
        for name, (gp, gn, s) in self._conductances().items():
            arrays[f"{name}/dg_pos"] = gp.cpu().numpy()
            arrays[f"{name}/dg_neg"] = gn.cpu().numpy()
            arrays[f"{name}/scale"] = np.asarray(s, np.float64)
            if self._compensation.get(name) is not None:
                arrays[f"{name}/compensation"] = self._compensation[name].cpu().numpy()
        if self.config is not None and self.config.adc_calibrated:
            for name, r in self.adc_ranges().items():
                arrays[f"{name}/adc_range"] = r

        write_npz(d / "conductances.npz", arrays)
        meta = {"target": self.target, "program": self.program_kind, "mode": self.mode, "seed": self.seed,
                "kernel": self.kernel, "dtype": str(self.dtype).replace("torch.", ""),
                "config": None if self.config is None else self.config.to_dict(),
                "calibration_data": self.calibration_data}
        write_json(d / "program.json", meta)
        return d

    @classmethod
    def load(cls, path, device="cpu") -> "SparseReservoirProgram":
        from .reservoir import Reservoir

        d = Path(path)
        if not (d / "program.json").exists():
            raise InputError(f"{d}: not a saved reservoir program (no program.json)")
        meta = json.loads((d / "program.json").read_text())
        if meta.get("program") != cls.program_kind:
            raise InputError(f"{d}: program.json is not a reservoir program (program={meta.get('program')!r})")
        reservoir = Reservoir.load(d / "reservoir")
        data = np.load(d / "conductances.npz")
        stored: dict = {}
        for key in data.files:
            n, _, field_ = key.rpartition("/")
            stored.setdefault(n, {})[field_] = data[key]
        config = None if meta["config"] is None else DeviceConfig(**meta["config"])
        prog = cls(reservoir, meta["target"], meta["mode"], config, meta["seed"], device, meta["dtype"],
                   kernel=meta["kernel"], _stored=stored)
        prog.calibration_data = meta.get("calibration_data")
        return prog


def load_program(path, device="cpu"):
    """Load a saved RRAM Graph program (:class:`.program.RRAMProgram`) or reservoir program
    (:class:`SparseReservoirProgram`), whichever ``path`` holds."""
    d = Path(path)
    if not (d / "program.json").exists():
        raise InputError(f"{d}: not a saved program (no program.json)")
    meta = json.loads((d / "program.json").read_text())
    if meta.get("program") == SparseReservoirProgram.program_kind:
        return SparseReservoirProgram.load(d, device)
    from .program import RRAMProgram

    return RRAMProgram.load(d, device)
