"""The typed configs of Mopuri et al. 2017 (``caption_fusion``): every default is the value of
the paper's official code (``mopurikreddy/strong-supervision``, see ``shared/papers.md`` §1), of
the captioners' own releases (im2txt for Show-and-Tell, DenseCap), or our reading, said so. Row
configs (``benchmarks/mopuri2017/*.yaml``) and ``capbench fit --model caption_fusion`` set the
same fields; nothing else holds a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capbench.eval.protocols.graded_retrieval import DataConfig, EvalConfig
from capbench.methods.config import build_config
from capbench.methods.protocol import method_sections

ROW_KINDS = ("random", "cnn", "fic", "bord", "concat", "fused", "captioner")
CAPTIONER_KINDS = ("show_and_tell", "region_captioner")
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class FusionModelConfig:
    """The ``model`` section: the siamese MLP (``siamese_regression_mkr_mlp.py``)."""

    in_dim: int = 1024  # [BoRD 512 ; FIC 512]
    # layer widths: 1024 -> 1024 -> 2048 -> 2048 -> 512 -> 512, He-normal init (the code)
    hidden: tuple[int, ...] = (1024, 2048, 2048, 512, 512)
    # the layers (1-based) followed by a ReLU: in the code h0, h3 and h4 have
    # activation='relu' and the two 2048-d layers h1, h2 none (linear)
    relu_layers: tuple[int, ...] = (1, 4, 5)
    # the retrieval representation: output of this layer (1-based); the code saves X12, the
    # 2048-d second layer ("2ndlayer" in its file names), linear
    representation_layer: int = 2


@dataclass(frozen=True)
class FusionTrainConfig:
    """The ``train`` section: the graded contrastive loss and Keras SGD of the code."""

    margin: float = 1.0  # loss4's m
    lr: float = 1e-3  # SGD(lr=0.001)
    momentum: float = 0.9  # SGD(momentum=0.9)
    decay: float = 1e-6  # Keras SGD decay: lr / (1 + decay * updates)
    clip_value: float = 0.1  # Keras clipvalue=0.1
    batch_size: int = 600  # fit(batch_size=600)
    max_epochs: int = 2000  # fit(nb_epoch=2000)
    patience: int = 10  # EarlyStopping(patience=10) on the validation loss
    # fit(validation_split=0.1): Keras holds out the LAST 10% of the pairs as given, and the
    # code's load_inputs shuffles the pairs (seeded) before fit: a random 10% of the pairs
    val_fraction: float = 0.1
    # "pairs": that random 10% of the pairs (the code; its queries are also trained on, so early
    # stopping cannot see the fusion memorise its training queries); "queries": val_fraction of
    # the training queries held out with all their pairs (our alternative, README)
    val_split: str = "pairs"
    num_workers: int = 0

    def __post_init__(self) -> None:  # at config time, before any captioner trains
        if self.val_split not in ("pairs", "queries"):
            raise ValueError(
                f"train.val_split must be 'pairs' or 'queries', got {self.val_split!r}"
            )


@dataclass(frozen=True)
class PairsConfig:
    """The ``pairs`` section: training pairs as ``siamese_data_prep.py`` builds them."""

    # not in the code: judged references used per query (null = all, as rPascal's ~37); the
    # scenes benchmark judges every reference, so its profile caps them to keep epochs short
    max_references: int | None = None
    # "notskewed": when a query has more positives than zero-grade references, random images
    # from outside its list are added as negatives until the two balance
    balance_negatives: bool = True


@dataclass(frozen=True, kw_only=True)
class CaptionFusionConfig:
    """What the LightningModule is built from (``capbench fit`` prints these sections)."""

    model: FusionModelConfig = field(default_factory=FusionModelConfig)
    train: FusionTrainConfig = field(default_factory=FusionTrainConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)


@dataclass(frozen=True)
class ShowAndTellConfig:
    """The ``show_and_tell`` section (the FIC captioner). Schedule values are im2txt's, the
    authors' TensorFlow release of Show-and-Tell (``configuration.py``, recalled, unverified)."""

    # the TPAMI-2016 model uses Inception-v3, which capbench does not build; GoogLeNet (the
    # CVPR-2015 Show-and-Tell's CNN, with batch normalisation) is the nearest trunk we have
    backbone: str = "torchvision::googlenet"
    backbone_weights: str | None = None  # a local ImageNet checkpoint, or "scenes-pretrain"
    allow_random_init: bool = False
    image_size: int = 299  # im2txt: Inception-v3 input, 299 px
    # 32: the trunk's last pooled feature (im2txt); 16: pooled before a ResNet's last stage (a
    # stand-in trunk whose last stage lost what the captions name: benchmarks/mopuri2017/README)
    stride: int = 32
    # "none" (im2txt) or "batchnorm": standardise the pooled feature before the image map
    feature_norm: str = "none"
    dim: int = 512  # im2txt: embedding_size = num_lstm_units = 512
    dropout: float = 0.3  # im2txt: lstm_dropout_keep_prob 0.7
    min_count: int = 4  # im2txt: words seen at least 4 times
    max_len: int = 20  # im2txt: max_caption_length
    beam_size: int = 3  # im2txt: beam_size
    optimizer: str = "sgd"  # im2txt: plain SGD
    lr: float = 2.0  # im2txt: initial_learning_rate
    clip: float = 5.0  # im2txt: clip_gradients
    batch_size: int = 32  # im2txt
    # im2txt: 1M steps of 32 with the CNN frozen, ~280 passes over Karpathy train's 113k images
    # (one random caption of each per pass); its 2M-step fine-tuning phase is not reproduced
    epochs: int = 280
    train_trunk: bool = False  # im2txt's first phase keeps the CNN frozen
    # a frozen trunk sees each (unaugmented) image the same way every epoch: compute its pooled
    # features once and train the image map and the LSTM on them (the same gradients, a
    # fraction of the cost); false runs the trunk at every step
    cache_trunk_features: bool = True
    # the first N training images; null = all (a CPU budget knob)
    max_train_images: int | None = None
    # Lightning's Trainer precision: "bf16-mixed" autocasts the LSTM to bfloat16 (on a GPU, or
    # a CPU with AVX512-BF16, where a 512-d LSTM step runs ~1.7x faster); im2txt trains in fp32
    precision: str = "32-true"


DENSECAP_LOSS_WEIGHTS: dict[str, float] = {
    "rpn_objectness": 0.1,
    "rpn_box": 0.05,
    "score": 0.1,
    "refine": 0.1,
    "caption": 1.0,
}


@dataclass(frozen=True)
class RegionCaptionerConfig:
    """The ``region_captioner`` section (the BoRD captioner). Values from DenseCap's
    ``train_opts.lua`` / ``densecap_utils`` (recalled, unverified) and papers.md §1."""

    # DenseCap pools regions from VGG-16 conv5_3 (stride 16), which capbench does not build: a
    # ResNet-101 cut after layer3 (stride 16, 1024 channels) is our stand-in
    backbone: str = "torchvision::resnet101"
    backbone_weights: str | None = None
    allow_random_init: bool = False
    stride: int = 16
    image_size: int = 720  # papers.md §1: DenseCap image_size 720 (longest side)
    # anchors: DenseCap has 12 per position; torchvision-style 5 sizes x 3 ratios is our reading
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_nms: float = 0.7  # papers.md §1
    final_nms: float = 0.3  # papers.md §1
    proposals: int = 1000  # papers.md §1: 1000 proposals at test time
    train_proposals: int = 2000  # our reading (DenseCap samples from all anchors)
    sample_size: int = 256  # DenseCap sampler_batch_size
    positive_fraction: float = 0.5  # DenseCap sampler: half positives
    pos_iou: float = 0.7  # DenseCap sampler_high_thresh
    neg_iou: float = 0.3  # DenseCap sampler_low_thresh
    pool_size: int = 7  # DenseCap bilinear pooling output 7 x 7
    # "none" (DenseCap) or "batchnorm": standardise each pooled region before the fc layers
    feature_norm: str = "none"
    fc_dim: int = 4096  # DenseCap recognition network: two 4096-d layers
    fc_layers: int = 2  # DenseCap: 2; 0 = code / score / refinement on the pooled region itself
    # where a region's feature comes from: "roi_align" (DenseCap: bilinear pooling of the whole
    # image's conv map) or "crop" (our option, R-CNN style: the square around the box cut from the
    # image, resampled to crop_size px and run through the trunk; costs a trunk pass per box)
    region_features: str = "roi_align"
    crop_size: int = 32
    dim: int = 512  # DenseCap rnn_size = input_encoding_size = 512
    dropout: float = 0.5  # DenseCap drop_prob
    min_count: int = 15  # DenseCap preprocessing: min_token_instances
    max_len: int = 15  # DenseCap preprocessing: max_token_length
    beam_size: int = 1  # DenseCap samples greedily
    top_regions: int = 5  # papers.md §1: BoRD averages the top-5 regions
    # each training loss's weight in the sum: DenseCap's (train_opts.lua of jcjohnson/densecap:
    # mid_objectness_weight 0.1, mid_box_reg_weight 0.05, end_objectness_weight 0.1,
    # end_box_reg_weight 0.1, captioning_weight 1.0); the keys are RegionCaptioner.loss's
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(DENSECAP_LOSS_WEIGHTS))
    optimizer: str = "adam"  # DenseCap: Adam
    lr: float = 1e-5  # DenseCap learning_rate
    clip: float = 0.0  # DenseCap clips no gradient norm (0 = off)
    batch_size: int = 1  # DenseCap: one image per iteration
    epochs: int = 10  # not stated: our reading (DenseCap trains to convergence on VG)
    train_trunk: bool = False  # our reading: a frozen trunk, as the FIC captioner's first phase
    # a frozen trunk's map of each (unaugmented) image is the same every epoch: compute the maps
    # once and train the RPN, heads and LSTM on them (the trunk is most of a CPU step). Off by
    # default: at 720 px VG's maps (45 x 45 x 1024 each) do not fit in memory; on for scenes
    cache_trunk_features: bool = False
    # the first N training images; null = all (a CPU budget knob)
    max_train_images: int | None = None
    # Lightning's Trainer precision ("bf16-mixed": autocast to bfloat16); DenseCap trains in fp32
    precision: str = "32-true"

    def __post_init__(self) -> None:
        # the model checks it too; here it fails when `capbench reproduce` plans, naming the file
        from capbench.models.captioners.region_captioner import REGION_FEATURES

        if self.region_features not in REGION_FEATURES:
            raise ValueError(
                f"region_captioner.region_features must be one of {REGION_FEATURES}, got "
                f"{self.region_features!r}"
            )
        if self.region_features == "crop" and reads_cached_trunk(self):
            raise ValueError(
                "region_captioner: region_features 'crop' runs the trunk on each box's crop, so "
                "the whole image's cached map is not enough: set cache_trunk_features false"
            )
        unknown = set(self.loss_weights) - set(DENSECAP_LOSS_WEIGHTS)
        missing = set(DENSECAP_LOSS_WEIGHTS) - set(self.loss_weights)
        if unknown or missing:
            raise ValueError(
                f"region_captioner.loss_weights needs exactly the keys "
                f"{sorted(DENSECAP_LOSS_WEIGHTS)}; unknown {sorted(unknown)}, missing "
                f"{sorted(missing)}"
            )


def reads_cached_trunk(cfg: ShowAndTellConfig | RegionCaptionerConfig) -> bool:
    """Whether a captioner trains on its frozen trunk's output computed once before the fit
    (Show-and-Tell: pooled features; the region captioner: whole maps) instead of images."""
    return not cfg.train_trunk and cfg.cache_trunk_features


@dataclass(frozen=True)
class CaptioningDataConfig:
    """The ``captioning`` section: the captioners' training data (folders relative to the row's
    data root) and how features are extracted."""

    coco: str = "coco"  # COCO with Karpathy splits (dataset_coco.json) for Show-and-Tell
    visual_genome: str = "visual_genome"  # region phrases for the region captioner
    embed_batch_size: int = 16  # images per forward when extracting features
    # held-out images whose generated captions are scored (BLEU-4, CIDEr): null = the whole
    # Karpathy test split (5000, the usual practice); a CPU budget knob on scenes
    eval_images: int | None = None
    meteor: bool = False  # METEOR needs Java and ~2 GB for its paraphrase tables: opt-in


@dataclass(frozen=True)
class RowConfig:
    """The ``row`` section: which representation this row scores."""

    kind: str  # one of ROW_KINDS
    name: str | None = None
    repeats: int = 5  # random rows: independent draws, mean reported
    # captioner rows: which captioner's held-out caption quality (BLEU / CIDEr) is scored
    captioner: str = "show_and_tell"

    def __post_init__(self) -> None:
        if self.kind not in ROW_KINDS:
            raise ValueError(f"row.kind must be one of {ROW_KINDS}, got {self.kind!r}")
        if self.captioner not in CAPTIONER_KINDS:
            raise ValueError(
                f"row.captioner must be one of {CAPTIONER_KINDS}, got {self.captioner!r}"
            )


@dataclass(frozen=True, kw_only=True)
class CaptionFusionRow(CaptionFusionConfig):
    """A whole mopuri2017 row config: the method's sections, the captioners', the data and the
    protocol's."""

    row: RowConfig
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    captioning: CaptioningDataConfig = field(default_factory=CaptioningDataConfig)
    show_and_tell: ShowAndTellConfig = field(default_factory=ShowAndTellConfig)
    region_captioner: RegionCaptionerConfig = field(default_factory=RegionCaptionerConfig)
    # options of capbench.methods.backbone_pretrain.pretrain_backbone (the scenes stand-in for
    # ImageNet, used when a backbone_weights is "scenes-pretrain"); its defaults live there
    pretrain: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> CaptionFusionConfig:
        return CaptionFusionConfig(model=self.model, train=self.train, pairs=self.pairs)


def row_config(config: dict[str, Any]) -> CaptionFusionRow:
    """The typed row from a resolved row config (the runner's keys set aside)."""
    return build_config(CaptionFusionRow, method_sections(config), "mopuri2017 row config")


# A few steps on the tiny scenes data (the registry-wide tests): the fusion trains on the
# "thumbnail" feature (8 x 8 RGB, no model needed) of the tiny graded benchmark's first fold.
SMOKE: dict[str, Any] = {
    "config": {
        "model": {"in_dim": 192, "hidden": [64, 64, 32], "relu_layers": [1, 3]},
        "train": {"batch_size": 32, "max_epochs": 3, "patience": 10},
    },
    "data": {"source": "graded_retrieval", "root": "graded_retrieval", "features": "thumbnail"},
}
