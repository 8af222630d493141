"""Malali & Keller 2022, "Learning to embed semantic similarity for joint image-text retrieval":
a joint image-caption embedding compared by L2 distance, with a center loss, a differentiable
product quantizer and an adaptive-margin hinge, against the VSE0 / VSE++ baselines
(``quantized_embedding``; benchmark ``benchmarks/malali2022``).

* ``config.py``  the typed configs (the abstract fixes few values: the rest are "our reading"
  or VSE++'s code defaults, each said so)
* ``towers.py``  the image tower (pooled ResNet + linear) and the GRU text tower
* ``module.py``  the LightningModule (ranking hinge, quantizer, center loss, adaptive margin)
* ``train.py``   its DataModule, resumable training, the untrained baseline
* ``rows.py``    the row targets (COCO 1K/5K, Flickr30k, Flickr8k tables)
* ``cli.py``     how ``capbench fit --model quantized_embedding`` links the config to the
  Trainer and the DataModule

The protocol is ``capbench.eval.protocols.image_text_retrieval``; the quantizer is
``capbench.models.quantizers``; the losses are in ``capbench.losses``.
"""

from __future__ import annotations

from capbench.methods.registry import MethodSpec, register_method
from capbench.registry import lazy_exports

_PKG = "capbench.methods.quantized_embedding"

SPEC = register_method(
    MethodSpec(
        name="quantized_embedding",
        paper="malali2022",
        summary="Malali & Keller 2022: joint image-caption embedding by L2 distance with center "
        "loss, product quantization and an adaptive margin (and VSE0 / VSE++)",
        module=f"{_PKG}.module:QuantizedEmbedding",
        config=f"{_PKG}.config:QuantizedEmbeddingConfig",
        rows=f"{_PKG}.rows:run_row",
        datamodule=f"{_PKG}.train:build_datamodule",
        fit=f"{_PKG}.train:train_quantized_embedding",
        smoke=f"{_PKG}.config:SMOKE",
        cli=f"{_PKG}.cli:configure_parser",
        row_config=f"{_PKG}.config:row_config",
        encoder=f"{_PKG}.encoder:suite_encoder",
    )
)

# The public names, imported on first use so that registering the method stays cheap.
_EXPORTS = {
    "QuantizedEmbedding": "module",
    "QuantizedEmbeddingConfig": "config",
    "build_datamodule": "train",
    "load_quantized_embedding": "train",
    "train_quantized_embedding": "train",
    "run_row": "rows",
}

__getattr__ = lazy_exports(_PKG, _EXPORTS)


__all__ = ["SPEC", *_EXPORTS]
