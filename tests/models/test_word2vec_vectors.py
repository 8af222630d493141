"""Word vectors for the word2vec baseline: trained with gensim on captions, or read from a local
file in each format gensim writes, then laid out in a WordVocab's id order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import Word2Vec

from capbench.data.text import WordVocab
from capbench.models.text_encoders import build_text_encoder
from capbench.models.text_encoders.word2vec import (
    load_keyed_vectors,
    train_keyed_vectors,
    vocab_vectors,
)

CAPTIONS = [
    "a red bird with black wings",
    "a small blue bird with a white belly",
    "this bird is red and black",
    "the bird has a short blue beak",
] * 5


@pytest.fixture(scope="module")
def vectors():
    return train_keyed_vectors(CAPTIONS, dim=12, seed=3, epochs=3)


def test_training_is_seeded_and_uses_the_vocab_tokens(vectors):
    again = train_keyed_vectors(CAPTIONS, dim=12, seed=3, epochs=3)
    other = train_keyed_vectors(CAPTIONS, dim=12, seed=4, epochs=3)
    np.testing.assert_array_equal(again["bird"], vectors["bird"])
    assert not np.allclose(other["bird"], vectors["bird"])
    assert vectors.vector_size == 12
    assert set(vectors.key_to_index) == set(WordVocab.build(CAPTIONS).itos[5:])  # no specials
    with pytest.raises(ValueError, match="no training text"):
        train_keyed_vectors(["", "?!"])


def test_vocab_vectors_follow_the_ids(vectors):
    vocab = WordVocab.build([*CAPTIONS, "an albatross"])  # "albatross" has no vector
    table, known = vocab_vectors(vectors, vocab)
    assert table.shape == (len(vocab), 12) and table.dtype == torch.float32
    np.testing.assert_array_equal(table[vocab.stoi["red"]].numpy(), vectors["red"])
    assert not known[vocab.stoi["albatross"]] and not table[vocab.stoi["albatross"]].any()
    assert not known[sorted(vocab.special_ids)].any()
    assert int(known.sum()) == len(vectors.key_to_index)
    with pytest.raises(ValueError, match="no word of the vocabulary has a vector"):
        vocab_vectors(vectors, WordVocab.build(["zebra finch"]))


@pytest.mark.parametrize("suffix", [".kv", ".txt", ".bin", ".model"])
def test_every_local_format_loads(vectors, tmp_path, suffix):
    path = tmp_path / f"vectors{suffix}"
    if suffix == ".kv":
        vectors.save(str(path))
    elif suffix == ".model":  # a whole saved Word2Vec model: its .wv is used
        model = Word2Vec([c.split() for c in CAPTIONS], vector_size=12, seed=3, workers=1)
        model.save(str(path))
        vectors = model.wv
    else:
        vectors.save_word2vec_format(str(path), binary=suffix == ".bin")
    loaded = load_keyed_vectors(path)
    np.testing.assert_allclose(loaded["bird"], vectors["bird"], rtol=1e-5, atol=1e-6)
    assert set(loaded.key_to_index) == set(vectors.key_to_index)


def test_missing_or_broken_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.kv: word vectors file not found"):
        load_keyed_vectors(tmp_path / "nope.kv")
    broken = tmp_path / "broken.txt"
    broken.write_text("this is not\na word2vec header\n")
    with pytest.raises(ValueError, match=r"broken\.txt: not a readable word-vector file"):
        load_keyed_vectors(broken)
    with pytest.raises(ValueError, match=r"broken\.kv: not a readable word-vector file"):
        load_keyed_vectors(broken.rename(tmp_path / "broken.kv"))


def test_word2vec_avg_encoder_from_trained_vectors(vectors):
    vocab = WordVocab.build(CAPTIONS)
    table, known = vocab_vectors(vectors, vocab)
    enc = build_text_encoder("word2vec_avg", len(vocab), vectors=table, known=known)
    ids = torch.tensor([vocab.encode("a red bird"), vocab.encode("a blue bird")])
    out = enc(ids)
    assert out.shape == (2, 1024)
    mean = torch.from_numpy((vectors["a"] + vectors["red"] + vectors["bird"]) / 3)
    torch.testing.assert_close(out[0], enc.proj(mean))
    with pytest.raises(ValueError, match="vectors for a vocabulary of 3"):
        build_text_encoder("word2vec_avg", 3, vectors=table)
