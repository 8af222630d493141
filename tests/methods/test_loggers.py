"""Row loggers: CSV always; wandb offline, and only when the row asks for it."""

from __future__ import annotations

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from capbench.methods.loggers import make_loggers
from capbench.methods.protocol import RowContext


def _ctx(tmp_path, wandb: bool) -> RowContext:
    return RowContext(workdir=tmp_path, seed=0, profile="scenes", data_root=tmp_path, wandb=wandb)


def test_csv_only_by_default(tmp_path):
    loggers = make_loggers(_ctx(tmp_path, wandb=False), "row")
    assert [type(lg) for lg in loggers] == [CSVLogger]
    assert str(tmp_path) in loggers[0].log_dir


def test_wandb_is_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    loggers = make_loggers(_ctx(tmp_path, wandb=True), "row")
    assert [type(lg) for lg in loggers] == [CSVLogger, WandbLogger]
    import os

    assert os.environ["WANDB_MODE"] == "offline"
