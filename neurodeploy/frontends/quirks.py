"""Every known exporter quirk, as one named, documented repair each.

A quirk is a way a framework's NIR export (or its exporter itself) differs from what the
model computes in its own framework. Each has a name in :data:`QUIRKS`; the names of the
repairs applied to a model are recorded in ``Graph.metadata["repairs"]`` and listed by
``neurodeploy inspect``. What a repair had to assume because the file cannot say (Sinabs'
and Rockpool's multi-spike defaults, a dropped bias) is listed in
``Graph.metadata["assumptions"]``. Notes that are not repairs but must be seen (a convention that
cannot be known from the file) go to ``Graph.metadata["load_warnings"]`` and are reported
by :func:`neurodeploy.graph.diagnose.diagnose`.

Graph repairs (``repair_graph``) apply to a ``nir.NIRGraph`` handed to ``load`` (in memory or
from a file), detected from the graph's structure and parameters or forced with
``framework=``. Module workarounds are applied by the frontends when they trace a module
(``neurodeploy.frontends.norse`` / ``.snntorch``) and recorded under the same names.
Each repair is tested in tests/test_quirks.py against the raw upstream path.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from ..errors import InputError, UnsupportedError
from . import _edit

NORSE_DT = 1e-3  # norse's default step (``to_nir(dt=0.001)``, every cell's ``dt``)
SNNTORCH_DT = 1e-4  # fixed inside snntorch 1.0.0 export_nir.py / import_nir.py
FRAMEWORKS = ("norse", "snntorch", "sinabs", "rockpool", "torch")


@dataclass(frozen=True)
class Quirk:
    name: str
    framework: str  # and version the quirk was seen in
    problem: str
    repair: str


QUIRKS = {q.name: q for q in (
    Quirk("norse-tau", "norse 1.1.0", "to_nir writes tau = dt/tau_inv (= dt·τ): dt/τ ≈ 100, membranes explode",
          "tau = written tau / dt (the dt given to to_nir, default 1e-3 s)"),
    Quirk("norse-w-in", "norse 1.1.0", "LIFCell/LICell input jumps into the current (i += x); CubaLIF adds dt/τ_syn·w_in·x "
          "but to_nir writes w_in = 1", "w_in = τ_syn/dt (exact: norse's membrane uses the jumped current)"),
    Quirk("norse-if-r", "norse 1.1.0", "IAFCell integrates v += x per step; to_nir writes IF r = 1 (v += dt·x)", "r = 1/dt"),
    Quirk("norse-v-leak-start", "norse 1.1.0", "norse starts membranes at v_leak, NIR targets at 0",
          "spiking layers with v_leak ≠ 0 are rewritten relative to v_leak (v_leak → 0, threshold and reset − v_leak): "
          "exact for reset to zero; a non-spiking LI/CubaLI keeps its leak and gets a load warning"),
    Quirk("norse-0d-params", "norse 1.1.0", "parameters are 0-d torch tensors, which nir.write cannot store",
          "numpy arrays, broadcast to the layer's shape by normalize"),
    Quirk("norse-export-layers", "norse 1.1.0", "to_nir crashes on Conv2d(bias=False) and gives 'unsupported type "
          "NoneType' for Flatten/AvgPool2d; a cell's own dt is ignored", "the module path traces with our own extractor"),
    Quirk("snntorch-dt", "snntorch 1.0.0", "export_to_nir writes tau = 1e-4/(1-β), r = tau/1e-4: loading at another "
          "dt changes the decay", "τ recomputed from β for the dt asked for (the per-step model is dt-free)"),
    Quirk("snntorch-reset", "snntorch 1.0.0", "Leaky/Synaptic/RLeaky reset by subtraction one step late (v = βv + x − θ·s[t-1]); "
          "the export does not say which reset", "module path: reset from the module, subtraction as NIR subtract plus a "
          "self-loop of −(1−β)θ (exact); graph path: reset='subtract' adds the same loop"),
    Quirk("snntorch-synaptic", "snntorch 1.0.0", "a reset kick must reach the membrane, not the synaptic current",
          "Synaptic/RSynaptic become LI (current) → LIF (membrane)"),
    Quirk("snntorch-export-layers", "snntorch 1.0.0", "export_to_nir fails in nir's type inference (batch dimension) "
          "and with an IndexError on Conv2d", "the module path traces with our own extractor"),
    Quirk("sinabs-if-r", "sinabs 2.0.3", "IF r = 1 means v += x per step", "framework='sinabs': r = r/dt"),
    Quirk("sinabs-decay", "sinabs 2.0.3", "LIF/LI tau is in steps with an exact decay α = exp(−1/τ) (v = αv + (1−α)x for "
          "LIF, v = αv + x for ExpLeak), written as an Euler LIF/LI with r = 1", "framework='sinabs': τ = dt/(1−α), "
          "r = 1 (LIF, norm_input=True) or 1/(1−α) (LI, ExpLeak's norm_input=False); spikes reset by subtraction"),
    Quirk("rockpool-decay", "rockpool 3.1.0", "to_nir writes τ and r = τ·exp(−dt/τ)/dt for neurons that decay exactly "
          "per step (I = β(I + x), v = αv + I) and reset by subtraction", "dt solved from r and τ; τ = dt/(1−α), "
          "r = 1/(1−α), w_in = β/(1−β) (LI: r = β/(1−β)); reset by subtraction"),
    Quirk("output-type", "rockpool", "the Output node is typed with another shape than it receives (plain nir.read "
          "refuses the file; Rockpool 3.1.0's to_nir types Input and Output with the sample's batch dimension, which "
          "nir.read refuses too)", "read without nir's type check; a leading batch dimension is dropped, any other "
          "Output type is taken from its input (graph/normalize.py)"),
)}


# ---------------------------------------------------------------------------------------
# metadata helpers
def listed(meta, key: str) -> list[str]:
    """A metadata list of strings (lists, arrays of bytes from a file, or one string)."""
    from ..graph.normalize import _listed

    return _listed(dict(meta or {}), key)


def record(graph: nir.NIRGraph, *, repairs=(), warnings=(), **meta) -> nir.NIRGraph:
    """Append repair names / load warnings (``(code, node, message)``) to ``graph.metadata``."""
    for name in repairs:
        assert name in QUIRKS, name
    m = graph.metadata
    done = listed(m, "repairs")
    if any(r not in done for r in repairs):
        m["repairs"] = done + [r for r in repairs if r not in done]
    if warnings:
        m["load_warnings"] = listed(m, "load_warnings") + ["\t".join(w) for w in warnings]
    m.update(meta)
    return graph


def _neurons(graph):
    types = (nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF)
    return [(n, node, parent, local) for n, node, parent, local in _edit.walk(graph) if isinstance(node, types)]


def _f(v):
    return _edit.as_numpy(v)


# ---------------------------------------------------------------------------------------
# detection
def looks_like_norse(graph: nir.NIRGraph, dt: float | None) -> bool:
    """norse 1.1.0 ``to_nir`` output: torch tensor parameters, every tau below the export
    step (τ_written = dt·τ < dt for any τ < 1 s) and every IF with r = 1."""
    cells = _neurons(graph)
    taus = [_f(getattr(node, p)) for _, node, _, _ in cells for p in ("tau", "tau_mem", "tau_syn") if hasattr(node, p)]
    torch_params = any(hasattr(getattr(node, "v_threshold", getattr(node, "r", None)), "detach") for _, node, _, _ in cells)
    ifs = [_f(node.r) for _, node, _, _ in cells if isinstance(node, nir.IF)]
    if not torch_params or not (taus or ifs):
        return False
    return all(np.all(t < (dt or NORSE_DT)) for t in taus) and all(np.all(r == 1) for r in ifs)


def looks_like_snntorch(graph: nir.NIRGraph) -> bool:
    """snnTorch 1.0.0 ``export_to_nir`` output: every LIF/CubaLIF has v_leak = 0 and
    r = tau/1e-4 (and w_in = tau_syn/1e-4), with some r ≠ 1."""
    cells = [c for c in _neurons(graph) if isinstance(c[1], (nir.LIF, nir.CubaLIF))]
    if not cells:
        return False
    for _, node, _, _ in cells:
        tau = _f(node.tau if isinstance(node, nir.LIF) else node.tau_mem)
        ok = np.allclose(_f(node.r), tau / SNNTORCH_DT, rtol=1e-4) and not np.any(_f(node.v_leak))
        if isinstance(node, nir.CubaLIF):
            ok = ok and np.allclose(_f(node.w_in), _f(node.tau_syn) / SNNTORCH_DT, rtol=1e-4)
        if not ok:
            return False
    return any(not np.allclose(_f(node.r), 1.0) for _, node, _, _ in cells)


def rockpool_steps(graph: nir.NIRGraph):
    """Per neuron ``u = dt/τ`` of a Rockpool 3.1.0 export: it writes r = τ·exp(−dt/τ)/dt,
    so u·e^u = 1/r. Returns ``{name: (node, u, dt = u·τ)}``, or None when a neuron cannot
    come from Rockpool's exporter."""
    out = {}
    for name, node, _, _ in _neurons(graph):
        if not isinstance(node, (nir.LI, nir.LIF, nir.CubaLIF)) or np.any(_f(node.v_leak)):
            return None
        if isinstance(node, nir.CubaLIF) and not np.allclose(_f(node.w_in), 1.0):
            return None
        r, tau = _f(node.r).astype(np.float64), _f(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau)
        if np.any(r <= 0) or np.any(tau <= 0):
            return None
        u = _lambert_u(r)
        out[name] = (node, u, u * tau.astype(np.float64))
    return out or None


def _lambert_u(r):
    """u with u·e^u = 1/r (Newton on u + ln u + ln r = 0; the function is increasing)."""
    u = 1.0 / (np.asarray(r, np.float64) + 1.0)
    for _ in range(60):
        u = np.maximum(u - (u + np.log(u) + np.log(r)) / (1.0 + 1.0 / u), 1e-300)
    return u


def looks_like_rockpool(graph: nir.NIRGraph) -> bool:
    """Rockpool 3.1.0 ``to_nir`` output: types carry the sample's batch dimension (Input
    typed (1, n)), and every neuron gives the same exporter dt from its r and τ."""
    inputs = [node for node in graph.nodes.values() if isinstance(node, nir.Input)]
    shapes = [np.asarray(node.input_type.get("input", ())).reshape(-1) for node in inputs]
    if not shapes or not all(len(s) >= 2 and s[0] == 1 for s in shapes):
        return False
    steps = rockpool_steps(graph)
    if not steps:
        return False
    dts = np.concatenate([np.ravel(d) for _, _, d in steps.values()])
    return bool(np.allclose(dts, dts[0], rtol=1e-4))


def detect(graph: nir.NIRGraph, dt: float | None) -> str | None:
    if looks_like_norse(graph, dt):
        return "norse"
    if looks_like_snntorch(graph):
        return "snntorch"
    if looks_like_rockpool(graph):
        return "rockpool"
    return None


# ---------------------------------------------------------------------------------------
# graph repairs
def repair_graph(graph: nir.NIRGraph, dt=None, reset=None, framework=None):
    """Apply the repairs for ``framework`` (or the detected one) to a copy of ``graph``.

    Returns ``(graph, dt)``: the dt to load with (the exporter's convention when none was
    given). A graph that already lists a framework's repairs is returned unchanged."""
    if framework is not None and framework not in FRAMEWORKS:
        raise InputError(f"unknown framework {framework!r}: use one of {', '.join(FRAMEWORKS)}")
    meta = getattr(graph, "metadata", None) or {}
    if dt is None and meta.get("dt") is not None:
        dt = float(np.asarray(meta["dt"]).reshape(-1)[0])  # the file's own dt and reset are the user's
    if reset is None and meta.get("reset") is not None:
        reset = meta["reset"].decode() if isinstance(meta["reset"], bytes) else str(meta["reset"])
    done = listed(meta, "repairs")
    framework = framework or detect(graph, dt)
    if framework == "norse" and "norse-tau" not in done:
        return repair_norse(graph, dt, reset)
    if framework == "snntorch" and "snntorch-dt" not in done:
        return repair_snntorch(graph, dt, reset)
    if any(r in done for r in PER_STEP) and dt is not None and meta.get("exporter_dt") not in (None, dt):
        return rescale_per_step(graph, float(np.asarray(meta["exporter_dt"]).reshape(-1)[0]), dt), dt
    if framework == "sinabs" and "sinabs-if-r" not in done:
        return repair_sinabs(graph, dt, reset)
    if framework == "rockpool" and "rockpool-decay" not in done:
        return repair_rockpool(graph, dt, reset)
    return graph, dt


def repair_norse(graph, dt=None, reset=None):
    """norse-tau, norse-w-in, norse-if-r, norse-0d-params, norse-v-leak-start."""
    dt = float(dt or NORSE_DT)
    g = _edit.clone(graph)
    for name, node, parent, local in _neurons(g):
        params = {p: _f(getattr(node, p)) for p in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset",
                                                   "w_in") if getattr(node, p, None) is not None}
        for p in ("tau", "tau_mem", "tau_syn"):
            if p in params:
                params[p] = params[p] / dt
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            params["w_in"] = params["tau_syn"] / dt
        if isinstance(node, nir.IF):
            params["r"] = params["r"] / dt
        parent.nodes[local] = _edit.with_params(node, **params)
    record(g, repairs=["norse-0d-params", "norse-tau", "norse-w-in", "norse-if-r"], exporter="norse", exporter_dt=dt)
    return shift_to_leak(g, reset or "zero"), dt


def shift_to_leak(graph, reset: str):
    """norse-v-leak-start: rewrite spiking layers relative to v_leak, so that starting at 0
    here is norse's start at v_leak (exact for reset to zero)."""
    g, shifted, warn = graph, False, []
    for name, node, parent, local in _neurons(graph):
        leak = _f(getattr(node, "v_leak", 0.0))
        if not np.any(leak):
            continue
        if isinstance(node, (nir.LI, nir.CubaLI)):
            warn.append(("norse-v-init", name, f"norse starts this layer at v_leak (up to {np.abs(leak).max():.3g}); "
                         "here it starts at 0 (the reference target's v_init='leak' matches norse)"))
            continue
        if reset == "subtract":
            raise UnsupportedError(f"node '{name}': norse starts membranes at v_leak ≠ 0; with reset by subtraction "
                                   "that start cannot be expressed in NIR (use v_leak = 0 or reset to zero)")
        parent.nodes[local] = _edit.with_params(node, v_leak=0 * leak, v_threshold=_f(node.v_threshold) - leak,
                                                v_reset=_f(node.v_reset) - leak)
        shifted = True
    return record(g, repairs=["norse-v-leak-start"] if shifted else [], warnings=warn)


def repair_snntorch(graph, dt=None, reset=None):
    """snntorch-dt (and snntorch-reset when reset='subtract' is asked for)."""
    dt = float(dt or SNNTORCH_DT)
    _refuse_inexact_snntorch(graph, reset)
    g = _edit.clone(graph)
    k = dt / SNNTORCH_DT
    for name, node, parent, local in _neurons(g):
        params = {p: _f(getattr(node, p)) * k for p in ("tau", "tau_mem", "tau_syn") if hasattr(node, p)}
        parent.nodes[local] = _edit.with_params(node, **params)
    warn = []
    if reset is None:
        warn.append(("snntorch-reset", "", "snnTorch's export does not record the reset mechanism: loaded with reset "
                     "to zero, but snnTorch's Leaky resets by subtraction by default; pass reset='subtract' if the "
                     "model does, or load the module itself"))
    record(g, repairs=["snntorch-dt"], warnings=warn, exporter="snntorch", exporter_dt=dt)
    if reset == "subtract":
        g = subtract_loops(g)
    return g, dt


def _refuse_inexact_snntorch(graph, reset):
    """An exported Synaptic (CubaLIF) has no exact NIR form with either reset; an exported
    RLeaky (LIF in a loop) has none with reset to zero (snnTorch then discards the step's input)."""
    edges = {tuple(e) for _, _, parent, _ in _neurons(graph) for e in parent.edges}
    for name, node, parent, local in _neurons(graph):
        if isinstance(node, nir.CubaLIF):
            raise UnsupportedError(f"node '{name}': an exported snnTorch Synaptic layer cannot run exactly (its reset "
                                   "must act on the membrane, not on the CubaLIF current); load the snnTorch module")
        looped = any((local, b) in edges and (b, local) in edges for b in parent.nodes)
        if isinstance(node, nir.LIF) and looped and reset != "subtract":
            raise UnsupportedError(f"node '{name}': an exported snnTorch RLeaky with reset to zero discards the input "
                                   "of the step after a spike, which NIR cannot express; pass reset='subtract' if "
                                   "the module resets by subtraction (RLeaky's default), or load the module")


PER_STEP = ("snntorch-dt", "rockpool-decay", "sinabs-if-r")  # repairs after which the neurons are per step


def rescale_per_step(graph, old_dt: float, dt: float):
    """A graph already repaired for a per-step framework (snnTorch, Rockpool, Sinabs) at
    ``old_dt``, loaded at another dt: τ follows the dt, an IF's r its inverse, so each step
    stays the framework's step (``exporter_dt`` becomes the new dt)."""
    g = _edit.clone(graph)
    for name, node, parent, local in _neurons(g):
        params = {p: _f(getattr(node, p)) * (dt / old_dt) for p in ("tau", "tau_mem", "tau_syn") if hasattr(node, p)}
        if isinstance(node, (nir.I, nir.IF)):
            params["r"] = _f(node.r) * (old_dt / dt)  # r = 1/dt: v += x per step
        parent.nodes[local] = _edit.with_params(node, **params)
    g.metadata["exporter_dt"] = dt
    return g


def subtract_loops(graph):
    """snnTorch subtracts an undecayed threshold one step late: v[t] = βv[t-1] + x − θ·s[t-1].
    NIR subtract gives βv − βθ·s, so a self-loop adds −(1−β)θ·s = −θ/r·s (exact)."""
    g = graph
    for name, node, parent, local in _neurons(graph):
        if isinstance(node, nir.CubaLIF):
            raise UnsupportedError(f"node '{name}': a Synaptic layer's reset by subtraction cannot be added to an "
                                   "exported CubaLIF; load the snnTorch module itself")
        if isinstance(node, nir.LIF):
            kick = nir.Scale(scale=np.asarray(-_f(node.v_threshold) / _f(node.r), np.float32))
            new = _edit.add_loop(parent, local, kick, "reset")
            parent.nodes, parent.edges = new.nodes, new.edges
    return record(g, repairs=["snntorch-reset"])


MULTI_SPIKE = ("{fw} emits floor(v/θ) events per step by default ({how}); a NIR neuron emits one: equal to {fw} "
               "only while no membrane reaches 2θ in a step. Spikes at v = θ exactly: {fw} fires, NIR needs v > θ")


def repair_sinabs(graph, dt=None, reset=None):
    """sinabs-if-r, sinabs-decay: Sinabs layers are per step (IAF: v += x; LIF:
    v = αv + (1−α)x; ExpLeak: v = αv + x, α = exp(−1/τ)), and reset by subtraction."""
    if dt is None:
        raise InputError("framework='sinabs': pass dt (seconds); Sinabs models are per step, any dt gives the same spikes")
    g = _edit.clone(graph)
    repairs = ["sinabs-if-r"]
    for name, node, parent, local in _neurons(g):
        if isinstance(node, (nir.IF, nir.I)):
            parent.nodes[local] = _edit.with_params(node, r=_f(node.r) / dt)
        elif isinstance(node, (nir.LIF, nir.LI)):
            a = 1.0 - np.exp(-1.0 / _f(node.tau).astype(np.float64))
            r = _f(node.r) if isinstance(node, nir.LIF) else _f(node.r) / a
            parent.nodes[local] = _edit.with_params(node, tau=dt / a, r=r)
            repairs.append("sinabs-decay")
        elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            raise UnsupportedError(f"node '{name}': Sinabs' exporter writes no synaptic layers; a "
                                   f"{type(node).__name__} in a Sinabs file has no known meaning")
    assumed = [MULTI_SPIKE.format(fw="Sinabs", how="MultiSpike; build with SingleSpike")]
    if any(isinstance(n, (nir.LIF, nir.LI)) for _, n, _, _ in _neurons(g)):
        assumed.append("Sinabs' exporter writes r = 1 whatever norm_input: read as LIF with norm_input=True and "
                       "ExpLeak with norm_input=False (their defaults)")
    extra = {} if reset is not None else {"reset": "subtract"}  # MembraneSubtract, Sinabs' default
    return record(g, repairs=list(dict.fromkeys(repairs)), exporter="sinabs", exporter_dt=float(dt),
                  assumptions=assumed, **extra), dt


def repair_rockpool(graph, dt=None, reset=None):
    """rockpool-decay: Rockpool's LIFTorch (CubaLIF), LIFNeuronTorch (LIF) and ExpSynTorch
    (LI) decay exactly per step; their exporter dt is solved from r and τ."""
    steps = rockpool_steps(graph)
    if not steps:
        raise UnsupportedError("framework='rockpool': a neuron does not have the form Rockpool's to_nir writes "
                               "(LI/LIF/CubaLIF with v_leak = 0, w_in = 1, r = τ·exp(−dt/τ)/dt)")
    dt_rp = float(f"{np.median(np.concatenate([np.ravel(d) for _, _, d in steps.values()])):.6g}")  # r is float32
    dt = float(dt or dt_rp)
    g = _edit.clone(graph)
    for name, node, parent, local in _neurons(g):
        keep, u, _ = steps[name]
        k = -np.expm1(-u)  # 1 − exp(−dt/τ): the step's decay, per neuron
        if isinstance(node, nir.CubaLIF):
            ks = -np.expm1(-dt_rp / _f(node.tau_syn).astype(np.float64))
            params = dict(tau_mem=dt / k, r=1.0 / k, tau_syn=dt / ks, w_in=(1.0 - ks) / ks)
        else:
            params = dict(tau=dt / k, r=(1.0 / k) if isinstance(node, nir.LIF) else (1.0 - k) / k)
        parent.nodes[local] = _edit.with_params(node, **params)
    assumed = [MULTI_SPIKE.format(fw="Rockpool", how="max_spikes_per_dt = 2**16; build with max_spikes_per_dt=1"),
               "Rockpool's to_nir writes bias as v_leak = 0 and drops w_rec: equal only for bias 0 and no recurrence"]
    extra = {} if reset is not None else {"reset": "subtract"}
    return record(g, repairs=["rockpool-decay"], exporter="rockpool", exporter_dt=dt, assumptions=assumed,
                  **extra), dt
