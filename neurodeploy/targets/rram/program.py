"""The RRAM target: any Graph with its synaptic layers (Affine, Linear, Conv1d/2d) on
programmed crossbars and its neurons digital, with exactly the reference dynamics.

``RRAMTarget().compile(graph, hardware=None, device="cpu", config=None, seed=0)``:

* ``hardware``: a profile (name, path or HardwareProfile; default ``rram_40nm``) whose
  constants give the :class:`~.device.DeviceConfig` defaults;
* ``config``: a :class:`~.device.DeviceConfig` (wins over ``hardware``);
  ``DeviceConfig.ideal()`` switches every non-ideality off, and the program then
  reproduces the reference target spike for spike;
* ``seed``: programming randomness (and the default read-noise seed of runs);
* ``conductances``: ``{node: (dg_pos, dg_neg, scale)}`` to place given conductance offsets
  instead of programming the node's weights (the LSM's formed random arrays);
* ``sparse``: ``"auto"`` (default) uses a sparse matrix product for dense layers whose
  weights are ≤ 10 % nonzero (small fan-in) on the ideal path, and on the noisy path when the
  layer fits one row tile (the ADC then digitizes the whole column sum);
  ``True``/``False`` force it.

Neuron dynamics, pooling, flatten etc. are the reference ops (:mod:`..ops`); the time loop
is :class:`..ops.StepLoop`. ``RunResult.counts[node]`` of synaptic nodes gains
``array_reads``, ``rows_activated``, ``cell_reads``, ``adc_conversions``, ``dac_conversions``,
``adc_saturations`` and ``tiles``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nir
import numpy as np
import torch

from ...errors import InputError
from ..base import RunResult, as_inputs, check_options, describe_base, record_set
from ..memory import graph_memory
from ..ops import Conv, Op, StepLoop, build_op
from ..reference import _device, _dtype
from . import device as dev
from .crossbar import Crossbar, conv_padding, input_cycles, unfold_input
from .device import DeviceConfig

#: RRAMTarget.compile's options {name: meaning}
COMPILE_OPTIONS = {
    "config": "DeviceConfig (default: DeviceConfig.from_profile(hardware), the profile's constants)",
    "seed": "device seed: programming noise, faults, device-to-device bounds, drift exponents (default 0)",
    "device": "cpu | cuda[:i]",
    "dtype": "float32 | float64",
    "conductances": "{synapse node: (dg_pos, dg_neg, scale)}: formed conductance offsets placed as they are (no programming)",
    "sparse": "auto | true | false: CSR products for sparse Linear crossbars (auto: >= 64 inputs, <= 10 % nonzero)",
    "device_params": "{DeviceConfig field: value} overriding the profile's (or config's) device parameters, e.g. {'read_time': 3600}",
    "nonidealities": "names of the non-idealities to keep (describe()['nonidealities'] lists them); the others are ideal (default: all)",
    "calibration": "inputs (batch, time, *shape) whose ADC calibration pass sets the ADC ranges at compile time (data never evaluated)",
}
OPTIONS = tuple(COMPILE_OPTIONS)
#: RRAMProgram.run's own options (besides base.COMMON_RUN_OPTIONS)
RUN_OPTIONS = {"seed": "read-noise seed (default: the program's seed + 1, so two runs of one program are identical)",
               "calibration": "inputs to calibrate the ADC ranges on before this run (replaces an earlier calibration)"}


class CrossbarDense(Op):
    """Affine/Linear on a crossbar (bias added digitally)."""

    kind = "synapse"

    def __init__(self, xbar: Crossbar, bias, n_in: int):
        self.xbar = xbar
        self.bias = bias
        self.fanout = torch.full((n_in,), float(xbar.out_features), dtype=torch.float64, device=xbar.device)

    def __call__(self, x):
        return self.xbar(x, self.bias)


class CrossbarConv(Op):
    """Conv1d/Conv2d as a crossbar over unfolded input patches (``F.unfold``)."""

    kind = "synapse"

    def __init__(self, xbar: Crossbar, ref: Conv, out_shape):
        self.xbar = xbar
        self.ref = ref  # the reference conv op, holding the crossbar's effective weight
        self.fanout = ref.fanout
        self.out_shape = tuple(out_shape)
        k = tuple(ref.weight.shape[2:])
        self.kernel = k
        self.pads = conv_padding(ref.padding, k, ref.dilation)

    def __call__(self, x):
        cols, L = unfold_input(x, self.kernel, self.ref.stride, self.pads, self.ref.dilation)
        if self.xbar.is_fast(cols):
            return self.xbar(cols, dense_fast=lambda: self.ref(x))
        y = self.xbar(cols)  # (B·L, Cout)
        b = x.shape[0]
        y = y.reshape(b, L, -1).transpose(1, 2).reshape(b, *self.out_shape)
        bias = self.ref.bias.reshape(-1, *([1] * (len(self.out_shape) - 1)))
        return y + bias


def conv_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """(Cout, Cin/groups, *k) → the (Cout, Cin·prod(k)) matrix over unfolded patches
    (block-diagonal for grouped convolutions; the off-block cells hold weight 0)."""
    w = np.asarray(weight, np.float64)
    cout, cig = w.shape[:2]
    k = int(np.prod(w.shape[2:]))
    if groups == 1:
        return w.reshape(cout, cig * k)
    full = np.zeros((cout, cig * groups, k))
    og = cout // groups
    for g in range(groups):  # a few blocks at compile time
        full[g * og:(g + 1) * og, g * cig:(g + 1) * cig] = w[g * og:(g + 1) * og].reshape(og, cig, k)
    return full.reshape(cout, cig * groups * k)


def _node_weight(node, in_shape):
    if isinstance(node, (nir.Affine, nir.Linear)):
        return np.asarray(node.weight, np.float64)
    return conv_matrix(node.weight, int(node.groups))


class RRAMProgram:
    """A graph whose synapses are programmed crossbars. ``crossbars[node]`` are the
    :class:`~.crossbar.Crossbar` objects (conductances, tiles)."""

    target = "rram"

    def __init__(self, graph, config: DeviceConfig, seed: int = 0, dtype=torch.float32, device="cpu",
                 conductances: dict | None = None, sparse="auto", hardware_name: str | None = None,
                 _stored: dict | None = None):
        self.graph = graph
        self.config = config
        self.seed = int(seed)
        self.dtype = _dtype(dtype)
        self.device = _device(device)
        self.sparse = sparse
        self.hardware_name = hardware_name
        conductances = dict(conductances or {})
        unknown = set(conductances) - set(graph.synapse_nodes())
        if unknown:
            raise InputError(f"rram: conductances given for non-synaptic or unknown node(s) {', '.join(sorted(unknown))}")
        self._formed = set(conductances)
        self.calibration_data: dict | None = None  # what the ADC ranges were calibrated on
        gen = dev.make_generator(self.seed)
        self.crossbars: dict[str, Crossbar] = {}

        def factory(name, node, in_shape):
            w = _node_weight(node, in_shape)
            kw = dict(dtype=self.dtype, device=self.device)
            if _stored is not None and name in _stored:
                s = _stored[name]
                devices = None
                if "nu" in s:
                    nu = torch.as_tensor(s["nu"], device=self.device)
                    z = torch.zeros_like(nu, dtype=torch.bool)
                    devices = dev.DeviceArray(torch.zeros_like(nu), z, z, nu)
                xb = Crossbar(torch.as_tensor(s["dg_pos"]), torch.as_tensor(s["dg_neg"]), torch.as_tensor(s["scales"]), config,
                              devices=devices, **kw)
                if "adc_range" in s and config.adc_calibrated:
                    xb.set_adc_range(torch.as_tensor(s["adc_range"]))
            elif name in conductances:
                gp, gn, scale = conductances[name]
                gp, gn = torch.as_tensor(gp, dtype=torch.float64), torch.as_tensor(gn, dtype=torch.float64)
                if tuple(gp.shape) != w.shape or tuple(gn.shape) != w.shape:
                    raise InputError(f"rram: conductances for node '{name}' have shape {tuple(gp.shape)}, expected {w.shape}")
                xb = Crossbar.from_conductances(gp, gn, scale, config, gen, **kw)
            else:
                xb = Crossbar.program(torch.as_tensor(w), config, gen, **kw)
            xb.sparse_candidate = isinstance(node, (nir.Affine, nir.Linear))
            if xb.sparse_candidate and (xb.fast or xb.row_tiles == 1) and self._want_sparse(xb):
                xb._prepare(sparse=True)  # keeps a set ADC range
            self.crossbars[name] = xb
            if isinstance(node, (nir.Affine, nir.Linear)):
                bias = torch.as_tensor(np.asarray(node.bias), dtype=self.dtype, device=self.device) if isinstance(node, nir.Affine) else None
                return CrossbarDense(xb, bias, w.shape[1])
            ref = Conv(node, in_shape, self.dtype, self.device)
            ref.weight = xb.weight.reshape(ref.weight.shape) if int(node.groups) == 1 else _grouped_weight(xb.weight64, node).to(self.dtype)
            return CrossbarConv(xb, ref, graph.shapes[name])

        self._ops = {n: build_op(n, graph, self.dtype, self.device, synapse_factory=factory) for n in graph.order}
        self._loop = StepLoop(graph, self._ops, self.dtype, self.device)

    def _want_sparse(self, xb: Crossbar) -> bool:
        if self.sparse == "auto":
            nnz = int((xb.weight != 0).sum())
            return xb.in_features >= 64 and nnz <= 0.1 * xb.weight.numel()
        return bool(self.sparse)

    # ---------------------------------------------------------------------------------
    @property
    def tiles(self) -> dict[str, int]:
        return {n: xb.tiles for n, xb in self.crossbars.items()}

    def describe(self) -> dict:
        """The protocol description (:func:`..base.describe_base`): ``crossbars`` (the
        geometry each synapse node was programmed with), ``memory`` (weights as cells),
        ``calibration`` (the ADC ranges and the data they came from; None without ADC)."""
        itemsize = torch.tensor([], dtype=self.dtype).element_size()
        cycles = input_cycles(self.config)
        bars = {n: xb.geometry.describe(self._reads_per_step(n), cycles) for n, xb in self.crossbars.items()}
        cells = {n: b["cells"] for n, b in bars.items()}
        memory = graph_memory(
            self.graph, itemsize, itemsize,
            f"weights as conductance cells on crossbars (2 per weight × bit slices; weights_bytes: the same weights "
            f"held digitally at {itemsize} bytes); bias and neuron state digital, {itemsize}-byte ({str(self.dtype).replace('torch.', '')})",
            cells=sum(cells.values()), cells_per_node=cells)
        return describe_base(
            self.target, self.graph, memory=memory, crossbars=bars, calibration=self._describe_calibration(),
            resources={"tiles": sum(b["tiles"] for b in bars.values()), "cells": sum(cells.values())},
            nonidealities={n: sorted(dev.NONIDEALITIES[n]) for n in self.config.nonidealities()},
            run_options=RUN_OPTIONS, compile_options=self.compiled_with())

    def _reads_per_step(self, node: str) -> int:
        """Input vectors a crossbar reads per sample and step: a convolution's output positions."""
        return int(np.prod(self.graph.shapes[node][1:])) if isinstance(self._ops[node], CrossbarConv) else 1

    def compiled_with(self) -> dict:
        """The options this program was compiled with (JSON-ready)."""
        return {"hardware": self.hardware_name, "config": self.config.to_dict(), "seed": self.seed,
                "device": self.device, "dtype": str(self.dtype).replace("torch.", ""), "sparse": self.sparse,
                "conductances": sorted(self._formed)}

    def _describe_calibration(self) -> dict | None:
        c = self.config
        if c.adc_bits is None:
            return None
        ranges = {n: r.tolist() for n, r in self.adc_ranges().items()}
        if not c.adc_calibrated:
            return {"adc_range": c.adc_range, "calibrated": False, "data": None, "samples": 0, "steps": 0,
                    "ranges": ranges, "needs_data": False, "data_option": None}
        d = self.calibration_data or {"data": None, "samples": 0, "steps": 0}
        return {"adc_range": "calibrated", "calibrated": not self.needs_calibration, **d, "ranges": ranges,
                "needs_data": True, "data_option": "calibration"}

    def effective_weights(self) -> dict[str, np.ndarray]:
        """The weight matrix each crossbar realizes (after programming, drift, IR drop)."""
        return {n: xb.weight64.cpu().numpy() for n, xb in self.crossbars.items()}

    @property
    def needs_calibration(self) -> bool:
        """True while some crossbar's ADC range (``adc_range="calibrated"``) is not set."""
        return any(xb.needs_calibration for xb in self.crossbars.values())

    def adc_ranges(self) -> dict[str, np.ndarray]:
        """Full scale per ADC group (slices, row tiles, column tiles) of each crossbar with an
        ADC whose range is known (weight units)."""
        return {n: xb.adc_range.cpu().numpy() for n, xb in self.crossbars.items() if xb.adc_range is not None}

    def calibrate(self, x, data: str = "calibrate(x)") -> dict[str, np.ndarray]:
        """ADC calibration pass: simulate inputs ``x`` with every ADC bypassed (read noise,
        DAC etc. as usual, noise from a calibration seed) and set each ADC group's full scale
        to the largest column current it saw (:meth:`.crossbar.Crossbar.end_calibration`).
        Only crossbars with ``adc_range="calibrated"`` change; calling it again recalibrates.
        :meth:`run` calls it on its input when a range is not yet set. ``data`` names the
        calibration data in :meth:`describe` (``calibration``). Returns :meth:`adc_ranges`."""
        g = self.graph
        inputs = as_inputs(x, g.inputs, g.shapes, self.dtype, self.device)
        cal = [(i, xb) for i, (n, xb) in enumerate(sorted(self.crossbars.items())) if xb.config.adc_calibrated]
        if not cal:  # no calibrated ADC: nothing to do
            return self.adc_ranges()
        for i, xb in cal:
            xb.generator = dev.calibration_generator(self.seed, i, self.device)
            xb.begin_calibration()
        try:
            with torch.no_grad():
                self._loop.run(inputs, [], False, None)
        except BaseException:
            for _, xb in cal:
                xb.abort_calibration()
            raise
        for _, xb in cal:
            xb.end_calibration()
        b, steps = next(iter(inputs.values())).shape[:2]
        self.calibration_data = {"data": data, "samples": int(b), "steps": int(steps)}
        return self.adc_ranges()

    def run(self, x, record=None, record_states: bool = False, progress=None, **options) -> RunResult:
        """Simulate. ``seed`` seeds the read noise (default: the program's seed + 1, so two
        runs of one program are identical); any other option is an InputError. A program
        whose ADC ranges are to be calibrated and are not yet first runs :meth:`calibrate`
        on ``x`` (its first batch is its calibration data, and :meth:`describe` says so;
        call :meth:`calibrate` on calibration data first to keep test data out of it)."""
        check_options(f"{self.target} run", options, RUN_OPTIONS)
        seed = options.get("seed")
        g = self.graph
        inputs = as_inputs(x, g.inputs, g.shapes, self.dtype, self.device)
        rec = record_set(record, g)
        if options.get("calibration") is not None:
            self.calibrate(options["calibration"], data="run(calibration=...)")
        elif self.needs_calibration:
            import warnings

            warnings.warn("rram: the ADC ranges are calibrated on this run's own inputs, so the data being measured "
                          "shapes the hardware model; pass run(calibration=x_cal) or call calibrate(x_cal) first",
                          stacklevel=2)
            self.calibrate(inputs, data="the first batch run() saw (its own inputs)")
        rseed = self.seed + 1 if seed is None else int(seed)
        for i, (n, xb) in enumerate(sorted(self.crossbars.items())):
            xb.generator = dev.make_generator(rseed * 7919 + i, self.device)
            xb.reset_counts()
        with torch.no_grad():
            outs, recs, states, counts = self._loop.run(inputs, rec, record_states, progress)
        for n, xb in self.crossbars.items():
            c = counts.setdefault(n, {})
            c.update(xb.counts())
            c["tiles"] = xb.tiles
        batch, steps = next(iter(inputs.values())).shape[:2]
        return RunResult(
            outputs=outs, records=recs, states=states, counts=counts, target=self.target,
            dt=g.dt, batch=int(batch), steps=int(steps),
            info={
                "dtype": str(self.dtype).replace("torch.", ""), "device": self.device,
                "tiles": self.tiles, "adc_saturations": sum(c.get("adc_saturations", 0) for c in counts.values()),
                "config": self.config.to_dict(), "seed": self.seed, "read_seed": rseed,
            },
        )

    # ---------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """A directory: graph.nir, program.json (config, seed), conductances.npz (programmed
        offsets, drift exponents, calibrated ADC ranges)."""
        from ...graph import save
        from ...graph.io import write_json, write_npz

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        save(self.graph, d / "graph.nir")
        arrays = {}
        for n, xb in self.crossbars.items():
            arrays[f"{n}/dg_pos"] = xb.dg_pos.cpu().numpy()
            arrays[f"{n}/dg_neg"] = xb.dg_neg.cpu().numpy()
            arrays[f"{n}/scales"] = xb.scales.cpu().numpy()
            if xb.devices is not None:
                arrays[f"{n}/nu"] = xb.devices.nu.cpu().numpy()
            if xb.adc_range is not None and xb.config.adc_calibrated:
                arrays[f"{n}/adc_range"] = xb.adc_range.cpu().numpy()

        write_npz(d / "conductances.npz", arrays)
        meta = {
            "target": self.target, "dtype": str(self.dtype).replace("torch.", ""), "dt": self.graph.dt,
            "reset": self.graph.reset, "seed": self.seed, "config": self.config.to_dict(),
            "hardware": self.hardware_name, "sparse": self.sparse, "calibration_data": self.calibration_data,
        }
        write_json(d / "program.json", meta)
        return d

    @classmethod
    def load(cls, path, device="cpu") -> "RRAMProgram":
        from ...graph import load

        d = Path(path)
        if not (d / "program.json").exists():
            raise InputError(f"{d}: not a saved RRAM program (no program.json)")
        meta = json.loads((d / "program.json").read_text())
        if meta.get("target") != "rram":
            raise InputError(f"{d}: program.json is for target {meta.get('target')!r}, not 'rram'")
        graph = load(d / "graph.nir", dt=meta["dt"], reset=meta["reset"])
        data = np.load(d / "conductances.npz")
        stored: dict = {}
        for key in data.files:
            n, _, field = key.rpartition("/")
            stored.setdefault(n, {})[field] = data[key]
        prog = cls(graph, DeviceConfig(**meta["config"]), meta["seed"], meta["dtype"], device,
                   sparse=meta.get("sparse", "auto"), hardware_name=meta.get("hardware"), _stored=stored)
        prog.calibration_data = meta.get("calibration_data")
        return prog


def _grouped_weight(w64: torch.Tensor, node) -> torch.Tensor:
    """Back from the block-diagonal patch matrix to the grouped conv weight."""
    w = np.asarray(node.weight)
    cout, cig = w.shape[:2]
    k = int(np.prod(w.shape[2:]))
    groups = int(node.groups)
    og = cout // groups
    full = w64.reshape(cout, cig * groups, k)
    blocks = [full[g * og:(g + 1) * og, g * cig:(g + 1) * cig] for g in range(groups)]
    return torch.cat(blocks, 0).reshape(w.shape)


def resolve_config(hardware=None, config: DeviceConfig | None = None) -> tuple[DeviceConfig, str | None]:
    """The DeviceConfig for compile: ``config`` if given, else the profile's defaults."""
    from ...hardware import load_profile

    if config is not None:
        if not isinstance(config, DeviceConfig):
            raise InputError(f"rram: config must be a DeviceConfig, got {type(config).__name__}")
        name = getattr(hardware, "name", hardware) if hardware is not None else None
        return config, name
    prof = load_profile(hardware or dev.DEFAULT_PROFILE) if hardware is None or isinstance(hardware, (str, os.PathLike)) else hardware
    kind = getattr(prof, "kind", "rram")
    if kind != "rram":
        raise InputError(f"rram target: hardware profile {getattr(prof, 'name', prof)!r} is of kind {kind!r}, not 'rram'")
    return DeviceConfig.from_profile(prof), getattr(prof, "name", None)


class RRAMTarget:
    name = "rram"
    compile_options = COMPILE_OPTIONS
    hardware_kinds: tuple[str, ...] = ("rram",)
    default_hardware = dev.DEFAULT_PROFILE

    def compile(self, graph, hardware=None, device="cpu", config: DeviceConfig | None = None, seed: int = 0,
                dtype="float32", conductances=None, sparse="auto", device_params=None, nonidealities=None,
                calibration=None, **options) -> RRAMProgram:
        """Program ``graph``'s synapses on crossbars of ``hardware`` (a profile of kind
        ``rram``, default :attr:`default_hardware`); options: :data:`COMPILE_OPTIONS`."""
        check_options(f"{self.name} target", options, self.compile_options)
        cfg, hw_name = resolve_config(hardware, config)
        if device_params:
            if not isinstance(device_params, dict):
                raise InputError(f"rram: device_params must be a dict {{field: value}}, got {type(device_params).__name__}")
            cfg = cfg.replace(**device_params)
        if nonidealities is not None:
            cfg = cfg.keep([nonidealities] if isinstance(nonidealities, str) else nonidealities)
        prog = RRAMProgram(graph, cfg, seed, dtype, device, conductances=conductances, sparse=sparse, hardware_name=hw_name)
        if calibration is not None:
            prog.calibrate(calibration, data="compile(calibration=...)")
        return prog
