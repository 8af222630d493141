"""``capbench fit|validate|test ...``: LightningCLI over the registered methods.

``--model NAME`` names a registered method (``capbench methods``): its LightningModule and
``CaptionDataModule`` are the CLI's classes, and the method links its config fields to the
Trainer's and the DataModule's arguments, so ``--print_config`` shows the fields a row config
sets (``model.model``, ``model.train``, ``model.mining``, ...). Any other LightningModule can be
named by class path (``--model package.module.Class``). The dispatcher in ``capbench.cli`` passes
argv starting with the verb, which LightningCLI reads as its subcommand. ``validate`` and
``test`` are for such a module: the registered methods have no validation or test step, their
rows evaluate them with the paper's protocol, and the verbs say so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from capbench.user_errors import user_error_types


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
    module = spec.load("module")
    step = {"validate": "validation_step", "test": "test_step"}.get(argv[0])
    if step and getattr(module, step) is getattr(L.LightningModule, step):
        print(
            f"capbench {argv[0]}: the {name} method has no {step}: it is evaluated by its "
            f"benchmark rows, with the paper's protocol (capbench reproduce {spec.paper} "
            f"--rows ROW); `capbench {argv[0]}` is for a LightningModule named by class path "
            "that defines one",
            file=sys.stderr,
        )
        return 2
    configure = spec.load("cli")
    # a method whose training data needs more than the CaptionDataModule names its subclass as
    # ``DATAMODULE`` beside its ``configure`` function
    datamodule = getattr(sys.modules[configure.__module__], "DATAMODULE", CaptionDataModule)

    class MethodCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: Any) -> None:
            configure(parser)

        def parse_arguments(self, parser: Any, args: Any) -> None:
            given = sys.argv[1:] if args is None else args
            if isinstance(given, list):
                refuse_linked_options(self.parser, given)
            super().parse_arguments(parser, args)
            seed_from_the_method(self.config)

    try:
        MethodCLI(module, datamodule, **common)
    except user_error_types() as err:  # the user's data or setting: one line, not a traceback
        print(f"capbench {argv[0]}: error: {err}", file=sys.stderr)
        return 1
    return 0


def seed_from_the_method(config: Any) -> None:
    """LightningCLI seeds the run (weight init, augmentation) from ``--seed_everything``, whose
    default, true, seeds 0 on every run: ``--model.seed 1`` changed the data order and the
    method's own draws but started from the weights of seed 0. Unless ``--seed_everything``
    names a seed, the method's seed is the run's."""
    section = config.get(config.get("subcommand")) if "subcommand" in config else config
    if section is None or section.get("seed_everything") is not True:
        return
    seed = (section.get("model") or {}).get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        section["seed_everything"] = seed


def linked_options(parser: Any) -> dict[str, list[str]]:
    """{target: its sources} for every ``link_arguments`` of the subcommand parsers (the method's
    config fields that set Trainer or DataModule arguments)."""
    from jsonargparse._link_arguments import ActionLink

    out: dict[str, list[str]] = {}
    subcommands = getattr(parser, "_subcommands_action", None)
    parsers = list(subcommands.choices.values()) if subcommands is not None else [parser]
    for sub in parsers:
        for action in sub._actions:
            if isinstance(action, ActionLink):
                out[action.target[0]] = [key for key, _ in action.source]
    return out


def refuse_linked_options(parser: Any, argv: list[str]) -> None:
    """A linked target given on the command line (``--trainer.max_epochs 1``) or in a
    ``--config`` file stops with a line naming the option to give instead. On the command line
    jsonargparse printed the whole usage, then "argument model.train.max_epochs -->
    trainer.max_epochs: invalid Optional value: '1'"; in a config file it dropped the value
    without a word (the fit ran the paper's 200 epochs)."""
    links = linked_options(parser)
    for i, arg in enumerate(argv):
        key = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if key in links:
            _refuse(argv[0], f"--{key}", links[key])
        if key == "config":
            path = (
                arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            )
            for target in _keys_in_config(path, links):
                _refuse(argv[0], f"{target} in {path}", links[target], path)


def _refuse(verb: str, given: str, sources: list[str], where: str = "") -> None:
    """Stop: ``given`` (an option, or a key of the config file ``where``) is a link target."""
    options = " and ".join(f"--{s}" for s in sources)
    instead = f"give {options}" if not where else f"set {' and '.join(sources)} in {where}"
    raise SystemExit(
        f"capbench {verb}: {given} is set from {options} (the method's config, whose defaults "
        f"are the paper's): {instead} instead"
    )


def _keys_in_config(path: str, keys: dict[str, list[str]]) -> list[str]:
    """The dotted ``keys`` that the YAML file ``path`` sets (none when it cannot be read: then
    LightningCLI reports the file)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return []
    found = []
    for key in keys:
        node: Any = doc
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            found.append(key)
    return found


_MISSING = object()
