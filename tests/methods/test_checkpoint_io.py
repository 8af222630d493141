"""How every fit writes its checkpoints: ``AtomicCheckpointIO`` (a temporary file beside the
target, renamed over it) and ``fit_resumable``'s one ``last.ckpt``, written once per epoch end
and once more only when the fit stopped between epoch ends."""

from __future__ import annotations

import threading
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from capbench.file_lock import TRAIN_LOCK
from capbench.methods.checkpoint_io import AtomicCheckpointIO
from capbench.methods.training import fit_resumable
from tests.lock_holder import hold


def test_a_save_writes_beside_its_target_and_a_failed_one_keeps_the_last(
    tmp_path: Path, monkeypatch
):
    io = AtomicCheckpointIO()
    target = tmp_path / "run" / "last.ckpt"
    written: list[Path] = []
    real_save = torch.save

    def recording_save(obj, f, *args, **kwargs):
        written.append(Path(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", recording_save)
    io.save_checkpoint({"w": torch.ones(3)}, target)
    assert [p.parent for p in written] == [target.parent]  # not the system's temp folder
    with pytest.raises(Exception):  # noqa: B017 (pickle's error type is not ours to pin)
        io.save_checkpoint({"w": torch.zeros(3), "f": lambda: None}, target)  # unpicklable
    assert torch.load(target)["w"].tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary left
    with pytest.raises(TypeError, match="storage_options"):
        io.save_checkpoint({"w": torch.ones(1)}, target, storage_options={"x": 1})


def test_a_url_is_saved_by_lightnings_fsspec_path():
    """No rename exists on an object store: a URL goes through Lightning's own save (fsspec's
    in-memory file system here), not to a local folder named ``memory:``."""
    import fsspec

    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, "memory://capbench-run/last.ckpt")
    with fsspec.open("memory://capbench-run/last.ckpt", "rb") as fh:
        assert torch.load(fh)["w"].tolist() == [1.0, 1.0]
    assert not Path("memory:").exists()


class _Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.lin(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Data(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(
            torch.randn(8, 2, generator=torch.Generator().manual_seed(0)), batch_size=4
        )


@pytest.mark.parametrize(("fit_kwargs", "saves", "step"), [
    ({"max_epochs": 3}, 3, 6),  # 2 steps an epoch: one save per epoch end, none after
    ({"max_epochs": 3, "max_steps": 3}, 2, 3),  # stopped mid-epoch: the final state saved too
])  # fmt: skip
def test_a_fit_keeps_one_checkpoint_saved_once_per_epoch_end(
    tmp_path: Path, monkeypatch, fit_kwargs, saves, step
):
    calls: list[int] = []
    real = AtomicCheckpointIO.save_checkpoint

    def counted(self, checkpoint, path, storage_options=None):
        calls.append(checkpoint["global_step"])
        return real(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", counted)
    torch.manual_seed(0)
    module = _Net()
    last = fit_resumable(module, _Data(), tmp_path, accelerator="cpu", devices=1, loggers=False,
                         progress=False, **fit_kwargs)  # fmt: skip
    assert len(calls) == saves and calls[-1] == step
    assert sorted(p.name for p in last.parent.iterdir()) == ["finished.json", "last.ckpt"]
    state = torch.load(last, weights_only=False)
    assert state["global_step"] == step
    for key, value in module.state_dict().items():  # the checkpoint is the fitted module
        torch.testing.assert_close(state["state_dict"][key], value, rtol=0, atol=0)


def test_a_fit_waits_for_another_process_training_in_its_workdir_then_takes_its_result(
    tmp_path: Path, capsys
):
    """Two processes on one workdir (two terminals on the same rows, a requeued SLURM job beside
    the one it replaces) both trained, each replacing the other's checkpoint. Now the second
    waits, and resumes from the finished fit the first leaves: it trains no step."""
    torch.manual_seed(0)
    first = _Net()
    done = tmp_path / "first"
    fit_resumable(first, _Data(), done, max_epochs=3, accelerator="cpu", devices=1,
                  loggers=False, progress=False)  # fmt: skip
    work, release = tmp_path / "work", tmp_path / "release"
    # the other process holds the workdir and, when done, leaves its finished fit there
    holder = hold(work / TRAIN_LOCK, release, (done / "checkpoints", work / "checkpoints"))
    second, steps = _Net(), []
    second.on_train_batch_start = lambda *a: steps.append(1)
    t = threading.Thread(
        target=fit_resumable,
        args=(second, _Data(), work),
        kwargs={"max_epochs": 3, "accelerator": "cpu", "devices": 1, "loggers": False,
                "progress": False},
    )  # fmt: skip
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive() and not (work / "checkpoints").exists()  # waiting, not training
    release.touch()
    t.join(timeout=60)
    assert not t.is_alive() and holder.wait(timeout=30) == 0
    assert steps == []  # resumed at the end of the other's fit
    for key, value in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value, rtol=0, atol=0)
    assert f"waiting for pid {holder.pid} on " in capsys.readouterr().err
