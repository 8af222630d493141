"""Concepts: the K most frequent nouns, adjectives and verbs of the training captions (ICMLM).

Sariyildiz et al. 2020 take "the most frequent K nouns, adjectives or verbs in captions" as the
tokens ICMLM masks and TP_Postag predicts. Part-of-speech tags come from one of two places:

* a tagged lexicon, ``{"tagset": "universal", "words": {word: tag}}`` (the scenes generator writes
  one beside its COCO output, ``capbench_lexicon.json``), or
* spaCy with a model the user installed (e.g. ``en_core_web_sm``), for real captions.

Neither is downloaded here; when neither is available the error says what to install or pass.
A word's tag is its most frequent tag over the captions (spaCy tags in context).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

CONCEPT_TAGS = ("NOUN", "ADJ", "VERB")  # the paper's three word classes
_WORD = re.compile(r"[a-z]+")


def caption_words(caption: str) -> list[str]:
    """A caption's words as the concept counts see them: lowercase ``[a-z]+`` runs."""
    return _WORD.findall(caption.lower())


def load_lexicon(path: str | Path) -> dict[str, str]:
    """``{word: tag}`` from a lexicon file; a malformed one names the file and what it expects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tagged lexicon here")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err
    words = doc.get("words") if isinstance(doc, Mapping) else None
    if not isinstance(words, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in words.items()
    ):
        raise ValueError(f"{path}: expected {{'tagset': 'universal', 'words': {{word: TAG}}}}")
    if doc.get("tagset", "universal") != "universal":
        raise ValueError(f"{path}: tagset {doc.get('tagset')!r}; expected 'universal'")
    return {k.lower(): v.upper() for k, v in words.items()}


def spacy_tags(captions: Sequence[str], model: str) -> dict[str, str]:
    """Each word's most frequent universal tag over ``captions``, tagged in context by spaCy."""
    try:
        import spacy
    except ImportError as err:
        raise ImportError(
            "concept tagging needs a tagged lexicon (concepts.lexicon: PATH) or spaCy with a "
            f"model: pip install spacy, then install the model {model!r} "
            "(python -m spacy download needs the network: install its wheel from a local file)"
        ) from err
    try:
        nlp = spacy.load(model, disable=["parser", "ner", "lemmatizer"])
    except OSError as err:
        raise OSError(
            f"spaCy model {model!r} is not installed: install its wheel, or pass a tagged "
            "lexicon (concepts.lexicon: PATH)"
        ) from err
    counts: dict[str, Counter[str]] = {}
    for doc in nlp.pipe((c.lower() for c in captions), batch_size=256):
        for tok in doc:
            if _WORD.fullmatch(tok.text):
                counts.setdefault(tok.text, Counter())[tok.pos_] += 1
    return {w: c.most_common(1)[0][0] for w, c in counts.items()}


def word_tags(
    captions: Sequence[str], lexicon: str | Path | None = None, spacy_model: str | None = None
) -> dict[str, str]:
    """Tags from the lexicon file when given, else from spaCy when a model is named."""
    if lexicon is not None:
        return load_lexicon(lexicon)
    if spacy_model:
        return spacy_tags(captions, spacy_model)
    raise ValueError(
        "concepts need part-of-speech tags: give a tagged lexicon (concepts.lexicon: PATH; the "
        "scenes COCO layout has capbench_lexicon.json) or a spaCy model (concepts.spacy_model: "
        "en_core_web_sm, installed by you: pip install spacy and the model's wheel)"
    )


def top_concepts(
    captions: Iterable[str],
    tags: Mapping[str, str],
    k: int,
    allowed_tags: Sequence[str] = CONCEPT_TAGS,
    keep: Iterable[str] | None = None,
    strict: bool = True,
) -> list[str]:
    """The ``k`` most frequent words of ``captions`` whose tag is in ``allowed_tags``, most
    frequent first (ties by the word, so the list is deterministic). ``keep``: only words in
    this set count (e.g. those that are one token of the text encoder). With ``strict``, a
    caption word the lexicon does not know is an error naming it."""
    if k < 1:
        raise ValueError(f"concepts: k must be >= 1, got {k}")
    allowed = set(allowed_tags)
    kept = None if keep is None else set(keep)
    counts: Counter[str] = Counter()
    for i, caption in enumerate(captions):
        for word in caption_words(caption):
            tag = tags.get(word)
            if tag is None:
                if strict:
                    raise KeyError(
                        f"caption {i} ({caption!r}): the word {word!r} has no tag in the "
                        "lexicon; expected every caption word to be tagged"
                    )
                continue
            if tag in allowed and (kept is None or word in kept):
                counts[word] += 1
    if not counts:
        raise ValueError(f"concepts: no caption word is tagged {', '.join(sorted(allowed))}")
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    return [w for w, _ in ranked[:k]]
