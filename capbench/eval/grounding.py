"""Grad-CAM grounding of the similarity between two images (Gordo & Larlus 2017, Figure 3).

Grad-CAM explains a class score with the gradient of that score at the last convolutional map.
For retrieval there is no class: the score to explain is the similarity phi_a . phi_b. Following
the paper, only the k signature dimensions that contribute most to that dot product are kept
(the largest entries of phi_a * phi_b), so the heat map shows what the two images *share* rather
than everything either image responds to. The same image therefore lights up different regions
depending on the image it is matched with.

This module is generic torch: a model is described by two callables, ``conv_fn`` (images ->
last conv map ``(B, C, h, w)``) and ``head_fn`` (conv map -> descriptor ``(B, D)``), so it works
with any backbone and pooling and imports no model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

ConvFn = Callable[[Tensor], Tensor]
HeadFn = Callable[[Tensor], Tensor]


@dataclass
class PairGrounding:
    """Heat maps in [0, 1] at image resolution for both images, and what they explain."""

    heat_a: Tensor  # (H_a, W_a)
    heat_b: Tensor  # (H_b, W_b)
    dims: list[int]  # the top-k signature dimensions whose summed product was backpropagated
    similarity: float  # the full dot product phi_a . phi_b
    explained: float  # the part of it carried by ``dims``


def top_contributing_dims(phi_a: Tensor, phi_b: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` largest entries of ``phi_a * phi_b`` (the terms of the dot product)."""
    if phi_a.shape != phi_b.shape or phi_a.dim() != 1:
        raise ValueError(
            f"expected two descriptors of the same 1-d shape, got {tuple(phi_a.shape)} and "
            f"{tuple(phi_b.shape)}"
        )
    k = min(int(k), phi_a.numel())
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return torch.topk(phi_a * phi_b, k).indices


def gradcam_map(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM of one conv map: channel weights = spatially averaged gradients, ReLU of the
    weighted sum of channels. ``activations``/``gradients`` are ``(C, h, w)``; returns ``(h, w)``."""
    weights = gradients.mean(dim=(1, 2))  # (C,)
    return F.relu(torch.einsum("c,chw->hw", weights, activations))


def _upsample_normalise(cam: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling to the image size, then scaling to [0, 1] (an all-zero map stays zero)."""
    up = F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    up = up - up.min()
    peak = up.max()
    return up / peak if peak > 0 else up


def ground_pair(
    conv_fn: ConvFn,
    head_fn: HeadFn,
    image_a: Tensor,
    image_b: Tensor,
    k: int = 5,
) -> PairGrounding:
    """Heat maps of the regions of ``image_a`` and ``image_b`` (each ``(3, H, W)``, already
    normalised for the model) that carry their similarity.

    The conv maps are computed once, cut from the graph and made leaves, so one backward pass of
    ``sum_{j in top-k} phi_a[j] * phi_b[j]`` gives the gradients at both maps; the backbone's
    parameters receive no gradient.
    """
    maps = []
    with torch.enable_grad():
        for image in (image_a, image_b):
            if image.dim() != 3:
                raise ValueError(f"expected one image (3, H, W), got shape {tuple(image.shape)}")
            with torch.no_grad():  # the trunk needs no graph: gradients stop at the map
                conv = conv_fn(image[None])
            if conv.dim() != 4:
                raise ValueError(f"conv_fn must return (B, C, h, w), got {tuple(conv.shape)}")
            maps.append(conv.detach().float().requires_grad_(True))
        phi_a = head_fn(maps[0])[0]
        phi_b = head_fn(maps[1])[0]
        dims = top_contributing_dims(phi_a.detach(), phi_b.detach(), k)
        score = (phi_a[dims] * phi_b[dims]).sum()
        grad_a, grad_b = torch.autograd.grad(score, maps)
    heats = [
        _upsample_normalise(gradcam_map(m[0].detach(), g[0]), tuple(img.shape[-2:]))
        for m, g, img in zip(maps, (grad_a, grad_b), (image_a, image_b))
    ]
    return PairGrounding(
        heat_a=heats[0],
        heat_b=heats[1],
        dims=[int(d) for d in dims],
        similarity=float((phi_a * phi_b).sum().detach()),
        explained=float(score.detach()),
    )


def overlay(image: Image.Image, heat: Tensor | np.ndarray, alpha: float = 0.5) -> Image.Image:
    """Blend a [0, 1] heat map (any size; resized to the image) over ``image`` with the jet map."""
    from matplotlib import colormaps

    heat_np = heat.detach().cpu().numpy() if isinstance(heat, Tensor) else np.asarray(heat)
    if heat_np.ndim != 2:
        raise ValueError(f"heat map must be 2-d, got shape {heat_np.shape}")
    rgb = image.convert("RGB")
    heat_img = Image.fromarray(np.uint8(np.clip(heat_np, 0.0, 1.0) * 255), mode="L")
    heat_img = heat_img.resize(rgb.size, Image.BILINEAR)
    coloured = colormaps["jet"](np.asarray(heat_img, dtype=np.float32) / 255.0)[..., :3]
    base = np.asarray(rgb, dtype=np.float32) / 255.0
    blended = (1.0 - alpha) * base + alpha * coloured
    return Image.fromarray(np.uint8(np.clip(blended, 0.0, 1.0) * 255))


def side_by_side(images: Sequence[Image.Image], gap: int = 8) -> Image.Image:
    """Paste images left to right on a white canvas, top-aligned (a pair figure or a result row)."""
    if not images:
        raise ValueError("side_by_side needs at least one image")
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images)
    canvas = Image.new("RGB", (width, height), "white")
    x = 0
    for im in images:
        canvas.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return canvas
