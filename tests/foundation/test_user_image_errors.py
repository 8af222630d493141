"""An image named on the command line that is missing or not an image stops ``capbench
caption`` / ``query`` / ``explain`` with one line naming the file, before any checkpoint or
index is read (so these run without one)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from capbench.cli import main
from capbench.commands.user_image import readable_image


@pytest.fixture
def images(tmp_path):
    good = tmp_path / "photo.jpg"
    Image.fromarray(np.full((30, 40, 3), 90, dtype=np.uint8)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:60])
    return good, bad, truncated, tmp_path / "absent.jpg"


def test_readable_image_decodes_a_good_file(images):
    good, *_ = images
    img = readable_image(good, "caption")
    assert img.mode == "RGB" and img.size == (40, 30)


@pytest.mark.parametrize(
    "argv",
    [
        ["caption", "{img}", "--checkpoint", "{tmp}/none.ckpt"],
        ["query", "{img}", "--index", "{tmp}/no_index"],
        ["explain", "{img}", "{good}", "--checkpoint", "{tmp}/none.ckpt", "--out", "{tmp}/o.png"],
    ],
    ids=["caption", "query", "explain"],
)
def test_a_bad_image_is_one_line_naming_it(images, argv):
    good, bad, truncated, absent = images
    tmp = good.parent
    command = argv[0]
    for img, expected in ((bad, "cannot decode image"), (truncated, "cannot decode image"),
                          (absent, "no such image file")):  # fmt: skip
        args = [a.format(img=img, good=good, tmp=tmp) for a in argv]
        with pytest.raises(SystemExit) as exc:
            main(args)
        message = str(exc.value.code)
        assert message.startswith(f"capbench {command}: "), message
        assert str(img) in message and expected in message, message
        assert "\n" not in message
