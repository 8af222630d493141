"""Mopuri, Athreya & Babu 2017, "Deep image representations using caption generators": the
FIC (Show-and-Tell) and BoRD (DenseCap-style regions) features of two captioners, fused by a
siamese MLP trained with a graded contrastive loss (``caption_fusion``; benchmark
``benchmarks/mopuri2017``).

* ``config.py``      the typed configs (the official code's values, or our reading, said so)
* ``module.py``      the siamese LightningModule (loss4, Keras SGD, early stopping)
* ``pairs.py``       training pairs as ``siamese_data_prep.py`` builds them
* ``data.py``        feature pairs of one fold as a DataModule
* ``train.py``       its DataModule builder and resumable fit
* ``captioning.py``  training and loading the two captioners (LightningModules)
* ``features.py``    feature files; extraction of CNN / FIC / BoRD; the thumbnail floor
* ``rows.py``        the row targets (cnn, fic, bord, concat, fused, random)
* ``cli.py``         how ``capbench fit --model caption_fusion`` links the config

The captioner models are ``capbench.models.captioners``; the evaluation protocol is
``capbench.eval.protocols.graded_retrieval``.
"""

from __future__ import annotations

from capbench.methods.registry import MethodSpec, register_method
from capbench.registry import lazy_exports

_PKG = "capbench.methods.caption_fusion"

SPEC = register_method(
    MethodSpec(
        name="caption_fusion",
        paper="mopuri2017",
        summary="Mopuri et al. 2017: Show-and-Tell (FIC) and region-captioner (BoRD) features "
        "fused by a siamese MLP with a graded contrastive loss, scored by nDCG@K",
        module=f"{_PKG}.module:CaptionFusion",
        config=f"{_PKG}.config:CaptionFusionConfig",
        rows=f"{_PKG}.rows:run_row",
        datamodule=f"{_PKG}.train:build_datamodule",
        fit=f"{_PKG}.train:train_caption_fusion",
        smoke=f"{_PKG}.config:SMOKE",
        cli=f"{_PKG}.cli:configure_parser",
        row_config=f"{_PKG}.config:row_config",
        encoder=f"{_PKG}.encoder:suite_encoder",
        shared_models=f"{_PKG}.rows:shared_captioners",
    )
)

# The public names, imported on first use so that registering the method stays cheap.
_EXPORTS = {
    "CaptionFusion": "module",
    "CaptionFusionConfig": "config",
    "build_datamodule": "train",
    "train_caption_fusion": "train",
    "run_row": "rows",
}

__getattr__ = lazy_exports(_PKG, _EXPORTS)


__all__ = ["SPEC", *_EXPORTS]
