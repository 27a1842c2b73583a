"""Hardware-aware fine-tuning of any Graph: :func:`finetune` and :func:`evaluate`.

:func:`finetune` trains the synapse weights and biases of a loaded Graph with the
differentiable reference simulation (:mod:`.simulate`, surrogate gradient of
:mod:`.surrogate`) while the forward pass sees the target's effects (:mod:`.effects`):
``loihi2-emu`` / ``lava`` → Loihi's fixed-point grid, ``rram`` → the device model with a fresh
training device seed per step, ``reference`` → none. Loss: cross-entropy of the output's
readout (spike counts of a spiking output, else the maximum potential over time, as
:func:`neurodeploy.measure.metrics.predict` reads them). The parameters with the best
validation accuracy under the effect are kept. The test split is never read.

:func:`evaluate` measures a Graph on a target through the measurement layer
(:func:`neurodeploy.measure.report.target_entry`): one compile per evaluation device seed,
ADC ranges calibrated on the validation split, accuracy on the test split.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..graph.graph import SPIKING_TYPES
from .data import Splits, splits
from .params import with_params

#: training device seeds start here; evaluation seeds (default 0, 1, 2) must not be among them
TRAIN_SEED_BASE = 1_000_000
TARGETS = ("reference", "loihi2-emu", "lava", "rram")
#: targets whose compile takes a device seed
SEEDED = ("rram",)


def make_effect(target: str, graph, hardware=None, options=None, seeds: Sequence[int] = (), device="cpu"):
    from .effects import LoihiGrid, RRAMDevice

    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)} for finetune, got {target!r}")
    if target == "rram":
        return RRAMDevice(graph, hardware, options, seeds, device=device)
    if target in ("loihi2-emu", "lava"):
        return LoihiGrid(graph, hardware, options, target)
    if options:
        raise InputError(f"finetune on reference: unknown option(s) {', '.join(sorted(options))}")
    return None


def train_seeds(seeds, eval_seeds: Sequence[int]) -> list[int]:
    """``seeds``: an int N (seeds TRAIN_SEED_BASE … +N−1) or a list; none may be an
    evaluation seed."""
    s = list(range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + int(seeds))) if isinstance(seeds, int) else [int(v) for v in seeds]
    if not s:
        raise InputError("finetune: seeds must name at least one training device seed")
    seen = sorted(set(s) & {int(v) for v in eval_seeds})
    if seen:
        raise InputError(f"finetune: training device seeds {seen} are evaluation seeds; evaluation seeds must be unseen")
    return s


def readout_scores(out: torch.Tensor, spiking: bool) -> torch.Tensor:
    """(batch, time, classes) → class scores: spike counts, or the maximum potential."""
    out = out.reshape(out.shape[0], out.shape[1], -1)
    return out.sum(1) if spiking else out.max(1).values


def _spiking_output(graph) -> bool:
    (o,) = graph.outputs
    preds = graph.predecessors(o)
    return len(preds) == 1 and isinstance(graph.nodes[preds[0]], SPIKING_TYPES)


def _accuracy(sim, effect, x, y, spiking, batch=512) -> float:
    """Accuracy of the simulation under ``effect``, averaged over its validation devices
    where it has them (its validation copy: the same devices every time, one pass over
    ``x`` each; with batches of ``batch`` one device per batch, so keep ``batch`` ≥ len(x))."""
    passes = getattr(effect, "passes", 1)
    effect = effect.validation() if hasattr(effect, "validation") else effect
    hits = 0
    with torch.no_grad():
        for _ in range(passes):
            for i in range(0, len(y), batch):
                out = sim(x[i:i + batch], effect)[sim.graph.outputs[0]]
                hits += int((readout_scores(out, spiking).argmax(1).cpu().numpy() == y[i:i + batch]).sum())
    return hits / (passes * len(y))


def _clipper(sim, effect, clip: bool):
    """A function clamping each synapse's weight to the effect's training bounds (none
    without ``clip`` or bounds); applied once before training and after every step."""
    vals = sim.values()
    bounds = effect.bounds(vals) if clip and hasattr(effect, "bounds") else {}

    def apply():
        with torch.no_grad():
            for n, c in bounds.items():
                vals[n]["weight"].clamp_(-c, c)
    return apply, bounds


def finetune(graph, target: str, hardware=None, data="digits", epochs: int = 5, seeds=256, *,
             eval_seeds: Sequence[int] = (0, 1, 2), lr: float = 2e-3, batch_size: int = 64, options=None,
             clip: bool = True, schedule: str = "cosine", seed: int = 0, device: str = "cpu",
             log: Callable[[dict], None] | None = None):
    """Fine-tune ``graph`` (anything :func:`neurodeploy.load` accepts) for ``target`` on
    ``data`` ("digits", a .npz, a :class:`.data.Splits` or ((x_train, y_train), (x_test,
    y_test))); returns the tuned Graph (save it with :func:`neurodeploy.save`).
    ``seeds``: training device seeds (int N or a list; disjoint from ``eval_seeds``);
    ``options``: the target's options that shape the effect (rram: ``config``; Loihi:
    ``weight_exp``, ``vth``, ``vth_max``); ``clip``: rram, clamp each layer's weights to
    the conductance range :func:`.effects.clip_bound` picks (the finer 4-level grid);
    ``schedule``: "cosine" (the learning rate decays to 0 over the run) or "constant";
    ``log(record)`` is called after every epoch."""
    from .. import load
    from ..graph import Graph
    from .simulate import Simulator

    graph = graph if isinstance(graph, Graph) else load(graph)
    if len(graph.outputs) != 1 or len(graph.inputs) != 1:
        raise InputError(f"finetune needs one Input and one Output node, the graph has {len(graph.inputs)} and "
                         f"{len(graph.outputs)}")
    if not (isinstance(epochs, int) and epochs >= 0):
        raise InputError(f"finetune: epochs must be an integer >= 0, got {epochs!r}")
    if schedule not in ("cosine", "constant"):
        raise InputError(f"finetune: schedule must be 'cosine' or 'constant', got {schedule!r}")
    sp = splits(data, seed)
    effect = make_effect(target, graph, hardware, options, train_seeds(seeds, eval_seeds), device)
    torch.manual_seed(seed)
    sim = Simulator(graph, device=device)
    opt = torch.optim.Adam(sim.parameters(), lr=lr)
    (xtr, ytr), gen = sp.train, np.random.default_rng(seed)
    steps = max(1, epochs * -(-len(ytr) // batch_size))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda k: 0.5 * (1 + np.cos(np.pi * k / steps))) if schedule == "cosine" else (lambda k: 1.0))
    spiking = _spiking_output(graph)
    clamp, bounds = _clipper(sim, effect, clip)
    best = (_accuracy(sim, effect, *sp.val, spiking), sim.numpy_values())  # the loaded graph, unclipped
    clamp()
    for epoch in range(epochs):
        perm = gen.permutation(len(ytr))
        for i in range(0, len(ytr), batch_size):
            idx = perm[i:i + batch_size]
            out = sim(xtr[idx], effect)[graph.outputs[0]]
            loss = torch.nn.functional.cross_entropy(readout_scores(out, spiking), torch.as_tensor(ytr[idx], device=sim.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            clamp()
        val = _accuracy(sim, effect, *sp.val, spiking)
        if val > best[0]:
            best = (val, sim.numpy_values())
        if log is not None:
            log({"epoch": epoch + 1, "loss": float(loss), "val_accuracy": val, "best_val_accuracy": best[0]})
    return with_params(graph, best[1])


def evaluate(graph, target: str, hardware=None, data="digits", seeds: Sequence[int] = (0, 1, 2), *, options=None,
             readout: str = "spikes", split: str = "test", seed: int = 0) -> dict:
    """Accuracy of ``graph`` on ``target`` over device ``seeds`` (one run where the target
    has no device seed), read from the measurement layer's report entry. The ADC ranges of a
    calibrated program are calibrated on the validation split first. Returns {"target",
    "seeds", "accuracy": [per seed], "mean", "std", "entries": [report entries]}."""
    from ..measure.report import target_entry
    from . import running

    sp = data if isinstance(data, Splits) else splits(data, seed)
    x, y = getattr(sp, split)
    entries = []
    for s in (seeds if target in SEEDED else [None]):
        kw = dict(options or {}, **({} if s is None else {"seed": int(s)}))
        program, profile = running.compile_for(target, graph, hardware, **kw)
        running.calibrate(program, sp.val[0], "validation split")
        result = running.run(program, graph, x)
        entries.append(target_entry(target, program, result, graph, profile, labels=y, readout=readout,
                                    inputs={graph.inputs[0]: x}))
    acc = [e["metrics"]["accuracy"] for e in entries]
    return {"target": target, "seeds": None if target not in SEEDED else [int(s) for s in seeds], "accuracy": acc,
            "mean": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0, "entries": entries}
