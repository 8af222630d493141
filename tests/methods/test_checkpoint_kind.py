"""``capbench.methods.checkpoint_kind``: what model a checkpoint holds, told by the keys of its
``model`` hyperparameters, so that a command given the wrong file names what it is."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from capbench.methods.checkpoint_kind import (
    CheckpointKindError,
    checkpoint_kind,
    read_checkpoint,
)
from capbench.methods.registry import discover_methods, get_method


def _model_keys(name: str) -> list[str]:
    section = typing.get_type_hints(get_method(name).load("config"))["model"]
    return [f.name for f in dataclasses.fields(section)]


@pytest.mark.parametrize("name", sorted(discover_methods()))
def test_each_method_is_told_by_its_model_section(name):
    ckpt = {"hyper_parameters": {"model": dict.fromkeys(_model_keys(name))}}
    assert checkpoint_kind(ckpt) == f"a {name} model ({get_method(name).paper})"


def test_a_captioner_and_an_unknown_model():
    from capbench.methods.caption_fusion.config import ShowAndTellConfig

    keys = [f.name for f in dataclasses.fields(ShowAndTellConfig)]
    ckpt = {"hyper_parameters": {"model": dict.fromkeys(keys)}}
    assert checkpoint_kind(ckpt) == "a Show-and-Tell captioner (mopuri2017)"
    assert checkpoint_kind({"hyper_parameters": {"model": {"no_such_key": 1}}}) is None


def test_files_that_are_not_capbench_checkpoints(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointKindError, match="not a checkpoint torch can read"):
        read_checkpoint(garbage)
    bare = tmp_path / "bare.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, bare)
    with pytest.raises(CheckpointKindError, match="holds no capbench model hyperparameters"):
        read_checkpoint(bare)
    with pytest.raises(CheckpointKindError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_the_caption_command_names_what_a_wrong_checkpoint_holds(tmp_path):
    from capbench.cli import main

    image = tmp_path / "im.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    ckpt = tmp_path / "gordo.ckpt"
    model = dict.fromkeys(_model_keys("semantic_retrieval"))
    import lightning

    torch.save(
        {
            "hyper_parameters": {"model": model},
            "state_dict": {},
            "pytorch-lightning_version": lightning.__version__,
        },
        ckpt,
    )
    with pytest.raises(SystemExit) as err:
        main(["caption", str(image), "--checkpoint", str(ckpt)])
    assert str(err.value) == (
        f"capbench caption: {ckpt}: not a captioner (mopuri2017): it holds a "
        "semantic_retrieval model (gordo2017)"
    )
