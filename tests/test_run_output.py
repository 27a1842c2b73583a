"""What `neurodeploy run` writes: spikes as bool, stored uncompressed; graded arrays as
float32, compressed; the same values as the run (graph/io.py write_npz, compact_spikes)."""
import zipfile

import nir
import numpy as np

import neurodeploy.graph as G
from neurodeploy.cli import main
from neurodeploy.graph.io import compact_spikes, spiking_keys, write_npz

from .helpers import affine, chain, lif


def _model(tmp_path, readout=False):
    rng = np.random.default_rng(0)
    parts = [nir.Input(np.array([4])), affine(rng, 5, 4, scale=4), lif(5)]
    if readout:
        li = nir.LI(tau=np.full(3, 2e-2), r=np.ones(3), v_leak=np.zeros(3))
        parts += [affine(rng, 3, 5, scale=2), li]
    g = chain(*parts, nir.Output(np.array([3 if readout else 5])), dt=1e-3)
    path = tmp_path / "m.nir"
    nir.write(str(path), g)
    return path


def test_write_npz_stores_bool_uncompressed_and_the_rest_compressed(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"spikes.a": rng.random((3, 50, 40)) < 0.2, "values.b": rng.standard_normal((3, 50, 2)).astype(np.float32)}
    path = write_npz(tmp_path / "o.npz", arrays)
    with zipfile.ZipFile(path) as z:
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    assert kinds == {"spikes.a.npy": zipfile.ZIP_STORED, "values.b.npy": zipfile.ZIP_DEFLATED}
    with np.load(path) as d:
        assert d["spikes.a"].dtype == np.bool_ and np.array_equal(d["spikes.a"], arrays["spikes.a"])
        assert d["values.b"].dtype == np.float32 and np.array_equal(d["values.b"], arrays["values.b"])


def test_compact_spikes_converts_only_binary_spike_arrays(tmp_path):
    g = G.load(_model(tmp_path, readout=True))
    spk = (np.random.default_rng(3).random((2, 5, 5)) < 0.5).astype(np.float32)
    arrays = {"outputs": np.full((2, 5, 3), 0.5, np.float32), "spikes.lif": spk,
              "v.lif": spk.copy()}  # a 0/1 membrane is still a membrane
    assert spiking_keys(arrays, g) == {"spikes.lif"}  # the LI readout's output is graded
    out = compact_spikes(arrays, g)
    assert out["spikes.lif"].dtype == np.bool_ and np.array_equal(out["spikes.lif"], spk)
    assert out["outputs"].dtype == np.float32 and out["v.lif"].dtype == np.float32


def test_cli_run_writes_spiking_outputs_as_bool_equal_to_the_run(tmp_path):
    model = _model(tmp_path)
    x = (np.random.default_rng(1).random((3, 20, 4)) < 0.5).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "o.npz"
    assert main(["--quiet", "run", str(model), "--target", "loihi2-emu", "-i", str(tmp_path / "x.npz"),
                 "-o", str(out), "--record", "all"]) == 0
    from neurodeploy.targets.loihi.target import EmulatorTarget

    want = EmulatorTarget().compile(G.load(model)).run(x)
    with np.load(out) as d:
        assert d["outputs"].dtype == np.bool_ and d["spikes.lif"].dtype == np.bool_
        np.testing.assert_array_equal(d["outputs"].astype(np.float32), want.output.numpy())
        assert d["outputs"].any()
