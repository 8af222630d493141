"""The suite's typed row config: ``encoder`` plus one section per protocol (column).

Each protocol section reuses that protocol's own ``DataConfig`` / ``EvalConfig`` (the defaults
are the paper protocol's); ``base_scenes.yaml`` / ``base_ci.yaml`` scale them down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbench.eval.protocols import graded_retrieval as graded
from capbench.eval.protocols import image_text_retrieval as itr
from capbench.eval.protocols import semantic_retrieval as sr
from capbench.eval.protocols import voc07_classification as voc07
from capbench.eval.protocols import zero_shot as zs
from capbench.methods.config import build_config
from capbench.methods.protocol import method_sections

# The columns, in the order of the matrix.
PROTOCOLS: tuple[str, ...] = ("voc07", "semantic_retrieval", "graded_retrieval", "coco", "cub")


@dataclass(frozen=True)
class EncoderConfig:
    """The ``encoder`` section: which encoder the row scores."""

    kind: str = "paper_row"  # paper_row | random | pretrained | callable
    paper: str | None = None  # paper_row: the paper and row whose checkpoint is used
    row: str | None = None
    build: str | None = None  # callable: "package.module:function"
    # random / pretrained (and a callable's default input size)
    backbone: str = "timm::resnet50"
    backbone_weights: str | None = None  # a local file, or "scenes-pretrain"
    image_size: int = 224  # longest side, padded square
    pretrain: dict[str, Any] = field(default_factory=dict)  # scenes pretraining options


@dataclass(frozen=True)
class Voc07Section:
    data: voc07.DataConfig = field(default_factory=voc07.DataConfig)
    eval: voc07.EvalConfig = field(default_factory=voc07.EvalConfig)


@dataclass(frozen=True)
class SemanticRetrievalSection:
    data: sr.DataConfig = field(default_factory=sr.DataConfig)
    eval: sr.EvalConfig = field(default_factory=sr.EvalConfig)
    tfidf: sr.TfidfConfig = field(default_factory=sr.TfidfConfig)


@dataclass(frozen=True)
class GradedRetrievalSection:
    data: graded.DataConfig = field(default_factory=graded.DataConfig)
    eval: graded.EvalConfig = field(default_factory=graded.EvalConfig)


@dataclass(frozen=True)
class CocoSection:
    data: itr.DataConfig = field(
        default_factory=lambda: itr.DataConfig(reader_options={"splits": "karpathy"})
    )
    eval: itr.EvalConfig = field(default_factory=lambda: itr.EvalConfig(folds=0))


@dataclass(frozen=True)
class CubSection:
    data: zs.DataConfig = field(default_factory=zs.DataConfig)
    eval: zs.EvalConfig = field(default_factory=zs.EvalConfig)


@dataclass(frozen=True)
class SuiteRow:
    """A suite row: the encoder and the protocol sections (``protocols`` = which columns run)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    protocols: tuple[str, ...] = PROTOCOLS
    voc07: Voc07Section = field(default_factory=Voc07Section)
    semantic_retrieval: SemanticRetrievalSection = field(default_factory=SemanticRetrievalSection)
    graded_retrieval: GradedRetrievalSection = field(default_factory=GradedRetrievalSection)
    coco: CocoSection = field(default_factory=CocoSection)
    cub: CubSection = field(default_factory=CubSection)


def row_config(config: dict[str, Any]) -> SuiteRow:
    """The typed row config of a resolved row config (runner keys removed)."""
    cfg = build_config(SuiteRow, method_sections(config), where="suite row config")
    unknown = sorted(set(cfg.protocols) - set(PROTOCOLS))
    if unknown:
        raise ValueError(f"protocols {unknown} are unknown; the suite has {list(PROTOCOLS)}")
    return cfg
