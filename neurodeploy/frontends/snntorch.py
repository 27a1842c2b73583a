"""snnTorch frontend.

snnTorch 1.0.0's ``export_to_nir`` traces the module with nirtorch and then calls
``nir_graph.infer_types()``, which fails because the traced Input type keeps the sample's
batch dimension ("type mismatch: input.output: [[1 4]] -> 0.input: [[4]]"). We run the same
tracer with snnTorch's own node extractor, skip that call, and let normalization strip the
batch dimension and infer the types.

snnTorch's time convention: its exporter writes ``tau = dt / (1 - beta)`` and ``r = tau/dt``
with a fixed ``dt = 1e-4`` s, so ``v[t+1] = beta v[t] + x[t]`` is NIR's forward Euler at
``dt = 1e-4``. That is the dt we use unless told otherwise.
"""

from __future__ import annotations

SNNTORCH_DT = 1e-4  # fixed in snntorch/export_nir.py and import_nir.py


def from_snntorch(module, sample, *, dt=None, reset=None, model_name="snntorch"):
    import nirtorch
    import snntorch as snn
    from snntorch import export_nir

    from ..graph.normalize import normalize

    dt = SNNTORCH_DT if dt is None else dt
    try:
        graph = export_nir.export_to_nir(module, sample, model_name=model_name)
    except ValueError as exc:
        if "Type inference" not in str(exc):
            raise
        graph = nirtorch.extract_nir_graph(
            module,
            export_nir._extract_snntorch_module,
            sample,
            model_name=model_name,
            ignore_submodules_of=[snn.RLeaky, snn.RSynaptic],
        )
    return normalize(graph, dt=dt, reset=reset, source=f"snntorch:{type(module).__name__}")
