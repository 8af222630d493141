"""``capbench query`` (+word / -word modifiers move the ranking the expected way) and
``capbench explain`` (writes the two overlays), on a real SemanticRetrieval checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from capbench.cli import main
from capbench.data.records import CaptionedImage, Region
from capbench.data.tfidf import StemmedTfidf
from capbench.methods.semantic_retrieval import SemanticRetrieval
from capbench.methods.semantic_retrieval.config import ModelConfig
from capbench.methods.semantic_retrieval.index import load_index, save_index
from capbench.methods.training import save_plain_checkpoint

torch.set_num_threads(1)


def _image(path: Path, colour: tuple[int, int, int], size: int = 48) -> Path:
    img = Image.new("RGB", (size, size), (128, 128, 128))
    img.paste(Image.new("RGB", (size // 2, size // 2), colour), (size // 4, size // 4))
    img.save(path)
    return path


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A V+T model, and a database whose first half points along theta(red), second half along
    theta(blue): adding "red" to a query must favour the first half, removing it the second."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("gordo_index")
    tfidf = StemmedTfidf().fit(["a red circle", "a blue square", "a green triangle"])
    model = SemanticRetrieval(
        ModelConfig(backbone="timm::resnet18", allow_random_init=True, longest_side=48),
        train_mode="V+T",
        tfidf_vocab_size=tfidf.vocabulary_size,
    )
    model.eval()
    ckpt = save_plain_checkpoint(model, root / "model.ckpt")
    with torch.no_grad():
        theta = model.embed_text(tfidf.transform(["red", "blue"])).numpy()
    rng = np.random.default_rng(0)
    emb, records = [], []
    for i in range(10):
        base = theta[0] if i < 5 else theta[1]
        v = base + 0.3 * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.size)
        emb.append(v / np.linalg.norm(v))
        path = _image(root / f"db{i}.png", (200, 20 * i, 20))
        records.append(
            CaptionedImage(f"img{i}", str(path), "test", regions=[Region(0, 0, 1, 1, "x")])
        )
    out = root / "index"
    save_index(out, records, np.stack(emb), ckpt, tfidf, longest_side=48, pad_to_square=True)
    query = _image(root / "query.png", (30, 160, 40))
    return out, query, [r.image_id for r in records]


def _top_ids(output: str) -> list[str]:
    return [line.split()[2] for line in output.splitlines() if line[:3].strip().isdigit()]


def test_index_round_trip(index_dir):
    out, _, ids = index_dir
    idx = load_index(out)
    assert idx.ids == ids and idx.embeddings.shape[0] == 10
    assert (idx.longest_side, idx.pad_to_square) == (48, True)
    assert idx.tfidf.vocabulary_size == 7  # a, red, circl, blue, squar, green, triangl


def test_plus_and_minus_words_move_the_ranking(index_dir, capsys, tmp_path):
    out, query, _ = index_dir
    red = {f"img{i}" for i in range(5)}
    assert (
        main(["query", str(query), "+red", "--index", str(out), "--top", "5", "--alpha", "4"]) == 0
    )
    plus = _top_ids(capsys.readouterr().out)
    assert set(plus) == red
    grid = tmp_path / "grid.png"
    # a "-word" after the image is a modifier, not an option; options may follow it
    assert (
        main(
            [
                "query",
                str(query),
                "-red",
                "--index",
                str(out),
                "--top",
                "5",
                "--alpha",
                "4",
                "--out",
                str(grid),
            ]
        )
        == 0
    )
    minus = _top_ids(capsys.readouterr().out)
    assert not set(minus) & red
    assert Image.open(grid).size[0] > 5 * 160  # query + 5 thumbnails


def test_unknown_word_is_an_error(index_dir, capsys):
    out, query, _ = index_dir
    assert main(["query", str(query), "+zebra", "--index", str(out)]) == 2
    assert "zebra" in capsys.readouterr().err


def test_query_image_in_the_index_is_not_its_own_result(index_dir, capsys):
    out, _, _ = index_dir
    db0 = load_index(out).paths[0]
    assert main(["query", db0, "--index", str(out), "--top", "9"]) == 0
    assert "img0" not in _top_ids(capsys.readouterr().out)


def test_explain_writes_the_pair(index_dir, tmp_path, capsys):
    out, query, _ = index_dir
    a, b = str(query), load_index(out).paths[3]
    png = tmp_path / "pair.png"
    assert main(["explain", a, b, "--index", str(out), "--out", str(png)]) == 0
    img = Image.open(png)
    assert img.size == (48 + 8 + 48, 48)
    assert "similarity" in capsys.readouterr().out
    pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 5.0  # an overlay, not a blank canvas


def test_missing_image_or_index_is_one_clear_line(index_dir, tmp_path):
    out, query, _ = index_dir
    absent = tmp_path / "absent.jpg"
    with pytest.raises(SystemExit) as exc:
        main(["query", str(absent), "--index", str(out)])
    assert exc.value.code == f"capbench query: no such image file: {absent}"
    explain = ["explain", str(query), str(query), "--out", str(tmp_path / "pair.png")]
    for command in (["query", str(query)], explain):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--index", str(tmp_path / "noindex")])
        assert exc.value.code.startswith(f"capbench {command[0]}: ")
        assert "noindex" in exc.value.code and "--build-index" in exc.value.code


def _damage(index: Path, part: str) -> str:
    """Damage one file of a copied index; returns the file name the error must name."""
    if part == "json":
        (index / "index.json").write_text("{")
        return "index.json"
    if part == "format":
        (index / "index.json").write_text('{"format": "something else"}')
        return "index.json"
    if part == "ids":
        meta = json.loads((index / "index.json").read_text())
        meta["ids"] = None
        (index / "index.json").write_text(json.dumps(meta))
        return "index.json"
    if part == "npy-truncated":
        data = (index / "embeddings.npy").read_bytes()
        (index / "embeddings.npy").write_bytes(data[:100])
        return "embeddings.npy"
    if part == "npy-rows":
        np.save(index / "embeddings.npy", np.zeros((3, 4), np.float32))
        return "embeddings.npy"
    if part == "npy-missing":
        (index / "embeddings.npy").unlink()
        return "embeddings.npy"
    if part == "tfidf":
        (index / "tfidf.joblib").write_bytes(b"not a pickle")
        return "tfidf.joblib"
    (index / "tfidf.joblib").unlink()
    return "tfidf.joblib"


@pytest.mark.parametrize(
    "part",
    ["json", "format", "ids", "npy-truncated", "npy-rows", "npy-missing", "tfidf", "tfidf-missing"],
)
def test_a_damaged_index_is_one_line_naming_the_file(index_dir, tmp_path, part):
    out, query, _ = index_dir
    index = tmp_path / "index"
    shutil.copytree(out, index)
    name = _damage(index, part)
    with pytest.raises(SystemExit) as exc:
        main(["query", str(query), "--index", str(index)])
    message = exc.value.code
    assert isinstance(message, str) and message.startswith("capbench query: "), message
    assert str(index / name) in message, message


def test_build_index_on_a_missing_dataset_is_one_line(index_dir, tmp_path, capsys):
    out, _, _ = index_dir
    ckpt = out.parent / "model.ckpt"
    argv = ["query", "--build-index", "--checkpoint", str(ckpt), "--index", str(tmp_path / "i")]
    assert main([*argv, "--data", str(tmp_path / "no_vg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("capbench query: error: ") and "no_vg" in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
