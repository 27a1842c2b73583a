r"""Statistical model of resistive-memory (RRAM) cells: how weights become conductances.

Everything is vectorized torch on whole arrays and driven by an explicit
``torch.Generator``, so a given seed always gives the same programmed array. Each
non-ideality has its own field in :class:`DeviceConfig` and can be switched off alone;
:meth:`DeviceConfig.ideal` switches all of them off.

Equations (conductances in siemens, ``W = g_max - g_min`` the window):

* **Differential pair.** A weight ``w`` is stored as ``G+ - G-`` with
  ``G+ = g_min + max(w, 0)/s`` and ``G- = g_min + max(-w, 0)/s``. ``s`` (weight units per
  siemens) is chosen per layer as the smallest power of two with ``max|w|/s <= W``, so
  ``w -> G -> w`` is exact in floating point when nothing else intervenes.
* **Levels.** With ``levels = L`` each device can be set to ``g_min + k W/(L-1)``,
  ``k = 0..L-1`` (round to nearest). ``None`` = continuous. With ``slices = k > 1`` a
  weight's magnitude is quantized to ``L^k`` codes whose base-L digits go on ``k`` pairs,
  recombined digitally with weights ``L^j`` (bit slicing, as ISAAC does with 2-bit cells).
* **Programming noise** (write-verify residual, cycle-to-cycle at write time):
  ``G <- G + sigma_p(G) W n``, ``n ~ N(0, 1)``, with the state-dependent shape
  ``sigma_p(G) = sigma_p * c * (e + (1-e) 4u(1-u))``, ``u = (G-g_min)/W``,
  ``e = programming_noise_edge_ratio`` and ``c`` normalising the shape to mean 1 over
  the window (Wan et al., Nature 608:504, 2022, Extended Data Fig. 3 as fitted in
  aihwkit's ``ReRamWan2022NoiseModel``: about 1 uS at the window edges, 2-2.4 uS in the
  middle of a 40 uS window). Programmed values are clipped to the device's window.
* **Device-to-device variation**: each device has its own upper bound
  ``g_max_i = g_min + W (1 + d2d n_i)`` (aihwkit ``ReRamESPresetDevice``,
  ``w_max_dtod``); a target above it saturates there.
* **Stuck-at faults**: a fraction ``stuck_on`` of devices sits at its ``g_max_i``,
  ``stuck_off`` at ``g_min`` whatever is written.
* **Fault compensation** (``fault_compensation``, on by default): write-verify reads every
  cell back, so it knows which cells are stuck and where (a stuck cell does not move under
  SET/RESET pulses). For a pair ``(G+, G−)`` with target difference ``d = w/s`` and one cell
  stuck at ``a`` (``a = g_max_i − g_min`` stuck-on, ``0`` stuck-off, as an offset), the
  partner is written to ``ΔG− = a − d`` (G+ stuck) or ``ΔG+ = d + a`` (G− stuck), then
  levels, programming noise and its own bound apply as to any write: exact when the
  partner can reach it (e.g. G+ stuck-on and ``w ≥ 0``, G+ stuck-off and ``w ≤ 0``), else
  clipped (the error shrinks from up to ``a`` to the part beyond the partner's window).
  Pairs with both cells stuck, or none, are written as usual (Xia et al., "Stuck-at fault
  tolerance in RRAM computing systems", DAC 2017; Aguirre et al., Electronics 10:2427,
  2021).
* **Drift / relaxation**: ``G(t) = G0 (t/t0)^(-nu)``, ``nu ~ N(nu_mean, nu_std)`` per
  device, evaluated at ``read_time`` (``read_time <= t0`` means no drift). For RRAM
  ``nu_mean = 0``: the conductance spreads rather than decays (aihwkit
  ``ReRamWan2022NoiseModel``).
* **Read noise** (cycle-to-cycle per read): ``G_read = G (1 + sigma_r n)``, a fresh
  ``n`` per device per read. The crossbar samples it exactly in distribution at the
  column-current level (see :mod:`.crossbar`).
* **Random weights by stochastic breakdown** (the reservoir of Lin et al., Nature
  Computational Science 2025): a forming pulse of amplitude ``V`` breaks a cell down with
  the Weibull probability ``P(V) = 1 - exp(-(V/V63)^beta)`` (the usual statistics of
  dielectric breakdown); a broken-down cell's conductance is
  ``N(formed_g_mean, formed_g_std)`` (clipped to the window), an intact cell stays at
  ``g_min``. Two such cells per weight give random, sparse, sign-symmetric weights
  ``G+ - G-``; ``V`` sets their density.

Defaults come from the hardware profile ``rram_40nm`` (:data:`DEFAULT_PROFILE`, read once at
import: ``DeviceConfig()`` equals ``DeviceConfig.from_profile()``); the fields no profile
carries are modelling choices (``slices``, ``adc_range``, ``fault_compensation``, the noise
shape); the constants that the profile does not carry (edge ratio, breakdown statistics)
are module constants below, documented in docs/rram.md.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace

import torch

from ...errors import InputError

#: Ratio sigma(window edge) / sigma(mid-window) of the programming noise (Wan et al. 2022
#: fit in aihwkit: ~1 uS at the edges vs ~2.2 uS mid-window).  estimated
PROGRAMMING_NOISE_EDGE_RATIO = 0.45
#: Weibull scale (63 % breakdown) voltage and shape of the forming pulse.  estimated
BREAKDOWN_V63 = 3.0  # V
BREAKDOWN_BETA = 8.0
#: Conductance of a broken-down (formed) cell, as fractions of the window.  estimated
FORMED_G_MEAN = 0.5
FORMED_G_STD = 0.25
#: Forming voltage used by default for the reservoir (P(V) ~ 0.1).
DEFAULT_FORMING_VOLTAGE = 2.27
#: ``DeviceConfig.adc_range`` modes besides a number (fraction of the worst case).
ADC_RANGE_MODES = ("calibrated", "worst", "auto")
#: ``DeviceConfig.drift_compensation`` modes: no compensation, one digital scale per layer,
#: one per column (set by a reference read at read time, as aihwkit's Global/PerColumn
#: DriftCompensation)
DRIFT_COMPENSATION_MODES = ("none", "global", "per_column")
#: Offset of the read-noise seeds of an ADC calibration pass (independent of run seeds).
CALIBRATION_SEED_OFFSET = 1_000_003


#: The non-idealities one can switch off alone: name → the fields that switch it off and
#: their ideal values ("drift" sets read_time to drift_t0; see DeviceConfig.keep)
NONIDEALITIES = {
    "levels": {"levels": None, "slices": 1},
    "programming_noise": {"programming_noise": 0.0},
    "read_noise": {"read_noise": 0.0},
    "drift": {"drift_nu_mean": 0.0, "drift_nu_std": 0.0},
    "stuck_at": {"stuck_on": 0.0, "stuck_off": 0.0},
    "d2d": {"d2d": 0.0},
    "adc": {"adc_bits": None},
    "input_drivers": {"input_bits": None, "dac_bits": None},
    "ir_drop": {"wire_resistance": 0.0},
}


def _check_fraction(name, v, hi=1.0):
    if v is None:
        return
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= hi):
        raise InputError(f"DeviceConfig: {name} must be a number in [0, {hi}], got {v!r}")


#: the profile whose constants are :class:`DeviceConfig`'s defaults
DEFAULT_PROFILE = "rram_40nm"


def profile_fields(p) -> dict:
    """The :class:`DeviceConfig` fields a hardware profile of kind ``rram`` carries
    (SI units; without a ``read_time`` constant, ``read_time`` = ``drift_t0``: read right
    after programming; without ``input_bits``, inputs are as wide as the DAC)."""
    num = lambda n: p.si(n)  # noqa: E731
    count = lambda n: int(round(p.si(n)))  # noqa: E731
    kw = dict(
        g_min=num("g_min"), g_max=num("g_max"), levels=count("levels"),
        programming_noise=num("programming_noise_sigma"), read_noise=num("read_noise_sigma"),
        drift_nu_mean=num("drift_nu_mean"), drift_nu_std=num("drift_nu_std"),
        drift_t0=num("drift_t0"), read_time=num("read_time") if "read_time" in p else num("drift_t0"),
        stuck_on=num("stuck_on_fraction"), stuck_off=num("stuck_off_fraction"),
        d2d=num("d2d_variation"), adc_bits=count("adc_bits"), dac_bits=count("dac_bits"),
        input_bits=count("input_bits") if "input_bits" in p else None,
        read_voltage=num("read_voltage"), array_rows=count("array_rows"), array_cols=count("array_cols"),
    )
    if "wire_resistance" in p:
        kw["wire_resistance"] = num("wire_resistance")
    return kw


def _default_fields() -> dict:
    from ...hardware import load_profile

    return profile_fields(load_profile(DEFAULT_PROFILE))


#: DeviceConfig's defaults: the constants of :data:`DEFAULT_PROFILE` (read once, at import),
#: so ``DeviceConfig()`` is ``DeviceConfig.from_profile()`` and no second copy can disagree
_D = _default_fields()


@dataclass(frozen=True)
class DeviceConfig:
    """RRAM device and crossbar periphery parameters (SI units: siemens, seconds, volts).

    Non-idealities (each off when 0 / None): ``levels`` (None = continuous; ``slices`` > 1
    bit-slices each weight over that many cell pairs of ``levels`` states),
    ``programming_noise`` (std as a fraction of the window), ``read_noise`` (relative std
    per read), drift (``drift_nu_mean``/``drift_nu_std`` at ``read_time``),
    ``stuck_on``/``stuck_off`` (fractions), ``d2d`` (relative std of each device's upper
    bound), ``adc_bits`` (None = ideal read-out), ``dac_bits`` (for graded inputs; None =
    ideal), ``wire_resistance`` (ohm per cell pitch; IR drop).

    Input drivers: ``input_bits`` is the resolution of a graded digital input (sign
    included; None = as wide as the DAC), ``dac_bits`` the bits a row driver applies per
    read cycle. With ``dac_bits < input_bits − 1`` a graded input is streamed over several
    read cycles (bit-serial, as ISAAC does) and the cycles' digitized column currents are
    shifted and added; binary (spike) inputs need one cycle (:func:`.crossbar.stream`).
    ``drift_compensation``: ``"global"`` (default: one digital output scale per layer from a
    reference read at ``read_time``), ``"per_column"`` or ``"none"``.

    ``adc_range`` sets the full scale ``±R`` of each tile's ADCs (see :mod:`.crossbar`):
    ``"calibrated"`` (default: ``R`` = the largest column current seen on calibration data,
    per tile; the first batch a program runs unless ``calibrate(x)`` was called),
    ``"worst"`` (the static worst case ``max_j Σ_i |W_ij|``, never saturates for inputs in
    [0, 1]; ``"auto"`` is an alias kept for saved programs) or a positive number (that
    fraction of the worst case). ``fault_compensation`` (default on): write-verify
    compensates stuck cells with the partner cell of their differential pair.
    """

    g_min: float = _D["g_min"]
    g_max: float = _D["g_max"]
    levels: int | None = _D["levels"]
    slices: int = 1
    programming_noise: float = _D["programming_noise"]
    programming_noise_state_dependent: bool = True
    read_noise: float = _D["read_noise"]
    drift_nu_mean: float = _D["drift_nu_mean"]
    drift_nu_std: float = _D["drift_nu_std"]
    drift_t0: float = _D["drift_t0"]
    read_time: float = _D["read_time"]
    stuck_on: float = _D["stuck_on"]
    stuck_off: float = _D["stuck_off"]
    d2d: float = _D["d2d"]
    adc_bits: int | None = _D["adc_bits"]
    adc_range: float | str = "calibrated"
    dac_bits: int | None = _D["dac_bits"]
    input_bits: int | None = _D.get("input_bits")
    drift_compensation: str = "global"
    wire_resistance: float = _D.get("wire_resistance", 0.0)
    read_voltage: float = _D["read_voltage"]
    array_rows: int = _D["array_rows"]
    array_cols: int = _D["array_cols"]
    fault_compensation: bool = True

    def __post_init__(self):
        if not (self.g_max > self.g_min >= 0):
            raise InputError(f"DeviceConfig: need g_max > g_min >= 0, got g_min={self.g_min}, g_max={self.g_max}")
        if self.levels is not None and (not isinstance(self.levels, int) or self.levels < 2):
            raise InputError(f"DeviceConfig: levels must be an integer >= 2 or None, got {self.levels!r}")
        if not isinstance(self.slices, int) or self.slices < 1:
            raise InputError(f"DeviceConfig: slices must be an integer >= 1, got {self.slices!r}")
        for name, lo in (("adc_bits", 1), ("dac_bits", 1), ("input_bits", 2)):
            b = getattr(self, name)
            if b is not None and (not isinstance(b, int) or isinstance(b, bool) or not lo <= b <= 32):
                raise InputError(f"DeviceConfig: {name} must be an integer in [{lo}, 32] or None, got {b!r}")
        if self.drift_compensation not in DRIFT_COMPENSATION_MODES:
            raise InputError(f"DeviceConfig: drift_compensation must be one of {', '.join(DRIFT_COMPENSATION_MODES)}, "
                             f"got {self.drift_compensation!r}")
        _check_fraction("stuck_on", self.stuck_on)
        _check_fraction("stuck_off", self.stuck_off)
        if self.stuck_on + self.stuck_off > 1:
            raise InputError("DeviceConfig: stuck_on + stuck_off must be <= 1")
        for name in ("programming_noise", "read_noise", "drift_nu_std", "d2d", "wire_resistance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InputError(f"DeviceConfig: {name} must be a finite number >= 0, got {v!r}")
        if not (self.drift_t0 > 0 and self.read_time > 0):
            raise InputError("DeviceConfig: drift_t0 and read_time must be > 0 seconds")
        if not (isinstance(self.adc_range, str) and self.adc_range in ADC_RANGE_MODES) and not (
            isinstance(self.adc_range, (int, float)) and not isinstance(self.adc_range, bool)
            and math.isfinite(self.adc_range) and self.adc_range > 0
        ):
            raise InputError(f"DeviceConfig: adc_range must be one of {', '.join(repr(m) for m in ADC_RANGE_MODES)} "
                             f"or a positive number, got {self.adc_range!r}")
        if not isinstance(self.fault_compensation, bool):
            raise InputError(f"DeviceConfig: fault_compensation must be True or False, got {self.fault_compensation!r}")
        if self.array_rows < 1 or self.array_cols < 2:
            raise InputError("DeviceConfig: the array needs >= 1 row and >= 2 columns (a differential pair)")

    # --- constructors ----------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile=None, **overrides) -> "DeviceConfig":
        """Defaults from a hardware profile (name, path or HardwareProfile; default
        ``rram_40nm``), then ``overrides``."""
        from ...hardware import load_profile

        if profile is None or isinstance(profile, (str, os.PathLike)):
            p = load_profile(profile or DEFAULT_PROFILE)
        else:
            p = profile
        if getattr(p, "kind", "rram") != "rram":
            raise InputError(f"DeviceConfig: hardware profile {getattr(p, 'name', p)!r} is of kind {p.kind!r}, not 'rram'")
        kw = {"wire_resistance": 0.0, **profile_fields(p)}  # a profile without wires has no IR drop
        return cls(**kw).replace(**overrides)

    def ideal(self) -> "DeviceConfig":
        """The same window and array geometry with every non-ideality off."""
        return replace(
            self, levels=None, slices=1, programming_noise=0.0, read_noise=0.0, drift_nu_mean=0.0,
            drift_nu_std=0.0, read_time=self.drift_t0, stuck_on=0.0, stuck_off=0.0, d2d=0.0,
            adc_bits=None, dac_bits=None, input_bits=None, wire_resistance=0.0,
        )

    def nonidealities(self) -> list[str]:
        """The :data:`NONIDEALITIES` this configuration has (those not at their ideal value)."""
        return [n for n in NONIDEALITIES if self.keep([n]) != self.ideal()]

    def keep(self, names) -> "DeviceConfig":
        """This configuration with every non-ideality but ``names`` switched off (``names``:
        keys of :data:`NONIDEALITIES`; unknown ones are an InputError)."""
        names = list(names)
        unknown = [n for n in names if n not in NONIDEALITIES]
        if unknown:
            raise InputError(f"DeviceConfig: unknown non-ideality {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(NONIDEALITIES)})")
        off = {f: v for n, fs in NONIDEALITIES.items() if n not in names for f, v in fs.items()}
        if "drift" not in names:
            off["read_time"] = self.drift_t0
        return replace(self, **off)

    def replace(self, **kw) -> "DeviceConfig":
        unknown = set(kw) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"DeviceConfig: unknown parameter(s) {', '.join(sorted(unknown))}")
        return replace(self, **kw)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def window(self) -> float:
        return self.g_max - self.g_min

    @property
    def is_ideal(self) -> bool:
        return self == self.ideal()

    @property
    def adc_calibrated(self) -> bool:
        """True when the ADC range is calibrated on data (``adc_range="calibrated"``)."""
        return self.adc_bits is not None and self.adc_range == "calibrated"

    @property
    def adc_fraction(self) -> float | None:
        """The fixed ADC range as a fraction of the worst case (None when calibrated)."""
        if self.adc_range == "calibrated":
            return None
        return 1.0 if self.adc_range in ("worst", "auto") else float(self.adc_range)

    @property
    def input_resolution(self) -> int | None:
        """Bits of a graded input as the drivers see it (``input_bits``, else ``dac_bits``:
        one cycle of a DAC as wide as the input); None = graded inputs driven exactly."""
        return self.input_bits if self.input_bits is not None else self.dac_bits

    @property
    def drifts(self) -> bool:
        return self.read_time > self.drift_t0 and (self.drift_nu_mean != 0 or self.drift_nu_std > 0)


# ------------------------------------------------------------------------------------
def weight_scale(max_abs_weight: float, config: DeviceConfig) -> float:
    """Weight units per siemens: the smallest power of two ``s`` with ``max|w|/s <= window``
    (a power of two keeps ``w -> G -> w`` exact)."""
    m = float(max_abs_weight)
    if not math.isfinite(m):
        raise InputError("weights contain inf/nan: cannot map them to conductances")
    if m == 0:
        return 1.0
    return 2.0 ** math.ceil(math.log2(m / config.window))


def weights_to_targets(w: torch.Tensor, scale: float, config: DeviceConfig):
    """Target conductance offsets above ``g_min`` of the differential pair: (ΔG+, ΔG−)."""
    w = w.to(torch.float64)
    return torch.clamp(w, min=0) / scale, torch.clamp(-w, min=0) / scale


def quantize(dg: torch.Tensor, config: DeviceConfig) -> torch.Tensor:
    """Round conductance offsets to the nearest of ``levels`` evenly spaced states."""
    if config.levels is None:
        return dg
    step = config.window / (config.levels - 1)
    return torch.clamp(torch.round(dg / step), 0, config.levels - 1) * step


def noise_shape(dg: torch.Tensor, config: DeviceConfig) -> torch.Tensor:
    """State-dependent factor of the programming noise (mean 1 over a uniform window)."""
    if not config.programming_noise_state_dependent:
        return torch.ones_like(dg)
    e = PROGRAMMING_NOISE_EDGE_RATIO
    c = 1.0 / (e + (1 - e) * 2.0 / 3.0)
    u = torch.clamp(dg / config.window, 0, 1)
    return c * (e + (1 - e) * 4 * u * (1 - u))


@dataclass
class DeviceArray:
    """Static per-device properties of an array of cells (drawn once, then fixed):
    upper bound offsets ``gmax`` (d2d), fault masks, drift exponents ``nu``."""

    gmax: torch.Tensor
    stuck_on: torch.Tensor
    stuck_off: torch.Tensor
    nu: torch.Tensor

    @classmethod
    def sample(cls, shape, config: DeviceConfig, gen: torch.Generator, device="cpu") -> "DeviceArray":
        kw = dict(dtype=torch.float64, device=device)
        W = config.window
        if config.d2d > 0:
            gmax = W * torch.clamp(1 + config.d2d * torch.randn(shape, generator=gen, **kw), min=0.0)
        else:
            gmax = torch.full(shape, W, **kw)
        if config.stuck_on > 0 or config.stuck_off > 0:
            u = torch.rand(shape, generator=gen, **kw)
            on = u < config.stuck_on
            off = (u >= config.stuck_on) & (u < config.stuck_on + config.stuck_off)
        else:
            on = off = torch.zeros(shape, dtype=torch.bool, device=device)
        if config.drift_nu_std > 0:
            nu = config.drift_nu_mean + config.drift_nu_std * torch.randn(shape, generator=gen, **kw)
        else:
            nu = torch.full(shape, float(config.drift_nu_mean), **kw)
        return cls(gmax, on, off, nu)


def program(targets: torch.Tensor, config: DeviceConfig, gen: torch.Generator, devices: DeviceArray | None = None):
    """Write-verify programming of conductance offsets ``targets`` (ΔG above g_min, S).

    Returns ``(dg, devices)``: the programmed offsets (level rounding, programming noise,
    device bounds, stuck-at faults applied) and the per-device properties used."""
    t = targets.to(torch.float64)
    if devices is None:
        devices = DeviceArray.sample(tuple(t.shape), config, gen, t.device)
    dg = quantize(t, config)
    if config.programming_noise > 0:
        sigma = config.programming_noise * config.window * noise_shape(dg, config)
        dg = dg + sigma * torch.randn(t.shape, generator=gen, dtype=torch.float64, device=t.device)
    dg = torch.minimum(torch.clamp(dg, min=0.0), devices.gmax)
    dg = torch.where(devices.stuck_on, devices.gmax, dg)
    dg = torch.where(devices.stuck_off, torch.zeros_like(dg), dg)
    return dg, devices


def compensate_faults(targets: torch.Tensor, devices: DeviceArray) -> torch.Tensor:
    """Write-verify targets of differential pairs ``targets`` (2, ...) = (ΔG+, ΔG−) with
    stuck cells compensated by their partner: G+ stuck at ``a`` → ``ΔG− = a − d``; G− stuck
    at ``b`` → ``ΔG+ = d + b`` (``d = ΔG+ − ΔG−`` the target difference; ``a``, ``b`` the
    stuck offsets: the device's upper bound when stuck-on, 0 when stuck-off). Pairs with no
    stuck cell or two are returned unchanged; the result may leave the window and is
    clipped by :func:`program` like any target."""
    t = targets.to(torch.float64)
    stuck = devices.stuck_on | devices.stuck_off
    if not bool(stuck.any()):
        return t
    val = torch.where(devices.stuck_on, devices.gmax, torch.zeros_like(devices.gmax))
    d = t[0] - t[1]
    only_p = stuck[0] & ~stuck[1]
    only_n = stuck[1] & ~stuck[0]
    tp = torch.where(only_n, val[1] + d, t[0])
    tn = torch.where(only_p, val[0] - d, t[1])
    return torch.stack([tp, tn])


def program_pair(tp: torch.Tensor, tn: torch.Tensor, config: DeviceConfig, gen: torch.Generator,
                 devices: DeviceArray | None = None):
    """Write-verify of differential pairs: targets ``tp``/``tn`` (ΔG+, ΔG− offsets, S, same
    shape). Draws the devices (shape ``(2, *tp.shape)``) unless given, compensates stuck
    cells with their partner when ``config.fault_compensation`` (:func:`compensate_faults`),
    then :func:`program`. Returns ``(dg, devices)`` with ``dg[0]``/``dg[1]`` the G+/G−
    offsets. Without stuck cells the result equals ``program(stack([tp, tn]))``."""
    t = torch.stack([tp, tn]).to(torch.float64)
    if devices is None:
        devices = DeviceArray.sample(tuple(t.shape), config, gen, t.device)
    if config.fault_compensation and (config.stuck_on > 0 or config.stuck_off > 0):
        t = compensate_faults(t, devices)
    return program(t, config, gen, devices)


def calibration_generator(seed: int, index: int, device="cpu") -> torch.Generator:
    """Read-noise generator of layer ``index`` (in sorted name order) in the ADC calibration
    pass of a program with seed ``seed`` (independent of the run seeds)."""
    return make_generator((CALIBRATION_SEED_OFFSET + int(seed)) * 7919 + index, device)


def drift(dg: torch.Tensor, devices: DeviceArray, config: DeviceConfig, t: float | None = None) -> torch.Tensor:
    """Conductance offsets at time ``t`` (default ``config.read_time``) after programming:
    ``G(t) = G0 (t/t0)^(-nu)`` applied to the absolute conductance ``g_min + ΔG``."""
    t = config.read_time if t is None else float(t)
    if t <= config.drift_t0:
        return dg
    g = (config.g_min + dg) * torch.pow(torch.tensor(t / config.drift_t0, dtype=torch.float64), -devices.nu)
    return g - config.g_min


# ------------------------------------------------------------------------------------ forming
def breakdown_probability(voltage, v63: float = BREAKDOWN_V63, beta: float = BREAKDOWN_BETA) -> float:
    """Weibull probability that a forming pulse of ``voltage`` volts breaks a cell down."""
    v = max(float(voltage), 0.0)
    return 1.0 - math.exp(-((v / v63) ** beta))


def forming_voltage(density: float, v63: float = BREAKDOWN_V63, beta: float = BREAKDOWN_BETA) -> float:
    """The forming voltage that breaks a fraction ``density`` of the cells down."""
    if not 0 < density < 1:
        raise InputError(f"breakdown density must be in (0, 1), got {density!r}")
    return v63 * (-math.log(1 - density)) ** (1 / beta)


def formed_conductances(shape, voltage: float, config: DeviceConfig, gen: torch.Generator, device="cpu",
                        g_mean: float = FORMED_G_MEAN, g_std: float = FORMED_G_STD) -> torch.Tensor:
    """Conductance offsets (S above g_min) of an array after one forming pulse: each cell
    breaks down with :func:`breakdown_probability` and then has a random conductance
    ``N(g_mean, g_std)·window`` clipped to the window; intact cells stay at 0."""
    kw = dict(dtype=torch.float64, device=device)
    p = breakdown_probability(voltage)
    broken = torch.rand(shape, generator=gen, **kw) < p
    g = (g_mean + g_std * torch.randn(shape, generator=gen, **kw)) * config.window
    g = torch.clamp(g, 0.0, config.window)
    return torch.where(broken, g, torch.zeros_like(g))


def random_weights(shape, voltage: float, config: DeviceConfig, gen: torch.Generator, device="cpu"):
    """The paper's random-weight generator: two formed arrays as a differential pair.

    Returns ``(dg_pos, dg_neg)``, conductance offsets; the weight is ``s·(dg_pos − dg_neg)``."""
    return (formed_conductances(shape, voltage, config, gen, device),
            formed_conductances(shape, voltage, config, gen, device))


def make_generator(seed: int, device="cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g
