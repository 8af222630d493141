"""Same seed, same bytes (whatever the number of workers); another seed, other bytes; a directory
whose manifest matches the request is not rewritten."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from capbench.data.scenes.generate import MANIFEST, generate
from capbench.data.writers._files import savemat_deterministic


def test_same_seed_same_bytes_with_parallel_workers(tiny, tmp_path, digest_of):
    out, manifest, digest = tiny
    again = generate(tmp_path / "again", size="tiny", seed=0, workers=2)
    assert not again["skipped"]
    assert digest_of(tmp_path / "again") == digest
    assert again["counts"] == manifest["counts"]
    # Reading the dataset (the other tests) must not have changed it either.
    assert digest_of(out) == digest


def test_other_seed_other_bytes(tmp_path, digest_of):
    generate(tmp_path / "seed1", size="tiny", seed=1, formats=["visual_genome", "cub"])
    generate(tmp_path / "seed0", size="tiny", seed=0, formats=["visual_genome", "cub"])
    assert digest_of(tmp_path / "seed1") != digest_of(tmp_path / "seed0")
    for name in ("visual_genome", "cub"):
        assert digest_of(tmp_path / "seed1" / name) != digest_of(tmp_path / "seed0" / name)


def test_matching_manifest_skips_and_changed_request_rewrites(tmp_path):
    out = tmp_path / "scenes"
    first = generate(out, size="tiny", seed=3, formats=["user_study"])
    stamp = (out / MANIFEST).stat().st_mtime_ns
    again = generate(out, size="tiny", seed=3, formats=["user_study"])
    assert again["skipped"] and (out / MANIFEST).stat().st_mtime_ns == stamp
    assert again["counts"] == first["counts"]
    other = generate(out, size="tiny", seed=4, formats=["user_study"])
    assert not other["skipped"]
    assert json.loads((out / MANIFEST).read_text())["request"]["seed"] == 4


def test_mat_headers_lose_their_timestamp_and_still_load(tmp_path):
    path = tmp_path / "setid.mat"
    savemat_deterministic(path, {"trnid": np.arange(1, 4).reshape(1, -1)})
    raw = path.read_bytes()
    assert b"Created on" not in raw[:116] and raw.startswith(b"MATLAB 5.0 MAT-file")
    assert scipy.io.loadmat(path, squeeze_me=True)["trnid"].tolist() == [1, 2, 3]
    first = raw
    savemat_deterministic(path, {"trnid": np.arange(1, 4).reshape(1, -1)})
    assert path.read_bytes() == first


def test_interrupted_run_is_redone_and_foreign_folders_are_kept(tmp_path):
    out = tmp_path / "scenes"
    generate(out, size="tiny", seed=0, formats=["user_study"])
    doc = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({"request": doc["request"], "complete": False}))
    assert not generate(out, size="tiny", seed=0, formats=["user_study"])["skipped"]
    foreign = tmp_path / "foreign"
    (foreign / "user_study").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a scenes directory"):
        generate(foreign, size="tiny", seed=0, formats=["user_study"])
