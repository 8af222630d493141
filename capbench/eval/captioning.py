"""Caption quality against reference captions: BLEU-4 and CIDEr-D through ``pycocoevalcap`` (the
COCO caption evaluation code), METEOR when a Java runtime is found.

Texts are lower-cased and split by capbench's word regex and re-joined with spaces before
scoring; the COCO toolkit's own PTB tokenizer is a Stanford CoreNLP jar (Java) and is not used,
so numbers can differ slightly from the official server's on punctuation-heavy text.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Mapping, Sequence

import numpy as np

from capbench.data.text import regex_tokenize


def _norm(text: str) -> str:
    return " ".join(regex_tokenize(text.lower()))


def caption_scores(
    references: Mapping[str, Sequence[str]], generated: Mapping[str, str], meteor: bool = False
) -> dict[str, float]:
    """``bleu1..bleu4`` and ``cider`` (plus ``meteor`` when asked and Java is present) of the
    ``generated`` caption of each image against its ``references``; corpus-level as the COCO
    toolkit reports them. Every generated id must have references."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    missing = sorted(set(generated) - set(references))
    if missing:
        raise KeyError(f"generated captions for images without references: {missing[:5]}")
    if not generated:
        raise ValueError("no generated caption to score")
    gts = {k: [_norm(r) for r in references[k]] for k in generated}
    res = {k: [_norm(v)] for k, v in generated.items()}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its length statistics
        bleu, _ = Bleu(4).compute_score(gts, res)
        cider, _ = Cider().compute_score(gts, res)
    out = {f"bleu{i + 1}": float(b) for i, b in enumerate(bleu)}
    out["cider"] = float(cider)
    if meteor:
        if shutil.which("java") is None:
            raise RuntimeError("METEOR needs a Java runtime (`java` not found on PATH)")
        from pycocoevalcap.meteor.meteor import Meteor

        out["meteor"] = float(Meteor().compute_score(gts, res)[0])
    return out


def random_caption_baseline(
    train_captions: Sequence[Sequence[str]], image_ids: Sequence[str], seed: int = 0
) -> dict[str, str]:
    """For each image, the first caption of a uniformly drawn training image: the floor a
    captioner must clear (it knows the training language but not the image)."""
    pool = [c for c in train_captions if c]
    if not pool:
        raise ValueError("no training image has a caption")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), size=len(image_ids))
    return {i: pool[int(p)][0] for i, p in zip(image_ids, picks)}
