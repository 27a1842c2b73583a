"""Sinabs and Rockpool models for the frontends × features table (tests/zoo/test_feature_table.py):
one per row, or None where the framework has no such feature. Built lazily from the zoo
modules (``bz`` = test_sinabs_zoo, ``rz`` = test_rockpool_zoo) so that importing this file
needs neither framework."""

from __future__ import annotations

import torch


def _scaled(m, *scales):
    with torch.no_grad():
        for i, k in scales:
            m[i].weight.abs_().mul_(k) if k > 0 else m[i].weight.mul_(-k)
    return m


def _iaf(bz, **kw):
    return bz.sl.IAFSqueeze(batch_size=bz.B, spike_fn=bz.SingleSpike, **kw)


def _lif(bz, **kw):
    return bz.sl.LIFSqueeze(tau_mem=8.0, batch_size=bz.B, spike_fn=bz.SingleSpike, **kw)


L = torch.nn.Linear
SINABS = {  # row → (build(bz), input shape, spiking layers, graded layers)
    "leaky LIF": (lambda bz: _scaled(torch.nn.Sequential(L(6, 8), _lif(bz)), (0, 2)), (6,), ("1",), ()),
    "current-based LIF": (lambda bz: _scaled(torch.nn.Sequential(L(6, 8), _lif(bz, tau_syn=4.0)), (0, 2)), (6,),
                          ("1",), ()),
    "leaky readout (LI)": (lambda bz: _scaled(torch.nn.Sequential(L(6, 8), _iaf(bz), L(8, 4), bz.sl.ExpLeakSqueeze(
        tau_mem=5.0, batch_size=bz.B)), (0, -2)), (6,), ("1",), ("3",)),
    "IF": (lambda bz: _scaled(torch.nn.Sequential(L(6, 8), _iaf(bz)), (0, -2)), (6,), ("1",), ()),
    "recurrent (all-to-all)": (lambda bz: torch.nn.Sequential(L(6, 8), bz.sl.IAFRecurrent(
        rec_connect=L(8, 8, bias=False), spike_fn=bz.SingleSpike)), (6,), ("1",), ()),
    "reset by subtraction": (lambda bz: _scaled(torch.nn.Sequential(L(6, 8), _iaf(bz)), (0, 3)), (6,), ("1",), ()),
    "conv + avg-pool + flatten + linear": (lambda bz: torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), _iaf(bz), torch.nn.AvgPool2d(2), torch.nn.Flatten(), L(16, 4), _iaf(bz)),
        (2, 6, 6), ("1", "5"), ()),
    "MaxPool": (lambda bz: torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), _iaf(bz), torch.nn.MaxPool2d(2)),
                (2, 6, 6), ("1",), ()),
}

ROCKPOOL = {  # row → (layer names, spiking indices, graded indices), or None
    "leaky LIF": (("lin", "lifneuron"), (1,), ()),
    "current-based LIF": (("lin", "lif"), (1,), ()),
    "leaky readout (LI)": (("lin", "lif", "lin2", "expsyn"), (1,), (3,)),
    "IF": None,  # Rockpool's torch modules have no IF
    "recurrent (all-to-all)": (("lin", "lif_rec"), (1,), ()),
    "reset by subtraction": (("lin", "lifneuron"), (1,), ()),
    "conv + avg-pool + flatten + linear": None,  # Rockpool's to_nir exports no conv or pool
    "MaxPool": None,
}


def rockpool(row, rz):
    """The row's Rockpool layers, their input size, and the spiking / graded layer names as
    Rockpool's to_nir names them."""
    names, spiking, graded = ROCKPOOL[row]
    torch.manual_seed(0)
    make = {
        "lin": lambda: rz.LinearTorch((6, 8)), "lin2": lambda: rz.LinearTorch((8, 4)),
        "lif": lambda: rz.LIFTorch(8, tau_mem=0.02, tau_syn=0.01, max_spikes_per_dt=1),
        "lif_rec": lambda: rz.LIFTorch(8, has_rec=True, max_spikes_per_dt=1),
        "lifneuron": lambda: rz.LIFNeuronTorch(8, tau_mem=0.015, max_spikes_per_dt=1),
        "expsyn": lambda: rz.ExpSynTorch(4, tau=0.02),
    }
    layers = [make[n]() for n in names]
    with torch.no_grad():
        layers[0].weight.mul_(5)
    label = lambda i: f"{i}_{type(layers[i]).__name__}"  # noqa: E731
    return layers, 6, [label(i) for i in spiking], [label(i) for i in graded]
