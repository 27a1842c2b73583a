"""The spiking graph under construction: mutable node specs, then NIR nodes built by their
constructors (:meth:`Builder.to_nir`).

Specs stay mutable until the end so that a BatchNormalization or a bias ``Add`` can be folded
into the Conv/Gemm that produced its input. A :class:`Ref` says how an ONNX tensor is
represented: its value is ``scale ×`` the sum of the outputs of the NIR nodes ``srcs`` (time
averaged, for spike trains), or, for a channel ``Concat``, the concatenation of ``parts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import nir
import numpy as np

LINEAR = ("conv", "affine", "avgpool", "sumpool", "flatten", "scale", "delay")
NEURON = ("if", "i")


@dataclass(frozen=True)
class Ref:
    srcs: tuple[str, ...]
    scale: float
    shape: tuple[int, ...]
    nonneg: bool = False  # every value ≥ 0 (spike trains, pools and flattens of them)
    producer: str | None = None  # the one Conv/Affine spec that produced it (foldable)
    parts: tuple["Ref", ...] | None = None  # channel concatenation (axis 0 without batch)
    depth: int = 0  # neuron layers on the longest path from the input (Loihi's lag in steps)

    def with_(self, **kw) -> "Ref":
        return replace(self, **kw)


class Builder:
    def __init__(self):
        self.specs: dict[str, dict] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, kind: str, base: str, srcs=(), **params) -> str:
        stem = re.sub(r"[^A-Za-z0-9_]", "_", base) or kind
        name, i = stem, 1
        while name in self.specs:
            i += 1
            name = f"{stem}_{i}"
        self.specs[name] = {"kind": kind, **params}
        self.edges += [(s, name) for s in srcs]
        return name

    def kind(self, name: str) -> str:
        return self.specs[name]["kind"]

    def is_linear(self, name: str) -> bool:
        return self.kind(name) in LINEAR

    def neurons(self, kind: str | None = None) -> list[str]:
        return [n for n, s in self.specs.items() if s["kind"] in NEURON and (kind is None or s["kind"] == kind)]

    def to_nir(self, metadata: dict) -> nir.NIRGraph:
        nodes = {n: _node(s) for n, s in self.specs.items()}
        # NIR's type check reads a grouped conv's input channels as weight.shape[1]; neurodeploy's
        # load checks every shape itself (groups included)
        return nir.NIRGraph(nodes=nodes, edges=list(self.edges), metadata=dict(metadata), type_check=False)


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _node(s: dict) -> nir.NIRNode:
    k = s["kind"]
    if k == "input":
        return nir.Input(input_type={"input": np.asarray(s["shape"])})
    if k == "output":
        return nir.Output(output_type={"output": np.asarray(s["shape"])})
    if k == "conv":
        return nir.Conv2d(input_shape=tuple(s["in_hw"]), weight=_f32(s["weight"]), stride=tuple(s["stride"]),
                          padding=tuple(s["padding"]), dilation=tuple(s["dilation"]), groups=int(s["groups"]),
                          bias=_f32(s["bias"]))
    if k == "affine":
        return nir.Affine(weight=_f32(s["weight"]), bias=_f32(s["bias"]))
    if k in ("avgpool", "sumpool"):
        cls = nir.AvgPool2d if k == "avgpool" else nir.SumPool2d
        return cls(kernel_size=np.asarray(s["kernel"]), stride=np.asarray(s["stride"]), padding=np.asarray(s["padding"]))
    if k == "flatten":
        return nir.Flatten(input_type={"input": np.asarray(s["in_shape"])}, start_dim=0, end_dim=-1)
    if k == "scale":
        return nir.Scale(scale=_f32(s["scale"]))
    if k == "delay":
        return nir.Delay(delay=_f32(s["delay"]))
    if k == "if":
        shape = tuple(s["shape"])
        return nir.IF(r=np.full(shape, s["r"], np.float32), v_threshold=np.ones(shape, np.float32),
                      v_reset=np.zeros(shape, np.float32))
    if k == "i":
        return nir.I(r=np.full(tuple(s["shape"]), s["r"], np.float32))
    raise AssertionError(f"unknown spec kind {k!r}")  # pragma: no cover
