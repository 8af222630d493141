"""``capbench fit|validate|test ...``: LightningCLI over the registered methods.

``--model NAME`` names a registered method (``capbench methods``): its LightningModule and
``CaptionDataModule`` are the CLI's classes, and the method links its config fields to the
Trainer's and the DataModule's arguments, so ``--print_config`` shows the fields a row config
sets (``model.model``, ``model.train``, ``model.mining``, ...). Any other LightningModule can be
named by class path (``--model package.module.Class``). The dispatcher in ``capbench.cli`` passes
argv starting with the verb, which LightningCLI reads as its subcommand.
"""

from __future__ import annotations

import sys
from typing import Any


def _method_name(argv: list[str]) -> tuple[str | None, list[str]]:
    """The registered method named by ``--model NAME`` / ``--model=NAME`` and argv without it."""
    from capbench.methods.registry import discover_methods

    known = discover_methods()
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv) and argv[i + 1] in known:
            return argv[i + 1], argv[:i] + argv[i + 2 :]
        if arg.startswith("--model=") and arg.split("=", 1)[1] in known:
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
    return None, argv


def main(argv: list[str]) -> int:
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    from capbench.data.datamodule import CaptionDataModule
    from capbench.methods.checkpoint_io import AtomicCheckpointIO
    from capbench.methods.registry import get_method
    from capbench.methods.training import RngState

    name, rest = _method_name(list(argv))
    args: list[str] | None = rest
    if list(argv) == sys.argv[1:]:  # the console script: LightningCLI reads sys.argv itself
        sys.argv[1:], args = rest, None  # (passing args as well would warn)
    common: dict[str, Any] = {
        "args": args,
        "save_config_kwargs": {"overwrite": True},
        "auto_configure_optimizers": False,
        # checkpoints as every capbench fit writes them: atomically, beside their target. Named
        # by class path, not given as an instance: jsonargparse cannot write an instance back,
        # so `--print_config` and the config.yaml saved with each fit would not load again
        "trainer_defaults": {
            "callbacks": [RngState()],
            "plugins": [
                {"class_path": f"{AtomicCheckpointIO.__module__}.{AtomicCheckpointIO.__qualname__}"}
            ],
        },
    }
    if name is None:
        LightningCLI(L.LightningModule, None, subclass_mode_model=True, **common)
        return 0
    spec = get_method(name)
    configure = spec.load("cli")
    # a method whose training data needs more than the CaptionDataModule names its subclass as
    # ``DATAMODULE`` beside its ``configure`` function
    datamodule = getattr(sys.modules[configure.__module__], "DATAMODULE", CaptionDataModule)

    class MethodCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: Any) -> None:
            configure(parser)

    MethodCLI(spec.load("module"), datamodule, **common)
    return 0
