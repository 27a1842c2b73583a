"""NIRData out and in: a run's outputs and recorded spikes as NIRGraphData, read back with
nir's own reader; inputs read from NIRData; ``neurodeploy run -o out.nird``."""

from __future__ import annotations

import nir
import numpy as np
import pytest

import neurodeploy.graph as G
from neurodeploy.cli import main
from neurodeploy.errors import InputError
from neurodeploy.graph.nirdata import inputs_to_nirdata, read_inputs, result_to_nirdata, write_nirdata
from neurodeploy.targets.reference import ReferenceTarget

from .helpers import affine, chain, graph, lif
from .zoo.common import spikes

DT = 1e-3


def nested_graph():
    rng = np.random.default_rng(0)
    inner = graph({"i": nir.Input(np.array([5])), "w": affine(rng, 5, 5, scale=2), "n": lif(5), "o": nir.Output(np.array([5]))},
                  [("i", "w"), ("w", "n"), ("n", "o")])
    nodes = {"input": nir.Input(np.array([4])), "fc": affine(rng, 5, 4, scale=4), "lif": lif(5), "sub": inner,
             "output": nir.Output(np.array([5]))}
    return G.load(graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "sub"), ("sub", "output")]), dt=DT)


def test_run_result_round_trips_through_nirs_reader(tmp_path):
    g = nested_graph()
    x = spikes((3, 20, 4), seed=2)
    res = ReferenceTarget().compile(g).run(x, record="all", record_states=True)
    write_nirdata(tmp_path / "out.nird", result_to_nirdata(res, g))
    back = nir.read_data(str(tmp_path / "out.nird"))
    lif_spikes = back.nodes["lif"].observables["spikes"]
    assert lif_spikes.data.dtype == bool and lif_spikes.dt == DT
    np.testing.assert_array_equal(lif_spikes.data, res.records["lif"].numpy().astype(bool))
    nested = back.nodes["sub.n"].observables["spikes"].data  # flat dotted names (nir 1.0.8 cannot write nested)
    np.testing.assert_array_equal(nested, res.records["sub.n"].numpy().astype(bool))
    np.testing.assert_array_equal(back.nodes["output"].observables["output"].data, res.output.numpy())
    np.testing.assert_array_equal(back.nodes["lif"].observables["v"].data, res.states["lif"].numpy())
    assert res.records["lif"].sum() > 0


def test_inputs_round_trip_and_events_are_gridded(tmp_path):
    g = G.load(chain(nir.Input(np.array([2, 3])), nir.Flatten(input_type={"input": np.array([2, 3])}, start_dim=0),
                     affine(np.random.default_rng(1), 4, 6), lif(4), nir.Output(np.array([4]))), dt=DT)
    x = spikes((2, 10, 2, 3), seed=3).numpy()
    write_nirdata(tmp_path / "x.nird", inputs_to_nirdata(x, g))
    np.testing.assert_array_equal(read_inputs(tmp_path / "x.nird", g), x)
    events = nir.TimeGriddedData(x.reshape(2, 10, 6).astype(bool), DT).to_event(n_events=60)
    nir.write_data(str(tmp_path / "e.nird"), nir.NIRGraphData(nodes={"input": nir.NIRNodeData({"output": events})}))
    np.testing.assert_array_equal(read_inputs(tmp_path / "e.nird", g), x)


def test_bad_nirdata_inputs_name_the_problem(tmp_path):
    g = nested_graph()
    write_nirdata(tmp_path / "w.nird", inputs_to_nirdata(np.zeros((1, 5, 3), np.float32), g))
    with pytest.raises(InputError, match="3 channels, expected 4"):
        read_inputs(tmp_path / "w.nird", g)
    (tmp_path / "junk.nird").write_text("junk")
    with pytest.raises(InputError, match="junk.nird: not a NIRData"):
        read_inputs(tmp_path / "junk.nird", g)


def test_cli_run_reads_and_writes_nirdata(tmp_path, capsys):
    g = nested_graph()
    G.save(g, tmp_path / "m.nir")
    x = spikes((2, 15, 4), seed=4).numpy()
    write_nirdata(tmp_path / "x.nird", inputs_to_nirdata(x, g))
    assert main(["--quiet", "run", str(tmp_path / "m.nir"), "-i", str(tmp_path / "x.nird"), "-o",
                 str(tmp_path / "out.nird"), "--record", "lif"]) == 0
    want = ReferenceTarget().compile(g).run(x, record=["lif"])
    back = nir.read_data(str(tmp_path / "out.nird"))
    np.testing.assert_array_equal(back.nodes["output"].observables["output"].data, want.output.numpy())
    np.testing.assert_array_equal(back.nodes["lif"].observables["spikes"].data, want.records["lif"].numpy() > 0)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["--quiet", "run", str(tmp_path / "m.nir"), "-i", str(tmp_path / "x.npz"), "-o",
                 str(tmp_path / "o.bin"), "--format", "nirdata"]) == 0
    assert nir.read_data(str(tmp_path / "o.bin")).nodes["output"].observables["output"].data.shape == (2, 15, 5)
    assert main(["run", str(tmp_path / "m.nir"), "-i", str(tmp_path / "x.npz"), "-o", str(tmp_path / "p.nird"),
                 "--format", "csv"]) == 2
    assert not (tmp_path / "p.nird").exists()
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: --format")
