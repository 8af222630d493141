"""The scenes CUB layout carries CUB's continuous class attributes, drawn from the classes' true
attributes through a noisy simulated annotator (generator 2.2)."""

from __future__ import annotations

import numpy as np

from capbench.data.scenes.finegrained import ATTRIBUTE_NAMES, class_attributes, class_table
from capbench.data.scenes.generate import CUB_TABLE_SEED
from capbench.data.sources.cub import read_class_attributes


def test_scenes_cub_has_noisy_class_attributes_close_to_the_truth(tiny):
    out, manifest, _ = tiny
    got = read_class_attributes(out / "cub")
    classes = class_table(manifest["counts"]["cub"]["n_classes"], CUB_TABLE_SEED)
    truth = np.stack([class_attributes(c) for c in classes])
    assert got.shape == truth.shape == (len(classes), len(ATTRIBUTE_NAMES))
    # the simulated annotator misses 20% of true attributes and marks 3% of false ones
    assert 65 < got[truth == 1].mean() < 95 and got[truth == 0].mean() < 8
    assert ((got > 0) & (got < 100)).any()  # continuous, as CUB's are, not 0/100 codes
    assert (truth.sum(1) >= 3).all()  # shape, colour, pattern (+ pattern colour)
