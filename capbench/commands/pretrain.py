"""``capbench pretrain-backbone``: train (or find cached) the scenes stand-in for an ImageNet trunk."""

from __future__ import annotations

import argparse
import sys

# scenes: a small ResNet at the scenes resolution, minutes on 2 CPU cores; the values live in
# ``capbench.methods.backbone_pretrain.SCENES_PROFILE`` (shared with the Gordo rows' cache key).
PROFILES = ("scenes",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", choices=PROFILES, default="scenes", help="size preset (default: scenes)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="VOC 2007 layout of labelled images disjoint from the retrieval splits (default: $CAPBENCH_SCENES/scenes_pretrain, written by `capbench data scenes`)",
    )
    parser.add_argument("--arch", default=None, help="backbone name, e.g. timm::resnet18")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (profile's)")
    parser.add_argument(
        "--image-size", type=int, default=None, help="image side in pixels (profile's)"
    )
    parser.add_argument("--out", default=None, help="write the trunk here instead of the cache")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto (default: cpu)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from capbench.data.errors import DatasetFormatError
    from capbench.methods.backbone_pretrain import SCENES_PROFILE, pretrain_backbone, pretrain_info

    opts = dict(SCENES_PROFILE)
    for key in ("arch", "epochs", "image_size"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    problem = _bad_option(opts)
    if problem:  # before reading the data or building anything
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        path = pretrain_backbone(
            data=args.data,
            out=args.out,
            seed=args.seed,
            accelerator=args.accelerator,
            progress=not args.no_progress,
            **opts,
        )
    except (FileNotFoundError, DatasetFormatError) as err:  # bad data: one clear line, no trace
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        info = pretrain_info(path)
        print(
            f"held-out mAP {info['held_out_mAP']:.3f} ({info['n_train']} train / {info['n_held_out']} held-out images)"
        )
        skipped = info.get("skipped_images") or []
        if skipped:
            print(f"skipped {len(skipped)} corrupt image(s): " + "; ".join(skipped[:3]))
        per_class = info.get("held_out_AP") or {}
        if per_class:
            print(
                "held-out AP per class: "
                + ", ".join(
                    f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in per_class.items()
                )
            )
    except FileNotFoundError:
        pass
    print(path)
    return 0


def _bad_option(opts: dict) -> str | None:
    """What is wrong with the options, or None. A trunk name is checked against the model
    libraries here, so a typo is one line, not a traceback from timm after the data is read."""
    from capbench.models.backbones import parse_name

    if opts["epochs"] < 1:
        return f"--epochs must be at least 1, got {opts['epochs']}"
    if opts["image_size"] < 16:
        return f"--image-size must be at least 16 pixels, got {opts['image_size']}"
    try:
        family, arch = parse_name(opts["arch"])
    except KeyError as err:
        return str(err.args[0])
    if family == "timm":
        import timm

        if not timm.is_model(arch):
            return f"--arch {opts['arch']}: timm has no model {arch!r}"
    else:
        import torchvision

        if arch not in torchvision.models.list_models():
            return f"--arch {opts['arch']}: torchvision has no model {arch!r}"
    return None
