"""Image decoding and preprocessing: always-RGB loading, longest-side resize, crops, the
ten-view crops of Reed et al., and the corrupt-image policy.

Real datasets hold grayscale (CUB), palette, RGBA, CMYK and 16-bit files, and now and then a
truncated download. ``load_rgb`` turns every readable file into 8-bit RGB and every unreadable
one into ``CorruptImageError`` naming the path, which the DataModule turns into a skipped,
counted sample instead of a crashed worker.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as F
from PIL import Image, ImageOps

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


class CorruptImageError(OSError):
    """An image file exists but cannot be decoded (truncated, not an image, bad header)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot decode image ({reason})")


def _composite_on_white(img: Image.Image) -> Image.Image:
    """Transparent pixels become white, as a viewer shows them, not black."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_bit_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit ("I;16*") and 32-bit ("I", "F") single-channel images -> 8-bit RGB.

    Integer data is treated as 16-bit (PNG's only deep format) and scaled by 255/65535; float
    data is assumed to be in [0, 255] and clipped.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        out = np.clip(arr, 0, 255)
    else:
        out = np.clip(arr.astype(np.float64) * (255.0 / 65535.0), 0, 255)
    return Image.fromarray(np.round(out).astype(np.uint8), mode="L").convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (alpha composited on white)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        return _composite_on_white(img)
    if mode == "P":
        if "transparency" in img.info:
            return _composite_on_white(img)
        return img.convert("RGB")
    if mode.startswith("I") or mode == "F":
        return _high_bit_depth_to_rgb(img)
    # "L", "1", "CMYK", "YCbCr", "LAB", "HSV": Pillow's own conversions are right.
    return img.convert("RGB")


def _exif_upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block leaves the (decodable) pixels as they are."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return img


def load_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully into an 8-bit RGB image, honouring EXIF orientation.

    Raises ``FileNotFoundError`` for a missing file (a reader bug, not a corrupt image) and
    ``CorruptImageError`` naming the path for anything that cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd EXIF/ICC data in real photos; decoding still succeeds.
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(path) as img:
                img.load()  # force the full decode now: truncation surfaces here
                img = _exif_upright(img)
                return to_rgb(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptImageError(path, f"{type(err).__name__}: {err}") from err


def resize_longest(
    img: Image.Image, size: int, resample: Image.Resampling = Image.Resampling.BICUBIC
) -> Image.Image:
    """Scale so the longest side is ``size`` pixels, keeping the aspect ratio."""
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img if new == (w, h) else img.resize(new, resample)


class ResizeLongest:
    """Transform form of :func:`resize_longest` (a class so DataLoader workers can pickle it)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        return resize_longest(img, self.size)

    def __repr__(self) -> str:
        return f"ResizeLongest({self.size})"


class PadToSquare:
    """Pad a PIL image, centred, to ``size`` x ``size`` (or its own longest side) with ``fill``.

    Padding with the normalisation mean makes the border 0 after normalisation.
    """

    def __init__(self, size: int | None = None, fill: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.size = size
        self.fill = tuple(fill)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        side = self.size if self.size is not None else max(w, h)
        if (w, h) == (side, side):
            return img
        if w > side or h > side:
            img = resize_longest(img, side)
            w, h = img.size
        canvas = Image.new("RGB", (side, side), self.fill)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        return canvas

    def __repr__(self) -> str:
        return f"PadToSquare({self.size}, fill={self.fill})"


def _mean_fill(mean: Sequence[float]) -> tuple[int, int, int]:
    r, g, b = (round(255 * m) for m in mean)
    return (r, g, b)


def _to_tensor_steps(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


def build_transform(
    longest_side: int | None = None,
    crop: int | None = None,
    train: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    pad_to_square: bool = False,
    shorter_side: int | None = None,
    hflip: bool | None = None,
    shift: int = 0,
) -> v2.Compose:
    """PIL RGB image -> normalised float tensor C x H x W.

    Steps: resize (``longest_side``: longest side to that size; or ``shorter_side``: shorter
    side to that size, as ImageNet practice), then ``pad_to_square`` (centred, padded with the
    mean so it is 0 after normalisation), then ``crop`` (random crop when ``train``, centre crop
    otherwise; images smaller than the crop are zero-padded), then, when ``shift`` (a training
    step whatever ``train`` says: give 0 for evaluation), a random translation of up to
    ``shift`` pixels each way at the same size (the image padded by reflecting its edges, then
    cropped back: an object near the border stays whole, unlike a crop of a smaller area), then
    a random horizontal flip when ``train`` (``hflip`` overrides), then to tensor and
    normalise. A fixed output size for batching needs either ``crop`` or ``longest_side`` with
    ``pad_to_square``; ``shift`` needs that fixed size.
    """
    if longest_side is not None and shorter_side is not None:
        raise ValueError("build_transform: give longest_side or shorter_side, not both")
    if shift < 0:
        raise ValueError(f"build_transform: shift must be >= 0 pixels, got {shift}")
    size = crop if crop is not None else longest_side if pad_to_square else None
    if shift and size is None:
        raise ValueError(
            "build_transform: shift needs a fixed output size (crop, or longest_side with "
            "pad_to_square)"
        )
    steps: list[Callable] = []
    if longest_side is not None:
        steps.append(ResizeLongest(longest_side))
    elif shorter_side is not None:
        steps.append(v2.Resize(shorter_side, antialias=True))
    if pad_to_square:
        steps.append(PadToSquare(longest_side, fill=_mean_fill(mean)))
    if crop is not None:
        steps.append(v2.RandomCrop(crop, pad_if_needed=True) if train else v2.CenterCrop(crop))
    if shift and size is not None:
        steps.append(v2.RandomCrop(size, padding=shift, padding_mode="reflect"))
    if hflip if hflip is not None else train:
        steps.append(v2.RandomHorizontalFlip())
    steps.extend(_to_tensor_steps(mean, std))
    return v2.Compose(steps)


def five_crop(img: Image.Image, size: int) -> tuple[Image.Image, ...]:
    """Four corners and the centre, each ``size`` x ``size``."""
    return tuple(F.five_crop(img, [size, size]))


def ten_crop(img: Image.Image, size: int) -> tuple[Image.Image, ...]:
    """Reed et al.'s 10 training views: the five crops of the image, then of its mirror."""
    return tuple(F.ten_crop(img, [size, size], vertical_flip=False))


class MultiViewTransform:
    """PIL image -> stacked views V x C x H x W (Reed: V = 10 crops of ``crop`` after resizing)."""

    def __init__(
        self,
        crop: int,
        views: int = 10,
        longest_side: int | None = None,
        shorter_side: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if views not in (5, 10):
            raise ValueError(f"MultiViewTransform: views must be 5 or 10, got {views}")
        self.crop = crop
        self.views = views
        self.resize = build_transform(
            longest_side=longest_side, shorter_side=shorter_side, mean=mean, std=std
        ).transforms[:-3]
        self.tensor = v2.Compose(_to_tensor_steps(mean, std))

    def __call__(self, img: Image.Image) -> torch.Tensor:
        for step in self.resize:
            img = step(img)
        if min(img.size) < self.crop:
            img = PadToSquare(max(max(img.size), self.crop))(img)
        crops = five_crop(img, self.crop) if self.views == 5 else ten_crop(img, self.crop)
        return torch.stack([self.tensor(c) for c in crops])
