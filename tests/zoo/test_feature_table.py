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
    return "exact" if same and all(theirs[n].sum() > 0 for n in spiking) else "differs"


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


COLUMNS = {
    "norse module": lambda row: norse_case(ROWS[row][0], False),
    "norse `to_nir` graph": lambda row: norse_case(ROWS[row][0], True),
    "snnTorch module": lambda row: snn_case(ROWS[row][1], False),
    "snnTorch exported graph": lambda row: snn_case(ROWS[row][1], True),
}


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
        assert ROWS[row][0 if col.startswith("norse") else 1] is None
        return
    assert _outcome(lambda: COLUMNS[col](row)) == claim
