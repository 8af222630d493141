"""``capbench explain IMG_A IMG_B --checkpoint CKPT --out pair.png``: Grad-CAM grounding of why
two images are similar under a semantic-retrieval model (Gordo & Larlus, Figure 3).

The heat maps come from the top ``k`` signature dimensions of phi_a * phi_b (default 5, as in
the paper), backpropagated to the last conv map of each image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from capbench.commands.arg_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image_a", help="first image file")
    parser.add_argument("image_b", help="second image file")
    parser.add_argument("--checkpoint", type=Path, help="a gordo2017 model checkpoint")
    parser.add_argument(
        "--index", type=Path, help="a query index: its checkpoint and image size are used"
    )
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (the two overlays)")
    parser.add_argument(
        "--k", type=positive_int, default=5, help="signature dimensions explained (5)"
    )
    parser.add_argument(
        "--longest-side",
        type=positive_int,
        help="resize before the model (default: the index's, else the image's own size)",
    )


def run(args: argparse.Namespace) -> int:
    from capbench.commands.user_checkpoint import load_user_checkpoint
    from capbench.commands.user_image import readable_image
    from capbench.commands.user_index import load_user_index
    from capbench.methods.semantic_retrieval.figures import explain_pair
    from capbench.methods.semantic_retrieval.train import load_semantic_retrieval

    checkpoint, side = args.checkpoint, args.longest_side
    if args.index is not None:
        index = load_user_index(args.index, "explain")
        checkpoint = checkpoint or index.checkpoint
        side = side or index.longest_side
    if checkpoint is None:
        raise SystemExit("capbench explain: give --checkpoint CKPT (or --index DIR)")
    image_a, image_b = (readable_image(path, "explain") for path in (args.image_a, args.image_b))
    model = load_user_checkpoint(load_semantic_retrieval, checkpoint, "explain").eval()
    pair, g = explain_pair(model, image_a, image_b, side, k=args.k)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pair.save(args.out)
    print(
        f"similarity {g.similarity:+.4f} (top-{len(g.dims)} dimensions {g.dims} carry "
        f"{g.explained:+.4f}); wrote {args.out}"
    )
    return 0
