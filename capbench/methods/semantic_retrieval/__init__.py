"""Gordo & Larlus 2017, "Beyond instance-level image retrieval": semantic retrieval learned from
captions (``semantic_retrieval``; benchmark ``benchmarks/gordo2017``).

* ``config.py``  the typed configs (every default the paper's value, or our choice, said so)
* ``module.py``  the LightningModule (R-MAC phi, tf-idf theta, V / V+T / WSABIE losses)
* ``train.py``   its DataModule, resumable training, the visual baseline, embedding records
* ``rows.py``    the row targets of Tables 1-2 and Figures 2-3
* ``index.py``   the query index of ``capbench query``; ``figures.py`` Figure 3 (Grad-CAM)
* ``cli.py``     how ``capbench fit --model semantic_retrieval`` links the config to the
  Trainer and the DataModule

The evaluation protocol is ``capbench.eval.protocols.semantic_retrieval``.
"""

from __future__ import annotations

from capbench.methods.registry import MethodSpec, register_method
from capbench.registry import lazy_exports

_PKG = "capbench.methods.semantic_retrieval"

SPEC = register_method(
    MethodSpec(
        name="semantic_retrieval",
        paper="gordo2017",
        summary="Gordo & Larlus 2017: ResNet R-MAC trained on tf-idf caption relevance "
        "(V, V+T, WSABIE)",
        module=f"{_PKG}.module:SemanticRetrieval",
        config=f"{_PKG}.config:SemanticRetrievalConfig",
        rows=f"{_PKG}.rows:run_row",
        datamodule=f"{_PKG}.train:build_datamodule",
        fit=f"{_PKG}.train:train_semantic_retrieval",
        smoke=f"{_PKG}.config:SMOKE",
        cli=f"{_PKG}.cli:configure_parser",
        row_config=f"{_PKG}.config:row_config",
        encoder=f"{_PKG}.encoder:suite_encoder",
        shared_models=f"{_PKG}.rows:shared_trained_models",
    )
)

# The public names, imported on first use so that registering the method stays cheap.
_EXPORTS = {
    "SemanticRetrieval": "module",
    "SemanticRetrievalConfig": "config",
    "build_datamodule": "train",
    "build_visual_baseline": "train",
    "embed_records": "train",
    "image_tensor": "train",
    "load_semantic_retrieval": "train",
    "train_semantic_retrieval": "train",
    "run_row": "rows",
}

__getattr__ = lazy_exports(_PKG, _EXPORTS)


__all__ = ["SPEC", *_EXPORTS]
