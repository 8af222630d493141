"""``capbench query``: semantic retrieval by image, refined with +word / -word text modifiers.

    capbench query IMAGE [+word ...] [-word ...] --index DIR [--top K] [--out grid.png]
    capbench query --build-index --checkpoint CKPT --data VG_ROOT [--split test] --index DIR

The query is phi(IMAGE) plus (or minus) theta(word) for each modifier, renormalised (Gordo &
Larlus, Figure 5): only a model trained with text (V+T) has theta. The index (embeddings, ids,
paths, the checkpoint and the tf-idf model) is written by every trained gordo2017 row into its
work folder, or by ``--build-index``.

argparse would read ``-word`` as an unknown option, so everything after IMAGE is collected and
re-parsed here: known options are options, ``+w`` / ``-w`` are modifiers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from capbench.commands.arg_types import finite_float, positive_int


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help="index folder (index.json, embeddings.npy, ...)")
    parser.add_argument(
        "--top", type=positive_int, default=10, help="number of results (default 10)"
    )
    parser.add_argument("--out", type=Path, help="write the query and its results as a PNG grid")
    parser.add_argument(
        "--alpha", type=finite_float, default=1.0, help="weight of each word's theta (default 1)"
    )
    parser.add_argument(
        "--keep-self", action="store_true", help="do not drop the query image from its results"
    )
    parser.add_argument("--build-index", action="store_true", help="build an index, then exit")
    parser.add_argument("--checkpoint", type=Path, help="(--build-index) model checkpoint")
    parser.add_argument("--data", type=Path, help="(--build-index) Visual Genome folder")
    parser.add_argument("--split", default="test", help="(--build-index) split to index")
    parser.add_argument(
        "--limit", type=positive_int, help="(--build-index) index only the first N images"
    )
    parser.add_argument(
        "--longest-side",
        type=positive_int,
        help="(--build-index) image resize (default: the model's)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="query image file")
    parser.add_argument(
        "terms", nargs=argparse.REMAINDER, help="+word / -word text modifiers (and options)"
    )
    _add_options(parser)


def parse_terms(args: argparse.Namespace) -> tuple[argparse.Namespace, list[tuple[int, str]]]:
    """Split what followed IMAGE into options (set on ``args``) and signed words."""
    extra = argparse.ArgumentParser(prog="capbench query", add_help=False)
    _add_options(extra)
    defaults = {a.dest: a.default for a in extra._actions}
    opts, rest = extra.parse_known_args(list(args.terms or []))
    for key, value in vars(opts).items():
        if value != defaults.get(key):
            setattr(args, key, value)
    modifiers = []
    for token in rest:
        if len(token) > 1 and token[0] in "+-" and not token.startswith("--"):
            modifiers.append((1 if token[0] == "+" else -1, token[1:]))
        else:
            raise SystemExit(f"capbench query: {token!r} is neither an option nor +word / -word")
    return args, modifiers


def modified_query(
    model: Any, phi: Any, tfidf: Any, modifiers: list[tuple[int, str]], alpha: float = 1.0
) -> np.ndarray:
    """normalize(phi + alpha * sum(sign * theta(word))): Figure 5's text modifiers."""
    import torch
    import torch.nn.functional as F

    q = torch.as_tensor(np.asarray(phi, dtype=np.float32)).reshape(1, -1)
    if modifiers:
        if getattr(model, "text", None) is None:
            raise ValueError(
                "text modifiers need a model trained with text (V+T): this checkpoint has no theta"
            )
        rows = tfidf.transform([word for _, word in modifiers])
        empty = [w for (_, w), n in zip(modifiers, np.diff(rows.indptr)) if n == 0]
        if empty:
            raise ValueError(f"not in the tf-idf vocabulary (learned on train): {empty}")
        with torch.no_grad():
            theta = model.embed_text(rows).float().cpu()
        signs = torch.tensor([float(s) for s, _ in modifiers]).reshape(-1, 1)
        q = q + alpha * (signs * theta).sum(dim=0, keepdim=True)
    return F.normalize(q, dim=-1)[0].numpy()


def rank(embeddings: np.ndarray, query: np.ndarray, top: int, skip: int | None) -> list[int]:
    """Database positions by decreasing dot product (ties: smaller position first)."""
    sims = embeddings @ query
    order = np.lexsort((np.arange(len(sims)), -sims))
    return [int(i) for i in order if i != skip][:top]


def write_grid(query_path: str, result_paths: list[str], out: Path, thumb: int = 160) -> None:
    """The query, then its results left to right, as thumbnails of the same height."""
    from capbench.data.images import load_rgb
    from capbench.eval.grounding import side_by_side

    def small(path: str):
        im = load_rgb(path)
        return im.resize((max(1, round(im.width * thumb / im.height)), thumb))

    out.parent.mkdir(parents=True, exist_ok=True)
    side_by_side([small(query_path)] + [small(p) for p in result_paths], gap=12).save(out)


def _build_index(args: argparse.Namespace) -> int:
    from capbench.commands.user_checkpoint import load_user_checkpoint
    from capbench.data import read
    from capbench.data.tfidf import StemmedTfidf, record_document
    from capbench.methods.semantic_retrieval.index import save_index
    from capbench.methods.semantic_retrieval.train import embed_records, load_semantic_retrieval

    if not (args.checkpoint and args.data and args.index):
        raise SystemExit("capbench query --build-index needs --checkpoint, --data and --index")
    model = load_user_checkpoint(load_semantic_retrieval, args.checkpoint, "query").eval()
    records = read("visual_genome", args.data, args.split)
    if args.limit:
        records = records[: args.limit]
    train = read("visual_genome", args.data, "train")
    tfidf = StemmedTfidf().fit(record_document(r) for r in train)
    text = getattr(model, "text", None)
    if text is not None and text.vocab_size != tfidf.vocabulary_size:
        raise SystemExit(
            f"{args.checkpoint}: the model's text projection has {text.vocab_size} words but the "
            f"tf-idf refitted on {args.data} train has {tfidf.vocabulary_size}: not the same data"
        )
    side = args.longest_side or model.cfg.model.longest_side
    emb = embed_records(model, records, progress=True, longest_side=side).numpy()
    pad = model.cfg.model.pad_to_square
    save_index(args.index, records, emb, args.checkpoint, tfidf, side, pad)
    print(f"indexed {len(records)} images of {args.data} ({args.split}) into {args.index}")
    return 0


def run(args: argparse.Namespace) -> int:
    args, modifiers = parse_terms(args)
    if args.build_index:
        return _build_index(args)
    if not args.image or not args.index:
        print("capbench query: give IMAGE and --index DIR (or --build-index)", file=sys.stderr)
        return 2
    import torch

    from capbench.commands.user_checkpoint import load_user_checkpoint
    from capbench.commands.user_image import readable_image
    from capbench.commands.user_index import load_user_index
    from capbench.methods.semantic_retrieval.train import image_tensor, load_semantic_retrieval

    decoded = readable_image(args.image, "query")
    index = load_user_index(args.index, "query")
    if not index.checkpoint:
        raise SystemExit(
            f"capbench query: {args.index}: the index names no checkpoint to embed the query with"
        )
    model = load_user_checkpoint(load_semantic_retrieval, index.checkpoint, "query").eval()
    image = image_tensor(decoded, index.longest_side, index.pad_to_square)
    with torch.no_grad():
        phi = model.embed_images(image[None]).float().cpu().numpy()[0]
    try:
        query = modified_query(model, phi, index.tfidf, modifiers, args.alpha)
    except ValueError as err:
        print(f"capbench query: {err}", file=sys.stderr)
        return 2
    skip = None
    if not args.keep_self:
        own = Path(args.image).resolve()
        skip = next((i for i, p in enumerate(index.paths) if Path(p).resolve() == own), None)
    hits = rank(index.embeddings, query, args.top, skip)
    words = " ".join(("+" if s > 0 else "-") + w for s, w in modifiers)
    print(f"query {args.image} {words}".rstrip())
    for r, i in enumerate(hits, 1):
        score = float(index.embeddings[i] @ query)
        print(f"{r:3d}  {score:+.4f}  {index.ids[i]}  {index.paths[i]}")
    if args.out:
        write_grid(args.image, [index.paths[i] for i in hits], args.out)
        print(f"wrote {args.out}")
    return 0
