"""The target effects applied in the forward pass of fine-tuning (:mod:`.simulate`).

An effect is called once per forward pass with the current parameters ({node: {field:
tensor}}) and the batch; it returns a :class:`Pass`: the weight and bias of every synapse
node, optional hardware ops that give the synapses' forward values, optional decays.

* :class:`LoihiGrid` — Loihi's fixed-point grid. The current float graph is quantized by
  the Loihi target's own quantizer (:func:`..targets.loihi.quantize.quantize`, as
  ``loihi2-emu`` compiles it); each weight and bias used in the forward pass is the value
  its mantissa (and exponent, and the population's state scale) stands for, with a
  straight-through estimator (``w + (w_q − w).detach()``); a matrix the quantizer splits
  into parts (``weight_sign="split"``: excitatory and inhibitory synapses) is the sum of its
  parts' values. The decays are Loihi's
  (``dv/4096``, ``(du+1)/4096``) and the weights are read back through the same gains, so
  ``a_q·r·w_q`` is Loihi's input exactly; thresholds are exact on Loihi by construction
  (the state scale is ``64·vth/θ``), so the grid of θ is the grid of the weights.
  The per-step truncation of u and v and Lava's one-step synaptic lag are not modelled in
  training (the evaluation runs the bit-exact emulator).
* :class:`RRAMDevice` — the RRAM device model. Every forward pass programs the current
  weights with a fresh device seed (levels, programming noise, d2d bounds, stuck-at faults
  with write-verify compensation: :class:`..targets.rram.program.RRAMProgram`, i.e.
  :func:`..targets.rram.device.program_pair` through :class:`..targets.rram.crossbar.Crossbar`),
  calibrates its ADCs on the batch (training data only), and each synapse's output is the
  crossbar's (read noise, ADC) with the gradient of the programmed weights (STE).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from ..errors import InputError, UnsupportedError
from .params import with_flat_params


@dataclass
class Pass:
    """One forward pass: ``weights`` {synapse: (w, b)}; ``hw`` {synapse: op whose output is
    the forward value}; ``decays`` {neuron: {"a_mem" | "a_syn": value}}."""

    weights: dict
    hw: dict = field(default_factory=dict)
    decays: dict = field(default_factory=dict)


def _numpy(vals) -> dict:
    return {n: {f: p.detach().cpu().to(torch.float64).numpy() for f, p in d.items()} for n, d in vals.items()}


def _ste(p: torch.Tensor, q) -> torch.Tensor:
    """``p`` in the forward pass replaced by ``q``, gradient of ``p`` (straight through)."""
    q = torch.as_tensor(q, dtype=p.dtype, device=p.device).reshape(p.shape)
    return p + (q - p).detach()


class LoihiGrid:
    """Loihi 2's fixed-point parameters in the forward pass (see the module docstring)."""

    def __init__(self, graph, hardware=None, options: dict | None = None, target: str = "loihi2-emu"):
        from ..targets.loihi.target import QUANTIZE_OPTIONS, loihi_profile

        self.graph, self.target = graph, target
        self.profile = loihi_profile(hardware, target)
        self.options = {k: v for k, v in (options or {}).items() if k in QUANTIZE_OPTIONS and k != "chips"}
        self.program = None

    def quantized(self, vals):
        """The LoihiProgram of the current parameters (the target's own quantizer)."""
        from ..targets.loihi.quantize import quantize

        g = with_flat_params(self.graph, _numpy(vals))
        md = int(self.profile.si("max_delay")) if "max_delay" in self.profile else None
        return g, quantize(g, max_delay=md, profile=self.profile.name, **self.options)

    @staticmethod
    def decays(program) -> tuple[dict, dict]:
        """({neuron: (Loihi's / the float membrane decay, same for the current)}, {neuron:
        Loihi's decays as NIR's dt/τ}); 1 / absent where Loihi keeps no decay (dv = 0) or
        the float decay is 0 or 1."""
        ratios, decays = {}, {}
        for p in program.populations:
            d = {}
            if p.dv > 0 and p.dv_f > 0:
                d["a_mem"] = p.dv / 4096
            if p.du_f > 0 and p.du != 4095:
                d["a_syn"] = (p.du + 1) / 4096
            ratios[p.name] = (d.get("a_mem", p.dv_f) / p.dv_f if "a_mem" in d else 1.0,
                              d.get("a_syn", p.du_f) / p.du_f if "a_syn" in d else 1.0)
            decays[p.name] = d
        return ratios, decays

    def __call__(self, vals, inputs=None):
        from ..targets.loihi.quantize import _bias_into, _neuron_model

        g, prog = self.quantized(vals)
        self.program = prog
        pops = {p.name: p for p in prog.populations}
        ratios, decays = self.decays(prog)
        wb = {n: [d["weight"], d.get("bias")] for n, d in vals.items()}
        wq: dict = {}
        for s in prog.synapses:  # a node's parts (weight_sign="split": :exc and :inh) add up
            node = self._single(g, s)
            pop, m = pops[s.dst], _neuron_model(g, s.dst)
            rv, ru = ratios[s.dst]
            factor = m["gain"] * rv * ru * pop.scale / 64.0  # a_in units per NIR weight unit
            part = np.asarray(s.weights, np.float64) * 2.0 ** s.weight_exp / np.where(factor == 0, 1, factor)[:, None]
            wq[node] = wq[node] + part if node in wq else part
        for node, w in wq.items():
            wb[node][0] = _ste(vals[node]["weight"], w.reshape(np.shape(g.nodes[node].weight)))
        done = set(wq)
        for node in done:
            s = next(t for t in prog.synapses if t.nodes == (node,))
            pop, m = pops[s.dst], _neuron_model(g, s.dst)
            rv, ru = ratios[s.dst]
            b = vals[node].get("bias")
            if b is not None and m["bias_gain"] is not None:
                biased = _bias_into(g, s.dst)[1]
                if biased not in ([], [node]):
                    raise UnsupportedError(f"finetune on {self.target}: neuron '{s.dst}' gets biases from "
                                           f"{', '.join(biased)}; the bias grid needs one biased synapse per neuron node")
                bg = m["bias_gain"] * rv * pop.scale
                bq = (pop.bias_mant * 2.0 ** pop.bias_exp - rv * pop.scale * m["leak"]) / np.where(bg == 0, 1, bg)
                wb[node][1] = _ste(b, bq)
        missing = set(vals) - done
        if missing:
            raise UnsupportedError(f"finetune on {self.target}: synapse node(s) {', '.join(sorted(missing))} are not "
                                   "one Loihi synapse each")
        return Pass({n: tuple(v) for n, v in wb.items()}, decays=decays)

    def _single(self, g, s) -> str:
        if len(s.nodes) != 1 or not isinstance(g.nodes[s.nodes[0]], (nir.Affine, nir.Linear)) or "#" in s.name:
            raise UnsupportedError(
                f"finetune on {self.target}: Loihi synapse {s.src} → {s.dst} folds "
                f"{', '.join(s.nodes) or 'no node'} into one matrix; the straight-through grid needs exactly one "
                "Affine/Linear node per Loihi synapse (no conv/pool/scale chains, no delays)")
        return s.nodes[0]


#: device seeds (the first of the finetune seeds) model selection validates on; never trained on
VAL_DEVICES = 3
#: candidate conductance scales below the one max|w| needs, for :func:`clip_bound`
CLIP_OCTAVES = 3


def clip_bound(w: torch.Tensor, config) -> float:
    """The weight bound ``c = window · s`` (``s`` a power of two, as
    :func:`..targets.rram.device.weight_scale` picks it) that minimizes the mean squared
    error of ``w`` clipped to ±c and rounded to the ``levels`` states of the window (the
    4-level grid of a weight just above a power of two is twice as coarse as it needs to
    be; clipping the few largest weights halves it). Candidates: the scale max|w| needs and
    the :data:`CLIP_OCTAVES` below it. Returned slightly inside ±c so the float32 graph
    programs with scale ``s`` exactly."""
    from ..targets.rram.device import weight_scale

    a = w.abs().reshape(-1)
    s0 = weight_scale(float(a.max()), config)
    best = None
    for k in range(CLIP_OCTAVES + 1):
        c = config.window * s0 / 2 ** k
        step = c / (config.levels - 1)
        err = float(((torch.round(a.clamp(max=c) / step) * step - a) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, c)
    return best[1] * (1 - 2 ** -20)


class RRAMDevice:
    """The RRAM device model in the forward pass, a fresh device seed per pass (see the
    module docstring). ``seeds``: the training device seeds, cycled."""

    def __init__(self, graph, hardware=None, options: dict | None = None, seeds=(1_000_000,), dtype="float32",
                 device="cpu"):
        from ..targets.rram.program import resolve_config

        options = dict(options or {})
        bad = sorted(set(options) - {"config", "sparse"})
        if bad:
            raise InputError(f"finetune on rram: option(s) {', '.join(bad)} cannot be set for training "
                             "(allowed: config, sparse; the device seeds are the finetune seeds)")
        self.graph = graph
        self.config, self.hardware_name = resolve_config(hardware, options.get("config"))
        self.sparse = options.get("sparse", "auto")
        seeds = list(seeds)
        if len(seeds) <= VAL_DEVICES:
            raise InputError(f"finetune on rram: {len(seeds)} training device seed(s); at least {VAL_DEVICES + 1} are "
                             f"needed (the first {VAL_DEVICES} are the validation devices of model selection)")
        self.val_seeds, self.seeds = seeds[:VAL_DEVICES], seeds[VAL_DEVICES:]
        self._cycle = itertools.cycle(self.seeds)
        self.dtype, self.device = dtype, device

    def validation(self) -> "RRAMDevice":
        """The same device model cycling the validation seeds from the start (a fixed set
        for model selection: every validation pass sees the same devices, none of which
        training programs)."""
        v = RRAMDevice.__new__(RRAMDevice)
        v.__dict__.update(self.__dict__)
        v.seeds = list(self.val_seeds)
        v._cycle = itertools.cycle(v.seeds)
        return v

    @property
    def passes(self) -> int:
        """Validation passes over the validation split: one per validation device."""
        return len(self.val_seeds)

    def bounds(self, vals) -> dict[str, float]:
        """{synapse: c}: the weight range each synapse is clipped to during training
        (:func:`clip_bound`, from the loaded weights), so the conductance scale the target
        derives from max|w| stays the one chosen."""
        if self.config.levels is None or self.config.slices > 1:
            return {}
        return {n: clip_bound(d["weight"].detach().to(torch.float64), self.config) for n, d in vals.items()}

    def program(self, vals, seed: int):
        from ..targets.rram.program import RRAMProgram

        g = with_flat_params(self.graph, _numpy(vals))
        return RRAMProgram(g, self.config, seed, self.dtype, self.device, sparse=self.sparse)

    def __call__(self, vals, inputs):
        from ..targets.rram import device as dev
        from ..targets.rram.program import CrossbarConv

        seed = next(self._cycle)
        prog = self.program(vals, seed)
        if prog.needs_calibration:
            prog.calibrate(inputs, data="training batch")
        wb, hw = {}, {}
        for i, (n, xb) in enumerate(sorted(prog.crossbars.items())):
            xb.generator = dev.make_generator((seed + 1) * 7919 + i, prog.device)  # as RRAMProgram.run seeds reads
            op = prog._ops[n]  # the target's own crossbar op (CrossbarDense / CrossbarConv)
            w_prog = op.ref.weight if isinstance(op, CrossbarConv) else xb.weight
            wb[n] = (_ste(vals[n]["weight"], w_prog), vals[n].get("bias"))
            hw[n] = op
        return Pass(wb, hw)
