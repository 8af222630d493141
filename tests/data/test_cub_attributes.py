"""CUB's continuous class attributes (Reed et al.'s attributes baseline): written from per-image
labels as CUB defines them, read back, and refused with file and line when malformed."""

from __future__ import annotations

import numpy as np
import pytest

from capbench.data import DatasetFormatError
from capbench.data.sources.cub import CLASS_ATTRIBUTES_FILE, read_class_attributes
from capbench.data.writers import write


def _specs(attributes: list[list[int] | None]) -> list[dict]:
    labels = [0, 0, 2, 2, 2]  # class ids 1 and 3: classes.txt need not be contiguous
    return [
        dict(image_id=f"Bird_{k:04d}_{label + 1}", split="train" if label == 0 else "test",
             label=label, captions=[f"caption {j}" for j in range(10)],
             meta={} if attrs is None else {"attributes": attrs})
        for k, (label, attrs) in enumerate(zip(labels, attributes))
    ]  # fmt: skip


def test_class_attributes_round_trip_as_percentages(tmp_path, make_items):
    per_image = [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0]]
    root = write("cub", tmp_path, make_items(_specs(per_image)))
    got = read_class_attributes(root)
    # row k = k-th class of classes.txt: class 1 (two images), class 3 (three images)
    want = np.array([[100.0, 50.0, 50.0, 0.0], [100 / 3, 0.0, 100.0, 200 / 3]], np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32
    read_class_attributes(root, n_attributes=4)  # the expected width may be stated


def test_no_attributes_no_file_and_mixed_records_are_refused(tmp_path, make_items):
    root = write("cub", tmp_path / "plain", make_items(_specs([None] * 5)))
    assert not (root / "CUB_200_2011" / CLASS_ATTRIBUTES_FILE).exists()
    with pytest.raises(DatasetFormatError, match="missing CUB class attribute file"):
        read_class_attributes(root)
    with pytest.raises(ValueError, match="record Bird_0001_1: has no meta"):
        write("cub", tmp_path / "mixed", make_items(_specs([[1], None, [0], [1], [1]])))
    with pytest.raises(ValueError, match=r"record Bird_0002_3: meta\['attributes'\] must be 2"):
        write("cub", tmp_path / "ragged", make_items(_specs([[1, 0], [1, 1], [2, 0], [1], [0]])))


def _write_attribute_file(tmp_path, make_items, text: str):
    root = write("cub", tmp_path, make_items(_specs([[1, 0, 1]] * 5)))
    path = root / "CUB_200_2011" / CLASS_ATTRIBUTES_FILE
    path.write_text(text)
    return root, path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 20 30\n10 20\n", r"line 2: expected 3 space-separated attribute values, found 2"),
        ("10 20 30\n\n5 x 7\n", r"line 3, value 2: expected a percentage 0-100, got 'x'"),
        ("10 20 30\n5 120 7\n", r"line 2, value 2: expected a percentage 0-100, got '120'"),
        ("10 20 nan\n5 6 7\n", r"line 1, value 3: expected a percentage 0-100, got 'nan'"),
        ("10 20 30\n", r"expected one line per class of classes.txt \(2\), found 1"),
    ],
)
def test_malformed_attribute_files_name_file_and_line(tmp_path, make_items, text, message):
    root, path = _write_attribute_file(tmp_path, make_items, text)
    with pytest.raises(DatasetFormatError, match=message) as err:
        read_class_attributes(root)
    assert err.value.path == str(path)


def test_stated_width_is_enforced(tmp_path, make_items):
    root, _ = _write_attribute_file(tmp_path, make_items, "1 2 3\n4 5 6\n")
    with pytest.raises(DatasetFormatError, match="line 1: expected 312 space-separated"):
        read_class_attributes(root, n_attributes=312)
