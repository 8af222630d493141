"""The optional standardisation of a pooled feature before the first layer that reads it.

Shared by the captioners (Show-and-Tell's image map, the region captioner's recognition head)
and ICMLM's att-fc head: a stand-in trunk whose feature scale was never tuned for a linear map
(the scenes trunks) still gives the next layer an input it can read
(benchmarks/mopuri2017/README.md, "Why the scenes captioners were not grounded").
"""

from __future__ import annotations

from torch import nn

FEATURE_NORMS = ("none", "batchnorm")


def norm_layer(kind: str, dim: int, key: str = "feature_norm") -> nn.Module:
    """Nothing (``"none"``, the papers' models) or a BatchNorm without affine parameters
    (``"batchnorm"``) over ``dim`` channels; ``key`` names the config field in the error."""
    if kind not in FEATURE_NORMS:
        raise ValueError(f"{key} must be one of {FEATURE_NORMS}, got {kind!r}")
    return nn.BatchNorm1d(dim, affine=False) if kind == "batchnorm" else nn.Identity()
