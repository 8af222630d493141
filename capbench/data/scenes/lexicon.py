"""The part of speech of every word the scenes captions use (a tagged lexicon).

ICMLM's concepts are "the most frequent K nouns, adjectives or verbs" of the training captions.
On real COCO a tagger (spaCy) finds them; the scenes generator knows each word's role because it
built the caption from its vocabulary, so it writes this lexicon beside its COCO output
(``coco/capbench_lexicon.json``) and ``capbench.data.concepts`` reads it like a tagger's output.

Tags are the Universal POS tags spaCy uses (``NOUN``, ``ADJ``, ``VERB``, ``DET``, ...). Words are
the caption tokens ``capbench.data.concepts.caption_words`` yields (lowercase ``[a-z]+``): a
multi-word synonym ("five-pointed star") is tagged word by word, its last word with the concept's
tag and the words before it as modifiers (adjectives, or numbers).
"""

from __future__ import annotations

import re

from capbench.data.scenes.scene_types import SCENES
from capbench.data.scenes.vocab import COLOURS, NUMBER_WORDS, PATTERNS, RELATIONS, SHAPES, SIZES

LEXICON_FILE = "capbench_lexicon.json"
TAGSET = "universal"

# The caption templates' own words (capbench.data.scenes.captions): function words and the few
# content words no vocabulary list holds.
_TEMPLATE_WORDS: dict[str, str] = {
    "a": "DET", "an": "DET", "the": "DET", "no": "DET",
    "on": "ADP", "in": "ADP", "at": "ADP", "of": "ADP", "with": "ADP", "to": "ADP",
    "and": "CCONJ", "there": "PRON", "is": "AUX",
    "colored": "VERB", "hidden": "VERB", "partly": "ADV", "six": "NUM",
    "picture": "NOUN", "shape": "NOUN", "shapes": "NOUN", "objects": "NOUN",
}  # fmt: skip
# The relation phrases' words (RELATIONS): prepositions, with "left"/"right"/"side" as nouns.
_RELATION_TAGS: dict[str, str] = {
    "left": "NOUN", "right": "NOUN", "side": "NOUN", "next": "ADJ", "close": "ADJ",
    "higher": "ADJ", "than": "ADP", "above": "ADP", "over": "ADP", "below": "ADP",
    "under": "ADP", "beneath": "ADP", "near": "ADP", "beside": "ADP",
}  # fmt: skip


def _words(phrase: str) -> list[str]:
    return re.findall(r"[a-z]+", phrase.lower())


def _tag_phrase(out: dict[str, str], phrase: str, head_tag: str, modifier_tag: str) -> None:
    """Tag a synonym: its last word ``head_tag``, earlier words ``modifier_tag`` (number words
    ``NUM``); a word already tagged keeps its first tag (the head of its own concept wins)."""
    words = _words(phrase)
    for k, word in enumerate(words):
        if word in NUMBER_WORDS:
            tag = "NUM"
        else:
            tag = head_tag if k == len(words) - 1 else modifier_tag
        out.setdefault(word, tag)


def scenes_lexicon() -> dict[str, str]:
    """``{word: universal POS tag}`` for every word the scenes sentence captions and region
    phrases use (a test checks that every caption word is covered)."""
    out: dict[str, str] = {}
    # heads first, so that e.g. "shape" is a NOUN and "round" (in "round shape") an ADJ
    for shape in SHAPES:
        for w in shape.words:
            _tag_phrase(out, w, "NOUN", "ADJ")
    for scene in SCENES:
        for w in scene.words:
            _tag_phrase(out, w, "NOUN", "ADJ")
    for colour in COLOURS:
        for w in colour.words:
            _tag_phrase(out, w, "ADJ", "ADJ")
    for _, words in SIZES.values():
        for w in words:
            _tag_phrase(out, w, "ADJ", "ADJ")
    for adjectives, nouns in PATTERNS.values():
        for w in adjectives:
            _tag_phrase(out, w, "ADJ", "ADJ")
        for w in nouns:
            _tag_phrase(out, w, "NOUN", "ADJ")
    for word, tag in {**_TEMPLATE_WORDS, **_RELATION_TAGS}.items():
        out[word] = tag
    for phrases in RELATIONS.values():
        for w in phrases:
            for word in _words(w):
                out.setdefault(word, "ADP")
    for word in NUMBER_WORDS:
        out.setdefault(word, "NUM")
    for scene in SCENES:  # whole-image region phrases (not in the sentence captions)
        for phrase in scene.phrases:
            words = _words(phrase)
            for k, word in enumerate(words):
                out.setdefault(word, "NOUN" if k == len(words) - 1 else "ADJ")
    return dict(sorted(out.items()))


def lexicon_document() -> dict[str, object]:
    """What the generator writes to ``LEXICON_FILE``."""
    return {
        "tagset": TAGSET,
        "source": "capbench.data.scenes (each word's role in the caption grammar)",
        "words": scenes_lexicon(),
    }
