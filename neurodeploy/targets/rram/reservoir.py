"""The liquid state machine's reservoir (Lin et al., Nature Computational Science 2025;
arXiv 2307.00771): a fixed random spiking network whose weights are the conductances of
RRAM cells broken down by one forming pulse (:func:`.device.random_weights`).

* :class:`LSMConfig`: sizes, densities, weight scales, the paper's LIF (``v <- 0.9 v + I``,
  spike when ``v > 5``, reset to 0), optional excitatory/inhibitory split (Dale's law on
  the recurrent weights), ``fan_in`` for fixed-fan-in (sparse) reservoirs (:mod:`.sparse`).
* :class:`Reservoir`: the formed conductances and the reservoir as a neurodeploy
  :class:`~neurodeploy.graph.Graph` (``input -> w_in -> lif <-> w_rec``, the recurrent edge
  delayed one step; NIR LIF with ``tau = dt/(1 - decay)`` and ``r = tau/dt`` gives
  ``v <- decay v + x``); :meth:`Reservoir.compile`, :meth:`Reservoir.run` and
  :meth:`Reservoir.features` on the reference or the RRAM target, ``mode="formed"`` (the
  formed conductances read through the device model) or ``"programmed"`` (the ideal
  weights written by write-verify).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nir
import numpy as np
import torch

from ...errors import InputError
from . import device as dev
from .device import DeviceConfig
from .readout import window_features

#: above this many synapses (N·(N + n_inputs)) a dense reservoir is refused: use fan_in
MAX_DENSE_SYNAPSES = 2 ** 28
#: sparse reservoirs up to this many neurons also have the dense Graph (weights(), graph)
MAX_DENSE_GRAPH_NEURONS = 8192


@dataclass(frozen=True)
class LSMConfig:
    """Reservoir parameters. Densities are breakdown probabilities of each cell (a weight
    is nonzero when either cell of its pair broke down); scales are the weight of a full
    window of conductance difference."""

    n_inputs: int = 256
    n_neurons: int = 200
    decay: float = 0.9
    threshold: float = 5.0
    dt: float = 1e-3
    input_density: float = 0.1
    recurrent_density: float = 0.05
    input_scale: float = 2.0
    recurrent_scale: float = 2.0
    excitatory_fraction: float | None = None
    seed: int = 0
    fan_in: int | None = None
    input_fan_in: int | None = None

    def __post_init__(self):
        if self.n_inputs < 1 or self.n_neurons < 1:
            raise InputError(f"LSMConfig: n_inputs and n_neurons must be >= 1, got {self.n_inputs}, {self.n_neurons}")
        if not 0 < self.decay < 1:
            raise InputError(f"LSMConfig: decay must be in (0, 1), got {self.decay}")
        for n in ("input_density", "recurrent_density"):
            if not 0 < getattr(self, n) < 1:
                raise InputError(f"LSMConfig: {n} must be in (0, 1), got {getattr(self, n)}")
        if self.excitatory_fraction is not None and not 0 <= self.excitatory_fraction <= 1:
            raise InputError(f"LSMConfig: excitatory_fraction must be in [0, 1] or None, got {self.excitatory_fraction}")
        if self.fan_in is not None and not (isinstance(self.fan_in, (int, np.integer)) and 1 <= self.fan_in <= self.n_neurons - 1):
            raise InputError(f"LSMConfig: fan_in must be an integer in [1, n_neurons − 1] = [1, {self.n_neurons - 1}] or None, got {self.fan_in!r}")
        if self.input_fan_in is not None:
            if self.fan_in is None:
                raise InputError("LSMConfig: input_fan_in needs fan_in (it only applies to sparse reservoirs)")
            if not (isinstance(self.input_fan_in, (int, np.integer)) and 1 <= self.input_fan_in <= self.n_inputs):
                raise InputError(f"LSMConfig: input_fan_in must be an integer in [1, n_inputs = {self.n_inputs}], got {self.input_fan_in!r}")
        if self.fan_in is None and self.n_neurons * (self.n_neurons + self.n_inputs) > MAX_DENSE_SYNAPSES:
            raise InputError(f"LSMConfig: a dense reservoir of {self.n_neurons} neurons needs "
                             f"{self.n_neurons * (self.n_neurons + self.n_inputs):.3g} synapses; set fan_in (e.g. fan_in=100) "
                             "for a sparse reservoir")

    @property
    def sparse(self) -> bool:
        """True when weights are drawn with a fixed fan-in (``fan_in`` set)."""
        return self.fan_in is not None

    @property
    def input_k(self) -> int:
        """Input synapses per neuron of a sparse reservoir: ``input_fan_in``, else the
        expected nonzero count of the dense input array, ``n_inputs·(1 − (1 − input_density)²)``."""
        if self.input_fan_in is not None:
            return self.input_fan_in
        return max(1, int(round(self.n_inputs * (1 - (1 - self.input_density) ** 2))))


class Reservoir:
    """The formed reservoir: conductance offsets ``dg[name] = (dg_pos, dg_neg)`` (S),
    weight scales ``scale[name]`` (weight per siemens) and the Graph.

    With ``config.fan_in`` set the reservoir is sparse: ``sparse[name]`` holds
    :class:`.sparse.SparseWeights` (K presynaptic indices and the formed pair of each
    synapse per neuron), drawn on ``device`` with a generator of that device (seeded by
    ``config.seed``; CPU and CUDA draw different, equally distributed reservoirs), ``dg`` is
    None, and :meth:`compile` gives a :class:`.sparse.SparseReservoirProgram`. ``graph`` and
    :meth:`weights` then densify (up to :data:`MAX_DENSE_GRAPH_NEURONS` neurons)."""

    def __init__(self, config: LSMConfig, device_config: DeviceConfig | None = None, dg=None, sparse=None,
                 device="cpu"):
        self.config = config
        self.device_config = device_config or DeviceConfig.from_profile()
        c, dc = config, self.device_config
        self.scale = {"w_in": c.input_scale / dc.window, "w_rec": c.recurrent_scale / dc.window}
        self.sparse = None
        self._graph = None
        if c.sparse:
            from .sparse import SparseWeights, dale, sparse_random_weights

            if sparse is None:
                gen = dev.make_generator(c.seed, device)
                sparse = {
                    "w_in": sparse_random_weights(c.n_neurons, c.n_inputs, c.input_k, dc, gen, device),
                    "w_rec": sparse_random_weights(c.n_neurons, c.n_neurons, c.fan_in, dc, gen, device, exclude_self=True),
                }
                if c.excitatory_fraction is not None:
                    sparse["w_rec"] = dale(sparse["w_rec"], int(round(c.excitatory_fraction * c.n_neurons)))
            else:
                sparse = {k: SparseWeights(torch.as_tensor(w.index, dtype=torch.int64), torch.as_tensor(w.dg_pos, dtype=torch.float64),
                                           torch.as_tensor(w.dg_neg, dtype=torch.float64), int(w.n_pre)).to(device)
                          for k, w in sparse.items()}
            self.sparse = sparse
            self.dg = None
            return
        if dg is None:
            gen = dev.make_generator(c.seed)
            dg = {
                "w_in": dev.random_weights((c.n_neurons, c.n_inputs), dev.forming_voltage(c.input_density), dc, gen),
                "w_rec": dev.random_weights((c.n_neurons, c.n_neurons), dev.forming_voltage(c.recurrent_density), dc, gen),
            }
            dg["w_rec"] = tuple(t.clone() for t in dg["w_rec"])
            dg["w_rec"][0].fill_diagonal_(0.0)  # no self-connections (cells left unformed)
            dg["w_rec"][1].fill_diagonal_(0.0)
            if c.excitatory_fraction is not None:
                dg["w_rec"] = self._dale(dg["w_rec"], gen)
        self.dg = {k: (torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)) for k, (a, b) in dg.items()}
        self._graph = self._build_graph()

    @property
    def graph(self):
        """The reservoir as a neurodeploy Graph (dense Linear weights)."""
        if self._graph is None:
            self._graph = self._build_graph()
        return self._graph

    def _dense_dg(self):
        if self.sparse is None:
            return self.dg
        n = self.config.n_neurons
        if n > MAX_DENSE_GRAPH_NEURONS:
            raise InputError(f"sparse reservoir of {n} neurons: no dense form above {MAX_DENSE_GRAPH_NEURONS} neurons "
                             "(run it with Reservoir.run / compile, which stay sparse)")
        return {k: tuple(t.cpu() for t in w.to_dense()) for k, w in self.sparse.items()}

    def dense(self) -> "Reservoir":
        """The same reservoir (same conductances) in dense form: a Reservoir without
        ``fan_in`` whose Graph, programs and runs are the dense ones."""
        if self.sparse is None:
            return self
        from dataclasses import replace

        return Reservoir(replace(self.config, fan_in=None, input_fan_in=None), self.device_config, dg=self._dense_dg())

    def _dale(self, pair, gen):
        """E/I: presynaptic neuron j is excitatory for j < n_E (all its outgoing weights ≥ 0),
        inhibitory otherwise: the larger formed conductance of the pair goes to the G+ cell
        (E) or the G− cell (I). Excitatory magnitudes are scaled by n_I/n_E so the expected
        recurrent input is balanced (zero mean), as with a proportionally smaller forming
        compliance current on excitatory columns."""
        c = self.config
        n_e = int(round(c.excitatory_fraction * c.n_neurons))
        gp, gn = pair
        mag = torch.maximum(gp, gn)
        exc = torch.zeros(c.n_neurons, dtype=torch.bool)
        exc[:n_e] = True
        n_i = c.n_neurons - n_e
        gain = n_i / n_e if n_e > 0 and n_i > 0 else 1.0
        gp2 = torch.where(exc[None, :], mag * min(gain, 1.0), torch.zeros_like(mag))
        gn2 = torch.where(exc[None, :], torch.zeros_like(mag), mag * min(1.0 / gain, 1.0))
        return gp2, gn2

    def weights(self) -> dict[str, np.ndarray]:
        """Ideal (software) weights ``s·(ΔG+ − ΔG−)``, float32 — what the RRAM target
        realizes exactly with an ideal device config."""
        return {k: ((gp - gn) * self.scale[k]).to(torch.float32).numpy() for k, (gp, gn) in self._dense_dg().items()}

    def _build_graph(self):
        from ...graph import load

        c = self.config
        n = c.n_neurons
        tau = c.dt / (1 - c.decay)
        full = lambda v: np.full(n, v, np.float32)  # noqa: E731
        w = self.weights()
        lif = nir.LIF(tau=full(tau), r=full(tau / c.dt), v_leak=full(0.0), v_threshold=full(c.threshold), v_reset=full(0.0))
        nodes = {
            "input": nir.Input(np.array([c.n_inputs])),
            "w_in": nir.Linear(weight=w["w_in"]),
            "lif": lif,
            "w_rec": nir.Linear(weight=w["w_rec"]),
            "output": nir.Output(np.array([n])),
        }
        edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")]
        g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
        g.metadata = {"dt": c.dt}
        return load(g, dt=c.dt, reset="zero")

    # --------------------------------------------------------------------------------
    def compile(self, target: str = "reference", mode: str = "formed", config: DeviceConfig | None = None,
                seed: int | None = None, device: str = "cpu", kernel: str | None = None):
        """A Program of the reservoir on ``target`` ("reference" or "rram").

        Dense reservoirs compile their Graph (the reference / RRAM target programs) unless
        ``kernel="dense"`` asks for the lean reservoir program (:class:`.sparse.SparseReservoirProgram`:
        one GEMM per layer and step, counts taken in bulk). Sparse reservoirs always give
        the reservoir program, ``kernel`` "csr" (default), "gather" (bitwise reproducible on
        CUDA) or "dense" (small N)."""
        seed = self.config.seed if seed is None else seed
        if self.sparse is not None or kernel is not None:
            from .sparse import SparseReservoirProgram

            return SparseReservoirProgram(self, target, mode, config, seed, device, kernel=kernel or "auto")
        if target == "reference":
            from ..reference import ReferenceTarget

            return ReferenceTarget().compile(self.graph, device=device)
        if target != "rram":
            raise InputError(f"LSM: target must be 'reference' or 'rram', got {target!r}")
        from .program import RRAMTarget

        cfg = config or self.device_config
        if mode == "formed":
            cond = {k: (gp, gn, self.scale[k]) for k, (gp, gn) in self.dg.items()}
            return RRAMTarget().compile(self.graph, config=cfg, seed=seed, conductances=cond, device=device)
        if mode == "programmed":
            return RRAMTarget().compile(self.graph, config=cfg, seed=seed, device=device)
        raise InputError(f"LSM: mode must be 'formed' or 'programmed', got {mode!r}")

    def run(self, x, target="reference", mode="formed", config=None, seed=None, batch_size=512, device="cpu",
            kernel=None, program=None, read_seed=None):
        """Reservoir spikes (B, T, N) for inputs ``x`` (B, T, n_inputs), in batches, plus the
        summed event counts (``kernel``: see :meth:`compile`). ``program``: run this compiled
        program of the reservoir instead of compiling one (e.g. one whose ADC ranges were
        calibrated on training data); ``read_seed``: its read-noise seed (default: the
        program's). A program compiled here with ``adc_range="calibrated"`` calibrates its
        ADCs on the first batch."""
        outs, counts = [], {}
        for out in self._batches(x, target, mode, config, seed, batch_size, device, kernel, program, read_seed, counts):
            outs.append(out.cpu())
        return torch.cat(outs), counts

    def features(self, x, bins: int = 1, target="reference", mode="formed", config=None, seed=None, batch_size=512,
                 device="cpu", kernel=None, program=None, read_seed=None, max_batch_elements: int = 2 ** 26,
                 kind: str = "counts", tau: float | None = None):
        """Readout features (:func:`.readout.window_features` of the spikes: ``kind`` "counts"
        per window, or "trace" — spikes low-pass filtered with ``tau`` steps, sampled at each
        window's end; (B, bins·N) float32) of inputs ``x`` without keeping the spike trains:
        batches of at most ``batch_size`` samples and ``max_batch_elements`` spikes (B·T·N),
        so large reservoirs fit in memory. Returns ``(features, counts, spike_rate)``;
        arguments as :meth:`run`."""
        x = torch.as_tensor(x, dtype=torch.float32)
        steps = x.shape[1] if x.ndim > 1 else 1
        bs = max(1, min(int(batch_size), max_batch_elements // max(1, steps * self.config.n_neurons)))
        feats, counts = [], {}
        total = 0.0
        for out in self._batches(x, target, mode, config, seed, bs, device, kernel, program, read_seed, counts):
            feats.append(window_features(out.cpu(), bins, kind, tau))
            total += float(out.sum(dtype=torch.float64))
        n = x.shape[0] * steps * self.config.n_neurons
        return np.concatenate(feats), counts, (total / n if n else 0.0)

    def _batches(self, x, target, mode, config, seed, batch_size, device, kernel, program, read_seed, counts):
        prog = program if program is not None else self.compile(target, mode, config, seed, device, kernel)
        x = torch.as_tensor(x, dtype=torch.float32)
        for i in range(0, x.shape[0], batch_size):
            r = prog.run(x[i:i + batch_size]) if read_seed is None else prog.run(x[i:i + batch_size], seed=read_seed)
            for n, c in r.counts.items():
                d = counts.setdefault(n, {})
                for k, v in c.items():
                    d[k] = v if k == "tiles" else d.get(k, 0) + v
            yield r.output

    def save(self, path):
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        if self.sparse is not None:
            arrays = {f"{k}/{s}": getattr(w, s).cpu().numpy() for k, w in self.sparse.items() for s in ("index", "dg_pos", "dg_neg")}
        else:
            arrays = {f"{k}/{s}": t.numpy() for k, (gp, gn) in self.dg.items() for s, t in (("dg_pos", gp), ("dg_neg", gn))}
        np.savez_compressed(d / "reservoir.npz", **arrays)
        (d / "reservoir.json").write_text(json.dumps({"lsm": asdict(self.config), "device": self.device_config.to_dict()}, indent=2))

    @classmethod
    def load(cls, path) -> "Reservoir":
        d = Path(path)
        meta = json.loads((d / "reservoir.json").read_text())
        data = np.load(d / "reservoir.npz")
        config = LSMConfig(**meta["lsm"])
        if config.sparse:
            from .sparse import SparseWeights

            n_pre = {"w_in": config.n_inputs, "w_rec": config.n_neurons}
            sp = {k: SparseWeights(*(torch.as_tensor(data[f"{k}/{s}"]) for s in ("index", "dg_pos", "dg_neg")), n_pre[k])
                  for k in ("w_in", "w_rec")}
            return cls(config, DeviceConfig(**meta["device"]), sparse=sp)
        dg = {k: (data[f"{k}/dg_pos"], data[f"{k}/dg_neg"]) for k in ("w_in", "w_rec")}
        return cls(config, DeviceConfig(**meta["device"]), dg=dg)
