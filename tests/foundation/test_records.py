"""``CaptionedImage.regions`` is a plain list to every caller, even when a reader hands the
record a ``LazyRegions`` builder: equality, repr, asdict, replace, copies and pickles all see
the built list, the builder runs at most once, and a pickle never carries the builder."""

from __future__ import annotations

import copy
import pickle
from dataclasses import asdict, replace

from capbench.data.records import CaptionedImage, LazyRegions, Region

REGIONS = [Region(1.0, 2.0, 3.0, 4.0, "a red circle"), Region(5.0, 6.0, 7.0, 8.0, "sky")]


class _Builder:
    """Counts its calls, and holds a large payload a pickle must not drag along."""

    def __init__(self) -> None:
        self.calls = 0
        self.payload = b"x" * 1_000_000

    def __call__(self) -> list[Region]:
        self.calls += 1
        return list(REGIONS)


def _lazy_record(builder: _Builder) -> CaptionedImage:
    return CaptionedImage("1", "/img/1.jpg", "train", regions=LazyRegions(builder))


def test_default_regions_are_a_fresh_empty_list_per_record():
    a, b = CaptionedImage("1", "p", "train"), CaptionedImage("2", "p", "train")
    assert a.regions == [] and isinstance(a.regions, list)
    a.regions.append(REGIONS[0])
    assert b.regions == []


def test_lazy_regions_build_once_on_first_access():
    builder = _Builder()
    record = _lazy_record(builder)
    assert builder.calls == 0
    assert record.regions == REGIONS and isinstance(record.regions, list)
    assert record.regions is record.regions
    assert builder.calls == 1


def test_lazy_record_equals_eager_record_everywhere():
    eager = CaptionedImage("1", "/img/1.jpg", "train", regions=list(REGIONS))
    assert _lazy_record(_Builder()) == eager
    assert repr(_lazy_record(_Builder())) == repr(eager)
    assert asdict(_lazy_record(_Builder())) == asdict(eager)
    assert replace(_lazy_record(_Builder()), split="test") == replace(eager, split="test")
    assert copy.deepcopy(_lazy_record(_Builder())) == eager


def test_pickle_carries_the_regions_not_the_builder():
    builder = _Builder()
    data = pickle.dumps(_lazy_record(builder))
    assert len(data) < 10_000  # the builder's megabyte stayed behind
    back = pickle.loads(data)
    assert back.regions == REGIONS and builder.calls == 1


def test_assigning_regions_replaces_a_pending_builder():
    builder = _Builder()
    record = _lazy_record(builder)
    record.regions = REGIONS[:1]
    assert record.regions == REGIONS[:1] and builder.calls == 0
