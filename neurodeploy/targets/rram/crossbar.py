r"""Weight matrices on RRAM crossbar tiles: the analog matrix-vector product and its periphery.

A :class:`Crossbar` holds one layer's matrix ``W`` (out × in) as programmed conductance
offsets of differential pairs (:mod:`.device`). Inputs drive rows, each output is a pair
of physical columns (``G+``, ``G−``); an array of ``rows × cols`` cells therefore holds a
``rows × cols/2`` block of ``W^T``. The matrix is cut into
``ceil(in/rows) × ceil(out/(cols/2))`` tiles; each tile's column currents are digitized by
a per-column ADC and the row tiles' partial sums are added digitally, followed by the
(digital) bias.

Per read (one input vector on one tile), in weight units (``s`` = weight per siemens):

* DAC: binary (spike) inputs drive the read voltage directly; graded inputs pass a
  ``dac_bits`` DAC (symmetric, range = the vector's max |x|).
* Column current ``y_j = s Σ_i x_i (G+_ij − G−_ij)`` (G after drift and IR drop).
* Read noise: every device read is ``G(1 + σ_r n)``; the column current is then exactly
  ``y_j + σ_r s sqrt(Σ_i x_i² (G+_ij² + G−_ij²)) n_j``, which is how it is sampled (one
  normal per column per read instead of one per device: same distribution).
* ADC: ``adc_bits`` signed mid-tread quantizer on ``[−R_g, R_g]`` (``n = 2^(b−1) − 1``
  codes each side, ``LSB = R_g/n``), one range per ADC group ``g`` = (bit slice, row tile,
  column tile of ``cols/2`` outputs). ``adc_range="calibrated"`` (default):
  ``R_g = max |y_j|`` over the calibration reads of the group's columns (observed column
  currents, read noise included, ADC bypassed), the worst case where a group saw no
  current; ``"worst"`` (alias ``"auto"``): ``R_g = max_{j∈g} Σ_i |W_ij|`` (never
  saturates for inputs in [0, 1]); a number ``f``: ``f`` × the worst case. Codes beyond
  ±n saturate and are counted. Calibration: :meth:`Crossbar.begin_calibration` /
  :meth:`Crossbar.end_calibration` around the reads of calibration data (the programs run
  a whole calibration pass); an uncalibrated crossbar called directly calibrates on that
  call's vectors.
* IR drop (optional, ``wire_resistance`` r > 0): each cell sees the series wire resistance
  ``R_ij = r ((j+1) + (rows − i))`` (cell pitches from the row driver and to the sense
  amplifier), so ``G_eff = G / (1 + G R_ij)`` — a first-order, load-independent
  approximation (no sneak-path or shared-line loading).

With no read noise, ADC or DAC the product is a plain float GEMM with the effective
matrix (``F.linear``), bit-identical to the reference target when the conductances are
ideal.

Counts accumulated per call (summed over batch, time, conv positions; the definitions of
``EXTRA_KINDS`` in :mod:`..base`): ``array_reads`` (tile reads with at least one active
row), ``rows_activated`` (active rows × column tiles), ``cell_reads`` (active rows × both
cells of every differential pair of the row: 2 × outputs × slices), ``adc_conversions``
(one per differential-pair column of every tile read), ``dac_conversions`` (graded rows
driven, × column tiles), ``adc_saturations``.

The periphery is written once here and shared with the fixed-fan-in path
(:mod:`.sparse`): :class:`TileGeometry` (tiles, ADC groups, the ``crossbars`` entry of
``describe()``), :func:`dac` (graded inputs), :func:`add_read_noise`, :class:`ADC` (range,
calibration, conversion, saturations) and :func:`count_reads` (the crossbar counts from the
active rows of each read).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import device as dev
from .device import DeviceConfig

COUNT_KINDS = ("array_reads", "rows_activated", "cell_reads", "adc_conversions", "dac_conversions", "adc_saturations")


@dataclass(frozen=True)
class TileGeometry:
    """How an ``out × in`` weight matrix sits on ``rows × 2·pairs`` arrays: inputs on rows,
    each output (and each bit slice of it) on a differential pair of columns."""

    in_features: int
    out_features: int
    slices: int
    rows: int  # word lines per array
    pairs: int  # differential pairs (weight columns) per array: array_cols // 2

    @classmethod
    def of(cls, in_features: int, out_features: int, config: DeviceConfig, slices: int = 1) -> "TileGeometry":
        return cls(int(in_features), int(out_features), int(slices), int(config.array_rows), int(config.array_cols) // 2)

    @property
    def row_tiles(self) -> int:
        return max(1, math.ceil(self.in_features / self.rows))

    @property
    def col_tiles(self) -> int:  # the bit slices of a weight sit in further column pairs
        return max(1, math.ceil(self.out_features * self.slices / self.pairs))

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles

    @property
    def adc_col_tiles(self) -> int:
        """Column tiles per slice: one ADC range per (slice, row tile, column tile)."""
        return max(1, math.ceil(self.out_features / self.pairs))

    @property
    def cells(self) -> int:
        """Programmed devices: both cells of every pair of every slice of every weight."""
        return 2 * self.slices * self.in_features * self.out_features

    def describe(self, reads_per_step: int = 1, input_cycles: int = 1) -> dict:
        """The ``crossbars`` entry of ``Program.describe()``: ``rows`` (word lines the matrix
        drives) and ``cols`` (bit lines: 2 × outputs × slices), the tiles of
        ``array_rows × array_cols`` arrays, ``reads_per_step`` (input vectors per sample and
        step: a convolution's output positions, else 1; each reads every tile once),
        ``input_cycles`` (read cycles of one graded non-negative input vector through the
        bit-serial drivers, :func:`input_cycles`; a binary one takes 1, a signed one twice)."""
        return {"input_cycles": int(input_cycles),
            "rows": self.in_features, "cols": 2 * self.out_features * self.slices,
            "row_tiles": self.row_tiles, "col_tiles": self.col_tiles, "tiles": self.tiles,
            "reads_per_step": int(reads_per_step), "cells_per_weight": 2 * self.slices,
            "in_features": self.in_features, "out_features": self.out_features, "slices": self.slices,
            "array_rows": self.rows, "array_cols": 2 * self.pairs, "cells": self.cells,
        }


def drift_compensation(g0: torch.Tensor, gt: torch.Tensor, config: DeviceConfig) -> torch.Tensor | None:
    """Digital output scale restoring drifted conductances (aihwkit's Global/PerColumn
    DriftCompensation): a reference read drives every row and reads each bit line; the scale
    is (reference current at programming) / (reference current at ``read_time``), summed
    over all bit lines (``"global"``: one scale per layer) or per output's pair of bit lines
    over its slices (``"per_column"``). ``g0``/``gt``: (2, slices, out, in) offsets at t0 and
    at read time. None for ``"none"``; noise-free reference reads."""
    mode = config.drift_compensation
    if mode == "none":
        return None
    ref = lambda g: (g + config.g_min).sum((0, 1, 3))  # noqa: E731 - per output, all bit lines
    r0, rt = ref(g0), ref(gt)
    if mode == "global":
        r0, rt = r0.sum().expand_as(r0), rt.sum().expand_as(rt)
    return torch.where(rt > 0, r0 / rt.clamp(min=torch.finfo(torch.float64).tiny), torch.ones_like(r0))


def active_rows(nz: torch.Tensor, geom: TileGeometry, dim: int) -> torch.Tensor:
    """Active rows per row tile: ``nz`` (0/1 or bool, input elements along ``dim``) →
    float64 with ``dim`` replaced by the row tiles (moved last)."""
    v = nz.movedim(dim, -1)
    pad = geom.row_tiles * geom.rows - geom.in_features
    if pad:
        v = F.pad(v, (0, pad))
    return v.reshape(*v.shape[:-1], geom.row_tiles, geom.rows).sum(-1, dtype=torch.float64)


def count_reads(counts: dict, geom: TileGeometry, rows_on: torch.Tensor, graded_rows=None) -> None:
    """Add the crossbar counts of reads whose active rows per (row tile, input vector) are
    ``rows_on`` (:func:`active_rows`); ``graded_rows``: how many of those rows went through
    a DAC (None: none). Every column tile of a row tile is read together."""
    rows = rows_on.sum(dtype=torch.float64)
    reads = (rows_on > 0).sum(dtype=torch.float64)
    counts["rows_activated"] += rows * geom.col_tiles
    counts["cell_reads"] += rows * (2 * geom.out_features * geom.slices)
    counts["array_reads"] += reads * geom.col_tiles
    counts["adc_conversions"] += reads * (geom.out_features * geom.slices)
    if graded_rows is not None:
        counts["dac_conversions"] += graded_rows * geom.col_tiles


def count_stream(counts: dict, geom: TileGeometry, u: torch.Tensor, graded: torch.Tensor) -> None:
    """:func:`count_reads` of bit-serial drives ``u`` (K cycles, ..., in) (:func:`stream`):
    every cycle with an active row is a read; the active rows of vectors marked ``graded``
    (``u.shape[1:-1]`` bools) are DAC drives."""
    rows_on = active_rows(u != 0, geom, u.ndim - 1)  # (K, ..., row tiles)
    count_reads(counts, geom, rows_on, (rows_on.sum(-1) * graded).sum(dtype=torch.float64))


def graded_rows(x: torch.Tensor, rows_on: torch.Tensor, dim: int) -> torch.Tensor:
    """Active rows of the input vectors with a graded (non-binary) element, the rows a DAC
    drives (a binary vector passes the DAC unchanged and is not counted), whatever else is
    in the batch. ``x``: elements along ``dim``; ``rows_on``: :func:`active_rows` of it."""
    g = ((x != 0) & (x != 1)).any(dim)
    return (rows_on.sum(-1) * g).sum(dtype=torch.float64)


def zero_counts(device, kinds=COUNT_KINDS) -> dict:
    return {k: torch.zeros((), dtype=torch.float64, device=device) for k in kinds}


def input_lsb(xmax: torch.Tensor, n: int) -> torch.Tensor:
    """The smallest power of two ``lsb`` with ``xmax <= n · lsb`` (exact, via frexp): the
    digital input's fixed-point step, so integer and dyadic inputs are coded exactly."""
    m, e = torch.frexp(xmax.clamp(min=torch.finfo(xmax.dtype).tiny) / n)
    return torch.ldexp(torch.ones_like(m), torch.where(m == 0.5, e - 1, e))


def stream(x: torch.Tensor, config: DeviceConfig, dim: int):
    """The input drivers of vectors ``x`` (elements along ``dim``): read-cycle drives.

    A graded vector is coded on ``b = config.input_resolution`` bits, sign included:
    ``code = round(x / lsb)`` in ``[−n, n]``, ``n = 2^(b−1) − 1``, ``lsb`` the power of two
    of :func:`input_lsb` (per vector). Its magnitude is streamed in ``d = dac_bits`` -bit
    digits, least significant first, ``C = ceil((b−1)/d)`` cycles per sign (positive parts,
    then negative parts when there are any); a cycle drives ``digit / dmax`` of the read
    voltage (``dmax = min(2^d − 1, n)``). A binary (0/1) vector drives itself in one cycle.

    Returns ``(u, f, m)``: drives ``u`` (K, *x.shape) in [0, 1], per-vector factors ``f``
    (x.shape with ``dim`` of size 1) and cycle weights ``m`` (K,) such that the coded input is
    ``f · Σ_k m_k u_k`` — exactly ``x`` for inputs on the ``lsb`` grid (shift-and-add of the
    cycles' digital results). ``input_resolution`` None: ``u = x[None]`` (exact drive)."""
    bits = config.input_resolution
    one = torch.ones((), dtype=x.dtype, device=x.device)
    if bits is None:
        return x[None], one, torch.ones(1, dtype=x.dtype, device=x.device)
    mb = max(bits - 1, 1)
    n = 2 ** mb - 1
    d = min(config.dac_bits or mb, mb)
    cycles, base = math.ceil(mb / d), 2 ** d
    dmax = min(base - 1, n)
    lsb = input_lsb(x.abs().amax(dim, keepdim=True), n)
    code = torch.round(x / lsb).clamp_(-n, n)
    signs = (1.0, -1.0) if bool((code < 0).any()) else (1.0,)
    powers = torch.tensor([float(base ** k) for k in range(cycles)], dtype=x.dtype, device=x.device)
    shape = (cycles,) + (1,) * x.ndim
    u = torch.cat([torch.remainder(torch.div((s * code).clamp(min=0)[None], powers.reshape(shape), rounding_mode="floor"), base)
                   for s in signs]) / dmax
    m = torch.cat([s * dmax * powers for s in signs])
    binary = ((x == 0) | (x == 1)).all(dim, keepdim=True)
    if bool(binary.any()):
        first = torch.zeros_like(u)
        first[0] = x
        u = torch.where(binary[None], first, u)
        lsb = torch.where(binary, one / dmax, lsb)
    return u, lsb, m


def input_cycles(config: DeviceConfig) -> int:
    """Read cycles per sign of a graded input vector (:func:`stream`): ceil((b−1)/dac_bits)."""
    bits = config.input_resolution
    if bits is None:
        return 1
    mb = max(bits - 1, 1)
    return math.ceil(mb / min(config.dac_bits or mb, mb))


def recombine(y: torch.Tensor, f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Shift-and-add of digitized cycle results ``y`` (K, ...) with cycle weights ``m`` and
    per-vector factors ``f`` (broadcast against ``y[0]``)."""
    return torch.tensordot(m.to(y.dtype), y, dims=1) * f


def dac(x: torch.Tensor, config: DeviceConfig, dim: int) -> torch.Tensor:
    """The input as the drivers code it (:func:`stream` recombined without a crossbar)."""
    u, f, m = stream(x, config, dim)
    return recombine(u, f, m)


def add_read_noise(y: torch.Tensor, var: torch.Tensor, sigma: float, generator) -> torch.Tensor:
    """``y + σ sqrt(var) n`` with one normal per column current (``y``, ``var``: (P, N, out)
    partial sums × vectors × columns, drawn in that order), in place on ``var``."""
    noise = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
    return y + var.clamp_(min=0).sqrt_().mul_(sigma).mul_(noise)


class ADC:
    """The per-column ADCs of one layer: a signed mid-tread quantizer of ``adc_bits`` with
    ``n = 2^(b−1) − 1`` codes each side, one full scale ``R`` per group = (partial sum ``p``,
    column tile of ``pairs`` columns). Column currents come as (P, N, out): P partial sums
    (slice × row tile), N input vectors, ``out`` columns.

    ``worst`` (P, out): each column's worst-case current Σ|W|, the range where a calibrated
    group saw no current and ``adc_range="worst"``'s. Calibration (:meth:`begin_calibration`
    … :meth:`end_calibration`) records the largest |current| per column while reads bypass
    the conversion; an ADC converting before any range is set calibrates on that call."""

    def __init__(self, config: DeviceConfig, worst: torch.Tensor, pairs: int, dtype):
        self.n = max(2 ** (config.adc_bits - 1) - 1, 1)
        self.parts, self.out = (int(v) for v in worst.shape)
        self.pairs = int(pairs)
        self.groups = (self.parts, max(1, math.ceil(self.out / self.pairs)))
        self.dtype = dtype
        self.worst = self.group_max(worst)
        self.range: torch.Tensor | None = None  # (P, CT) float64
        self.lsb: torch.Tensor | None = None  # (P, 1, out) in dtype
        self.calibrating = False
        if config.adc_fraction is not None:
            self.set_range(self.worst * config.adc_fraction)

    def group_max(self, per_col: torch.Tensor) -> torch.Tensor:
        """(P, out) per-column values → (P, CT) maxima per column tile."""
        P, CT = self.groups
        v = F.pad(per_col.to(torch.float64), (0, CT * self.pairs - self.out))
        return v.reshape(P, CT, self.pairs).amax(-1)

    def set_range(self, rng) -> None:
        r = torch.as_tensor(rng, dtype=torch.float64, device=self.worst.device).reshape(-1)
        r = r.reshape(self.groups) if r.numel() == self.parts * self.groups[1] else r.expand(self.groups)
        if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
            raise ValueError("ADC ranges must be finite and >= 0")
        self.range = r.clone()
        per_col = self.range[:, torch.arange(self.out, device=r.device) // self.pairs]  # (P, out)
        self.lsb = (torch.clamp(per_col, min=torch.finfo(torch.float32).tiny) / self.n).to(self.dtype)[:, None, :]

    def begin_calibration(self) -> None:
        self._max = torch.zeros((self.parts, self.out), dtype=torch.float64, device=self.worst.device)
        self.calibrating = True

    def abort_calibration(self) -> None:
        self.calibrating = False

    def end_calibration(self) -> None:
        """Each group's range = the largest current seen (the worst case where it saw none)."""
        if not self.calibrating:
            return
        obs = self.group_max(self._max)
        self.calibrating = False
        del self._max
        self.set_range(torch.where(obs > 0, obs, self.worst))

    def _observe(self, y: torch.Tensor) -> None:
        if y.shape[1]:
            self._max = torch.maximum(self._max, y.abs().amax(1).to(torch.float64))

    def __call__(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """Convert column currents ``y`` (P, N, out): (digitized y, saturated conversions).
        A read with no active row carries y = 0 exactly: never saturated."""
        if self.calibrating:
            self._observe(y)
            return y, 0.0
        if self.lsb is None:  # never calibrated: calibrate on these reads
            self.begin_calibration()
            self._observe(y)
            self.end_calibration()
        code = torch.div(y, self.lsb).round_()
        sat = (code.abs() > self.n).sum(dtype=torch.float64)
        return code.clamp_(-self.n, self.n).mul_(self.lsb), sat


class Crossbar:
    """One weight matrix programmed on tiles. Build with :meth:`program` (write-verify
    of given weights) or :meth:`from_conductances` (e.g. formed random conductances)."""

    def __init__(self, dg_pos, dg_neg, scale, config: DeviceConfig, *, devices=None,
                 dtype=torch.float32, device="cpu", sparse: bool = False):
        self.config = config
        dg_pos, dg_neg = torch.as_tensor(dg_pos), torch.as_tensor(dg_neg)
        dg_pos = dg_pos[None] if dg_pos.ndim == 2 else dg_pos  # one slice
        dg_neg = dg_neg[None] if dg_neg.ndim == 2 else dg_neg
        self.dg_pos = dg_pos.to(device=device, dtype=torch.float64)  # (slices, out, in)
        self.dg_neg = dg_neg.to(device=device, dtype=torch.float64)
        self.scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1).to(device)
        if len(self.scales) != self.dg_pos.shape[0]:
            raise ValueError(f"{len(self.scales)} scales for {self.dg_pos.shape[0]} slices")
        self.slices = int(self.dg_pos.shape[0])
        self.scale = float(self.scales[0])  # weight per siemens of the least significant slice
        self.devices = devices
        self.dtype, self.device = dtype, device
        self.out_features, self.in_features = (int(v) for v in self.dg_pos.shape[1:])
        self.geometry = TileGeometry.of(self.in_features, self.out_features, config, self.slices)
        self.rows = self.geometry.rows
        self.cols = self.geometry.pairs  # weight columns per tile (pairs)
        self.row_tiles, self.col_tiles = self.geometry.row_tiles, self.geometry.col_tiles
        self.generator: torch.Generator | None = None
        self.adc: ADC | None = None
        self._prepare(sparse)
        self.reset_counts()

    # --- construction --------------------------------------------------------------------
    @classmethod
    def program(cls, weight, config: DeviceConfig, gen: torch.Generator, **kw) -> "Crossbar":
        """Program ``weight`` (out × in) with write-verify (levels, programming noise,
        device bounds, stuck-at faults; see :func:`.device.program`). With ``levels`` and
        ``slices = k > 1`` each |weight| is quantized to ``levels**k`` codes whose base-
        ``levels`` digits are written on ``k`` pairs (bit slicing), recombined digitally."""
        w = torch.as_tensor(weight).to(torch.float64)
        wmax = float(w.abs().max()) if w.numel() else 0.0
        if config.levels is not None and config.slices > 1 and wmax > 0:
            L, k = config.levels, config.slices
            top = L ** k - 1
            code = torch.round(w.abs() / wmax * top)
            step = config.window / (L - 1)
            digits = torch.stack([torch.remainder(torch.div(code, L ** j, rounding_mode="floor"), L) for j in range(k)])
            pos = (w > 0)[None]
            tp = torch.where(pos, digits * step, torch.zeros_like(digits))
            tn = torch.where(pos, torch.zeros_like(digits), digits * step)
            scales = [wmax * L ** j / (top * step) for j in range(k)]
        else:
            scale = dev.weight_scale(wmax, config)
            tp, tn = dev.weights_to_targets(w, scale, config)
            tp, tn, scales = tp[None], tn[None], [scale]
        dg, devices = dev.program_pair(tp, tn, config, gen)  # fault compensation per config
        return cls(dg[0], dg[1], scales, config, devices=devices, **kw)

    @classmethod
    def from_conductances(cls, dg_pos, dg_neg, scale, config: DeviceConfig, gen: torch.Generator | None = None, **kw):
        """Place given conductance offsets (no programming step); drift exponents are
        still drawn (from ``gen``) when the config drifts."""
        devices = None
        dg_pos = torch.as_tensor(dg_pos)
        dg_pos = dg_pos[None] if dg_pos.ndim == 2 else dg_pos
        if config.drifts:
            gen = gen or dev.make_generator(0)
            devices = dev.DeviceArray.sample((2, *dg_pos.shape), config.replace(stuck_on=0.0, stuck_off=0.0, d2d=0.0), gen, dg_pos.device)
        return cls(dg_pos, dg_neg, scale, config, devices=devices, **kw)

    def _prepare(self, sparse: bool):
        c = self.config
        gp, gn = self.dg_pos, self.dg_neg
        self.compensation = None
        if self.devices is not None and c.drifts:
            d = dev.drift(torch.stack([gp, gn]), self.devices, c)
            self.compensation = drift_compensation(torch.stack([gp, gn]), d, c)
            gp, gn = d[0], d[1]
        gp_abs, gn_abs = gp + c.g_min, gn + c.g_min
        if c.wire_resistance > 0:
            i = torch.arange(self.in_features, device=gp.device) % self.rows
            j = torch.arange(self.out_features, device=gp.device) % self.cols
            rows_in_tile = self.rows
            r_p = c.wire_resistance * ((2 * j + 1)[:, None] + (rows_in_tile - i)[None, :]).to(torch.float64)
            r_n = r_p + c.wire_resistance
            gp_abs = gp_abs / (1 + gp_abs * r_p)
            gn_abs = gn_abs / (1 + gn_abs * r_n)
        sc = self.scales[:, None, None]
        # effective weight per slice (float64), exact w when nothing perturbs the conductances
        w_sl = ((gp_abs - c.g_min) - (gn_abs - c.g_min)) * sc  # (S, out, in)
        w_eff = w_sl[0] if self.slices == 1 else w_sl.sum(0)
        if self.compensation is not None:  # a digital output scale: folded into the ideal product
            w_eff = w_eff * self.compensation.reshape(-1, 1)
            self.compensation = self.compensation.to(self.dtype)
        self.weight64 = w_eff
        self.weight = w_eff.to(self.dtype)
        self.fast = c.read_noise == 0 and c.adc_bits is None
        self.sparse = bool(sparse) and self.slices == 1
        if self.sparse:
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                self.weight_sparse = self.weight.to_sparse_csr()
        pad = self.row_tiles * self.rows - self.in_features
        self._pad = pad
        S, O, T, R = self.slices, self.out_features, self.row_tiles, self.rows

        def tiles(a):  # (S, out, in) → (S·T, rows, out): one partial sum per (slice, row tile)
            return F.pad(a, (0, pad)).reshape(S, O, T, R).permute(0, 2, 3, 1).reshape(S * T, R, O).contiguous()

        self._wt = tiles(w_sl).to(self.dtype)
        self._g2_sparse = None
        g2 = (gp_abs ** 2 + gn_abs ** 2) * sc ** 2 if c.read_noise > 0 else None
        if self.sparse and c.read_noise > 0 and self.row_tiles == 1 and c.g_min == 0:  # G² as sparse as W
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self._g2_sparse = g2[0].to(self.dtype).to_sparse_csr()
        if c.read_noise > 0:
            self._g2 = tiles(g2).to(self.dtype)
        if c.adc_bits is not None:  # worst-case column sum per (slice, row tile), column
            colsum = F.pad(w_sl.abs(), (0, pad)).reshape(S, O, T, R).sum(3).transpose(1, 2).reshape(S * T, O)
            old = self.adc.range if self.adc is not None else None  # _prepare again keeps a set range
            self.adc = ADC(c, colsum, self.cols, self.dtype)
            if old is not None:
                self.adc.set_range(old)

    @property
    def tiles(self) -> int:
        return self.geometry.tiles

    # --- ADC range -----------------------------------------------------------------------
    @property
    def adc_groups(self) -> tuple[int, int, int]:
        """(slices, row tiles, column tiles per slice): one ADC range per group."""
        return self.slices, self.row_tiles, self.geometry.adc_col_tiles

    @property
    def adc_range(self) -> torch.Tensor | None:
        """Full scale ``R`` (weight units) per ADC group, (slices, row tiles, column tiles);
        None while a calibrated range is not yet calibrated, or without an ADC."""
        if self.adc is None or self.adc.range is None:
            return None
        return self.adc.range.reshape(self.adc_groups)

    @property
    def needs_calibration(self) -> bool:
        return self.config.adc_calibrated and self.adc is not None and self.adc.range is None

    def set_adc_range(self, rng) -> None:
        """Set the full scale per ADC group ((S, T, CT) or broadcastable; weight units)."""
        S, T, CT = self.adc_groups
        r = torch.as_tensor(rng, dtype=torch.float64, device=self.dg_pos.device).expand(S, T, CT)
        self.adc.set_range(r.reshape(S * T, CT))

    def begin_calibration(self) -> None:
        """Start an ADC calibration pass: reads bypass the ADC (the rest of the read path is
        unchanged) and the largest |column current| is recorded per column."""
        if self.adc is not None:
            self.adc.begin_calibration()

    def end_calibration(self) -> None:
        """Set each ADC group's range to the largest current seen (the worst case where the
        group saw none) and leave calibration mode."""
        if self.adc is not None:
            self.adc.end_calibration()

    def abort_calibration(self) -> None:
        if self.adc is not None:
            self.adc.abort_calibration()

    def conductances(self):
        """Absolute conductances (S) of the positive and negative arrays, (out × in), or
        (slices × out × in) when bit-sliced."""
        gp, gn = self.dg_pos + self.config.g_min, self.dg_neg + self.config.g_min
        return (gp[0], gn[0]) if self.slices == 1 else (gp, gn)

    # --- counting ------------------------------------------------------------------------
    def reset_counts(self):
        self._counts = zero_counts(self.device)

    def counts(self) -> dict:
        return {k: int(round(float(v))) for k, v in self._counts.items()}

    def is_graded(self, x: torch.Tensor) -> bool:
        """True when ``x`` is not binary and the input drivers are modelled."""
        return self.config.input_resolution is not None and bool(((x != 0) & (x != 1)).any())

    def is_fast(self, x: torch.Tensor) -> bool:
        """True when the product of ``x`` is a plain float GEMM (no per-read effects)."""
        return self.fast and not self.is_graded(x)

    # --- the product ---------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None, dense_fast=None) -> torch.Tensor:
        """``x``: (N, in) → (N, out) = x Wᵀ (+ digital ``bias``) through the crossbar.
        ``dense_fast(x)``, when given, computes the ideal product instead of ``F.linear``
        (the conv op passes the reference convolution)."""
        c = self.config
        graded = self.is_graded(x)
        if not graded:
            count_reads(self._counts, self.geometry, active_rows(x != 0, self.geometry, 1))
            if self.fast:
                if dense_fast is not None:
                    return dense_fast()
                if self.sparse:
                    y = torch.sparse.mm(self.weight_sparse, x.T).T
                    return y if bias is None else y + bias
                return F.linear(x, self.weight, bias)
            y = self._convert(self._read(x)).sum(0)
        else:
            u, f, m = stream(x, c, 1)  # (K, N, in) drives of K read cycles
            count_stream(self._counts, self.geometry, u, ((x != 0) & (x != 1)).any(1))
            k, n_vec = u.shape[:2]
            y = self._convert(self._read(u.reshape(k * n_vec, -1)))  # (P, K·N, out)
            y = recombine(y.reshape(y.shape[0], k, n_vec, -1).transpose(0, 1), f, m).sum(0)
        if self.compensation is not None:
            y = y * self.compensation
        return y if bias is None else y + bias

    def _convert(self, y: torch.Tensor) -> torch.Tensor:
        """Column currents (P, N, out) through the ADCs (unchanged without ADC)."""
        if self.adc is None:
            return y
        y, sat = self.adc(y)
        self._counts["adc_saturations"] += sat
        return y

    def _read(self, x: torch.Tensor) -> torch.Tensor:
        """Analog column currents (S·T, N, out) of inputs ``x`` (N, in), read noise included."""
        n_vec = x.shape[0]
        xp = F.pad(x, (0, self._pad)) if self._pad else x
        xt = xp.reshape(n_vec, self.row_tiles, self.rows).transpose(0, 1)  # (T, N, rows)
        sparse1 = self.sparse and self.row_tiles == 1  # one row tile: the whole product
        x1 = xt[0, :, :self.in_features] if sparse1 else None
        if self.slices > 1:
            xt = xt.repeat(self.slices, 1, 1)  # every slice reads the same rows
        y = torch.sparse.mm(self.weight_sparse, x1.T).T[None] if sparse1 else torch.bmm(xt, self._wt)  # (S·T, N, out)
        if self.config.read_noise > 0:
            if sparse1 and self._g2_sparse is not None:
                var = torch.sparse.mm(self._g2_sparse, (x1 * x1).T).T[None]
            else:
                var = torch.bmm(xt * xt, self._g2)
            y = add_read_noise(y, var, self.config.read_noise, self.generator)
        return y


# ---------------------------------------------------------------------------------------
def conv_padding(padding, kernel, dilation):
    """Explicit (left, right) padding per spatial dim for an int/tuple or 'same'/'valid'."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out.append((total // 2, total - total // 2))
        return out
    return [(int(p), int(p)) for p in padding]


def unfold_input(x, kernel, stride, padding, dilation):
    """(B, C, *spatial) → (B·L, C·prod(kernel)) patches (1-D convs as 2-D with height 1)."""
    nd = len(kernel)
    if nd == 1:
        x = x.unsqueeze(2)
        kernel, stride, dilation = (1, kernel[0]), (1, stride[0]), (1, dilation[0])
        padding = [(0, 0)] + list(padding)
    pads = []
    for lo, hi in reversed(padding):
        pads += [lo, hi]
    if any(pads):
        x = F.pad(x, pads)
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (B, C·k, L)
    b, ck, L = cols.shape
    return cols.transpose(1, 2).reshape(b * L, ck), L
