"""Drawing a generated caption and described regions on an image (``capbench caption --out``)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6")


def draw_captions(
    image: Image.Image,
    caption: str | None,
    regions: Sequence[tuple[Sequence[float], str]] = (),
) -> Image.Image:
    """A copy of ``image`` with each region's box (x1, y1, x2, y2 in its pixels) and phrase, and
    the caption, if any, on a band below."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    for i, (box, phrase) in enumerate(regions):
        colour = _COLOURS[i % len(_COLOURS)]
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=max(1, out.width // 200))
        draw.text((x1 + 2, y1 + 2), phrase, fill=colour)
    if caption is None:
        return out
    band = Image.new("RGB", (out.width, out.height + 24), "white")
    band.paste(out, (0, 0))
    ImageDraw.Draw(band).text((4, out.height + 6), caption, fill="black")
    return band
