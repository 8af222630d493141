"""The ``capbench`` console script.

Each verb lives in its own module under ``capbench.commands`` and is imported only when used,
so ``capbench --help`` stays fast and a verb's heavy imports (torch, faiss) cost nothing elsewhere.
A command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable
from typing import Any

from capbench import __version__

# verb -> (module under capbench.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data", "dataset tools: check, fixture, scenes"),
    "methods": ("methods", "list the registered methods (capbench fit --model NAME)"),
    "fit": ("lightning", "train a method (--model NAME) with LightningCLI"),
    "validate": (
        "lightning",
        "Lightning's validation loop (--model package.Class with a validation_step)",
    ),
    "test": ("lightning", "Lightning's test loop (--model package.Class with a test_step)"),
    "pretrain-backbone": ("pretrain", "pretrain the scenes stand-in for an ImageNet backbone"),
    "reproduce": ("reproduce", "reproduce a paper's tables (local or SLURM)"),
    "demo": ("demo", "the headline rows of every paper, the suite and the page, on scenes data"),
    "leaderboard": ("leaderboard", "render / check / compare run records"),
    "suite": ("suite", "score an encoder (yours: --encoder mod:fn) on every suite protocol"),
    "query": ("query", "retrieve images for an image query with +word/-word text modifiers"),
    "explain": ("explain", "Grad-CAM grounding of the similarity of two images"),
    "caption": ("caption", "caption an image (or describe its regions) with a trained captioner"),
}

DESCRIPTION = (
    "Reproduce, side by side, methods that learn visual representations from image captions, "
    "and compare them on one leaderboard."
)
EPILOG = (
    "Start with `capbench demo` (every paper's headline rows on embedded scenes data, on a CPU) "
    "or `capbench reproduce --list`; `capbench COMMAND -h` for a command's options."
)

# LightningCLI verbs parse their own argv.
_PASSTHROUGH = {"fit", "validate", "test"}


def _load(verb: str, parser: argparse.ArgumentParser) -> Any:
    """The command module of ``verb``; a module missing from this installation is a usage error."""
    mod_name = COMMANDS[verb][0]
    try:
        return importlib.import_module(f"capbench.commands.{mod_name}")
    except ModuleNotFoundError as err:
        if err.name != f"capbench.commands.{mod_name}":
            raise
        parser.error(f"'{verb}' is not available in this installation")


def build_parser(load: str | Iterable[str] = ()) -> argparse.ArgumentParser:
    """The ``capbench`` parser; the verbs named in ``load`` get their full options (their
    modules are imported), the others are listed with their one-line help only."""
    loaded = {load} if isinstance(load, str) else set(load)
    parser = argparse.ArgumentParser(prog="capbench", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--version", action="version", version=f"capbench {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, (_, help_text) in COMMANDS.items():
        if verb in _PASSTHROUGH:
            sub.add_parser(verb, help=help_text, add_help=False)
        elif verb not in loaded:
            sub.add_parser(verb, help=help_text)  # listed in --help, not imported
        else:
            module = _load(verb, parser)
            p = sub.add_parser(verb, help=help_text, description=help_text)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from capbench.lightning_noise import quiet_lightning

    quiet_lightning()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _PASSTHROUGH:
        module = importlib.import_module(f"capbench.commands.{COMMANDS[argv[0]][0]}")
        return int(module.main(argv) or 0)
    parser = build_parser(load=argv[0] if argv else ())
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    from capbench.user_errors import user_error_types

    try:
        return int(args._run(args) or 0)
    except user_error_types() as err:  # the user's input: one line naming it, no traceback
        print(f"capbench {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
