"""``capbench fit|validate|test --config ...``: LightningCLI over the registered methods.

Any LightningModule can be named by class path (``--model.class_path
capbench.methods.semantic_retrieval.SemanticRetrieval``); the method modules that exist are
imported first so their short class names resolve too. The dispatcher in ``capbench.cli`` passes
argv starting with the verb, which LightningCLI reads as its subcommand.
"""

from __future__ import annotations

import importlib

METHOD_MODULES = (
    "capbench.methods.semantic_retrieval",
    "capbench.methods.backbone_pretrain",
    "capbench.methods.caption_fusion",
    "capbench.methods.quantized_embedding",
    "capbench.methods.fine_grained_sje",
    "capbench.methods.icmlm",
)


def _import_methods() -> list[str]:
    loaded = []
    for name in METHOD_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:  # a method not written yet
            if err.name != name:
                raise
            continue
        loaded.append(name)
    return loaded


def main(argv: list[str]) -> int:
    import sys

    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    _import_methods()
    LightningCLI(
        L.LightningModule,
        None,
        subclass_mode_model=True,
        # from the console script LightningCLI reads sys.argv itself (passing both warns)
        args=None if list(argv) == sys.argv[1:] else list(argv),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
    return 0
