"""``capbench caption IMAGE --checkpoint CKPT [--regions] [--out PNG]``: the caption a trained
Show-and-Tell checkpoint generates for an image, or (``--regions``, with a region-captioner
checkpoint) its top regions and their phrases; ``--out`` draws them on the image.

Checkpoints come from ``capbench reproduce mopuri2017`` (see benchmarks/mopuri2017/README.md for
where they are cached).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from capbench.commands.arg_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="image file")
    parser.add_argument(
        "--checkpoint", type=Path, required=True, help="a mopuri2017 captioner checkpoint"
    )
    parser.add_argument(
        "--regions", action="store_true", help="describe regions (a region-captioner checkpoint)"
    )
    parser.add_argument("--top", type=positive_int, default=5, help="regions described (5)")
    parser.add_argument("--out", type=Path, help="PNG to write: the image with the caption(s)")


def run(args: argparse.Namespace) -> int:
    import torch

    from capbench.commands.user_checkpoint import load_user_checkpoint
    from capbench.commands.user_image import readable_image
    from capbench.data.images import build_transform
    from capbench.methods.caption_fusion.captioning import RegionCaptionerModule, load_captioner

    img = readable_image(args.image, "caption")
    model = load_user_checkpoint(load_captioner, args.checkpoint, "caption")
    is_regions = isinstance(model, RegionCaptionerModule)
    if args.regions != is_regions:
        kind = "a region captioner" if is_regions else "a Show-and-Tell captioner"
        hint = "add --regions" if is_regions else "drop --regions"
        raise SystemExit(f"capbench caption: {args.checkpoint} is {kind}: {hint}")
    side = model.cfg.image_size
    x = build_transform(longest_side=side, pad_to_square=not is_regions)(img)[None]
    with torch.no_grad():
        if is_regions:
            regions = model.describe(x, top=args.top)[0]
            scale = max(img.size) / side
            lines = [(b, s, p) for b, s, p in regions]
            for box, score, phrase in lines:
                print(f"{score:.3f}  {phrase}  [{', '.join(f'{v * scale:.0f}' for v in box)}]")
            drawn = [([v * scale for v in b], p) for b, _, p in lines]
            caption = None
        else:
            caption = model.caption(x)[0]
            print(caption)
            drawn = []
    if args.out is not None:
        from capbench.methods.caption_fusion.drawing import draw_captions

        args.out.parent.mkdir(parents=True, exist_ok=True)
        draw_captions(img, caption, drawn).save(args.out)
        print(f"wrote {args.out}")
    return 0
