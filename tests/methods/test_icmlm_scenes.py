"""What must hold on scenes (issue 18), end to end on the scenes profile: every pretrained trunk
beats the random-init one on VOC07 mAP; ICMLM's masked-token accuracy on held-out captions is far
above always answering the most frequent concept; att-fc's attention peaks on the masked object
more often than chance.

Asserted because it holds (benchmarks/sariyildiz2020/README.md, "The likelihood side, and the
goldens of 2026-12-04"): VOC07 above random init for TP_Label, TP_Postag, ICMLM_tfm and
ICMLM_att-fc on seed 0, the seed this file runs (the ICMLM trunks are above it on every seed in
the 2026-12-04 runs, by margins within the seeds' spread; level on seed 2 the day before);
ICMLM_tfm's accuracy. Written as a strict xfail because they do not hold yet: att-fc's accuracy
above the bar; the image adding to the accuracy (given another image, tfm keeps 20.8 of 21.7,
20.3 of 19.9 and 18.9 of 19.8 on 3 seeds; the right word is more probable with its own image in
only 52-55 % of examples); att-fc's attention on the object on every seed. For the last,
"chance" is the position prior (the same peak cells scored on other images' objects), not a
uniformly random cell: on 3 seeds att-fc's peak lands on the object 40.4 / 8.1 / 14.0 % of the
time against a position prior of 30.3 / 5.6 / 12.6 % (a random cell: 17.4 %): seeds 1 and 2
settle on a border cell whatever the image, and only seed 0 clears the +10 bar (by a hair). So the xfail comes from the accuracy claims; the attention claim stays
in it because it fails on the other two seeds. The strict xfail fails the day all three claims
hold on seed 0, so the README gets updated then.

The whole scenes table (719 s for seed 2 at the default thread count on 2 idle cores, 2026-12-03) runs once for all the tests, so they are
slow tests; set ``CAPBENCH_SCENES`` to a folder that already holds the demo-size scenes data to
skip writing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from capbench.cli import main
from tests.claims import claim_not_met

PRETRAINED = ("tp_label", "tp_postag", "icmlm_tfm", "icmlm_att_fc")


def _far_above_most_frequent(m: dict) -> bool:
    return m["mlm_acc"] > 2 * m["mlm_acc_most_frequent"] + 10


_TABLE: dict[str, dict[str, float]] = {}  # the one run both tests read


@pytest.fixture()
def scenes_metrics(tmp_path_factory, default_torch_threads) -> dict[str, dict[str, float]]:
    """Seed 0 of the scenes table at torch's default thread count, as `capbench reproduce`
    runs it, computed by the first test that asks: {row: metrics of all its tables}."""
    from capbench import paths

    if _TABLE:
        return _TABLE
    tmp = tmp_path_factory.mktemp("icmlm_scenes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPBENCH_SCENES", os.environ.get("CAPBENCH_SCENES") or str(tmp / "scenes"))
        mp.setenv("CAPBENCH_RESULTS", str(tmp / "results"))  # not the checkout's
        # not an assert: a failed run must not pass as the AssertionError a claim_not_met expects
        if main(["reproduce", "sariyildiz2020", "--profile", "scenes"]) != 0:
            raise RuntimeError("capbench reproduce sariyildiz2020 --profile scenes failed (above)")
        records = sorted(
            Path(paths.results_root(), "sariyildiz2020", "records").rglob("scenes-s0-*.json")
        )
    for path in records:
        doc = json.loads(path.read_text())
        _TABLE.setdefault(doc["row"], {}).update(doc["metrics"])
    return _TABLE


@pytest.mark.slow
def test_scenes_trunks_beat_random_init_and_tfm_beats_the_most_frequent_concept(scenes_metrics):
    floor = scenes_metrics["random_init"]
    for row in PRETRAINED:
        for layer in ("map_layer3", "map_layer4"):
            assert scenes_metrics[row][layer] > floor[layer], (row, layer, scenes_metrics[row])
    assert _far_above_most_frequent(scenes_metrics["icmlm_tfm"]), scenes_metrics["icmlm_tfm"]


@pytest.mark.slow
@claim_not_met(
    "does not hold on scenes yet: att-fc's held-out accuracy is below the bar, the accuracy "
    "comes from the caption (tfm, seed 0: 21.7 with its own image, 20.8 with another), and "
    "att-fc's attention clears the bar on 1 seed of 3 (peak on the object 40.4 / 8.1 / 14.0 % "
    "against a position prior of 30.3 / 5.6 / 12.6 %: seeds 1 and 2 settle on a border cell); "
    "at the root, a trunk trained from scratch does not learn the shapes in ~280 steps (TP_Label's "
    "own head is at chance); with random shifts and 4x the steps TP_Label's does, ICMLM's do not "
    "(seed 0); at 24 epochs with shifts the image adds over 5 points to tfm on 2 seeds of 3 and "
    "to att-fc on none, and att-fc's attention finds the object on no seed; at 48 epochs (tfm, "
    "seed 0) it adds 12.8, none of it on the shape words; given TP_Label's trunk (shifts) frozen "
    "and ~6,000 head steps, att-fc's dot-product attention saturates on a left-column cell and "
    "its cosine option peaks 2.7-8.5 points above its position prior on 3 head seeds, and "
    "8.3-12.6 when every training draw masks a shape name (concepts.object_word_share: 1), "
    "which does not help a trunk trained from scratch; the captions do carry the shapes "
    "(TP_Postag on the shape concepts alone learns them about as TP_Label does), but the other "
    "concepts crowd them out; benchmarks/sariyildiz2020/README.md and "
    "scenes_measurements.md",
)
def test_scenes_masked_words_are_predicted_from_the_image(scenes_metrics):
    att = scenes_metrics["icmlm_att_fc"]
    # the attention looks at the named object: its peak lands there more often than the same
    # peak cells land on the objects of other images
    assert att["mlm_attention_peak"] > att["mlm_attention_position_prior"] + 10, att
    for row in ("icmlm_tfm", "icmlm_att_fc"):
        m = scenes_metrics[row]
        assert _far_above_most_frequent(m), (row, m)
        assert m["mlm_acc"] > m["mlm_acc_other_image"] + 5, (row, m)  # the image adds to it
