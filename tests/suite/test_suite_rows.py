"""The cross-method suite on the tiny scenes data: a user's encoder gets a full row, a cell
that does not apply says why, a paper row's encoder is that row's checkpoint, and the matrix
renders a row per encoder."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from capbench import paths
from capbench.bench.catalog import Catalog
from capbench.cli import main

# A user's encoder with a text tower in the same space: the mean colour of the image, and the
# colour its caption names (scenes captions name the colours of their shapes).
BYO = textwrap.dedent(
    """
    import torch
    from torch import nn

    RGB = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0),
           "purple": (0.5, 0, 0.5), "orange": (1, 0.5, 0), "white": (1, 1, 1), "black": (0, 0, 0)}

    class MeanColour(nn.Module):
        image_size = 48
        def forward(self, images):
            return images.mean(dim=(2, 3))

    def texts(captions):
        out = []
        for c in captions:
            found = [RGB[w] for w in c.lower().split() if w in RGB] or [(0.5, 0.5, 0.5)]
            out.append(torch.tensor(found, dtype=torch.float32).mean(0) - 0.45)
        return torch.stack(out)

    def build():
        return MeanColour(), texts

    def build_plain():
        return MeanColour()

    def build_wrong():
        return "not a module"

    NOT_A_FUNCTION = 3

    def build_with_args(size):
        return MeanColour()
    """
)


@pytest.fixture
def user_dir(tmp_path, monkeypatch, tiny_scenes):
    """A working directory holding the user's encoder module (importable as ``byo_encoder``)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "byo_encoder.py").write_text(BYO)
    monkeypatch.chdir(work)
    monkeypatch.setenv("CAPBENCH_SCENES", str(tiny_scenes))
    return work


def _records(row: str) -> list[dict]:
    found = sorted((paths.results_root() / "suite" / "records" / "matrix" / row).glob("ci-*.json"))
    return [json.loads(p.read_text()) for p in found]


def test_user_encoder_with_text_tower_gets_every_column(user_dir, capsys):
    assert (
        main(["suite", "--encoder", "byo_encoder:build", "--name", "byo", "--profile", "ci"]) == 0
    )
    (rec,) = _records("byo")
    metrics = rec["metrics"]
    for key in ("voc07_map", "sr_ndcg_auc", "sr_pcc_auc", "sr_us", "graded_ndcg"):
        assert key in metrics
    assert {"coco_rsum", "cub_top1"} <= set(metrics)
    assert rec["extra"]["not_applicable"] == {}
    assert rec["extra"]["encoder"]["build"] == "byo_encoder:build"
    # the row config stays among the user's rows: the leaderboard keeps showing it
    assert (paths.user_rows_root() / "byo.ci.yaml").is_file()


def test_cells_that_do_not_apply_say_why_and_the_matrix_shows_it(user_dir, capsys, tmp_path):
    assert main(["suite", "--encoder", "byo_encoder:build_plain", "--name", "plain",
                 "--profile", "ci"]) == 0  # fmt: skip
    (rec,) = _records("plain")
    assert "coco_rsum" not in rec["metrics"] and "cub_top1" not in rec["metrics"]
    assert rec["extra"]["not_applicable"] == {
        "coco_rsum": "no text tower",
        "cub_top1": "no text tower",
    }
    assert main(["reproduce", "suite", "--profile", "ci", "--rows", "random_init"]) == 0
    out = tmp_path / "board"
    assert main(["leaderboard", "render", "--paper", "suite", "--out", str(out)]) == 0
    md = (out / "suite.md").read_text()
    assert "| Encoder | VOC07 SVM mAP (%) |" in md
    plain = next(
        line for line in md.splitlines() if line.startswith("| byo_encoder:build_plain (user)")
    )
    assert "*no text tower*" in plain
    random_line = next(line for line in md.splitlines() if line.startswith("| Random-init trunk"))
    assert "**" in random_line or "**" in plain  # the best of each column is marked
    gordo = next(
        line for line in md.splitlines() if line.startswith("| Gordo & Larlus R-MAC (V, V)")
    )
    assert "*not run*" in gordo
    page = (out / "index.html").read_text()
    ci_table = page.split('data-profile="ci"', 1)[1].split("</table>", 1)[0]
    # every row of the suite, the user row of this test included (the catalog reads user_rows)
    suite_rows = len(Catalog.discover().paper("suite").tables["matrix"].rows)
    assert ci_table.count('<tr class="encoder">') == suite_rows
    assert 'data-profile="paper"' in page  # the paper profile's matrix (not run: says so)


def test_bad_user_encoders_are_refused_clearly(user_dir, capsys):
    assert main(["suite", "--encoder", "byo_encoder", "--profile", "ci"]) == 2
    assert "expected 'package.module:function'" in capsys.readouterr().err
    assert main(["suite", "--encoder", "byo_encoder:nothing", "--profile", "ci"]) == 2
    assert "byo_encoder:nothing" in capsys.readouterr().err
    assert main(["suite", "--encoder", "byo_encoder:build_wrong", "--name", "wrong",
                 "--profile", "ci"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "returned str; expected an nn.Module" in err
    assert main(["suite", "--encoder", "byo_encoder:NOT_A_FUNCTION", "--dry-run"]) == 2
    assert "byo_encoder:NOT_A_FUNCTION: a int, not a function" in capsys.readouterr().err
    # called with no argument: one that needs some is refused before any row, not in it
    assert main(["suite", "--encoder", "byo_encoder:build_with_args", "--dry-run"]) == 2
    assert "calls it with no argument, but missing a required argument: 'size'" in (
        capsys.readouterr().err
    )


def test_bad_trunk_weights_are_refused_before_any_row(user_dir, capsys, tmp_path):
    import torch

    from capbench.models.backbones import create_backbone

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    assert main(["suite", "--weights", str(garbage), "--backbone", "timm::resnet18",
                 "--dry-run"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert str(garbage) in err and "not a torch checkpoint" in err and "would write" not in err
    trunk, _ = create_backbone("timm::resnet18")
    weights = tmp_path / "r18.pth"
    torch.save(trunk.state_dict(), weights)
    assert main(["suite", "--weights", str(weights), "--backbone", "timm::resnet50",
                 "--dry-run"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--backbone timm::resnet50" in err and "do not match" in err
    assert main(["suite", "--weights", str(weights), "--backbone", "resnet18", "--dry-run"]) == 2
    assert "must look like" in capsys.readouterr().err


def test_a_paper_rows_encoder_is_that_rows_checkpoint(user_dir, capsys):
    """The suite runs the missing paper row once and scores its checkpoint; it never trains."""
    assert main(["reproduce", "suite", "--profile", "ci", "--rows", "gordo_v_v"]) == 0
    (rec,) = _records("gordo_v_v")
    gordo = sorted(
        (paths.results_root() / "gordo2017" / "records").rglob("proposed_v_v/ci-s0-*.json")
    )
    assert len(gordo) == 1
    paper_rec = json.loads(gordo[0].read_text())
    assert rec["extra"]["encoder"]["checkpoint"] == paper_rec["checkpoint"]
    assert rec["extra"]["encoder"]["row_config_hash"] == paper_rec["config_hash"]
    assert Path(paper_rec["checkpoint"]).is_file()
    before = gordo[0].stat().st_mtime_ns
    assert main(["reproduce", "suite", "--profile", "ci", "--rows", "gordo_v_v", "--force"]) == 0
    assert gordo[0].stat().st_mtime_ns == before  # the paper row was not run again


def test_a_trunk_checkpoint_gets_a_row(user_dir, capsys, tmp_path):
    import torch

    from capbench.models.backbones import create_backbone

    trunk, _ = create_backbone("timm::resnet18")
    weights = tmp_path / "my trunk.pth"
    torch.save(trunk.state_dict(), weights)
    assert main(["suite", "--weights", str(weights), "--backbone", "timm::resnet18",
                 "--image-size", "32", "--profile", "ci"]) == 0  # fmt: skip
    (rec,) = _records("my_trunk")
    assert rec["extra"]["encoder"]["weights"] == str(weights.resolve())
    assert "voc07_map" in rec["metrics"]
    assert main(["suite", "--weights", str(weights), "--encoder", "byo_encoder:build"]) == 2
    assert "not both" in capsys.readouterr().err
