"""Measurement: metrics from a RunResult (:mod:`.metrics`), agreement between targets
(:mod:`.compare`), reports (:mod:`.report`, schema in :mod:`.schema`, figures in
:mod:`.plots`) and the ``profile`` / ``compare`` commands (:mod:`.cli`).

Measurement only sees RunResults (and the Graph's structure), never which target ran."""

__all__ = ["accuracy", "predict", "compute_metrics", "profile_run", "compare_runs"]


def __getattr__(name):  # lazy: metrics pull in torch, reports matplotlib; the CLI imports this package
    if name in ("accuracy", "predict", "compute_metrics"):
        from . import metrics

        return getattr(metrics, name)
    if name in ("profile_run", "compare_runs"):
        from . import report

        return getattr(report, name)
    raise AttributeError(name)
