"""Reed et al.'s text encoders, tested through the registry: every registered name is built,
fed real tokenizer output and checked for shape, padding, gradients and a first training step;
then the layer lists and formulas the Lua code fixes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from capbench.data.text import CharAlphabet, WordVocab
from capbench.losses import ds_sje_loss
from capbench.models.text_encoders import build_text_encoder, names
from capbench.models.text_encoders.base import TextEncoder, one_hot
from capbench.models.text_encoders.bow import bag_of_ids
from capbench.models.text_encoders.cnn_rnn import ReedRNN

CAPTIONS = [
    "this bird has a bright red breast and black wings with white bars",
    "a small yellow bird with a short pointed beak",
    "the bird is brown",
    "an orange crown, a grey belly and long dark tail feathers on this bird",
]
N_CLASSES = 6


@pytest.fixture(scope="module")
def vocab() -> WordVocab:
    return WordVocab.build(CAPTIONS)


def _options(name: str, vocab: WordVocab) -> dict:
    """The family options the registry's factories need beyond the vocabulary size."""
    gen = torch.Generator().manual_seed(0)
    if name == "word2vec_avg":
        vectors = torch.randn(len(vocab), 16, generator=gen)
        vectors[sorted(vocab.special_ids)] = 0.0  # specials have no vector
        return {"vectors": vectors}
    if name == "attributes":
        return {"class_attributes": 100 * torch.rand(N_CLASSES, 312, generator=gen)}
    return {}


def _vocab_size(name: str, vocab: WordVocab) -> int:
    if name == "attributes":
        return N_CLASSES
    return CharAlphabet().vocab_size if name.startswith("char_") else len(vocab)


def _build(name: str, vocab: WordVocab, small: bool = False, **kwargs) -> TextEncoder:
    """The registered encoder; ``small`` shrinks the sizes that only cost CPU time (output
    width, LSTM width) for the behaviour tests: the layer tests check the paper's sizes."""
    torch.manual_seed(0)
    if small:
        kwargs.setdefault("out_dim", 32)
        if name.endswith("_lstm"):
            kwargs.setdefault("hidden", 64)
    return build_text_encoder(name, _vocab_size(name, vocab), **_options(name, vocab), **kwargs)


def _ids(enc: TextEncoder, vocab: WordVocab, max_len: int | None = None) -> torch.Tensor:
    """Real tokenizer output for CAPTIONS (class ids for the attribute baseline)."""
    if enc.level == "class":
        return torch.tensor([0, 3, 5, 1])
    tok = CharAlphabet() if enc.level == "char" else vocab
    length = enc.seq_len if max_len is None else max_len
    rows = [tok.encode(c, max_len=None) for c in CAPTIONS]
    width = max(length, max(len(r) for r in rows))
    padded = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    return padded[:, :length]


SEQUENCE_ENCODERS = [n for n in names() if n != "attributes"]  # attributes read a class id
# Averages / bags over the text's own tokens, so any amount of padding is ignored ...
MASKED = {"bow", "word2vec_avg", "char_lstm", "word_lstm"}
# ... and Reed's CNNs, which read exactly seq_len ids, padding columns included (no masking in
# HybridCNN.lua / FixedRNN.lua / DocumentCNN*.lua).
FIXED_WINDOW = {"char_cnn", "word_cnn", "char_cnn_rnn", "word_cnn_rnn"}


def test_registry_holds_the_nine_encoders_of_the_paper():
    assert names() == sorted(
        ["bow", "word2vec_avg", "attributes", "char_cnn", "char_lstm", "char_cnn_rnn",
         "word_cnn", "word_lstm", "word_cnn_rnn"]
    )  # fmt: skip


@pytest.mark.parametrize("name", names())
def test_output_is_batch_by_out_dim(name, vocab):
    enc = _build(name, vocab)
    out = enc(_ids(enc, vocab))
    assert out.shape == (len(CAPTIONS), 1024) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    small = _build(name, vocab, out_dim=48)
    assert small(_ids(small, vocab)).shape == (len(CAPTIONS), 48)
    if enc.level != "class":  # the fixed input length of the paper: 201 characters, 30 words
        assert enc.seq_len == (201 if enc.level == "char" else 30)


@pytest.mark.parametrize("name", SEQUENCE_ENCODERS)
def test_padding_and_batching_do_not_change_the_output(name, vocab):
    enc = _build(name, vocab, small=True).eval()
    ids = _ids(enc, vocab)
    want = enc(ids)
    longest = int((ids != 0).sum(1).max())
    # the same texts given without their padding, or with extra padding beyond seq_len
    torch.testing.assert_close(enc(ids[:, :longest]), want)
    torch.testing.assert_close(enc(nn.functional.pad(ids, (0, 13))), want)
    # each text alone gives what it gives in the batch (no leakage between rows)
    for i in range(len(CAPTIONS)):
        torch.testing.assert_close(enc(ids[i : i + 1]), want[i : i + 1])


def test_every_sequence_encoder_says_how_it_treats_padding():
    assert set(SEQUENCE_ENCODERS) == MASKED | FIXED_WINDOW and not MASKED & FIXED_WINDOW


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_encoders_ignore_any_amount_of_padding(name, vocab):
    """The same weights reading a 40-step longer window (40 more padding ids per text) give the
    same embeddings: the padding never enters the average or the bag."""
    enc = _build(name, vocab, small=True).eval()
    wider = _build(name, vocab, small=True, seq_len=enc.seq_len + 40).eval()
    wider.load_state_dict(enc.state_dict())
    ids = _ids(enc, vocab)
    torch.testing.assert_close(wider(ids), enc(ids))
    assert wider.prepare(ids).shape[1] == enc.seq_len + 40


@pytest.mark.parametrize("name", SEQUENCE_ENCODERS)
def test_inputs_longer_than_seq_len_are_cut(name, vocab):
    enc = _build(name, vocab, small=True).eval()
    long = _ids(enc, vocab, max_len=enc.seq_len + 20)  # the char captions fit: pad + cut
    long[:, enc.seq_len :] = 1  # tokens past the cut must not matter
    torch.testing.assert_close(enc(long), enc(long[:, : enc.seq_len]))


@pytest.mark.parametrize("name", names())
def test_gradients_reach_every_parameter(name, vocab):
    enc = _build(name, vocab, small=True)
    out = enc(_ids(enc, vocab))
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"


@pytest.mark.parametrize("name", names())
def test_one_step_lowers_the_sje_loss_and_one_batch_can_be_fitted(name, vocab):
    """On one batch of 4 classes against fixed image features: a gradient step sized to lower
    the DS-SJE loss by 1% to first order does lower it, and 20 Adam steps drive it to a third."""
    enc = _build(name, vocab, small=True)
    ids = _ids(enc, vocab)
    images = torch.randn(len(CAPTIONS), 32, generator=torch.Generator().manual_seed(1))
    loss = ds_sje_loss(images, enc(ids))
    loss.backward()
    params = [p for p in enc.parameters()]
    sq_norm = sum(float((p.grad**2).sum()) for p in params)
    step = 0.01 * loss.item() / sq_norm
    with torch.no_grad():
        for p in params:
            p -= step * p.grad
        assert ds_sje_loss(images, enc(ids)).item() < loss.item()
    opt = torch.optim.Adam(params, lr=3e-3)
    first = last = loss.item()
    for _ in range(20):
        loss = ds_sje_loss(images, enc(ids))
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = loss.item()
    assert last < first / 3, (first, last)


@pytest.mark.parametrize("name", names())
def test_parameters_start_uniform_in_reed_range(name, vocab):
    params = torch.cat([p.detach().flatten() for p in _build(name, vocab).parameters()])
    assert params.abs().max() <= 0.08
    assert params.abs().max() > 0.07 and abs(float(params.mean())) < 0.01


def test_char_cnn_rnn_layers_are_reed_s_hybrid_cnn():
    """HybridCNN.lua lines 12-27 with cnn_dim 256; the alphabet is the input width."""
    alphabet = CharAlphabet()
    enc = build_text_encoder("char_cnn_rnn", alphabet.vocab_size)
    layers = [
        (type(m).__name__, getattr(m, "in_channels", None), getattr(m, "out_channels", None),
         m.kernel_size if hasattr(m, "kernel_size") else None, getattr(m, "stride", None))
        for m in enc.features.convs
    ]  # fmt: skip
    width = alphabet.vocab_size - 1  # one channel per character, padding is all zeros
    assert layers == [
        ("Conv1d", width, 384, (4,), (1,)), ("ReLU", None, None, None, None),
        ("MaxPool1d", None, None, 3, 3),
        ("Conv1d", 384, 512, (4,), (1,)), ("ReLU", None, None, None, None),
        ("MaxPool1d", None, None, 3, 3),
        ("Conv1d", 512, 256, (4,), (1,)), ("ReLU", None, None, None, None),
        ("MaxPool1d", None, None, 3, 2),
    ]  # fmt: skip
    assert enc.features.steps == 8  # 201 -> 198 -> 66 -> 63 -> 21 -> 18 -> 8
    feats = enc.features(torch.zeros(2, 201, dtype=torch.long))
    assert feats.shape == (2, 8, 256)
    assert (enc.rnn.i2h.in_features, enc.rnn.i2h.out_features) == (256, 256)
    assert (enc.rnn.h2h.in_features, enc.rnn.h2h.out_features) == (256, 256)
    assert (enc.proj.in_features, enc.proj.out_features) == (256, 1024)
    assert enc.dropout.p == 0.0  # the training scripts keep -dropout 0


def test_other_conv_encoders_have_the_lua_widths(vocab):
    char_cnn = build_text_encoder("char_cnn", 71)  # Reed's 70-character Lua alphabet + padding
    assert char_cnn.features.convs[0].in_channels == 70
    assert (char_cnn.features.steps, char_cnn.features.channels) == (6, 512)  # Reshape(3072)
    assert [m.in_features for m in char_cnn.head if isinstance(m, nn.Linear)] == [3072]
    word_cnn = build_text_encoder("word_cnn", len(vocab))
    assert (word_cnn.features.steps, word_cnn.features.channels) == (5, 256)  # Reshape(1280)
    assert [(m.in_features, m.out_features) for m in word_cnn.head if isinstance(m, nn.Linear)] == [
        (1280, 1024),
        (1024, 1024),
    ]
    word_cnn_rnn = build_text_encoder("word_cnn_rnn", len(vocab))
    assert (word_cnn_rnn.features.steps, word_cnn_rnn.features.channels) == (8, 512)
    assert word_cnn_rnn.proj.in_features == 512


@pytest.mark.parametrize("name", ["char_cnn", "char_cnn_rnn", "word_cnn", "word_cnn_rnn"])
def test_channels_narrow_the_conv_layers_and_keep_kernels_pools_and_steps(name, vocab):
    """The scenes stand-in (``encoder_options: {channels: [...]}``) changes widths only."""
    size = 71 if name.startswith("char") else len(vocab)
    paper = build_text_encoder(name, size)
    narrow = build_text_encoder(name, size, channels=[16, 24, 32])
    convs = [m for m in narrow.features.convs if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [16, 24, 32]
    assert [c.in_channels for c in convs][1:] == [16, 24]
    pools = [
        (m.kernel_size, m.stride) for m in narrow.features.convs if isinstance(m, nn.MaxPool1d)
    ]
    assert pools == [
        (m.kernel_size, m.stride) for m in paper.features.convs if isinstance(m, nn.MaxPool1d)
    ]
    assert [c.kernel_size for c in convs] == [
        m.kernel_size for m in paper.features.convs if isinstance(m, nn.Conv1d)
    ]
    assert narrow.features.steps == paper.features.steps
    ids = torch.randint(1, size, (3, 12))
    assert narrow(ids).shape == (3, 1024)
    with pytest.raises(ValueError, match="3 positive layer widths"):
        build_text_encoder(name, size, channels=[16, 24])


def test_reed_rnn_is_fixed_rnn_lua():
    """h1 = relu(Wi x1 + bi); ht = relu(Wi xt + bi + Wh h(t-1) + bh): no bh on the first step."""
    torch.manual_seed(0)
    rnn = ReedRNN(3)
    x = torch.randn(2, 4, 3)
    wi, bi, wh, bh = rnn.i2h.weight, rnn.i2h.bias, rnn.h2h.weight, rnn.h2h.bias
    h = torch.relu(x[:, 0] @ wi.T + bi)
    want = [h]
    for t in range(1, 4):
        h = torch.relu(x[:, t] @ wi.T + bi + h @ wh.T + bh)
        want.append(h)
    torch.testing.assert_close(rnn(x), torch.stack(want, 1))
    ref = nn.RNN(3, 3, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(wi), ref.bias_ih_l0.copy_(bi)
        ref.weight_hh_l0.copy_(wh), ref.bias_hh_l0.fill_(1.0)
    assert not torch.allclose(ref(x)[0][:, 0], rnn(x)[:, 0])  # torch's RNN adds b_hh at step 1


def test_lstm_average_covers_the_text_steps_only(vocab):
    enc = _build("word_lstm", vocab, out_dim=16).eval()
    ids = _ids(enc, vocab)
    out = enc(ids)
    for i in range(len(CAPTIONS)):
        text = ids[i : i + 1, : int((ids[i] != 0).sum())]  # the caption's own tokens
        states, _ = enc.lstm(one_hot(text, enc.vocab_size))
        torch.testing.assert_close(out[i], enc.proj(states.mean(1))[0])


def test_bow_and_word2vec_formulas(vocab):
    ids = torch.tensor([[vocab.stoi["bird"], vocab.stoi["red"], vocab.stoi["bird"], 0, 0]])
    bag = bag_of_ids(ids, len(vocab))
    assert bag[0, vocab.stoi["bird"] - 1] == 2 and bag[0, vocab.stoi["red"] - 1] == 1
    assert bag.sum() == 3
    bow = _build("bow", vocab)
    torch.testing.assert_close(bow(ids), bow.proj(bag))

    w2v = _build("word2vec_avg", vocab)
    vectors = w2v.vectors.clone()
    unknown = vocab.stoi["red"]
    w2v.known[unknown] = False  # a word without a vector is left out of the average
    expected = w2v.proj(vectors[vocab.stoi["bird"]].unsqueeze(0))
    torch.testing.assert_close(w2v(ids), expected)
    assert w2v.vectors.requires_grad is False  # the vectors stay fixed


def test_attribute_encoder_maps_the_class_vector(vocab):
    enc = _build("attributes", vocab)
    table = _options("attributes", vocab)["class_attributes"]
    out = enc(torch.tensor([2, 0]))
    unit = nn.functional.normalize(table[[2, 0]], dim=1)
    torch.testing.assert_close(out, enc.proj(unit))
    torch.testing.assert_close(enc(torch.tensor([[2], [0]])), out)
    with pytest.raises(ValueError, match="6 attribute vectors for 7 classes"):
        build_text_encoder("attributes", 7, class_attributes=table)


def test_bad_token_ids_are_refused_with_the_range(vocab):
    enc = build_text_encoder("char_cnn_rnn", CharAlphabet().vocab_size)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 70\), found \[0, 75\]"):
        enc(torch.tensor([[3, 75, 0]]))
    with pytest.raises(ValueError, match="integer token ids of shape"):
        enc(torch.zeros(2, 201))
    with pytest.raises(ValueError, match="too short for the conv stack"):
        build_text_encoder("char_cnn_rnn", 70, seq_len=60)
    with pytest.raises(KeyError, match="unknown text encoder 'char_gru'"):
        build_text_encoder("char_gru", 70)
