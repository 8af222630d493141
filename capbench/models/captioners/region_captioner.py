"""A DenseCap-style region captioner (Johnson et al., CVPR 2016) from torchvision's detection
parts: a trunk, torchvision's region proposal network, RoIAlign, a recognition head (region
code, confidence, box refinement) and the shared LSTM decoder that describes each region.
``region_features="crop"`` reads each region from the box cut out of the image instead of from
the whole image's map (R-CNN style): on images whose objects cover a few cells of that map.

Mopuri et al.'s BoRD feature ("bag of region descriptions") is the mean of the LSTM-encoded
region codes of the 5 top-scoring regions after the final NMS, L2-normalised (512-d).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, roi_align

from capbench.models.captioners.decoder import CaptionDecoder, SpecialIds
from capbench.models.captioners.trunk import dense_trunk
from capbench.models.feature_norm import norm_layer


@dataclass(frozen=True)
class RegionSettings:
    """The detection settings (defaults: DenseCap's, as Mopuri et al.'s code runs it)."""

    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_nms: float = 0.7
    final_nms: float = 0.3
    proposals: int = 1000  # proposals kept after the RPN's NMS at test time
    train_proposals: int = 2000
    sample_size: int = 256  # boxes sampled per image for the losses (RPN and recognition)
    positive_fraction: float = 0.5
    pos_iou: float = 0.7
    neg_iou: float = 0.3
    pool_size: int = 7
    fc_dim: int = 4096  # DenseCap's two fully connected layers
    # how many of them (DenseCap: 2); 0 = the code, score and refinement read the (normalised)
    # pooled region directly, as Show-and-Tell's image map reads its pooled feature
    fc_layers: int = 2
    top_regions: int = 5  # BoRD: regions averaged
    # "none" (DenseCap) or "batchnorm": standardise each pooled region before the fc layers
    feature_norm: str = "none"
    # where a region's feature comes from: "roi_align" (DenseCap: pooled from the whole image's
    # map) or "crop" (R-CNN style: the square around the box cut from the image, resampled to
    # crop_size px, through the trunk, its map pooled to pool_size x pool_size)
    region_features: str = "roi_align"
    crop_size: int = 32


REGION_FEATURES = ("roi_align", "crop")


@dataclass
class Regions:
    """One image's described regions, best first: boxes (x1, y1, x2, y2), scores, the
    512-d region codes and their LSTM encodings."""

    boxes: Tensor
    scores: Tensor
    codes: Tensor
    encoded: Tensor


class RegionCaptioner(nn.Module):
    """Trunk -> RPN -> RoIAlign (or the box's crop through the trunk) -> fc recognition head ->
    LSTM decoder per region."""

    def __init__(
        self,
        backbone: str,
        vocab_size: int,
        specials: SpecialIds,
        settings: RegionSettings = RegionSettings(),
        dim: int = 512,
        dropout: float = 0.5,
        stride: int = 16,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        s = settings
        if s.region_features not in REGION_FEATURES:
            raise ValueError(
                f"region_features must be one of {REGION_FEATURES}, got {s.region_features!r}"
            )
        if s.crop_size < 1:
            raise ValueError(f"crop_size must be >= 1 pixel, got {s.crop_size}")
        self.settings = s
        self.stride = stride
        self.trunk, channels = dense_trunk(backbone, stride, weights)
        anchors = AnchorGenerator((tuple(s.anchor_sizes),), (tuple(s.aspect_ratios),))
        self.rpn = RegionProposalNetwork(
            anchors,
            RPNHead(channels, anchors.num_anchors_per_location()[0]),
            fg_iou_thresh=s.pos_iou,
            bg_iou_thresh=s.neg_iou,
            batch_size_per_image=s.sample_size,
            positive_fraction=s.positive_fraction,
            pre_nms_top_n={"training": s.train_proposals, "testing": s.proposals},
            post_nms_top_n={"training": s.train_proposals, "testing": s.proposals},
            nms_thresh=s.rpn_nms,
        )
        pooled_dim = channels * s.pool_size**2
        # before the head, not inside it: the head's layer indices (checkpoint keys) stay DenseCap's
        self.region_norm = norm_layer(s.feature_norm, pooled_dim)
        if s.fc_layers < 0:
            raise ValueError(f"fc_layers must be >= 0, got {s.fc_layers}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = pooled_dim
        for _ in range(s.fc_layers):  # indices 1, 4 for DenseCap's two: its checkpoint keys
            layers += [nn.Linear(width, s.fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = s.fc_dim
        self.head = nn.Sequential(*layers)
        self.code = nn.Linear(width, dim)
        self.score = nn.Linear(width, 1)
        self.refine = nn.Linear(width, 4)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.matcher = Matcher(s.pos_iou, s.neg_iou, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(s.sample_size, s.positive_fraction)
        self.decoder = CaptionDecoder(vocab_size, specials, dim, dropout)

    def _recognise(self, features: Tensor, boxes: list[Tensor], images: Tensor) -> Tensor:
        s = self.settings
        if s.region_features == "crop":
            if images.shape[1] == 0:
                raise ValueError(
                    "region_features 'crop' cuts each box from the image: it needs the images, "
                    "not only the trunk's cached maps (turn cache_trunk_features off)"
                )
            pooled = F.adaptive_avg_pool2d(
                self.trunk(_square_crops(images, boxes, s.crop_size)), s.pool_size
            )
        else:
            pooled = roi_align(features, boxes, s.pool_size, 1.0 / self.stride, sampling_ratio=2)
        return self.head(self.region_norm(pooled.flatten(1)))

    def region_codes(self, images: Tensor, boxes: list[Tensor]) -> Tensor:
        """The decoder's input code of each box (``boxes[i]`` on image i of ``images``),
        ``(sum R_i, dim)``: what the phrase of that box is generated from. The whole image's
        map is computed only where the regions are pooled from it (``roi_align``)."""
        roi = self.settings.region_features == "roi_align"
        features = self.trunk(images) if roi else images.new_empty(0)
        return self.code(self._recognise(features, boxes, images))

    def loss(
        self, images: ImageList, boxes: list[Tensor], tokens: list[Tensor]
    ) -> dict[str, Tensor]:
        """Training losses, unweighted: the RPN's objectness and box terms (``rpn_objectness``,
        ``rpn_box``), then per sampled box a confidence (``score``, BCE), a refinement
        (``refine``, smooth L1, positives) and the caption of the matched region (``caption``,
        positives); :func:`weighted_loss` sums them with DenseCap's weights.
        ``boxes[i]`` ``(R_i, 4)`` x1y1x2y2 pixels, ``tokens[i]`` ``(R_i, T)``."""
        return self.loss_from_features(self.trunk(images.tensors), images, boxes, tokens)

    def loss_from_features(
        self, features: Tensor, images: ImageList, boxes: list[Tensor], tokens: list[Tensor]
    ) -> dict[str, Tensor]:
        """:meth:`loss` on the trunk's map ``features`` of ``images``, computed elsewhere (a
        frozen trunk's maps cached once: ``capbench.methods.frozen_features.FrozenMapItems``).
        With ``roi_align`` region features only the shape of ``images.tensors`` and
        ``images.image_sizes`` are read (anchors and clipping), so its tensor may hold no
        channels; ``crop`` region features cut the boxes from it."""
        proposals, rpn_losses = self.rpn(images, {"0": features}, [{"boxes": b} for b in boxes])
        sampled, labels, matched = [], [], []
        for props, gt in zip(proposals, boxes):
            cand = torch.cat([props.detach(), gt])  # the true regions always take part
            match = self.matcher(box_iou(gt, cand))
            lab = torch.full_like(match, -1)  # between the thresholds: left out
            lab[match >= 0] = 1
            lab[match == Matcher.BELOW_LOW_THRESHOLD] = 0
            pos, neg = self.sampler([lab])
            keep = torch.where(pos[0].bool() | neg[0].bool())[0]
            sampled.append(cand[keep])
            labels.append(pos[0][keep].float())
            matched.append(match[keep].clamp(min=0))
        hidden = self._recognise(features, sampled, images.tensors)
        label = torch.cat(labels)
        losses = {
            "rpn_objectness": rpn_losses["loss_objectness"],
            "rpn_box": rpn_losses["loss_rpn_box_reg"],
        }
        losses["score"] = F.binary_cross_entropy_with_logits(self.score(hidden).squeeze(1), label)
        is_pos = label > 0
        if is_pos.any():
            gt_boxes = torch.cat([b[m] for b, m in zip(boxes, matched)])[is_pos]
            target = self.box_coder.encode_single(gt_boxes, torch.cat(sampled)[is_pos])
            losses["refine"] = F.smooth_l1_loss(self.refine(hidden[is_pos]), target, beta=1 / 9)
            pad = self.decoder.specials.pad
            words = torch.cat([_pad_to(t[m], tokens, pad) for t, m in zip(tokens, matched)])
            words = words[is_pos]
            losses["caption"] = self.decoder.loss(self.code(hidden[is_pos]), words)
        return losses

    @torch.no_grad()
    def detect(self, images: ImageList, top: int | None = None) -> list[Regions]:
        """Scored, refined regions per image after the final NMS, at most ``top``."""
        features = self.trunk(images.tensors)
        proposals, _ = self.rpn(images, {"0": features})
        hidden = self._recognise(features, proposals, images.tensors)
        out, start = [], 0
        for props, size in zip(proposals, images.image_sizes):
            h = hidden[start : start + len(props)]
            start += len(props)
            boxes = self.box_coder.decode_single(self.refine(h), props)
            boxes = clip_boxes_to_image(boxes, size)
            scores = self.score(h).squeeze(1).sigmoid()
            keep = batched_nms(boxes, scores, torch.zeros_like(scores), self.settings.final_nms)
            keep = keep[:top] if top else keep
            codes = self.code(h[keep])
            out.append(Regions(boxes[keep], scores[keep], codes, self.decoder.encode(codes)))
        return out

    def bord(self, images: ImageList) -> Tensor:
        """The BoRD feature ``(B, dim)``: mean LSTM encoding of the top regions, L2-normalised."""
        regions = self.detect(images, self.settings.top_regions)
        return F.normalize(torch.stack([r.encoded.mean(dim=0) for r in regions]), dim=1)

    def describe(
        self, images: ImageList, top: int = 5, beam_size: int = 3, max_len: int = 12
    ) -> list[tuple[Regions, list[list[int]]]]:
        """The ``top`` regions of each image with their beam-searched phrases (word ids)."""
        return [
            (r, self.decoder.beam_search(r.codes, beam_size, max_len))
            for r in self.detect(images, top)
        ]


def _square_crops(images: Tensor, boxes: list[Tensor], size: int) -> Tensor:
    """``(sum R_i, C, size, size)``: per box, the square centred on it whose side is the box's
    longer side, resampled from its image (bilinear, outside the image zero: the mean colour
    of a normalised image). Square, so that a shape is not stretched out of its proportions."""
    squares = []
    for b in boxes:
        centre = (b[:, :2] + b[:, 2:]) / 2
        half = (b[:, 2:] - b[:, :2]).amax(dim=1, keepdim=True) / 2
        squares.append(torch.cat([centre - half, centre + half], dim=1).to(images.dtype))
    return roi_align(images, squares, size, 1.0, sampling_ratio=2, aligned=True)


def _pad_to(t: Tensor, all_tokens: list[Tensor], pad: int) -> Tensor:
    """Pad phrase ids to the longest phrase of the batch (one tensor for the decoder)."""
    width = max(x.shape[1] for x in all_tokens)
    return F.pad(t, (0, width - t.shape[1]), value=pad)


def weighted_loss(losses: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """The training objective: each loss times its weight (DenseCap weighs its detection terms
    0.05-0.1 against the captioning term's 1.0); a loss without a weight is an error, never
    silently dropped."""
    missing = set(losses) - set(weights)
    if missing:
        raise KeyError(f"no weight for the losses {sorted(missing)}; weights: {sorted(weights)}")
    start = next(iter(losses.values())).new_zeros(())
    return sum((weights[k] * v for k, v in losses.items()), start)
