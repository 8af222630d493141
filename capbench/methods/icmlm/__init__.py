"""Sariyildiz, Perez & Larlus 2020, "Learning Visual Representations with Caption Annotations"
(ICMLM): image-conditioned masked language modelling, the TP_Label / TP_Postag baselines, and
frozen-feature transfer (``icmlm``; benchmark ``benchmarks/sariyildiz2020``).

* ``config.py``    the typed configs (the paper's values where known, else our reading, said so)
* ``text.py``      the frozen pretrained text encoder and the concept positions of a caption
* ``data.py``      ICMLM examples over the shared CaptionDataModule (masking, tags, categories)
* ``module.py``    the LightningModule (tfm, att-fc, tp_label, tp_postag)
* ``train.py``     its DataModule, resumable training and loading
* ``features.py``  average-pooled features of named trunk layers (the VOC07 probe's input)
* ``evaluate.py``  masked-token accuracy and att-fc's attention peaks on held-out captions
* ``figures.py``   attention maps drawn over held-out images
* ``rows.py``      the row targets; ``cli.py`` how ``capbench fit --model icmlm`` links fields;
  ``encoder.py`` the trained trunk for the cross-method suite

The transfer protocol is ``capbench.eval.protocols.voc07_classification``.
"""

from __future__ import annotations

from capbench.methods.registry import MethodSpec, register_method
from capbench.registry import lazy_exports

_PKG = "capbench.methods.icmlm"

SPEC = register_method(
    MethodSpec(
        name="icmlm",
        paper="sariyildiz2020",
        summary="Sariyildiz et al. 2020: ResNet from scratch by image-conditioned masked "
        "language modelling (tfm, att-fc) and the TP_Label / TP_Postag baselines",
        module=f"{_PKG}.module:Icmlm",
        config=f"{_PKG}.config:IcmlmConfig",
        rows=f"{_PKG}.rows:run_row",
        datamodule=f"{_PKG}.train:build_datamodule",
        fit=f"{_PKG}.train:train_icmlm",
        smoke=f"{_PKG}.config:SMOKE",
        cli=f"{_PKG}.cli:configure_parser",
        row_config=f"{_PKG}.config:row_config",
        encoder=f"{_PKG}.encoder:suite_encoder",
    )
)

_EXPORTS = {
    "Icmlm": "module",
    "IcmlmConfig": "config",
    "IcmlmDataModule": "data",
    "build_datamodule": "train",
    "load_icmlm": "train",
    "train_icmlm": "train",
    "run_row": "rows",
}

__getattr__ = lazy_exports(_PKG, _EXPORTS)

__all__ = ["SPEC", *_EXPORTS]
