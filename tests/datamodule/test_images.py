"""Always-RGB decoding of real photos in every mode, corrupt files, transforms and crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from capbench.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CorruptImageError,
    MultiViewTransform,
    build_transform,
    five_crop,
    load_rgb,
    resize_longest,
    ten_crop,
)


def test_rgb_photo_is_unchanged(tmp_path):
    astronaut = skdata.astronaut()
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    img = load_rgb(tmp_path / "a.png")
    assert img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(img), astronaut)


def test_grayscale_photo_becomes_three_equal_channels(tmp_path):
    camera = skdata.camera()  # real grayscale photo, mode "L"
    Image.fromarray(camera).save(tmp_path / "c.png")
    arr = np.asarray(load_rgb(tmp_path / "c.png"))
    assert arr.shape == (*camera.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(arr[..., c], camera)


def test_rgba_is_composited_on_white(tmp_path):
    logo = skdata.logo()  # real RGBA image with transparent background
    assert logo.shape[-1] == 4
    Image.fromarray(logo).save(tmp_path / "l.png")
    arr = np.asarray(load_rgb(tmp_path / "l.png")).astype(float)
    alpha = logo[..., 3:4] / 255.0
    expected = logo[..., :3] * alpha + 255.0 * (1 - alpha)
    assert np.abs(arr - expected).max() <= 1.0
    assert (arr[logo[..., 3] == 0] == 255).all()


def test_palette_cmyk_and_16bit(tmp_path):
    astronaut = Image.fromarray(skdata.astronaut())
    pal = astronaut.quantize(32)
    pal.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(
        np.asarray(load_rgb(tmp_path / "p.png")), np.asarray(pal.convert("RGB"))
    )
    astronaut.convert("CMYK").save(tmp_path / "k.jpg", quality=95)
    assert Image.open(tmp_path / "k.jpg").mode == "CMYK"
    got = np.asarray(load_rgb(tmp_path / "k.jpg")).astype(int)
    assert np.abs(got - np.asarray(astronaut)).mean() < 8  # JPEG loss only
    camera16 = skdata.camera().astype(np.uint16) * 257  # full 16-bit range
    Image.fromarray(camera16).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    arr = np.asarray(load_rgb(tmp_path / "d.png"))
    np.testing.assert_array_equal(arr[..., 0], skdata.camera())


def test_transparent_palette(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    img.save(tmp_path / "t.png", transparency=0)
    arr = np.asarray(load_rgb(tmp_path / "t.png"))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[1, 1]) == (255, 0, 0)


def test_truncated_and_garbage_files_raise_corrupt_image_error(tmp_path):
    Image.fromarray(skdata.astronaut()).save(tmp_path / "good.jpg")
    raw = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"<html>404 not found</html>")
    for name in ("cut.jpg", "junk.jpg"):
        with pytest.raises(CorruptImageError) as info:
            load_rgb(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
        assert isinstance(info.value, OSError)
    with pytest.raises(FileNotFoundError):
        load_rgb(tmp_path / "absent.jpg")


def test_resize_longest_keeps_aspect():
    img = Image.new("RGB", (400, 100))
    assert resize_longest(img, 128).size == (128, 32)
    assert resize_longest(Image.new("RGB", (10, 300)), 60).size == (2, 60)


def test_transform_shapes_and_normalisation():
    img = Image.fromarray(skdata.astronaut()).resize((300, 150))
    t = build_transform(longest_side=128, pad_to_square=True)
    x = t(img)
    assert x.shape == (3, 128, 128) and x.dtype == torch.float32
    # the padding (top/bottom 32 rows) is the mean colour: ~0 after normalisation
    assert x[:, :30].abs().max() < 0.02
    # the image content equals a manual normalisation of the resized photo
    manual = np.asarray(resize_longest(img, 128), dtype=np.float32) / 255.0
    manual = (manual - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[:, 32:96].permute(1, 2, 0).numpy(), manual, atol=1e-5)
    assert build_transform(longest_side=128, crop=112)(img).shape == (3, 112, 112)
    assert build_transform(longest_side=128, crop=112, train=True)(img).shape == (3, 112, 112)
    assert build_transform(shorter_side=64, crop=56)(img).shape == (3, 56, 56)
    assert build_transform(longest_side=64)(img).shape == (3, 32, 64)


def _offset(shifted: torch.Tensor, base: torch.Tensor, s: int) -> tuple[int, int] | None:
    """The (dy, dx) with |d| <= s for which ``shifted`` is, pixel for pixel, ``base`` with its
    edges reflected by ``s`` and moved by (dy, dx); None if there is none."""
    h, w = base.shape[1:]
    padded = torch.nn.functional.pad(base[None], (s, s, s, s), mode="reflect")[0]
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            window = padded[:, s + dy : s + dy + h, s + dx : s + dx + w]
            if torch.allclose(shifted, window, atol=1e-5):
                return dy, dx
    return None


def test_shift_translates_within_bounds_at_the_same_size():
    """``shift`` moves the image by at most that many pixels, keeps its size, fills the border
    by reflecting the image (not a constant), and flips nothing unless asked (the scenes captions
    say "left of")."""
    img = Image.fromarray(skdata.astronaut()).resize((64, 64))
    base = build_transform(longest_side=64, pad_to_square=True)(img)
    shifted = build_transform(longest_side=64, pad_to_square=True, shift=4)
    torch.manual_seed(0)
    offsets = set()
    for _ in range(12):
        x = shifted(img)
        assert x.shape == base.shape
        off = _offset(x, base, 4)
        assert off is not None, "not the reflected image moved by <= 4 px"
        offsets.add(off)
    assert len(offsets) > 3  # random, not one fixed move
    # with a crop as the fixed size
    assert build_transform(longest_side=80, crop=64, shift=3)(img).shape == (3, 64, 64)


def test_shift_needs_a_fixed_size_and_a_non_negative_amount():
    with pytest.raises(ValueError, match="fixed output size"):
        build_transform(longest_side=64, shift=2)
    with pytest.raises(ValueError, match=">= 0"):
        build_transform(longest_side=64, pad_to_square=True, shift=-1)


def test_ten_crop_views():
    img = Image.fromarray(skdata.astronaut())
    crops = ten_crop(img, 224)
    assert len(crops) == 10 and all(c.size == (224, 224) for c in crops)
    assert len(five_crop(img, 100)) == 5
    # view 5 is the mirrored top-left crop, i.e. the mirror of the original top-right crop
    np.testing.assert_array_equal(
        np.asarray(crops[5]), np.asarray(crops[1].transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    views = MultiViewTransform(112, views=10, longest_side=128)(img)
    assert views.shape == (10, 3, 112, 112)


def test_exif_orientation_is_applied(tmp_path):
    coffee = Image.fromarray(skdata.coffee())  # 600 x 400 (w x h)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    coffee.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95)
    img = load_rgb(tmp_path / "o.jpg")
    assert img.size == (400, 600)
    expected = np.asarray(coffee.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(np.asarray(img).astype(int) - expected).mean() < 4
