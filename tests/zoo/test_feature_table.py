"""docs/frontends.md's frontends × features table is kept true: every cell is checked by
loading a model with that feature the column's way and comparing with the framework."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import neurodeploy.graph as G
from neurodeploy.errors import GraphError, UnsupportedError

from . import test_norse_zoo as nz
from . import foreign_models as foreign
from . import test_snntorch_zoo as sz
from .common import run_ours, spikes

nt = pytest.importorskip("norse.torch")
snn = pytest.importorskip("snntorch")
DOC = Path(__file__).resolve().parents[2] / "docs" / "frontends.md"
DT = 1e-3

ROWS = {  # table row → (norse zoo model, snnTorch zoo model)
    "leaky LIF": ("LIFBoxCell", "Leaky-subtract"),
    "current-based LIF": ("LIFCell", "Synaptic"),
    "leaky readout (LI)": ("LIBoxCell-readout", None),
    "IF": ("IAFCell", "IF"),
    "recurrent (all-to-all)": ("LIFRecurrentCell", "RLeaky"),
    "reset by subtraction": ("LIFBoxCell-subtract", "Leaky-subtract"),
    "conv + avg-pool + flatten + linear": ("conv-pool-flatten-linear", "conv-pool-flatten-linear"),
    "MaxPool": ("MaxPool", "MaxPool"),
}
SNN_EXTRA = {
    "IF": (lambda: sz._net(torch.nn.Linear(8, 6), snn.Leaky(beta=1.0, init_hidden=True, output=True)), (8,), ["1"],
           "subtract"),
    "MaxPool": (lambda: sz._net(torch.nn.Conv2d(2, 2, 3), snn.Leaky(beta=0.8, init_hidden=True), torch.nn.MaxPool2d(2)),
                (2, 6, 6), ["1"], "subtract"),
}
NORSE_EXTRA = {"MaxPool": (lambda dt: nt.SequentialState(torch.nn.Linear(6, 4), torch.nn.MaxPool1d(2)), (6,), [], [],
                           False)}


class Upstream(Exception):
    """The framework's own exporter failed."""


def _outcome(make):
    """'exact', 'differs', 'refused' (our UnsupportedError/GraphError) or 'upstream fails'."""
    try:
        graph, x, theirs, spiking = make()
    except Upstream:
        return "upstream fails"
    except (UnsupportedError, GraphError):
        return "refused"
    ours = run_ours(graph, x)
    same = all(torch.equal(ours.records[n], theirs[n]) for n in spiking)
    graded = all(torch.allclose(ours.records[n], theirs[n], rtol=1e-4, atol=1e-5) for n in theirs if n not in spiking)
    return "exact" if same and graded and all(theirs[n].sum() > 0 for n in spiking) else "differs"


def _upstream(fn, *a, **kw):
    """Call the framework's exporter; its exceptions and the None nodes it leaves for layers
    it does not know are upstream failures."""
    try:
        graph = fn(*a, **kw)
    except Exception as exc:  # noqa: BLE001 - anything the framework raises
        raise Upstream(str(exc)) from exc
    if any(node is None for node in graph.nodes.values()):
        raise Upstream("the exporter left a layer without a node")
    return graph


def norse_case(model, graph_route):
    build, shape, spiking, readouts, _ = {**nz.ZOO, **NORSE_EXTRA}[model]
    torch.manual_seed(0)
    module = build(DT).eval()
    x = spikes((3, 30, *shape), seed=1)
    if graph_route:
        reset = "subtract" if "subtract" in model else None
        graph = G.load(_upstream(nt.to_nir, module, x[:1, 0], dt=DT), dt=DT, reset=reset)
    else:
        graph = G.load(module, x[:1, 0])
    return graph, x, nz.norse_layers(module, x, spiking), spiking


def snn_case(model, graph_route):
    build, shape, spiking, reset, *_ = {**sz.ZOO, **SNN_EXTRA}[model]
    torch.manual_seed(0)
    net = build()
    x = spikes((3, 30, *shape), seed=1)
    if graph_route:
        graph = G.load(_upstream(sz.snntorch_extractor_graph, net, x[:1, 0]), dt=DT, reset=reset)
        graph_names = {n: n if n in graph.nodes else f"{n}.lif" for n in spiking}
    else:
        graph, graph_names = G.load(net, x[:1, 0], dt=DT), {n: n for n in spiking}
    theirs = sz.snn_layers(net, x, spiking)
    return graph, x, {graph_names[n]: t for n, t in theirs.items()}, list(graph_names.values())


def sinabs_case(row):
    """A Sinabs 2.0.3 model with the row's feature, exported by ``sinabs.to_nir`` and loaded
    with framework='sinabs' (skipped where Sinabs is not installed: it is not in the extras)."""
    pytest.importorskip("sinabs")
    from . import test_sinabs_zoo as bz

    build, shape, spiking, graded = foreign.SINABS[row]
    torch.manual_seed(0)
    m = build(bz)
    x = spikes((bz.B, bz.T, *shape), seed=1)
    graph = _upstream(bz.sinabs.to_nir, m, x[:, 0])
    if row == "current-based LIF" and not any(type(n).__name__.startswith("Cuba") for n in graph.nodes.values()):
        raise Upstream("sinabs.to_nir writes a LIF with tau_syn as a LIF without its synapse")
    theirs = bz.sinabs_layers(m, x, names=(*spiking, *graded))
    return G.load(graph, dt=DT, framework="sinabs"), x, theirs, list(spiking)


def rockpool_case(row):
    """A Rockpool 3.1.0 model with the row's feature, exported by its ``to_nir`` (detected)."""
    pytest.importorskip("rockpool")
    from . import test_rockpool_zoo as rz

    layers, n_in, spiking, graded = foreign.rockpool(row, rz)
    net = rz.Sequential(*layers)
    graph = _upstream(rz.to_nir, net, torch.zeros(1, n_in))
    if any(getattr(layer, "_has_rec", False) for layer in layers) and not any((b, a) in graph.edges for a, b in graph.edges):
        raise Upstream("rockpool's to_nir drops LIFTorch's w_rec")
    x = spikes((3, 40, n_in), seed=1)
    out, h = {}, x
    with torch.no_grad():
        for i, layer in enumerate(layers):
            h, _, _ = layer.evolve(h)
            out[f"{i}_{type(layer).__name__}"] = h.detach()
    return G.load(graph), x, {n: out[n] for n in (*spiking, *graded)}, list(spiking)


COLUMNS = {
    "norse module": lambda row: norse_case(ROWS[row][0], False),
    "norse `to_nir` graph": lambda row: norse_case(ROWS[row][0], True),
    "snnTorch module": lambda row: snn_case(ROWS[row][1], False),
    "snnTorch exported graph": lambda row: snn_case(ROWS[row][1], True),
    "Sinabs graph": sinabs_case,
    "Rockpool graph": rockpool_case,
}
FRAMEWORK_CASES = {"Sinabs graph": lambda: foreign.SINABS, "Rockpool graph": lambda: foreign.ROCKPOOL}


def table():
    text = DOC.read_text()
    block = text.split("<!-- features -->")[1]
    lines = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return header[1:], rows


def cells():
    cols, rows = table()
    return [(r, c, v) for r, row in rows.items() for c, v in row.items()]


def test_table_covers_every_row_and_column():
    cols, rows = table()
    assert cols == list(COLUMNS) and list(rows) == list(ROWS)


@pytest.mark.parametrize("row,col,claim", cells())
def test_table_cell_is_true(row, col, claim):
    claim = re.sub(r"\s*\(.*\)|\*", "", claim).strip()
    if claim == "—":
        if col in FRAMEWORK_CASES:
            assert FRAMEWORK_CASES[col]()[row] is None
        else:
            assert ROWS[row][0 if col.startswith("norse") else 1] is None
        return
    assert _outcome(lambda: COLUMNS[col](row)) == claim
