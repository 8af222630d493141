"""Where a suite row's encoder comes from.

* ``paper_row``: the checkpoint a paper's row trained. The row's run record for this profile
  and seed (with the row's current config) names the checkpoint; when there is none the row is
  run first, through the runner, exactly as ``capbench reproduce`` would. The method rebuilds
  its encoder from that checkpoint (``MethodSpec.encoder``).
* ``random`` / ``pretrained``: a trunk at its initialisation, or with local weights (the scenes
  pretraining on the scenes and ci profiles, the user's ImageNet file on the paper profile).
* ``callable``: a user's ``"package.module:function"`` returning a module (images -> (B, D)),
  or a ``(module, text_fn)`` pair, or a ready :class:`~capbench.suite.encoder.Encoder`.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from capbench.bench.linked_rows import paper_row_record
from capbench.suite.config import EncoderConfig
from capbench.suite.encoder import Encoder, from_image_module


def paper_row_encoder(
    cfg: EncoderConfig, profile: str, seed: int, results: Path, data_root: Path
) -> Encoder:
    """The learned encoder of a paper row, rebuilt by its method from the row's checkpoint."""
    from capbench.methods.registry import get_method

    if not cfg.paper or not cfg.row:
        raise ValueError("encoder.kind 'paper_row' needs encoder.paper and encoder.row")
    record = paper_row_record(cfg.paper, cfg.row, profile, seed, results, data_root)
    if not record.checkpoint:
        raise ValueError(f"{cfg.paper}/{cfg.row}: its run record names no checkpoint")
    method = record.config.get("method")
    if not method:
        raise ValueError(f"{cfg.paper}/{cfg.row} is not a registered method's row")
    spec = get_method(method)
    if spec.encoder is None:
        raise ValueError(f"method {method!r} does not expose an encoder to the suite")
    build = spec.load("encoder")
    encoder = build(record.config, record.checkpoint, data_root, seed)
    encoder.info.update(
        {
            "paper": cfg.paper,
            "row": cfg.row,
            "checkpoint": record.checkpoint,
            "row_config_hash": record.config_hash,
        }
    )
    return encoder


def trunk_encoder(cfg: EncoderConfig, data_root: Path, seed: int) -> Encoder:
    """A trunk (random init, or the weights ``encoder.backbone_weights`` names) average-pooled."""
    import torch

    from capbench.methods.training import (
        SCENES_PRETRAIN,
        resolve_backbone_weights,
        resolve_pretrain_data,
    )
    from capbench.models.backbones import create_backbone

    weights = None
    if cfg.kind == "pretrained":
        if not cfg.backbone_weights:
            raise ValueError(
                "encoder.kind 'pretrained' needs encoder.backbone_weights: a local file, or "
                f"{SCENES_PRETRAIN!r} on the scenes profiles"
            )
        pretrain = resolve_pretrain_data(cfg, data_root, seed).pretrain
        weights = resolve_backbone_weights(cfg.backbone, cfg.backbone_weights, False, pretrain)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trunk, _ = create_backbone(cfg.backbone, weights)
    info = {"backbone": cfg.backbone, "weights": weights or f"random init (seed {seed})"}
    return from_image_module(cfg.kind, trunk, cfg.image_size, True, info=info)


def user_encoder(cfg: EncoderConfig, seed: int) -> Encoder:
    """A user's ``module:function`` (called with no argument) as an :class:`Encoder`."""
    from capbench.registry import import_object

    if not cfg.build:
        raise ValueError("encoder.kind 'callable' needs encoder.build: 'package.module:function'")
    built = import_object(cfg.build)()
    info = {"build": cfg.build}
    if isinstance(built, Encoder):
        built.info.update(info)
        return built
    texts = None
    if isinstance(built, tuple):
        if len(built) != 2:
            raise ValueError(
                f"{cfg.build} returned a tuple of {len(built)}; expected (module, text_fn)"
            )
        built, texts = built
    if not isinstance(built, nn.Module):
        raise TypeError(
            f"{cfg.build} returned {type(built).__name__}; expected an nn.Module mapping images "
            "(B, 3, H, W) to (B, D), a (module, text_fn) pair or a capbench.suite.encoder.Encoder"
        )
    size = int(getattr(built, "image_size", cfg.image_size))
    return from_image_module(cfg.build, built, size, True, texts=texts, info=info)


def build_encoder(
    cfg: EncoderConfig, profile: str, seed: int, results: Path, data_root: Path
) -> Encoder:
    """The encoder a row config's ``encoder`` section names."""
    if cfg.kind == "paper_row":
        return paper_row_encoder(cfg, profile, seed, results, data_root)
    if cfg.kind in ("random", "pretrained"):
        return trunk_encoder(cfg, data_root, seed)
    if cfg.kind == "callable":
        return user_encoder(cfg, seed)
    raise ValueError(
        f"encoder.kind {cfg.kind!r} is unknown; expected paper_row, random, pretrained or callable"
    )
