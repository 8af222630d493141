"""Shared helpers for the data-format tests: small in-memory images and record builders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from capbench.data.records import CaptionedImage
from capbench.data.writers import WritableImage


def _image(i: int, mode: str = "RGB") -> Image.Image:
    """A 24x16 image of a distinct colour; L and RGBA modes exercise the JPEG conversion."""
    image = Image.new("RGB", (24, 16), ((40 * i) % 256, (90 + 30 * i) % 256, (200 - 20 * i) % 256))
    return image.convert(mode)


@pytest.fixture
def make_items() -> Callable[..., list[WritableImage]]:
    """``make_items(specs)``: one WritableImage per dict of CaptionedImage fields."""

    def build(specs: list[dict]) -> list[WritableImage]:
        items = []
        for i, spec in enumerate(specs):
            spec = dict(spec)
            mode = spec.pop("mode", "RGB")
            spec.setdefault("image_path", "")
            items.append(WritableImage(CaptionedImage(**spec), _image(i, mode)))
        return items

    return build
