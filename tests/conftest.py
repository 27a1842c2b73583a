import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_configure(config):
    torch.set_num_threads(1)


def spikes(shape, p=0.3, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float() * scale
