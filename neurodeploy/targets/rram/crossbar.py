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

Counts accumulated per call (summed over batch, time, conv positions): ``array_reads``
(tile reads with at least one active row), ``rows_activated``, ``cell_reads`` (devices
read: active rows × both columns of every pair), ``adc_conversions``
(columns converted), ``dac_conversions`` (graded rows driven), ``adc_saturations``.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from . import device as dev
from .device import DeviceConfig

COUNT_KINDS = ("array_reads", "rows_activated", "cell_reads", "adc_conversions", "dac_conversions", "adc_saturations")


class Crossbar:
    """One weight matrix programmed on tiles. Build with :meth:`program` (write-verify
    of given weights) or :meth:`from_conductances` (e.g. formed random conductances)."""

    def __init__(self, dg_pos, dg_neg, scale, config: DeviceConfig, *, devices=None,
                 dtype=torch.float32, device="cpu", sparse: bool = False):
        self.config = config
        dg_pos, dg_neg = torch.as_tensor(dg_pos), torch.as_tensor(dg_neg)
        if dg_pos.ndim == 2:  # one slice
            dg_pos, dg_neg = dg_pos[None], dg_neg[None]
        self.dg_pos = dg_pos.to(device=device, dtype=torch.float64)  # (slices, out, in)
        self.dg_neg = dg_neg.to(device=device, dtype=torch.float64)
        self.scales = torch.as_tensor(scale, dtype=torch.float64).reshape(-1).to(device)
        if len(self.scales) != self.dg_pos.shape[0]:
            raise ValueError(f"{len(self.scales)} scales for {self.dg_pos.shape[0]} slices")
        self.slices = int(self.dg_pos.shape[0])
        self.scale = float(self.scales[0])  # weight per siemens of the least significant slice
        self.devices = devices
        self.dtype, self.device = dtype, device
        self.out_features, self.in_features = self.dg_pos.shape[1:]
        self.rows = int(config.array_rows)
        self.cols = int(config.array_cols) // 2  # weight columns per tile (pairs)
        self.row_tiles = max(1, math.ceil(self.in_features / self.rows))
        # bit slices of one weight sit in further column pairs
        self.col_tiles = max(1, math.ceil(self.out_features * self.slices / self.cols))
        self.generator: torch.Generator | None = None
        self._adc_range = None  # (S, T, CT) float64 full scale per ADC group, once known
        self._calibrating = False
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
        if self.devices is not None and c.drifts:
            d = dev.drift(torch.stack([gp, gn]), self.devices, c)
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
        self._adc_lsb = None
        if c.adc_bits is not None:
            colsum = F.pad(w_sl.abs(), (0, pad)).reshape(S, O, T, R).sum(3).transpose(1, 2)  # (S, T, out)
            self._adc_worst = self._group_max(colsum)  # worst-case column sum per ADC group (S, T, CT)
            self._adc_n = max(2 ** (c.adc_bits - 1) - 1, 1)
            if c.adc_fraction is not None:
                self._adc_range = self._adc_worst * c.adc_fraction
            if self._adc_range is not None:
                self.set_adc_range(self._adc_range)

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles

    # --- ADC range -----------------------------------------------------------------------
    @property
    def adc_groups(self) -> tuple[int, int, int]:
        """(slices, row tiles, column tiles per slice): one ADC range per group."""
        return self.slices, self.row_tiles, max(1, math.ceil(self.out_features / self.cols))

    def _group_max(self, per_col: torch.Tensor) -> torch.Tensor:
        """(S, T, out) per-column values → (S, T, CT) maxima per column tile."""
        S, T, CT = self.adc_groups
        v = F.pad(per_col.to(torch.float64), (0, CT * self.cols - self.out_features))
        return v.reshape(S, T, CT, self.cols).amax(-1)

    @property
    def adc_range(self) -> torch.Tensor | None:
        """Full scale ``R`` (weight units) per ADC group, (slices, row tiles, column tiles);
        None while a calibrated range is not yet calibrated, or without an ADC."""
        return None if self.config.adc_bits is None else self._adc_range

    @property
    def needs_calibration(self) -> bool:
        return self.config.adc_calibrated and self._adc_range is None

    def set_adc_range(self, rng) -> None:
        """Set the full scale per ADC group ((S, T, CT) or broadcastable; weight units)."""
        S, T, CT = self.adc_groups
        r = torch.as_tensor(rng, dtype=torch.float64, device=self.dg_pos.device).expand(S, T, CT).clone()
        if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
            raise ValueError("ADC ranges must be finite and >= 0")
        self._adc_range = r
        per_col = r[:, :, torch.arange(self.out_features, device=r.device) // self.cols]  # (S, T, out)
        rng_ = torch.clamp(per_col, min=torch.finfo(torch.float32).tiny)
        self._adc_lsb = (rng_ / self._adc_n).to(self.dtype).reshape(S * T, 1, self.out_features)

    def begin_calibration(self) -> None:
        """Start an ADC calibration pass: reads bypass the ADC (the rest of the read path is
        unchanged) and the largest |column current| is recorded per column."""
        if self.config.adc_bits is None:
            return
        S, T, _ = self.adc_groups
        self._cal_max = torch.zeros((S * T, self.out_features), dtype=torch.float64, device=self.dg_pos.device)
        self._calibrating = True

    def end_calibration(self) -> None:
        """Set each ADC group's range to the largest current seen (the worst case where the
        group saw none) and leave calibration mode."""
        if not self._calibrating:
            return
        S, T, _ = self.adc_groups
        obs = self._group_max(self._cal_max.reshape(S, T, self.out_features))
        self._calibrating = False
        del self._cal_max
        self.set_adc_range(torch.where(obs > 0, obs, self._adc_worst))

    def conductances(self):
        """Absolute conductances (S) of the positive and negative arrays, (out × in), or
        (slices × out × in) when bit-sliced."""
        gp, gn = self.dg_pos + self.config.g_min, self.dg_neg + self.config.g_min
        return (gp[0], gn[0]) if self.slices == 1 else (gp, gn)

    # --- counting ------------------------------------------------------------------------
    def reset_counts(self):
        z = lambda: torch.zeros((), dtype=torch.float64, device=self.device)  # noqa: E731
        self._counts = {k: z() for k in COUNT_KINDS}

    def counts(self) -> dict:
        return {k: int(round(float(v))) for k, v in self._counts.items()}

    def is_graded(self, x: torch.Tensor) -> bool:
        """True when ``x`` is not binary and a DAC is modelled."""
        return self.config.dac_bits is not None and bool(((x != 0) & (x != 1)).any())

    def is_fast(self, x: torch.Tensor) -> bool:
        """True when the product of ``x`` is a plain float GEMM (no per-read effects)."""
        return self.fast and not self.is_graded(x)

    # --- the product ---------------------------------------------------------------------
    def __call__(self, x: torch.Tensor, bias: torch.Tensor | None = None, dense_fast=None) -> torch.Tensor:
        """``x``: (N, in) → (N, out) = x Wᵀ (+ digital ``bias``) through the crossbar.
        ``dense_fast(x)``, when given, computes the ideal product instead of ``F.linear``
        (the conv op passes the reference convolution)."""
        c = self.config
        n_vec = x.shape[0]
        xp = F.pad(x, (0, self._pad)) if self._pad else x
        xt = xp.reshape(n_vec, self.row_tiles, self.rows).transpose(0, 1)  # (T, N, rows)
        active = xt != 0
        rows_on = active.sum(-1, dtype=torch.float64)  # (T, N)
        reads = (rows_on > 0).to(torch.float64)
        cnt = self._counts
        cnt["rows_activated"] += rows_on.sum() * self.col_tiles
        cnt["cell_reads"] += rows_on.sum() * (2 * self.out_features * self.slices)
        cnt["array_reads"] += reads.sum() * self.col_tiles
        cnt["adc_conversions"] += reads.sum() * (self.out_features * self.slices)
        graded = self.is_graded(x)
        if graded:
            cnt["dac_conversions"] += rows_on.sum() * self.col_tiles
        if self.fast and not graded:
            if dense_fast is not None:
                return dense_fast()
            if self.sparse:
                y = torch.sparse.mm(self.weight_sparse, x.T).T
                return y if bias is None else y + bias
            return F.linear(x, self.weight, bias)
        if graded:
            n = max(2 ** (c.dac_bits - 1) - 1, 1)
            xmax = xt.abs().amax(dim=(0, 2), keepdim=True).clamp(min=torch.finfo(x.dtype).tiny)
            xt = torch.round(xt / xmax * n) * (xmax / n)
        sparse1 = self.sparse and self.row_tiles == 1  # one row tile: the whole product
        x1 = xt[0, :, :self.in_features] if sparse1 else None
        if self.slices > 1:
            xt = xt.repeat(self.slices, 1, 1)  # every slice reads the same rows
            reads = reads.repeat(self.slices, 1)
        y = torch.sparse.mm(self.weight_sparse, x1.T).T[None] if sparse1 else torch.bmm(xt, self._wt)  # (S·T, N, out)
        if c.read_noise > 0:
            if sparse1 and self._g2_sparse is not None:
                var = torch.sparse.mm(self._g2_sparse, (x1 * x1).T).T[None]
            else:
                var = torch.bmm(xt * xt, self._g2)
            noise = torch.randn(y.shape, generator=self.generator, dtype=y.dtype, device=y.device)
            y = y + var.sqrt_().mul_(c.read_noise).mul_(noise)  # in place: one (S·T, N, out) buffer less
        if c.adc_bits is not None and self._calibrating:
            if y.shape[1]:
                self._cal_max = torch.maximum(self._cal_max, y.abs().amax(1).to(torch.float64))
        elif c.adc_bits is not None:
            if self._adc_lsb is None:  # called directly, never calibrated: calibrate on these reads
                self.begin_calibration()
                if y.shape[1]:
                    self._cal_max = y.abs().amax(1).to(torch.float64)
                self.end_calibration()
            code = torch.div(y, self._adc_lsb).round_()
            # a read with no active row carries y = 0 exactly (no current, no read noise): never saturated
            cnt["adc_saturations"] += (code.abs() > self._adc_n).sum(dtype=torch.float64)
            y = code.clamp_(-self._adc_n, self._adc_n).mul_(self._adc_lsb)
        y = y.sum(0)
        return y if bias is None else y + bias


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
