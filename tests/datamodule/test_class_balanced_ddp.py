"""The class-balanced batch sampler under DDP, with two ranks simulated in one process: distinct
classes across ranks at every step, one pass over the images per epoch, equal epoch lengths."""

from __future__ import annotations

from collections import Counter

import pytest

from capbench.data.views import ClassBalancedBatchSampler


def _ranks(labels, batch_size, replicas=2, seed=3, epoch=0):
    samplers = [
        ClassBalancedBatchSampler(labels, batch_size, seed, num_replicas=replicas, rank=r)
        for r in range(replicas)
    ]
    for s in samplers:
        s.set_epoch(epoch)
    return samplers, [list(s) for s in samplers]


def test_two_ranks_draw_distinct_classes_and_cover_every_image_once():
    labels = [i % 8 for i in range(40)]  # 8 classes x 5 images
    samplers, (rank0, rank1) = _ranks(labels, batch_size=2)
    assert len(samplers[0]) == len(samplers[1]) == len(rank0) == len(rank1) == 10  # 40 / (2x2)
    for b0, b1 in zip(rank0, rank1):
        classes = [labels[i] for i in b0 + b1]
        assert len(b0) == len(b1) == 2
        assert len(set(classes)) == 4  # one image per class over both ranks' batches
    used = Counter(i for batch in rank0 + rank1 for i in batch)
    assert sorted(used) == list(range(40)) and set(used.values()) == {1}


def test_unbalanced_classes_keep_equal_lengths_and_distinct_classes():
    labels = [0] * 11 + [1] * 3 + [2] * 6 + [3] * 1 + [4] * 7 + [5] * 2 + [6] * 5  # 35 images
    _, (rank0, rank1) = _ranks(labels, batch_size=3, epoch=4)
    assert len(rank0) == len(rank1) == 6  # ceil(35 / 6)
    for b0, b1 in zip(rank0, rank1):
        assert len(b0) == len(b1) == 3
        assert not {labels[i] for i in b0} & {labels[i] for i in b1}
        assert len({labels[i] for i in b0}) == 3
    # no image of a class repeats before the class's other images are used, over both ranks
    uses = Counter(labels[i] for batch in rank0 + rank1 for i in batch)
    distinct = Counter(labels[i] for i in {i for batch in rank0 + rank1 for i in batch})
    size = Counter(labels)
    assert all(distinct[y] == min(uses[y], size[y]) for y in size)
    assert uses[0] == 6  # the largest class is drawn at every step (most images left first)


def test_ranks_follow_the_epoch_and_split_the_single_process_batch():
    labels = [i % 6 for i in range(36)]
    _, epoch0 = _ranks(labels, batch_size=2, epoch=0)
    _, again = _ranks(labels, batch_size=2, epoch=0)
    _, epoch1 = _ranks(labels, batch_size=2, epoch=1)
    assert epoch0 == again and epoch0 != epoch1
    # the two ranks' batches of a step are the single-process batch of the global size, split
    whole = list(ClassBalancedBatchSampler(labels, 4, seed=3))
    assert [b0 + b1 for b0, b1 in zip(*epoch0)] == whole


def test_few_classes_shrink_the_per_rank_batch_and_bad_ranks_are_refused():
    labels = [i % 5 for i in range(20)]
    samplers, (rank0, rank1) = _ranks(labels, batch_size=4)
    assert samplers[0].batch_size == 2  # 5 classes // 2 ranks
    assert all(not {labels[i] for i in a} & {labels[i] for i in b} for a, b in zip(rank0, rank1))
    with pytest.raises(ValueError, match="0 <= rank < num_replicas"):
        ClassBalancedBatchSampler(labels, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="5 classes cannot give 6 ranks a class each"):
        ClassBalancedBatchSampler(labels, 2, num_replicas=6, rank=0)
