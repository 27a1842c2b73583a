"""RRAM (resistive-memory crossbar) target: device model → crossbar → Program, and the
liquid state machine of Lin et al. (2025). See docs/rram.md.

* :mod:`.device`: :class:`DeviceConfig` (defaults: the ``rram_40nm`` profile) and the
  statistical cell model;
* :mod:`.crossbar`: tiles, ADC/DAC, read noise, IR drop, crossbar counts (the one
  implementation, shared by :mod:`.program` and :mod:`.sparse`);
* :mod:`.program`: :class:`RRAMTarget` (registered as target ``rram``);
* :mod:`.reservoir`: the LSM's reservoirs from the random-weight generator;
* :mod:`.readout`: readouts on spike-count features;
* :mod:`.lsm`: the LSM experiment (evaluate, data, device sweep; re-exports the two above);
* :mod:`.sparse`: fixed-fan-in reservoirs (sparse weights and their program, up to 1e6 neurons);
* :mod:`.cli`: ``neurodeploy lsm train|eval|sweep``.
"""

__all__ = ["DeviceConfig", "RRAMTarget", "RRAMProgram"]


def __getattr__(name):  # lazy: importing the package (the CLI does) must not import torch
    if name == "DeviceConfig":
        from .device import DeviceConfig

        return DeviceConfig
    if name in ("RRAMTarget", "RRAMProgram"):
        from . import program

        return getattr(program, name)
    raise AttributeError(name)
