"""The typed configs of Reed et al. 2016 (``fine_grained_sje``): every default is the paper's
value or, where the paper is silent, the official Torch code's (``reedscot/cvpr2016``, file
named in the comment), or our choice, said so. Row configs (``benchmarks/reed2016/*.yaml``) and
``capbench fit --model fine_grained_sje`` set the same fields; nothing else holds a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbench.eval.protocols.zero_shot import DataConfig, EvalConfig
from capbench.methods.config import build_config
from capbench.methods.protocol import method_sections

IMAGE_SOURCES = ("t7", "backbone")
ROW_KINDS = ("trained", "untrained", "shuffled_labels", "train_sentences")


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: the text encoder and where the fixed image features come from."""

    encoder: str = "char_cnn_rnn"  # Table 1's best character model; rows name the others
    # "t7": the features Reed et al. released (cvpr2016_<dataset>/images/<class>.t7, N x 1024
    # x 10), the paper's exact inputs; "backbone": features extracted here with model.backbone
    image_source: str = "t7"
    # image_source "backbone": torchvision::googlenet (the paper's network, from a local ImageNet
    # file) or the scenes stand-in timm::resnet18
    backbone: str | None = None
    # a local weights file, or "scenes-pretrain" (the scenes stand-in); null refuses to run
    # unless allow_random_init
    backbone_weights: str | None = None
    allow_random_init: bool = False  # a paper run must not silently use a random image network
    resize: int = 256  # Torch imagenet-multiGPU: shorter side to 256, then 224 crops (the
    crop: int = 224  # paper: "centre and 4 corners" of the image and its flip, test at 224)
    views: int = 10  # section 5: 10 training views per image (5 crops x 2 flips)
    init_bound: float = 0.08  # train_sje_hybrid.lua lines 111-113: params:uniform(-0.08, 0.08)
    # family options of the text encoder (capbench.models.text_encoders), e.g. a smaller hidden
    # size on scenes; empty = the paper's layers
    encoder_options: dict[str, Any] = field(default_factory=dict)
    word_min_count: int = 1  # section 4: word models use the full vocabulary of the dataset
    # word2vec_avg: a local vectors file (the paper's pretrained word2vec); null = gensim
    # Word2Vec trained on the training captions only (the scenes stand-in)
    word2vec: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section: loss, optimisation and schedule."""

    symmetric: bool = True  # DS-SJE (train_cub_hybrid.sh: -symmetric 1); false = DA-SJE
    margin: float = 1.0  # train_sje_hybrid.lua line 134: 0-1 loss, "+ 1"
    lr: float = 0.0007  # section 5: RMSprop, base learning rate 0.0007
    lr_decay: float = 0.98  # train_sje_hybrid.lua: learning_rate_decay 0.98 after each epoch
    batch_size: int = 40  # section 5: minibatch 40, one image per class
    max_epochs: int = 200  # scripts/train_cub_hybrid.sh: -max_epochs 200 (Lua default 300)
    # -grad_clip 5 is declared in train_sje_hybrid.lua but never applied: null follows the code
    grad_clip: float | None = None
    captions_per_image: int = 10  # section 3: 10 descriptions per image (Figure 4 varies it)
    precision: str = "32-true"  # the code trains in float32
    num_workers: int = 0  # DataLoader workers (features are in memory)
    extract_batch_size: int = 64  # images per forward when extracting features
    embed_batch_size: int = 256  # captions per forward when embedding the test captions


@dataclass(frozen=True, kw_only=True)
class FineGrainedSJEConfig:
    """What the LightningModule is built from (``capbench fit`` prints these sections)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # options of capbench.methods.backbone_pretrain.pretrain_backbone (the scenes stand-in for
    # the ImageNet GoogLeNet, used when model.backbone_weights is "scenes-pretrain")
    pretrain: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowConfig:
    """The ``row`` section: which table cell this is."""

    kind: str = "trained"  # one of ROW_KINDS
    name: str | None = None
    # kind "train_sentences" (Figure 4, left): one model per count of training captions per
    # image (train.captions_per_image), each scored; the paper varies it over 1..10
    train_sentences: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ROW_KINDS:
            raise ValueError(f"row.kind must be one of {ROW_KINDS}, got {self.kind!r}")
        if self.kind == "train_sentences" and (
            not self.train_sentences or any(int(n) < 1 for n in self.train_sentences)
        ):
            raise ValueError(
                "row.kind 'train_sentences' needs row.train_sentences, a list of positive "
                f"captions-per-image counts, got {list(self.train_sentences)}"
            )


@dataclass(frozen=True, kw_only=True)
class FineGrainedSJERow(FineGrainedSJEConfig):
    """A whole reed2016 row config: the method's sections plus the protocol's and the row's."""

    row: RowConfig = field(default_factory=RowConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def method(self) -> FineGrainedSJEConfig:
        return FineGrainedSJEConfig(model=self.model, train=self.train, pretrain=self.pretrain)


def row_config(config: dict[str, Any]) -> FineGrainedSJERow:
    """The typed row from a resolved row config (the runner's keys set aside)."""
    return build_config(FineGrainedSJERow, method_sections(config), "reed2016 row config")


# A few steps on the tiny scenes data (the registry-wide tests): config overrides and the data
# keywords (roots relative to the scenes folder).
SMOKE: dict[str, Any] = {
    "config": {
        "model": {
            "encoder": "word_cnn_rnn",
            "image_source": "backbone",
            "backbone": "timm::resnet18",
            "allow_random_init": True,
            "resize": 40,
            "crop": 32,
        },
        "train": {"batch_size": 8, "max_epochs": 2},
    },
    "data": {"source": "cub", "root": "cub"},
}
