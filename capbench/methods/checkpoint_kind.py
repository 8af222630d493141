"""Which capbench model a checkpoint holds, so that a command given the wrong one can say so.

``capbench caption``, ``explain`` and ``query`` each load one kind of model. Given another
method's checkpoint, the load failed on the first hyperparameter the expected config does not
know ("model: unknown key(s) levels, scales, ..."), and given a file that is not a checkpoint,
on torch's mmap error. Each checkpoint's ``hyper_parameters["model"]`` is the ``model`` section
of its method's typed config (or a captioner's whole config), so its keys name the method.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any


class CheckpointKindError(ValueError):
    """A file that is not a checkpoint of the model a command loads; the message names both."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (tensors memory-mapped), or CheckpointKindError saying why not."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointKindError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(str(path), map_location="cpu", mmap=True, weights_only=False)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointKindError(
            f"{path}: not a checkpoint torch can read ({type(err).__name__})"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(
        (ckpt.get("hyper_parameters") or {}).get("model"), dict
    ):
        raise CheckpointKindError(
            f"{path}: holds no capbench model hyperparameters (a bare state dict, or another "
            "library's checkpoint): expected a checkpoint that a capbench row wrote"
        )
    return ckpt


def _models() -> list[tuple[str, set[str], type]]:
    """(what the checkpoint is, the keys of its ``model`` hyperparameters, the LightningModule
    class) of every model."""
    from capbench.methods.caption_fusion.captioning import CAPTIONERS
    from capbench.methods.caption_fusion.config import RegionCaptionerConfig, ShowAndTellConfig
    from capbench.methods.registry import discover_methods, get_method

    out = []
    for name in sorted(discover_methods()):
        spec = get_method(name)
        section = typing.get_type_hints(spec.load("config")).get("model")
        if dataclasses.is_dataclass(section):
            out.append((f"a {name} model ({spec.paper})", _fields(section), spec.load("module")))
    out.append(
        (
            "a Show-and-Tell captioner (mopuri2017)",
            _fields(ShowAndTellConfig),
            CAPTIONERS["show_and_tell"],
        )
    )
    out.append(
        (
            "a region captioner (mopuri2017)",
            _fields(RegionCaptionerConfig),
            CAPTIONERS["region_captioner"],
        )
    )
    return out


def _fields(cls: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def checkpoint_kind(ckpt: dict[str, Any]) -> str | None:
    """What model ``ckpt`` holds ("a semantic_retrieval model (gordo2017)"), or None when its
    hyperparameters are no capbench model's (this version's): the model whose ``model`` section
    has exactly its keys, else the one that holds them all with the fewest others."""
    keys = set(ckpt["hyper_parameters"]["model"])
    fits = [(len(fields - keys), what) for what, fields, _ in _models() if keys <= fields]
    return min(fits)[1] if fits else None


def check_kind(path: str | Path, ckpt: dict[str, Any], cls: type, expected: str) -> None:
    """CheckpointKindError when ``ckpt`` is not a checkpoint of ``cls``, saying what it holds;
    ``expected`` is what the caller wanted, in words ("a captioner (mopuri2017)")."""
    wanted = next((what for what, _, model in _models() if model is cls), None)
    found = checkpoint_kind(ckpt)
    if wanted is not None and found != wanted:
        what = f"it holds {found}" if found else "its hyperparameters are no capbench model's"
        raise CheckpointKindError(f"{path}: not {expected}: {what}")
