"""Grad-CAM grounding: the heat map must sit on what the two images share, not on what one of
them merely responds to strongly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from capbench.eval.grounding import (
    gradcam_map,
    ground_pair,
    overlay,
    side_by_side,
    top_contributing_dims,
)

torch.set_num_threads(1)


def _colour_net() -> torch.nn.Conv2d:
    """A 1x1 conv whose channel c fires on colour channel c: a backbone with known features."""
    conv = torch.nn.Conv2d(3, 3, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
    return conv


def _head(conv_map: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.relu(conv_map).mean(dim=(2, 3)), dim=1)


def _image(patches: list[tuple[int, int, int, float]], size: int = 32) -> torch.Tensor:
    """(channel, row, col, value): an 8x8 patch of one colour at (row, col)."""
    img = torch.zeros(3, size, size)
    for channel, row, col, value in patches:
        img[channel, row : row + 8, col : col + 8] = value
    return img


def _peak(heat: torch.Tensor) -> tuple[int, int]:
    idx = int(torch.argmax(heat))
    return divmod(idx, heat.shape[1])


def test_heat_map_follows_the_shared_pattern():
    net = _colour_net()
    # A: a weak red patch top-left and a strong green patch bottom-right.
    image_a = _image([(0, 0, 0, 1.0), (1, 24, 24, 3.0)])
    # B shares only red with A; its blue patch is its own (and keeps L2 normalisation non-degenerate)
    red_b = _image([(0, 12, 12, 1.0), (2, 0, 0, 1.0)])
    green_b = _image([(1, 4, 20, 1.0)])  # shares only green with A

    g_red = ground_pair(net, _head, image_a, red_b, k=1)
    assert g_red.dims == [0]
    row, col = _peak(g_red.heat_a)
    assert row < 8 and col < 8, "matched with a red image, A must light up at its red patch"
    row_b, col_b = _peak(g_red.heat_b)
    assert 12 <= row_b < 20 and 12 <= col_b < 20

    g_green = ground_pair(net, _head, image_a, green_b, k=1)
    assert g_green.dims == [1]
    row, col = _peak(g_green.heat_a)
    assert row >= 24 and col >= 24, "matched with a green image, A must light up at its green patch"


def test_outputs_are_normalised_and_backbone_untouched():
    net = _colour_net()
    image_a = _image([(0, 0, 0, 1.0), (2, 10, 10, 1.0)])
    image_b = _image([(0, 20, 20, 2.0), (2, 0, 16, 1.0)])
    g = ground_pair(net, _head, image_a, image_b, k=5)
    assert g.heat_a.shape == (32, 32) and g.heat_b.shape == (32, 32)
    for heat in (g.heat_a, g.heat_b):
        assert float(heat.min()) == 0.0
        assert abs(float(heat.max()) - 1.0) < 1e-6
    assert len(g.dims) == 3  # k is capped by the descriptor size
    with torch.no_grad():
        phi_a = _head(net(image_a[None]))[0]
        phi_b = _head(net(image_b[None]))[0]
    assert abs(g.similarity - float(phi_a @ phi_b)) < 1e-5
    assert net.weight.grad is None


def test_gradcam_map_by_hand():
    acts = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[0.0, 3.0], [1.0, 0.0]]])
    grads = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[-2.0, 0.0], [0.0, 0.0]]])
    # weights: channel 0 -> 1.0, channel 1 -> -0.5; map = A0 - 0.5 A1, then ReLU
    expected = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(gradcam_map(acts, grads), expected)


def test_top_contributing_dims_uses_the_product():
    phi_a = torch.tensor([0.9, 0.1, 0.3, -0.8])
    phi_b = torch.tensor([0.0, 0.9, 0.3, -0.5])
    # products: 0, 0.09, 0.09, 0.40 -> the largest is dim 3, although phi_a's largest is dim 0
    assert top_contributing_dims(phi_a, phi_b, 1).tolist() == [3]


def test_overlay_and_side_by_side():
    img = Image.new("RGB", (40, 30), (10, 200, 10))
    heat = torch.zeros(15, 20)
    heat[:, :10] = 1.0
    out = overlay(img, heat, alpha=0.5)
    assert out.size == (40, 30)
    left, right = out.getpixel((2, 15)), out.getpixel((38, 15))
    assert left != right  # hot half and cold half are coloured differently
    pair = side_by_side([out, img], gap=4)
    assert pair.size == (84, 30)
