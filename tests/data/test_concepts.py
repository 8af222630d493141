"""ICMLM's concepts: the K most frequent nouns/adjectives/verbs of the captions, from a tagged
lexicon (the scenes generator writes one) or spaCy; clear errors when neither is there."""

from __future__ import annotations

import json

import pytest

from capbench.data import read
from capbench.data.concepts import caption_words, load_lexicon, top_concepts, word_tags
from capbench.data.scenes.lexicon import LEXICON_FILE, scenes_lexicon

TAGS = {"a": "DET", "red": "ADJ", "circle": "NOUN", "runs": "VERB", "on": "ADP", "box": "NOUN"}


def test_most_frequent_content_words_in_order_ties_by_word():
    captions = ["A red circle runs.", "a red box", "A circle on a box", "red"]
    # red 3, circle 2, box 2, runs 1 ("a", "on" are not concept tags)
    assert top_concepts(captions, TAGS, 10) == ["red", "box", "circle", "runs"]
    assert top_concepts(captions, TAGS, 2) == ["red", "box"]
    assert top_concepts(captions, TAGS, 10, allowed_tags=("NOUN",)) == ["box", "circle"]
    assert top_concepts(captions, TAGS, 10, keep={"circle", "runs"}) == ["circle", "runs"]


def test_untagged_word_is_an_error_naming_caption_and_word():
    with pytest.raises(KeyError, match=r"caption 1 .*'blue'"):
        top_concepts(["a red circle", "a blue circle"], TAGS, 5)
    assert top_concepts(["a red circle", "a blue circle"], TAGS, 5, strict=False) == [
        "circle",
        "red",
    ]


def test_no_tagger_says_what_to_install():
    with pytest.raises(ValueError, match=r"lexicon.*spaCy|spacy"):
        word_tags(["a red circle"])


def test_missing_spacy_model_or_package_names_the_fix():
    try:
        import spacy  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install spacy"):
            word_tags(["a red circle"], spacy_model="en_core_web_sm")
    else:
        with pytest.raises(OSError, match="no_such_model_xyz"):
            word_tags(["a red circle"], spacy_model="no_such_model_xyz")


def test_malformed_lexicon_names_the_file(tmp_path):
    path = tmp_path / "lex.json"
    path.write_text(json.dumps({"words": ["circle"]}))
    with pytest.raises(ValueError, match=r"lex\.json"):
        load_lexicon(path)
    path.write_text(json.dumps({"tagset": "penn", "words": {"circle": "NN"}}))
    with pytest.raises(ValueError, match="tagset"):
        load_lexicon(path)


def test_scenes_lexicon_tags_every_caption_word_and_knows_the_roles(tiny_scenes):
    """The lexicon the generator writes beside its COCO layout covers every word of every
    caption, and tags the grammar's roles: shapes and places nouns, colours and sizes
    adjectives."""
    lexicon = load_lexicon(tiny_scenes / "coco" / LEXICON_FILE)
    assert lexicon == scenes_lexicon()
    records = read("coco", tiny_scenes / "coco", splits="karpathy")
    words = {w for r in records for c in r.captions for w in caption_words(c)}
    assert words <= set(lexicon), sorted(words - set(lexicon))
    assert {lexicon[w] for w in ("circle", "square", "beach", "ring")} == {"NOUN"}
    assert {lexicon[w] for w in ("red", "crimson", "large", "striped")} == {"ADJ"}
    assert {lexicon[w] for w in ("the", "a", "and", "of")} <= {"DET", "CCONJ", "ADP"}


def test_scenes_coco_layout_has_the_shapes_as_object_categories(tiny_scenes, tiny_scenes_run):
    """instances_*.json: the shapes are the categories; every record's labels are the shapes of
    its objects (the VOC layout's present + difficult classes, occluded ones included)."""
    coco = read("coco", tiny_scenes / "coco", splits="karpathy", instances=True)
    voc = {r.image_id: r for r in read("voc2007", tiny_scenes / "voc2007")}
    assert coco[0].meta["categories"] == tiny_scenes_run[1]["voc_classes"]
    for rec in coco:
        v = voc[f"{int(rec.image_id):06d}"]
        assert rec.labels == sorted(set(v.labels) | set(v.meta.get("difficult", [])))
        assert all(w > 0 and h > 0 for _, _, _, w, h in rec.meta["instances"])
