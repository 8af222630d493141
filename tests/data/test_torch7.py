"""Torch7 ``.t7`` files: our serializer read back by the independent ``torchfile`` parser, the
byte layout checked piece by piece, and the readers of Reed's per-class feature and character
files with their errors."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from capbench.data import DatasetFormatError
from capbench.data.sources.torch7 import (
    REED_LUA_ALPHABET,
    decode_char_codes,
    encode_char_codes,
    read_char_codes,
    read_image_features,
    read_t7,
)
from capbench.data.writers.torch7 import TENSOR_TYPES, t7_bytes, write_t7


@pytest.mark.parametrize("dtype", list(TENSOR_TYPES), ids=str)
def test_every_tensor_type_round_trips(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3 - 5).astype(dtype)  # uint8 wraps, on purpose
    path = write_t7(tmp_path / "x.t7", array)
    back = read_t7(path)
    assert back.dtype == array.dtype and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_tables_strings_numbers_and_booleans_round_trip(tmp_path):
    checkpoint = {
        "opt": {"batch_size": 40, "learning_rate": 0.0007, "symmetric": True, "savefile": "sje"},
        "vocab": ["a", "bird", "wing"],
        "weights": torch.tensor([[0.5, -1.25]], dtype=torch.float32),
        7: False,
    }
    back = read_t7(write_t7(tmp_path / "cp.t7", checkpoint))
    assert back["opt"] == {
        "batch_size": 40,
        "learning_rate": 0.0007,
        "symmetric": True,
        "savefile": "sje",
    }
    assert back["vocab"] == ["a", "bird", "wing"]  # keys 1..n: a Lua array
    np.testing.assert_array_equal(back["weights"], [[0.5, -1.25]])
    assert back[7] is False
    assert read_t7(write_t7(tmp_path / "nil.t7", None)) is None
    assert read_t7(write_t7(tmp_path / "s.t7", b"\x00raw")) == "\x00raw"


def test_float_tensor_bytes_follow_torch7_layout():
    """torch.FloatTensor{1.5, -2}: the File.lua / Tensor.c / Storage.c layout, piece by piece."""

    def string(s: bytes) -> bytes:
        return struct.pack("<i", len(s)) + s

    want = (
        struct.pack("<ii", 4, 1)  # TYPE_TORCH, reference 1
        + string(b"V 1")
        + string(b"torch.FloatTensor")
        + struct.pack("<i", 1)  # ndim
        + struct.pack("<qqq", 2, 1, 1)  # size, stride, 1-based storage offset
        + struct.pack("<ii", 4, 2)  # the storage: TYPE_TORCH, reference 2
        + string(b"V 1")
        + string(b"torch.FloatStorage")
        + struct.pack("<q", 2)
        + struct.pack("<ff", 1.5, -2.0)
    )
    assert t7_bytes(np.array([1.5, -2.0], dtype=np.float32)) == want


def test_non_contiguous_and_empty_tensors(tmp_path):
    array = np.arange(12, dtype=np.float64).reshape(3, 4).T  # strides of a transpose
    np.testing.assert_array_equal(read_t7(write_t7(tmp_path / "t.t7", array)), array)
    empty = read_t7(write_t7(tmp_path / "e.t7", np.zeros(0, dtype=np.float32)))
    assert empty.size == 0


def test_what_torch7_cannot_hold_is_refused():
    with pytest.raises(TypeError, match="no Torch7 tensor type for dtype complex64"):
        t7_bytes(np.zeros(2, dtype=np.complex64))
    with pytest.raises(TypeError, match="cannot write a set"):
        t7_bytes({1, 2})
    with pytest.raises(ValueError, match="0-d array"):
        t7_bytes(np.array(1.0, dtype=np.float32))


def _features(n: int, dim: int = 6, views: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim, views)).astype(np.float32)


def test_image_features_load_per_class_at_the_release_size(tmp_path):
    folder = tmp_path / "images"
    a, b = _features(2, 1024, 10, seed=1), _features(3, 1024, 10, seed=2)
    write_t7(folder / "001.Black_footed_Albatross.t7", a)
    write_t7(folder / "002.Laysan_Albatross.t7", b)
    feats = read_image_features(folder)
    assert list(feats) == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    assert feats["002.Laysan_Albatross"].shape == (3, 1024, 10)
    assert feats["002.Laysan_Albatross"].dtype == torch.float32
    np.testing.assert_array_equal(feats["001.Black_footed_Albatross"].numpy(), a)
    # a class list (manifest.txt lines carry the suffix) picks and orders the files
    chosen = read_image_features(folder, ["002.Laysan_Albatross.t7", "001.Black_footed_Albatross"])
    assert list(chosen) == ["002.Laysan_Albatross", "001.Black_footed_Albatross"]


def test_image_feature_errors_name_file_class_and_expected_shape(tmp_path):
    folder = tmp_path / "images"
    write_t7(folder / "good.t7", _features(2))
    write_t7(folder / "narrow.t7", _features(2, dim=5))
    with pytest.raises(
        DatasetFormatError,
        match=r"narrow\.t7 \(record narrow\): expected a N x 6 x 3 tensor, found 2 x 5 x 3",
    ):
        read_image_features(folder, dim=6, views=3)
    with pytest.raises(DatasetFormatError, match=r"missing\.t7: missing Torch7 file"):
        read_image_features(folder, ["good", "missing"], dim=6, views=3)
    write_t7(folder / "table.t7", {"features": _features(1)})
    with pytest.raises(
        DatasetFormatError,
        match=r"table\.t7 \(record table\): expected a N x 6 x 3 tensor, found a dict",
    ):
        read_image_features(folder, ["table"], dim=6, views=3)
    write_t7(folder / "ints.t7", np.ones((1, 6, 3), dtype=np.int32))
    with pytest.raises(DatasetFormatError, match="expected float image features, found int32"):
        read_image_features(folder, ["ints"], dim=6, views=3)
    raw = (folder / "good.t7").read_bytes()
    (folder / "cut.t7").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetFormatError, match=r"cut\.t7: not a readable Torch7 binary file"):
        read_image_features(folder, ["cut"], dim=6, views=3)
    with pytest.raises(DatasetFormatError, match=r"missing directory of <class>\.t7 files"):
        read_image_features(tmp_path / "no_such_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match=r"no <class>\.t7 files in this directory"):
        read_image_features(tmp_path / "empty")


def test_lua_alphabet_codes_encode_and_decode_captions():
    assert len(REED_LUA_ALPHABET) == 70  # "-" is in the Lua string twice
    codes = encode_char_codes("A red-winged bird!", length=30)
    assert len(codes) == 30 and codes[-1] == 0
    assert codes[5] == 60  # the Lua dictionary keeps the later index of "-"
    assert decode_char_codes(codes) == "a red-winged bird!"
    assert encode_char_codes("x" * 300) == [REED_LUA_ALPHABET.index("x") + 1] * 201


def test_char_codes_load_per_class(tmp_path):
    captions = [["this bird is red", "a red bird"], ["a tiny blue bird", "blue all over"]]
    # N images x 201 characters x C captions, as a ByteTensor
    codes = np.array(
        [[encode_char_codes(c) for c in per_image] for per_image in captions], dtype=np.uint8
    ).transpose(0, 2, 1)
    write_t7(tmp_path / "text_c10" / "001.Red.t7", codes)
    got = read_char_codes(tmp_path / "text_c10", captions=2)["001.Red"]
    assert got.shape == (2, 201, 2) and got.dtype == torch.int64
    assert decode_char_codes(got[1, :, 0]) == "a tiny blue bird"
    bad = codes.astype(np.float64)
    bad[0, 0, 0] = 71.0
    write_t7(tmp_path / "bad" / "002.Bad.t7", bad)
    with pytest.raises(
        DatasetFormatError,
        match=r"002\.Bad\.t7 \(record 002\.Bad\): character codes must be integers in 0\.\.70",
    ):
        read_char_codes(tmp_path / "bad", captions=2)
