"""Word vocabulary, Reed's char alphabet and sentencepiece: round trips, padding, train-only fit."""

from __future__ import annotations

import pickle
import string

import pytest

from capbench.data.text import (
    REED_ALPHABET,
    CharAlphabet,
    SentencePieceTokenizer,
    WordVocab,
    regex_tokenize,
)

CAPTIONS = [
    "A red circle left of a blue square.",
    "Two small birds sit on a branch",
    "This bird has a red breast and a short beak!",
    "the bird's wings are blue, its belly is white",
]


def test_regex_tokenize_lowercases_and_drops_punctuation():
    assert regex_tokenize("A red-breasted Bird's beak, 2 wings!") == [
        "a",
        "red",
        "breasted",
        "bird's",
        "beak",
        "2",
        "wings",
    ]


def test_word_vocab_order_specials_and_counts():
    vocab = WordVocab.build(CAPTIONS)
    assert vocab.itos[:5] == ["<pad>", "<unk>", "<mask>", "<bos>", "<eos>"]
    assert vocab.pad_id == 0 and vocab.unk_id == 1 and vocab.mask_id == 2
    # hand count: "a" 5 times, "blue"/"red" twice, every other word once
    assert vocab.itos[5:8] == ["a", "blue", "red"]
    singles = vocab.itos[8:]
    assert singles == sorted(singles)  # equal counts: alphabetical, so the order is stable
    assert "bird's" in singles and "breast" in singles


def test_word_vocab_encode_pads_cuts_and_round_trips(tmp_path):
    vocab = WordVocab.build(CAPTIONS)
    ids = vocab.encode("a red bird", max_len=6)
    assert len(ids) == 6 and ids[3:] == [vocab.pad_id] * 3
    assert vocab.decode(ids) == "a red bird"
    assert len(vocab.encode(" ".join(["bird"] * 50))) == 30  # Reed's default length
    assert vocab.encode("a zebra", max_len=None) == [vocab.stoi["a"], vocab.unk_id]
    assert vocab.decode(vocab.encode("a zebra", max_len=4)) == "a <unk>"
    with_ends = vocab.encode("red bird", max_len=None, add_bos_eos=True)
    assert with_ends[0] == vocab.bos_id and with_ends[-1] == vocab.eos_id
    vocab.save(tmp_path / "vocab.json")
    again = WordVocab.load(tmp_path / "vocab.json")
    assert again.itos == vocab.itos
    assert again.encode("two birds on a branch") == vocab.encode("two birds on a branch")


def test_word_vocab_min_count_and_max_size():
    vocab = WordVocab.build(CAPTIONS, min_count=2)
    assert set(vocab.itos[5:]) == {"a", "red", "blue"}
    small = WordVocab.build(CAPTIONS, max_size=2)
    assert len(small) == 5 + 2


def test_char_alphabet_content_and_201_padding():
    alpha = CharAlphabet()
    assert set(string.ascii_lowercase) <= set(REED_ALPHABET)
    assert set(string.digits) <= set(REED_ALPHABET)
    assert set(",.;:!?'\"()-") <= set(REED_ALPHABET)
    assert not any(c.isupper() for c in REED_ALPHABET)
    assert alpha.vocab_size == len(REED_ALPHABET) + 1  # + padding 0
    ids = alpha.encode("This bird, 2 wings!")
    assert len(ids) == 201
    assert ids[len("this bird, 2 wings!") :] == [0] * (201 - len("this bird, 2 wings!"))
    assert alpha.decode(ids) == "this bird, 2 wings!"
    assert ids[0] == REED_ALPHABET.index("t") + 1
    assert len(alpha.encode("x" * 500)) == 201


def test_char_alphabet_unknown_characters():
    dropped = CharAlphabet().encode("café ☃ ok", max_len=None)
    assert CharAlphabet().decode(dropped) == "caf  ok"
    mapped = CharAlphabet(unknown="map")
    ids = mapped.encode("é", max_len=3)
    assert ids == [len(REED_ALPHABET) + 1, 0, 0]
    assert mapped.vocab_size == len(REED_ALPHABET) + 2


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_trains_on_tiny_corpus(tmp_path, model_type):
    tok = SentencePieceTokenizer.train(
        CAPTIONS * 3, out_dir=tmp_path, vocab_size=500, model_type=model_type
    )
    assert (tmp_path / "spm.model").is_file()
    assert 5 < tok.vocab_size <= 500  # hard_vocab_limit=False: fewer pieces than asked is fine
    assert tok.pad_id == 0 and tok.mask_id is not None
    ids = tok.encode("A red bird", max_len=20)
    assert len(ids) == 20 and ids[-1] == tok.pad_id
    assert tok.decode(ids) == "a red bird"
    again = SentencePieceTokenizer.load(tmp_path / "spm.model")
    assert again.encode("two birds") == tok.encode("two birds")
    # DataLoader workers pickle the dataset and its tokenizer
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode("blue square", max_len=None) == tok.encode("blue square", max_len=None)
