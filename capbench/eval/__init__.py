"""Evaluation layer: exact metrics for the five protocols, retrieval, extraction, probes.

Kept import-light on purpose (no torch/faiss/sklearn at package import): import the submodule you
need, e.g. ``from capbench.eval.metrics import ndcg_curve``.
"""

__all__ = [
    "extract",
    "feature_cache",
    "linear_probe",
    "metrics",
    "retrieval",
    "torchmetrics_wrappers",
]
