"""Feature cache: stable keys, second call served from disk, atomic writes."""

from __future__ import annotations

import pytest
import torch

from capbench import paths
from capbench.eval.extract import Embeddings
from capbench.eval.feature_cache import FeatureCache, cache_key, file_sha256, get_or_compute

KEY = {
    "checkpoint": "abc123",
    "preprocessing": "resize576",
    "split": "test",
    "data_fingerprint": "f0",
}


def test_second_call_does_not_compute():
    calls = []

    def compute() -> Embeddings:
        calls.append(1)
        return Embeddings(ids=["a", "b"], emb=torch.arange(6.0).view(2, 3), n_scored=2)

    first = get_or_compute(KEY, compute)
    second = get_or_compute(dict(reversed(list(KEY.items()))), compute)  # key order irrelevant
    assert len(calls) == 1
    assert second.ids == ["a", "b"] and second.n_scored == 2
    torch.testing.assert_close(second.emb, first.emb)
    files = list((paths.cache_root() / "features").iterdir())
    assert [f.name for f in files] == [f"{cache_key(KEY)}.pt"]  # no temp file left behind


def test_any_key_part_changes_the_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put(KEY, {"x": torch.ones(2)})
    for part in KEY:
        assert cache.get({**KEY, part: "other"}) is None
    torch.testing.assert_close(cache.get(KEY)["x"], torch.ones(2))


def test_missing_key_part_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="data_fingerprint"):
        FeatureCache(tmp_path).get_or_compute(
            {"checkpoint": "a", "preprocessing": "b", "split": "c"}, dict
        )


def test_corrupt_entry_is_recomputed(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    cache.path(KEY).parent.mkdir(parents=True, exist_ok=True)
    cache.path(KEY).write_bytes(b"not a torch file")
    value = cache.get_or_compute(KEY, lambda: {"y": torch.zeros(1)})
    assert f"damaged cache entry {cache.path(KEY)}" in caplog.text
    torch.testing.assert_close(cache.get(KEY)["y"], value["y"])


def test_file_sha256(tmp_path):
    import hashlib

    f = tmp_path / "ckpt.bin"
    f.write_bytes(b"weights" * 1000)
    assert file_sha256(f, block=100) == hashlib.sha256(b"weights" * 1000).hexdigest()
