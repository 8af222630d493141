"""What must hold on scenes for Mopuri et al. 2017 (issue 17), end to end on the scenes profile
(seed 0): both captioners and the fusion trained, every row scored.

Asserted because it holds: every representation beats random ranking on mean nDCG@K,
Show-and-Tell's BLEU-4 on held-out scenes images is far above a caption of a random training
image and its captions depend on the image; both captioners explain their own image's or
region's texts better than another's (the likelihood test, ``text_preference``).
Written as strict xfails because they do not hold yet: the region captioner's BLEU-4 far above
a random phrase's (and its phrases depending on the region), and the fusion beating each
single feature.
A strict xfail fails the day the claim starts to hold, so the README gets updated then.

The whole scenes table (about 9 minutes on one idle core once the scenes trunk is cached), so
these are slow tests; set ``CAPBENCH_SCENES`` to a folder that already holds the demo-size
scenes data to skip writing it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.claims import claim_not_met
from tests.methods.scenes_run import reproduce_scenes

FEATURES = ("cnn", "fic", "bord", "concat", "fused")


@pytest.fixture(scope="module")
def scenes_metrics(tmp_path_factory) -> dict[str, dict[str, float]]:
    """``{row: metrics}`` of one ``capbench reproduce mopuri2017 --profile scenes`` run."""
    records = reproduce_scenes(tmp_path_factory.mktemp("mopuri_scenes"), "mopuri2017")
    metrics: dict[str, dict[str, float]] = {}
    for path in sorted(records.rglob("scenes-s0-*.json")):
        doc = json.loads(path.read_text())
        metrics[doc["row"]] = {**doc["metrics"], **doc["extra"].get("scores", {})}
    missing = (set(FEATURES) | {"random", "show_and_tell", "region_captioner"}) - set(metrics)
    if missing:  # not an assert, for the same reason
        raise RuntimeError(f"rows without a record: {sorted(missing)}")
    return metrics


@pytest.mark.slow
def test_every_feature_beats_random_ranking(scenes_metrics):
    chance = scenes_metrics["random"]["ndcg_mean"]
    for row in FEATURES:
        assert scenes_metrics[row]["ndcg_mean"] > chance + 0.02, (row, scenes_metrics[row], chance)


@pytest.mark.slow
def test_show_and_tell_bleu4_far_above_a_random_training_caption(scenes_metrics):
    """BLEU-4 on 30 held-out images at least 1.5x (and 5 points above) that of the first
    caption of a random training image. (On its own this does not show grounding: the run also
    records ``n_distinct``, how many different captions it generated; see the README.)"""
    m = scenes_metrics["show_and_tell"]
    assert m["bleu4"] > 1.5 * m["random_bleu4"] and m["bleu4"] > m["random_bleu4"] + 0.05, m


@pytest.mark.slow
def test_show_and_tell_is_grounded(scenes_metrics):
    """What the BLEU-4 check cannot tell: its captions depend on the image. Most of the 30
    held-out images get their own caption, and CIDEr (consensus with the image's own five
    references, which rewards the words that set an image apart) is at least twice that of a
    random training caption."""
    m = scenes_metrics["show_and_tell"]
    assert m["n_distinct"] >= 0.5 * m["n_images"], m
    assert m["cider"] > 2 * m["random_cider"], m


@pytest.mark.slow
@pytest.mark.parametrize("captioner", ["show_and_tell", "region_captioner"])
def test_captioner_explains_its_own_inputs_text_better(scenes_metrics, captioner):
    """The likelihood side of grounding (``text_preference``: own image's captions against the
    next image's code; own region's phrases against an equally large other region of the same
    image): the share of held-out texts their own input explains better is above one half by
    more than 3 standard errors of a coin (p < 0.002). Measured on seeds 0-2 (2026-12-05):
    Show-and-Tell 87-91 % of 150 captions, the region captioner 79-86 % of 254 regions (bar about
    59 %; 64-71 % before its regions were cut from the image)."""
    m = scenes_metrics[captioner]
    n = m["text_preference_n"]
    assert n >= 100, m
    assert m["text_preference"] > 0.5 + 3 * (0.25 / n) ** 0.5, m


@pytest.mark.slow
@claim_not_met(
    "does not hold on scenes yet: seed 0's region captioner says 21 different top phrases of "
    "30 images and its CIDEr is 1.6x a random phrase's (0.174 against 0.108), but no 4-gram of "
    "its top phrases is in the references (BLEU-4 0); of seeds 0-2 only seed 2 meets all three "
    "bars; benchmarks/mopuri2017/README.md",
)
def test_region_captioner_bleu4_far_above_a_random_phrase_and_grounded(scenes_metrics):
    """The issue's claim (BLEU-4 of the top region's phrase far above a random training
    phrase's), with what Show-and-Tell's grounding test adds: most held-out images get their
    own top-region phrase, and its CIDEr is at least twice a random training phrase's."""
    m = scenes_metrics["region_captioner"]
    assert m["bleu4"] > 1.5 * m["random_bleu4"] and m["bleu4"] > m["random_bleu4"] + 0.05, m
    assert m["n_distinct"] >= 0.5 * m["n_images"], m
    assert m["cider"] > 2 * m["random_cider"], m


@pytest.mark.slow
@claim_not_met(
    "does not hold on scenes yet: the fusion, trained on 40 queries, stays below FIC "
    "on every seed (20.6 / 20.8 / 23.0 against 24.4 / 22.8 / 25.0 at two threads); "
    "benchmarks/mopuri2017/README.md",
)
def test_fused_beats_each_single_feature(scenes_metrics):
    fused = scenes_metrics["fused"]["ndcg_mean"]
    for row in ("cnn", "fic", "bord", "concat"):
        assert fused > scenes_metrics[row]["ndcg_mean"], (row, fused, scenes_metrics[row])


def test_caption_quality_counts_what_a_captioner_says(tiny_scenes):
    """``n_distinct``: a captioner that says the same of every image is seen as such, even when
    its BLEU beats the random caption's (cheap: a stub captioner, the tiny scenes data)."""
    from types import SimpleNamespace

    from capbench.data import read
    from capbench.methods.caption_fusion.captioning import caption_quality

    recs = list(read("coco", Path(tiny_scenes) / "coco", "train", splits="karpathy"))
    held, train = recs[:4], recs[4:]

    class Parrot:
        cfg = SimpleNamespace(image_size=32)

        def caption(self, images):
            return [held[0].captions[0]] * len(images)

    scores = caption_quality(Parrot(), held, train, seed=0)
    assert scores["n_images"] == 4.0 and scores["n_distinct"] == 1.0
    assert 0.0 <= scores["bleu4"] <= 1.0 and "random_bleu4" in scores
