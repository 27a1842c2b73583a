"""One measurement protocol across targets (docs/protocol.md, issue 9): the same count keys
and definitions on reference, loihi2-emu and rram; measurement that never asks which
target ran; every kind documented."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from loihi_nets import conv_net, spikes  # noqa: E402

from neurodeploy.targets.base import EVENT_KINDS, EXTRA_KINDS, REGISTRY, get_target  # noqa: E402
from neurodeploy.targets.counting import SynapseInputs  # noqa: E402
from neurodeploy.targets.rram.device import DeviceConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("reference", "loihi2-emu", "rram")


@pytest.fixture(scope="module")
def runs():
    g = conv_net(1, pool=True)  # conv → LIF → SumPool → Flatten → Linear → CubaLIF
    x = spikes(7, 4, 24, g.shapes[g.inputs[0]], p=0.35)
    out = {"graph": g, "x": x}
    for t in TARGETS:
        opts = {"config": DeviceConfig().ideal()} if t == "rram" else {}
        prog = get_target(t).compile(g, **opts)
        out[t] = (prog, prog.run(x, record="all"))
    return out


def test_same_keys_and_dense_synops_on_every_target(runs):
    g = runs["graph"]
    counts = {t: runs[t][1].counts for t in TARGETS}
    protocol = {t: {n: sorted(k for k in c if k in EVENT_KINDS) for n, c in counts[t].items()} for t in TARGETS}
    assert protocol["loihi2-emu"] == protocol["reference"] == protocol["rram"]
    assert set(protocol["reference"]) == set(g.synapse_nodes()) | set(g.neuron_nodes())
    for n in g.synapse_nodes():
        dense = {t: counts[t][n]["dense_synops"] for t in TARGETS}
        assert len(set(dense.values())) == 1, (n, dense)
    # a conv counts its kernel MACs (taps that fall on the padding excluded), never an unrolled matrix
    c_out, c_in, k, _ = g.nodes["conv"].weight.shape
    h = g.shapes["in"][1]
    taps = sum(1 for i in range(h) for j in range(h) for di in range(k) for dj in range(k)
               if 0 <= i + di - 1 < h and 0 <= j + dj - 1 < h)
    assert counts["loihi2-emu"]["conv"]["dense_synops"] == taps * c_in * c_out * 4 * 24


def test_synaptic_events_same_definition(runs):
    g, x = runs["graph"], runs["x"]
    ref, emu, rram = (runs[t][1] for t in TARGETS)
    for n in g.synapse_nodes():  # ideal devices: the same inputs, so the same events
        assert rram.counts[n]["synaptic_events"] == ref.counts[n]["synaptic_events"], n
    # Loihi: the same definition applied to Loihi's own spikes (which trail by its lag)
    si = SynapseInputs(g)
    vals = {f: (np.asarray(x) if f in g.inputs else emu.records[f].numpy()) for f in si.feeders()}
    import torch

    own = si.counts({f: torch.as_tensor(v).reshape(v.shape[0], v.shape[1], -1) for f, v in vals.items()}, 4, 24)
    for n in g.synapse_nodes():
        assert emu.counts[n]["synaptic_events"] == own[n]["synaptic_events"], n
    assert emu.counts["conv"]["synaptic_events"] == ref.counts["conv"]["synaptic_events"]  # fed by the input itself


def test_every_emitted_kind_is_defined_and_documented(runs):
    doc = (ROOT / "docs" / "protocol.md").read_text()
    for kind in [*EVENT_KINDS, *EXTRA_KINDS]:
        assert f"| `{kind}` |" in doc, kind
    for t in TARGETS:
        emitted = {k for c in runs[t][1].counts.values() for k in c}
        assert emitted <= set(EVENT_KINDS) | set(EXTRA_KINDS), (t, emitted - set(EVENT_KINDS) - set(EXTRA_KINDS))


def test_descriptions_have_every_protocol_key(runs):
    from neurodeploy.measure.report import jsonable
    from neurodeploy.measure.schema import SCHEMA, validate

    for t in TARGETS:
        d = runs[t][0].describe()
        assert validate(jsonable(d), SCHEMA["definitions"]["description"]) == [], t
        g = runs["graph"]
        assert set(d["lag"]) >= set(g.neuron_nodes()) | set(g.outputs), t
        assert runs[t][1].info.get("lag", d["lag"]) == d["lag"], t  # one lag, the same in both places
        assert d["memory"]["total_bytes"] > 0


def _string_literals(path: Path):
    """(line, value) of every string literal that is neither a docstring nor a subscript key
    (``report["reference"]`` is the report's field, not a target's name)."""
    src = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(first.lineno)
    toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type not in (tokenize.NL, tokenize.COMMENT)]
    for i, tok in enumerate(toks):
        key = 0 < i < len(toks) - 1 and (toks[i - 1].string == "[" and toks[i + 1].string == "]"
                                          or toks[i + 1].string == ":")  # a subscript or a dict key
        if tok.type == tokenize.STRING and not key and tok.start[0] not in docstrings \
                and not tok.string.lstrip("rbuRBU").startswith(("f", "F")):
            try:
                yield tok.start[0], ast.literal_eval(tok.string)
            except ValueError:
                continue


def test_measurement_never_names_a_target_or_probes_a_program():
    files = sorted((ROOT / "neurodeploy" / "measure").glob("*.py"))
    assert files
    found = []
    for f in files:
        text = f.read_text()
        for pat in (r"getattr\(\s*program", r"inspect\.signature", r"\bprogram\.(?!describe\(|run\()\w+"):
            found += [f"{f.name}: {m.group(0)}" for m in re.finditer(pat, text)]
        found += [f"{f.name}:{line}: {v!r}" for line, v in _string_literals(f) if isinstance(v, str) and v in REGISTRY]
    assert found == []


def test_check_finite_names_the_first_bad_element_and_accepts_a_sum_that_overflows():
    """One-pass check: a finite input whose float32 sum overflows is still accepted (the
    element-wise check decides), a NaN/Inf is named by sample and step."""
    import torch

    from neurodeploy.errors import InputError
    from neurodeploy.targets.base import check_finite

    big = torch.full((2, 3, 4), 3e38)
    assert not torch.isfinite(big.sum())
    check_finite("x", big)  # every element finite: accepted
    for bad in (float("nan"), float("inf"), float("-inf")):
        x = torch.zeros(2, 3, 4)
        x[1, 2, 0] = bad
        with pytest.raises(InputError, match=r"input 'x' contains NaN or Inf \(first at sample 1, step 2\)"):
            check_finite("x", x)
