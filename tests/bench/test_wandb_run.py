"""``capbench reproduce --wandb``: one offline wandb run per row, holding both what the method's
Lightning logger wrote and the row's final metrics, with no deprecated wandb arguments."""

from __future__ import annotations

import textwrap

import pytest
import wandb  # the [wandb] extra, which [dev] installs

# A row target that trains a real (tiny) Lightning model with the loggers every method uses.
TARGET = """
import lightning as L
import torch

from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowResult


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, _):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def run(config, ctx):
    trainer = L.Trainer(max_steps=2, logger=make_loggers(ctx, "wb"), enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    data = torch.utils.data.TensorDataset(torch.randn(8, 2, generator=torch.Generator().manual_seed(0)))
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=4))
    return RowResult(metrics={"mean": 1.5, "max": 2.0}, n_scored=8,
                     dataset={"name": "tiny", "fingerprint": "tiny-8"})
"""


@pytest.fixture
def wandb_rows(tmp_path):
    folder = tmp_path / "wandb_rows"
    folder.mkdir()
    (folder / "wb_target.py").write_text(TARGET)
    for row in ("wb1", "wb2"):
        (folder / f"{row}.scenes.yaml").write_text(
            textwrap.dedent(f"""\
                bench: {{paper: toypaper, table: t1, row: {row}}}
                target: wb_target:run
                model: {{name: {row}}}
            """)
        )
    return folder


@pytest.fixture
def spied_runs(monkeypatch):
    """Every run ``wandb.init`` starts, with its summary as it was when it finished."""
    runs: list[dict] = []
    real_init = wandb.init

    def init(*args, **kwargs):
        run = real_init(*args, **kwargs)
        seen = {"name": kwargs.get("name"), "summary": None}
        real_finish = run.finish

        def finish(*f_args, **f_kwargs):
            seen["summary"] = dict(run.summary)
            return real_finish(*f_args, **f_kwargs)

        run.finish = finish
        runs.append(seen)
        return run

    monkeypatch.setattr(wandb, "init", init)
    return runs


def test_one_run_per_row_with_lightning_and_final_metrics(
    cli, wandb_rows, spied_runs, results, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "offline")
    rc, out, err = cli(
        "reproduce", "toypaper", "--rows", "wb1,wb2", "--wandb", "--include", str(wandb_rows)
    )
    assert rc == 0, out + err
    assert [r["name"] for r in spied_runs] == ["wb1-scenes-s0", "wb2-scenes-s0"]
    for run in spied_runs:
        assert run["summary"]["mean"] == 1.5 and run["summary"]["max"] == 2.0  # the runner's
        assert "train_loss" in run["summary"]  # Lightning's WandbLogger wrote into the same run
    run_dirs = sorted((results / "toypaper" / "work").glob("wb*/wandb/offline-run-*"))
    assert len(run_dirs) == 2, run_dirs  # one folder per row, not one per logger
    logs = out + err  # wandb warns (deprecations included) on sys.stderr
    assert "wandb" in logs and "deprecated" not in logs.lower()
    assert "environment variables will be ignored" not in logs  # WANDB_MODE was put back


def test_wandb_missing_names_the_extra(cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    rc, _, err = cli("reproduce", "toypaper", "--rows", "a", "--wandb")
    assert rc == 2
    assert "--wandb needs wandb: pip install 'capbench[wandb]'" in err
