"""``capbench suite``: the cross-method suite, and a full row for the user's own encoder.

Examples::

    capbench suite --profile scenes                      # every suite row (runs missing paper rows)
    capbench suite --encoder mypkg.enc:build --name mine # your encoder on every protocol
    capbench suite --encoder mypkg.enc:build --profile ci --seeds 3
    capbench suite --weights my_trunk.ckpt --backbone timm::resnet18 --name mine

``--encoder`` names a function called with no argument that returns an ``nn.Module`` mapping
ImageNet-normalised images ``(B, 3, H, W)`` to ``(B, D)`` features (a feature map is averaged;
an ``image_size`` attribute sets the input size), or a ``(module, text_fn)`` pair whose
``text_fn(list[str]) -> (N, D)`` embeds captions in the same space (then the COCO and CUB
columns apply), or a ``capbench.suite.encoder.Encoder``. The row is written to
``$CAPBENCH_RESULTS/user_rows/`` and stays on the leaderboard (``capbench leaderboard render``).
The current directory is importable, so ``mymodule:build`` works for a file beside you.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

from capbench.bench.paper import PROFILES
from capbench.commands.arg_types import positive_int

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", metavar="MODULE:FUNCTION", help="your encoder's builder")
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="or: a trunk checkpoint (a state dict, or a Lightning checkpoint holding the trunk "
        "under a prefix such as backbone.), loaded into --backbone and average-pooled",
    )
    p.add_argument("--backbone", default="timm::resnet50", help="the trunk of --weights")
    p.add_argument("--name", help="the row id of --encoder (default: the function's name)")
    p.add_argument("--label", help="the row label on the leaderboard (default: --encoder)")
    p.add_argument("--image-size", type=positive_int, default=None, help="input size (default 224)")
    p.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="scenes",
        help="paper: real data; scenes: embedded data, CPU; ci: tiny scenes (default: scenes)",
    )
    p.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1 (default 1)")
    p.add_argument("--force", action="store_true", help="rerun rows that have a record")
    p.add_argument("--dry-run", action="store_true", help="print what would run; write nothing")


def user_row_config(
    encoder: dict, name: str, label: str, profile: str, image_size: int | None
) -> dict:
    """The row config of a user's encoder: the suite's base for ``profile`` plus ``encoder``."""
    from capbench.bench.catalog import Catalog

    base = Catalog.discover().paper("suite").dir / f"base_{profile}.yaml"
    encoder = dict(encoder)
    if image_size:
        encoder["image_size"] = image_size
    return {
        "bench": {"paper": "suite", "table": "matrix", "row": name, "label": label},
        "base": str(base),
        "encoder": encoder,
    }


def write_user_row(config: dict, name: str, profile: str) -> Path:
    import yaml

    from capbench.atomic import atomic_write_text
    from capbench.paths import user_rows_root

    path = user_rows_root() / f"{name}.{profile}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "# written by `capbench suite --encoder`; delete this file to drop the row\n"
    return atomic_write_text(path, head + yaml.safe_dump(config, sort_keys=False))


def _user_encoder(args: argparse.Namespace) -> tuple[dict, str, str]:
    """``(encoder section, row name, label)`` of ``--weights`` or ``--encoder``; a ValueError
    says what is wrong with them."""
    if args.weights:
        weights = Path(args.weights).resolve()
        if not weights.is_file():
            raise ValueError(f"--weights {weights}: not a file")
        from capbench.models.backbones import BackboneWeightsError, create_backbone

        try:  # here, not seconds later inside the row: a wrong file or trunk is the user's to fix
            create_backbone(args.backbone, weights)
        except (BackboneWeightsError, KeyError) as err:
            raise ValueError(f"--weights with --backbone {args.backbone}: {err.args[0]}") from err
        encoder = {
            "kind": "pretrained",
            "backbone": args.backbone,
            "backbone_weights": str(weights),
        }
        name = args.name or re.sub(r"[^A-Za-z0-9_]", "_", weights.stem)
        return encoder, name, args.label or f"{args.backbone} from {weights.name}"
    if ":" not in args.encoder:
        raise ValueError(f"--encoder {args.encoder!r}: expected 'package.module:function'")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    from capbench.registry import import_object

    try:
        build = import_object(args.encoder)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--encoder {args.encoder}: {err}") from err
    if not callable(build):
        raise ValueError(
            f"--encoder {args.encoder}: a {type(build).__name__}, not a function that builds "
            "the encoder"
        )
    try:  # the suite calls it with no argument
        inspect.signature(build).bind()
    except TypeError as err:
        raise ValueError(
            f"--encoder {args.encoder}: the suite calls it with no argument, but {err}"
        ) from None
    except ValueError:  # a builtin without a signature: found out when it is called
        pass
    name = args.name or args.encoder.rsplit(":", 1)[1]
    return {"kind": "callable", "build": args.encoder}, name, args.label or args.encoder


def run(args: argparse.Namespace) -> int:
    from capbench.cli import main

    argv = ["reproduce", "suite", "--profile", args.profile, "--seeds", str(args.seeds)]
    argv += ["--force"] * args.force + ["--dry-run"] * args.dry_run
    if args.encoder and args.weights:
        print("error: give --encoder or --weights, not both", file=sys.stderr)
        return 2
    if args.encoder or args.weights:
        try:
            encoder, name, label = _user_encoder(args)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if not _NAME.match(name):
            print(f"error: --name {name!r}: letters, digits and _ only", file=sys.stderr)
            return 2
        config = user_row_config(encoder, name, label, args.profile, args.image_size)
        if args.dry_run:
            print(f"would write the row {name!r} ({args.profile}): {config}")
            return 0
        print(f"row {name!r}: {write_user_row(config, name, args.profile)}")
        argv += ["--rows", name]
    return main(argv)
