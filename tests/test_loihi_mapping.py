"""Core mapping (mapping.py): input axons are counted per source neuron, and a neuron whose
fan-in exceeds a core's input axons is a FitError that says why and what to do."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurodeploy.errors import FitError
from neurodeploy.graph import load
from neurodeploy.hardware.profiles import load_profile
from neurodeploy.targets.loihi.emulator import EmulatorTarget
from neurodeploy.targets.loihi.mapping import map_program

LIMIT = int(load_profile("loihi2").si("max_fanin_axons_per_core"))


def _fc_net(n_in: int, n_out: int = 3, seed: int = 0):
    """in (n_in) → Linear of mixed sign (every weight nonzero) → LIF."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.0, (n_out, n_in)) * rng.choice([-1.0, 1.0], (n_out, n_in))
    ones = np.ones(n_out, np.float32)
    nodes = {"in": nir.Input(input_type=np.array([n_in])), "fc": nir.Linear(weight=w.astype(np.float32)),
             "lif": nir.LIF(tau=ones * 2e-2, r=ones, v_leak=0 * ones, v_threshold=ones * 4, v_reset=0 * ones),
             "out": nir.Output(output_type=np.array([n_out]))}
    return load(nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")]), dt=1e-3)


def _distinct_sources(prog, dst: str) -> int:
    """The most distinct source neurons with a nonzero synapse into one neuron of ``dst``."""
    nz = sum((np.asarray(s.weights) != 0).astype(int) for s in prog.incoming(dst))
    return int((nz > 0).sum(1).max())


def test_the_parts_of_a_split_synapse_share_their_input_axons():
    """weight_sign='split' makes two synapses (excitatory, inhibitory) from one source: one
    axon per source neuron, not one per part."""
    prog = EmulatorTarget().compile(_fc_net(300), weight_sign="split")
    assert len(prog.incoming("lif")) == 2
    m = map_program(prog, "loihi2")["layers"]["lif"]
    assert m["fanin_axons_max"] == _distinct_sources(prog, "lif") == 300


def test_fanin_up_to_a_cores_input_axons_maps():
    prog = EmulatorTarget().compile(_fc_net(LIMIT))
    m = map_program(prog, "loihi2")["layers"]["lif"]
    assert m["cores"] == 1 and m["fanin_axons_max"] == LIMIT


def test_fanin_beyond_a_cores_input_axons_is_a_fit_error_saying_what_to_do():
    """A dense layer reading more sources than a core has input axons (the DVS-sized net's fc:
    64×14×14 = 12 544 > 4 096) is refused: the message names the source, the constant's
    provenance, why the fan-in is not split across cores, and the remedies."""
    prog = EmulatorTarget().compile(_fc_net(LIMIT + 200))
    n = _distinct_sources(prog, "lif")
    assert n > LIMIT
    with pytest.raises(FitError) as err:
        map_program(prog, "loihi2")
    msg = str(err.value)
    assert f"'lif': one neuron has {n} input axons ({n} from 'in'), more than the {LIMIT}" in msg
    assert "estimated" in msg and "Davies" in msg  # the profile constant's confidence and source
    assert "relay neurons" in msg and "SumPool" in msg and "prune" in msg


@pytest.mark.parametrize("bitmap", [True, False])
def test_conv_input_axons_per_core_are_the_distinct_sources_of_its_block(bitmap, monkeypatch):
    """A conv layer over many small cores: each core's input axons are the distinct source
    neurons of its block's taps (checked on the unrolled matrix), by the bitmap and by the
    sort, the two paths of the count."""
    import sys
    from pathlib import Path

    from neurodeploy.hardware.profiles import HardwareProfile
    from neurodeploy.targets.loihi import mapping

    sys.path.insert(0, str(Path(__file__).parent))
    from loihi_nets import conv_stack_net

    monkeypatch.setattr(mapping, "BITMAP_MAX", 1 << 26 if bitmap else 0)
    d = load_profile("loihi2").to_dict()
    d["constants"]["neurons_per_core"].update(value=20, si=20)
    prog = EmulatorTarget().compile(conv_stack_net(1, "pool-conv"))
    s = next(s for s in prog.synapses if s.is_kernel and s.dst == "lif2")
    m = map_program(prog, HardwareProfile.from_dict(d))["layers"]["lif2"]
    k = m["neurons_per_core"]
    nz = s.dense() != 0
    per_core = [int(nz[i:i + k].any(0).sum()) for i in range(0, nz.shape[0], k)]
    assert m["cores"] == len(per_core) > 1 and m["fanin_axons_max"] == max(per_core)
