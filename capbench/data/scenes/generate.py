"""Build the scenes dataset in memory (parallel, deterministic) and write it in every format.

Determinism: image ``i`` of stream ``s`` is drawn from ``numpy.random.default_rng([seed, s, i])``,
so the bytes do not depend on the number of workers or on the order work is done in. Whole-set
steps (user study, graded relevance) use their own streams.

``build(size, seed, ...)`` returns a ``SceneSet`` (records, images, ground truth) for tests and
tools; ``generate(out, size, seed, ...)`` writes the layouts and the ``scenes.json`` manifest,
and skips the work when the manifest already matches the request.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from capbench.atomic import atomic_write_text
from capbench.data.records import CaptionedImage, Region
from capbench.data.scenes.captions import region_phrases, sentence_captions
from capbench.data.scenes.finegrained import (
    FineClass,
    annotate_attributes,
    attribute_captions,
    class_table,
    sample_instance,
)
from capbench.data.scenes.graded import graded_relevance
from capbench.data.scenes.layout import Scene, sample_closeup, sample_scene
from capbench.data.scenes.lexicon import LEXICON_FILE, lexicon_document
from capbench.data.scenes.render import render
from capbench.data.scenes.simulate_users import StudySize, leave_one_out_agreement, simulate_study
from capbench.data.scenes.vocab import SCENE_BY_NAME, SHAPE_BY_NAME, SHAPES
from capbench.data.user_study import Triplet, write_user_study

# 2.0: 36 flat scene types (was 7). 2.1: the pretraining set holds one-object close-ups labelled
# by shape (was multi-object scenes labelled by shape and colour); objects are larger.
# 2.2: the CUB layout has CUB's continuous class attributes (attributes/...continuous.txt);
# every other file is byte for byte that of 2.1.
# 2.3: the COCO layout adds instances_{train,val}2014.json (the shapes as object categories) and
# capbench_lexicon.json (each caption word's part of speech), for ICMLM; every other file is byte
# for byte that of 2.2.
GENERATOR_VERSION = "2.3"
MANIFEST = "scenes.json"
TRUTH = "scenes_truth.json"
DEFAULT_IMAGE_SIZE = 96
DEFAULT_SEED = 0

# Random streams: one per kind of image or whole-set step.
STREAM_SCENES, STREAM_PRETRAIN, STREAM_CUB, STREAM_FLOWERS = 1, 2, 3, 4
STREAM_STUDY, STREAM_SPLITS, STREAM_CUB_ATTRIBUTES = 5, 6, 7
CUB_TABLE_SEED, FLOWERS_TABLE_SEED = 2011, 102

FORMATS = (
    "visual_genome",
    "coco",
    "flickr8k",
    "flickr30k",
    "cub",
    "flowers",
    "voc2007",
    "scenes_pretrain",
    "graded_retrieval",
    "user_study",
)
# Output folder of each format under the output directory.
FOLDERS = {name: name for name in FORMATS}
SPLITS = ("train", "val", "test")
VOC_CLASSES = [s.name for s in SHAPES]
# The pretraining set's classes are the object classes, as ImageNet's are: the shapes.
PRETRAIN_CLASSES = list(VOC_CLASSES)


@dataclass(frozen=True)
class SizeSpec:
    """How many images of each kind a size has (see data_cards/scenes.md)."""

    splits: dict[str, int]  # scene images per VG split
    pretrain: int  # backbone-pretraining images (disjoint from the VG splits)
    cub_classes: int
    cub_per_class: int
    flowers_classes: int
    flowers_per_class: int
    study: StudySize  # per split
    graded_queries: int
    graded_references: int


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(
        {"train": 60, "val": 30, "test": 30}, 40, 50, 2, 50, 2,
        StudySize(80, 12, 20, 10, 3, 10), 10, 20,
    ),
    "demo": SizeSpec(
        {"train": 3000, "val": 1500, "test": 1500}, 6000, 60, 12, 60, 8,
        StudySize(1000, 35, 50, 25, 3, 50), 50, 1000,
    ),
    "large": SizeSpec(
        {"train": 80000, "val": 10000, "test": 10000}, 20000, 200, 30, 102, 40,
        StudySize(3000, 35, 50, 25, 3, 50), 50, 2000,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------- one image


@dataclass
class SceneSample:
    """One rendered scene image with its ground truth and its words."""

    index: int
    scene: Scene
    image: Image.Image
    regions: list[Region] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


@dataclass
class FineSample:
    index: int
    cls: FineClass
    scene: Scene
    image: Image.Image
    captions: list[str]


def image_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def make_scene(task: tuple[int, int, int, int]) -> SceneSample:
    """Worker: (seed, stream, index, image size) -> a rendered, captioned scene."""
    seed, stream, index, size = task
    rng = image_rng(seed, stream, index)
    scene = sample_scene(rng, size)
    image = render(scene, rng)  # sets visibility, which the captions mention
    return SceneSample(
        index, scene, image, region_phrases(scene, rng), sentence_captions(scene, rng)
    )


def make_closeup(task: tuple[int, int, int, int]) -> SceneSample:
    """Worker: (seed, stream, index, image size) -> a one-object close-up (no captions)."""
    seed, stream, index, size = task
    rng = image_rng(seed, stream, index)
    scene = sample_closeup(rng, size)
    return SceneSample(index, scene, render(scene, rng))


def make_fine(task: tuple[int, int, int, int, FineClass]) -> FineSample:
    seed, stream, index, size, cls = task
    rng = image_rng(seed, stream, index)
    scene = sample_instance(cls, rng, size)
    image = render(scene, rng)
    return FineSample(index, cls, scene, image, attribute_captions(cls, rng))


def parallel_map(fn: Callable, tasks: Sequence, workers: int, desc: str) -> list:
    """``[fn(t) for t in tasks]`` over ``workers`` processes, with a progress bar; results come
    back in task order. Workers are forked where the OS allows it: a spawned worker re-imports
    the caller's ``__main__``, which breaks scripts without a ``__main__`` guard."""
    bar = dict(total=len(tasks), desc=desc, unit="img", leave=False, disable=len(tasks) < 200)
    if workers <= 1 or len(tasks) < 64:
        return [fn(t) for t in tqdm(tasks, **bar)]
    chunk = max(8, len(tasks) // (workers * 16))
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, tasks, chunksize=chunk), **bar))


# --------------------------------------------------------------------------- the whole set


@dataclass
class SceneSet:
    """Everything generated, in memory: scene samples with their VG split, fine-grained sets,
    the pretraining set, user studies and graded relevance."""

    seed: int
    size_name: str
    image_size: int
    scenes: list[SceneSample]
    splits: list[str]  # VG split of each scene sample
    pretrain: list[SceneSample]
    pretrain_splits: list[str]
    cub: list[FineSample]
    cub_classes: list[FineClass]
    flowers: list[FineSample]
    flowers_classes: list[FineClass]
    studies: dict[str, tuple[list[str], list[Triplet]]] = field(default_factory=dict)
    graded_queries: list[str] = field(default_factory=list)
    graded_references: list[str] = field(default_factory=list)
    relevance: dict[str, dict[str, int]] = field(default_factory=dict)

    def vg_id(self, sample: SceneSample) -> str:
        return str(sample.index + 1)

    def by_split(self, split: str) -> list[SceneSample]:
        return [s for s, sp in zip(self.scenes, self.splits) if sp == split]


def build(
    size: str = "tiny",
    seed: int = DEFAULT_SEED,
    image_size: int = DEFAULT_IMAGE_SIZE,
    workers: int = 1,
) -> SceneSet:
    """Render and caption everything for ``size`` (``tiny``/``demo``/``large``)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    if not 32 <= image_size <= 512:
        raise ValueError(f"image size must be in 32..512 pixels, got {image_size}")
    spec = SIZES[size]
    n_scenes = sum(spec.splits.values())
    scenes = parallel_map(
        make_scene,
        [(seed, STREAM_SCENES, i, image_size) for i in range(n_scenes)],
        workers,
        "scenes",
    )
    # Splits are contiguous blocks of a seeded permutation: split sizes are exact.
    order = np.random.default_rng([seed, STREAM_SPLITS]).permutation(n_scenes)
    splits = [""] * n_scenes
    start = 0
    for split in SPLITS:
        for k in order[start : start + spec.splits[split]]:
            splits[int(k)] = split
        start += spec.splits[split]
    pretrain = parallel_map(
        make_closeup,
        [(seed, STREAM_PRETRAIN, i, image_size) for i in range(spec.pretrain)],
        workers,
        "pretrain",
    )
    n_pre = len(pretrain)
    pretrain_splits = (
        ["train"] * (n_pre - 2 * (n_pre // 10)) + ["val"] * (n_pre // 10) + ["test"] * (n_pre // 10)
    )
    cub_classes = class_table(spec.cub_classes, CUB_TABLE_SEED)
    flowers_classes = class_table(spec.flowers_classes, FLOWERS_TABLE_SEED)
    cub = parallel_map(
        make_fine,
        _fine_tasks(seed, STREAM_CUB, image_size, cub_classes, spec.cub_per_class),
        workers,
        "cub",
    )
    flowers = parallel_map(
        make_fine,
        _fine_tasks(seed, STREAM_FLOWERS, image_size, flowers_classes, spec.flowers_per_class),
        workers,
        "flowers",
    )
    out = SceneSet(
        seed,
        size,
        image_size,
        scenes,
        splits,
        pretrain,
        pretrain_splits,
        cub,
        cub_classes,
        flowers,
        flowers_classes,
    )
    _add_studies(out, spec)
    _add_graded(out, spec)
    return out


def _fine_tasks(
    seed: int, stream: int, size: int, classes: list[FineClass], per_class: int
) -> list:
    return [
        (seed, stream, c.index * per_class + k, size, c) for c in classes for k in range(per_class)
    ]


def _add_studies(data: SceneSet, spec: SizeSpec) -> None:
    for s, split in enumerate(SPLITS):
        samples = data.by_split(split)
        ids = [data.vg_id(x) for x in samples]
        rng = np.random.default_rng([data.seed, STREAM_STUDY, s])
        data.studies[split] = simulate_study(
            rng,
            {i: x.scene for i, x in zip(ids, samples)},
            {i: x.image for i, x in zip(ids, samples)},
            ids,
            spec.study,
        )


def _add_graded(data: SceneSet, spec: SizeSpec) -> None:
    """rPascal-like: queries and references from the VG test split, every pair graded."""
    test = data.by_split("test")
    n_q = min(spec.graded_queries, len(test) // 3)
    queries, refs = test[:n_q], test[n_q : n_q + spec.graded_references]
    data.graded_queries = [data.vg_id(x) for x in queries]
    data.graded_references = [data.vg_id(x) for x in refs]
    data.relevance = graded_relevance(
        {data.vg_id(x): x.scene for x in queries + refs},
        data.graded_queries,
        data.graded_references,
    )


# --------------------------------------------------------------------------- records per format


def vg_objects(scene: Scene) -> list[dict[str, Any]]:
    """objects.json entries: each shape (name = a synonym or the canonical word) + the scene."""
    objs = [
        {
            "x": round(o.x), "y": round(o.y), "w": max(1, round(o.w)), "h": max(1, round(o.h)),
            "names": [o.shape], "synsets": [SHAPE_BY_NAME[o.shape].synset],
        }
        for o in scene.objects
    ]  # fmt: skip
    kind = SCENE_BY_NAME[scene.scene]
    objs.append(
        {
            "x": 0,
            "y": 0,
            "w": scene.size,
            "h": scene.size,
            "names": [kind.name],
            "synsets": [kind.synset],
        }
    )
    return objs


def shape_labels(scene: Scene) -> tuple[list[int], list[int]]:
    """(present shape classes, difficult-only shape classes): a shape whose every instance is
    heavily occluded is VOC's "difficult"."""
    present = sorted({VOC_CLASSES.index(o.shape) for o in scene.objects if not o.occluded})
    hidden = sorted({VOC_CLASSES.index(o.shape) for o in scene.objects} - set(present))
    return present, hidden


def coco_instances(scene: Scene) -> list[tuple[int, float, float, float, float]]:
    """COCO object annotations of a scene: (shape class, x, y, w, h) of every object, occluded
    ones included (COCO annotates partly hidden objects too)."""
    return [
        (VOC_CLASSES.index(o.shape), round(o.x, 2), round(o.y, 2), round(o.w, 2), round(o.h, 2))
        for o in scene.objects
    ]


def scene_record(sample: SceneSample, split: str, image_id: str, **meta: Any) -> CaptionedImage:
    return CaptionedImage(
        image_id=image_id,
        image_path="",
        split=split,
        captions=list(sample.captions),
        regions=list(sample.regions),
        source="scenes",
        meta=dict(meta),
    )


def flickr8k_name(index: int) -> str:
    """A Flickr8k-looking file stem (``<digits>_<hex>``), unique per index."""
    return f"{1000000000 + index * 7919}_{(index * 2654435761) % 16**10:010x}"


def items_for(data: SceneSet, fmt: str) -> tuple[list, dict[str, Any]]:
    """(WritableImages, writer options) for format ``fmt``."""
    from capbench.data.writers import WritableImage

    items: list[WritableImage] = []
    options: dict[str, Any] = {}
    if fmt in ("visual_genome", "coco", "flickr8k", "flickr30k", "voc2007"):
        restval = np.random.default_rng([data.seed, STREAM_SPLITS, 1])
        for sample, split in zip(data.scenes, data.splits):
            n = sample.index
            if fmt == "visual_genome":
                rec = scene_record(
                    sample,
                    split,
                    data.vg_id(sample),
                    objects=vg_objects(sample.scene),
                    vg_id=n + 1,
                )
            elif fmt == "coco":
                coco_split = "restval" if split == "train" and restval.random() < 0.2 else split
                rec = scene_record(
                    sample,
                    coco_split,
                    str(n + 1),
                    coco_id=n + 1,
                    instances=coco_instances(sample.scene),
                )
                options["categories"] = VOC_CLASSES
            elif fmt == "flickr8k":
                rec = scene_record(sample, split, flickr8k_name(n))
            elif fmt == "flickr30k":
                rec = scene_record(sample, split, str(1000000 + n))
            else:
                present, hidden = shape_labels(sample.scene)
                rec = scene_record(sample, split, f"{n + 1:06d}", difficult=hidden)
                rec.labels = present
                options["classes"] = VOC_CLASSES
            items.append(WritableImage(rec, sample.image))
    elif fmt == "scenes_pretrain":
        for sample, split in zip(data.pretrain, data.pretrain_splits):
            rec = scene_record(sample, split, f"{sample.index + 1:06d}")
            rec.labels = sorted({PRETRAIN_CLASSES.index(o.shape) for o in sample.scene.objects})
            items.append(WritableImage(rec, sample.image))
        options["classes"] = PRETRAIN_CLASSES
    elif fmt in ("cub", "flowers"):
        samples = data.cub if fmt == "cub" else data.flowers
        per_class = {
            c.index: 0 for c in (data.cub_classes if fmt == "cub" else data.flowers_classes)
        }
        for fs in samples:
            k = per_class[fs.cls.index]
            per_class[fs.cls.index] += 1
            if fmt == "cub":
                image_id = f"{fs.cls.title}_{fs.index + 1:04d}_{k + 1}"
                image_split = "train" if k % 2 == 0 else "test"
                name = fs.cls.cub_name
            else:
                image_id = f"image_{fs.index + 1:05d}"
                image_split = ("trn", "val", "tst")[k % 3]
                name = f"class_{fs.cls.index + 1:05d}"
            rec = CaptionedImage(
                image_id=image_id, image_path="", split=fs.cls.split, captions=list(fs.captions),
                label=fs.cls.index, source="scenes",
                meta={"class_name": name, "image_split": image_split},
            )  # fmt: skip
            if fmt == "cub":  # own stream: the images and captions do not change
                annotator = image_rng(data.seed, STREAM_CUB_ATTRIBUTES, fs.index)
                rec.meta["attributes"] = annotate_attributes(fs.cls, annotator)
            items.append(WritableImage(rec, fs.image))
    elif fmt == "graded_retrieval":
        by_id = {data.vg_id(s): s for s in data.scenes}
        for image_id in data.graded_queries + data.graded_references:
            sample = by_id[image_id]
            items.append(WritableImage(scene_record(sample, "test", image_id), sample.image))
        options = {"queries": data.graded_queries, "relevance": data.relevance}
    else:
        raise ValueError(f"unknown scenes format {fmt!r}; valid: {', '.join(FORMATS)}")
    return items, options


# --------------------------------------------------------------------------- writing


def request_of(size: str, seed: int, image_size: int, formats: Iterable[str]) -> dict[str, Any]:
    return {
        "generator": "capbench.data.scenes",
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": int(seed),
        "image_size": int(image_size),
        "formats": sorted(formats),
    }


def write_finished(out: Path) -> bool:
    """Whether ``out`` holds a scenes write that ran to its end: its manifest is there and
    says ``"complete": true`` (an interrupted write leaves ``false`` and some of its folders
    missing or half written; an unreadable manifest counts as no write)."""
    return _finished_manifest(out) is not None


def manifest_matches(out: Path, request: dict[str, Any]) -> bool:
    doc = _finished_manifest(out)
    return doc is not None and doc.get("request") == request


def _finished_manifest(out: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((Path(out) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("complete") is True else None


def _write_json(path: Path, doc: Any) -> None:
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def write_format(data: SceneSet, fmt: str, out: Path) -> dict[str, Any]:
    """Write one format under ``out/<folder>``; returns its counts for the manifest."""
    from capbench.data import writers

    target = out / FOLDERS[fmt]
    if target.exists():
        shutil.rmtree(target)
    if fmt == "user_study":
        counts: dict[str, Any] = {}
        for split, (annotators, triplets) in data.studies.items():
            write_user_study(
                target / f"triplets_{split}.json", "visual_genome", split, annotators, triplets
            )
            mean, std, _ = leave_one_out_agreement(triplets)
            counts[split] = {
                "triplets": len(triplets),
                "annotators": len(annotators),
                "votes": sum(len(t.votes) for t in triplets),
                "agreement_mean": round(mean, 2),
                "agreement_std": round(std, 2),
            }
        return counts
    items, options = items_for(data, fmt)
    writer_name = "voc2007" if fmt == "scenes_pretrain" else fmt
    if writer_name not in writers.names():
        raise RuntimeError(
            f"no writer registered for {writer_name!r} (have: {', '.join(writers.names())}); "
            "pass --formats to write the others"
        )
    writers.write(writer_name, target, items, **options)
    if fmt == "coco":
        _write_json(target / LEXICON_FILE, lexicon_document())
    split_counts: dict[str, int] = {}
    for item in items:
        split_counts[item.record.split] = split_counts.get(item.record.split, 0) + 1
    counts = {"images": len(items), "splits": dict(sorted(split_counts.items()))}
    if "classes" in options:
        counts["classes"] = list(options["classes"])
    if fmt in ("cub", "flowers"):
        counts["n_classes"] = len({i.record.label for i in items})
    if fmt == "graded_retrieval":
        grades = [g for judged in data.relevance.values() for g in judged.values()]
        counts["queries"] = len(data.graded_queries)
        counts["references"] = len(data.graded_references)
        counts["grade_histogram"] = [grades.count(g) for g in range(4)]
    return counts


_SHARED: SceneSet | None = None  # set before forking the format writers (copy-on-write)


def _write_shared(task: tuple[str, Path]) -> tuple[str, dict[str, Any]]:
    assert _SHARED is not None
    return task[0], write_format(_SHARED, task[0], task[1])


def write_formats(
    data: SceneSet, formats: Sequence[str], out: Path, workers: int
) -> dict[str, dict[str, Any]]:
    """Write each format (independent folders); in forked workers when ``workers > 1`` and the
    OS can fork, so the in-memory images are shared rather than pickled."""
    global _SHARED
    bar = dict(total=len(formats), desc="writing", unit="format", leave=False)
    if workers <= 1 or len(formats) < 2 or "fork" not in mp.get_all_start_methods():
        return {fmt: write_format(data, fmt, out) for fmt in tqdm(formats, **bar)}
    _SHARED = data
    try:
        with mp.get_context("fork").Pool(min(workers, len(formats))) as pool:
            done = dict(
                tqdm(pool.imap_unordered(_write_shared, [(f, out) for f in formats]), **bar)
            )
    finally:
        _SHARED = None
    return {fmt: done[fmt] for fmt in formats}


def truth_document(data: SceneSet) -> dict[str, Any]:
    """Ground truth of every VG image (by VG id) and of the fine-grained classes."""
    return {
        "visual_genome": {data.vg_id(s): s.scene.to_json() for s in data.scenes},
        "cub_classes": [asdict(c) | {"name": c.cub_name} for c in data.cub_classes],
        "flowers_classes": [
            asdict(c) | {"name": f"class_{c.index + 1:05d}"} for c in data.flowers_classes
        ],
    }


def generate(
    out: str | Path,
    size: str = "tiny",
    seed: int = DEFAULT_SEED,
    image_size: int = DEFAULT_IMAGE_SIZE,
    workers: int = 1,
    formats: Sequence[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the scenes dataset under ``out``; returns the manifest. Skips (returning the
    existing manifest with ``"skipped": True``) when ``out/scenes.json`` matches the request."""
    out = Path(out)
    formats = list(FORMATS if formats is None else formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown scenes format(s) {unknown}; valid: {', '.join(FORMATS)}")
    request = request_of(size, seed, image_size, formats)
    if not force and manifest_matches(out, request):
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return manifest | {"skipped": True}
    if out.exists() and not (out / MANIFEST).is_file() and not force:
        clash = [FOLDERS[f] for f in formats if (out / FOLDERS[f]).exists()]
        if clash:
            raise FileExistsError(
                f"{out} holds {', '.join(clash)} but no {MANIFEST}: not a scenes directory; "
                "refusing to overwrite (pass force=True / --force)"
            )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file: expected a folder to write the scenes data in")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only or impossible place: say which, not where it broke
        raise OSError(f"cannot create the scenes folder {out}: {err.strerror}") from None
    # Marks the directory as ours at once, and as unfinished until the end: an interrupted run
    # is redone (never skipped), and a rerun may overwrite its folders.
    _write_json(out / MANIFEST, {"request": request, "complete": False})
    start = time.perf_counter()
    data = build(size, seed, image_size, workers)
    counts = write_formats(data, formats, out, workers)
    _write_json(out / TRUTH, truth_document(data))
    manifest = {
        "complete": True,
        "request": request,
        "folders": {f: FOLDERS[f] for f in formats},
        "counts": counts,
        "vg_splits": {s: data.splits.count(s) for s in SPLITS},
        "pretrain_classes": PRETRAIN_CLASSES,
        "voc_classes": VOC_CLASSES,
    }
    _write_json(out / MANIFEST, manifest)
    return manifest | {"seconds": round(time.perf_counter() - start, 1), "skipped": False}
