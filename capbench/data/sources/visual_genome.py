"""Visual Genome v1.2 (formats.md §1.5): images with region phrases and, optionally, objects.

Expected under ``root``::

    image_data.json             [{"image_id" (v1.0: "id"), "url", "width", "height", ...}]
    region_descriptions.json    [{"id", "regions": [{"region_id", "phrase", "x", "y", "width", "height"}]}]
    objects.json                (optional) [{"image_id", "objects": [{"x","y","w","h","names"|"name","synsets"}]}]
    VG_100K/<id>.jpg, VG_100K_2/<id>.jpg   (folder taken from the image's url)
    capbench_split_seed<seed>.json         (optional: a split to use, e.g. from our writer)

Without that file the split is made by ``make_vg_split`` and saved in the cache
(``$CAPBENCH_CACHE/vg_splits/``), never in the dataset folder: reading (or checking) a dataset
does not change it.

The per-image files are lists aligned index-by-index with ``image_data.json``; the reader checks
the ids agree. Boxes become ``Region(x, y, width, height, phrase)``; objects go to
``meta["objects"] = [{"x","y","w","h","names":[...],"synsets":[...]}]``. The three JSON files are
cached as Arrow files (``capbench.data.arrow_cache``) after a first, validated read.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from capbench.atomic import atomic_write_text
from capbench.cache_entry import json_object, read_cached
from capbench.data.arrow_cache import JsonListSource
from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage, LazyRegions, Region
from capbench.data.sources import READERS
from capbench.data.sources._common import (
    FileListing,
    ReadResult,
    check_split,
    is_json_int,
    is_json_number,
    keep_image,
    load_json,
    require_key,
)
from capbench.paths import cache_root

log = logging.getLogger("capbench.data")

NONE = type(None)  # a JSON null, where a file may have one for an empty list
IMAGE_DATA = "image_data.json"
REGIONS = "region_descriptions.json"
OBJECTS = "objects.json"
IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")
SPLITS = ("train", "val", "test")
UNUSED = "unused"  # images of the full release left out of the paper's 80k / 10k / 10k
DEFAULT_FRACTIONS = (80 / 100, 10 / 100, 10 / 100)
# With at least this many images, each split gets exactly fraction * HELD_OUT_BASE images (the
# 80,000 / 10,000 / 10,000 of Gordo & Larlus 2017, section 6.1, out of the real 108,077) and the
# rest is unused; a smaller set is split by the fractions, train taking the remainder.
HELD_OUT_BASE = 100_000


# --------------------------------------------------------------------------- split
def make_vg_split(
    image_ids: Iterable[int],
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> dict[str, list[int]]:
    """Our seeded train/val/test split of Visual Genome image ids (VG has no official one).

    The ids are sorted, then shuffled by ``numpy.random.default_rng(seed)``, so the split
    depends only on the id set and the seed, not on file order. Val and test sizes are
    ``round(min(n, 100_000) * fraction)``: exactly 10,000 each for the real 108,077 images,
    proportional for smaller sets. Train is 80,000 images of the real release (as the paper),
    the other 8,077 go to ``"unused"``; below 100,000 images train takes every remaining image.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    ids = sorted(set(image_ids))
    held = min(len(ids), HELD_OUT_BASE)
    n_val, n_test = round(held * fractions[1]), round(held * fractions[2])
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    n_train = round(held * fractions[0]) if len(ids) >= HELD_OUT_BASE else len(ids)
    train_end = min(len(ids), n_val + n_test + n_train)
    out = {
        "train": sorted(shuffled[n_val + n_test : train_end]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }
    if train_end < len(ids):
        out[UNUSED] = sorted(shuffled[train_end:])
    return out


def split_file(root: Path, seed: int) -> Path:
    """The split a dataset may carry itself (our writer puts the intended split here)."""
    return Path(root) / f"capbench_split_seed{seed}.json"


def cached_split_file(root: Path, seed: int) -> Path:
    """Where a split made for the dataset at ``root`` is kept: the cache, keyed by the root."""
    key = hashlib.sha256(str(Path(root).absolute()).encode()).hexdigest()[:16]
    # v2: 80k / 10k / 10k and the rest unused (v1 gave train every remaining image)
    return cache_root() / "vg_splits" / key / f"capbench_split_v2_seed{seed}.json"


def write_split_file(path: Path, splits: dict[str, list[int]], seed: int) -> None:
    """Write a split file atomically (temp file + rename): readers never see half a file."""
    payload = {
        "seed": seed,
        "splits": {s: sorted(splits.get(s, [])) for s in (*SPLITS, UNUSED) if s in splits},
    }
    atomic_write_text(path, json.dumps(payload))


def load_or_make_split(root: Path, image_ids: Sequence[int], seed: int) -> dict[int, str]:
    """{image id: split} from the dataset's split file, else from the one saved in the cache,
    else made by ``make_vg_split`` and saved in the cache (once)."""
    path = split_file(root, seed)
    if path.is_file():  # the dataset's own: an error in it is the dataset's to fix
        data = load_json(path)
    else:  # capbench's: a damaged one is made again
        path = cached_split_file(root, seed)
        data = read_cached(path, lambda: json_object(path))
    if data is not None:
        splits = require_key(data, "splits", path, kind=dict)
    else:
        splits = make_vg_split(image_ids, seed)
        try:
            write_split_file(path, splits, seed)
        except OSError as err:  # unwritable cache: the split is deterministic anyway
            log.warning("could not save %s (%s); using the split in memory", path, err)
    split_of: dict[int, str] = {}
    for name in (*SPLITS, UNUSED):
        if name == UNUSED and name not in splits:
            continue
        for image_id in require_key(splits, name, path, kind=list):
            if not is_json_int(image_id):
                raise DatasetFormatError(
                    path, f"{name!r} must list integer image ids, got {image_id!r:.80}"
                )
            if image_id in split_of:
                raise DatasetFormatError(
                    path, f"image in both {split_of[image_id]!r} and {name!r}", image_id
                )
            split_of[image_id] = name
    missing = [i for i in image_ids if i not in split_of]
    if missing or len(split_of) != len(image_ids):
        raise DatasetFormatError(
            path,
            f"split file covers {len(split_of)} images but {IMAGE_DATA} has {len(image_ids)} "
            f"(first unassigned: {missing[:3]}); it was made for another image set: delete it "
            "to regenerate",
        )
    return split_of


# --------------------------------------------------------------------------- sources
BoxColumns = tuple[list[float], list[float], list[float], list[float], list[str]]


class RegionColumns:
    """All regions of a file as flat columns; image ``i`` owns ``offsets[i]:offsets[i+1]``.

    Both the parsing read and the cached read produce this. ``x, y, w, h, phrase`` may be given
    as a function that makes them (the cached read converts its Arrow columns only when some
    record's regions are first used). Records get ``LazyRegions``: the first access of any
    record's ``regions`` builds every ``Region`` of the file (``all_regions``) and each record
    keeps its slice. A read that never touches regions builds none of the ~5M objects.
    """

    def __init__(
        self,
        offsets: list[int],
        region_id: list[Any],
        columns: BoxColumns | Callable[[], BoxColumns],
        id_array: np.ndarray | None = None,
    ) -> None:
        self.offsets = offsets
        self.region_id = region_id
        self.id_array = id_array  # region_id as int64, when the cached read has it for free
        self._columns = columns
        self._all: list[Region] | None = None

    @property
    def columns(self) -> BoxColumns:
        """``(x, y, w, h, phrase)``, every region of the file in order (converted once)."""
        if callable(self._columns):
            with _gc_paused():
                self._columns = self._columns()
        return self._columns

    def __len__(self) -> int:
        return self.offsets[-1]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegionColumns):
            return NotImplemented
        return (self.offsets, self.region_id, self.columns) == (
            other.offsets,
            other.region_id,
            other.columns,
        )

    @property
    def all_regions(self) -> list[Region]:
        """One ``Region`` per region of the file, built once, in one go, with GC paused.

        Built per record instead, with the collector running, the same million objects take
        7x longer (measured: 1.6 s vs 0.22 s for 1M regions).
        """
        if self._all is None:
            with _gc_paused():
                rows = zip(*self.columns)
                # ``tuple.__new__(Region, row)`` skips the Python-level ``__new__`` of a
                # NamedTuple: 2x faster.
                self._all = list(map(tuple.__new__, repeat(Region, len(self)), rows))
        return self._all

    def regions(self, i: int) -> list[Region]:
        return self.all_regions[self.offsets[i] : self.offsets[i + 1]]

    def lazy_regions(self, i: int) -> LazyRegions:
        """Image ``i``'s regions, built when its record's ``regions`` is first read."""
        return LazyRegions(partial(self.regions, i))

    def region_ids(self, i: int) -> list[Any]:
        return self.region_id[self.offsets[i] : self.offsets[i + 1]]

    def image_of(self, position: int) -> int:
        """The index of the image owning the region at flat ``position``."""
        return int(np.searchsorted(self.offsets, position, side="right")) - 1

    def row(self, position: int) -> tuple[Any, ...]:
        """``(x, y, w, h, phrase)`` of the region at flat ``position``."""
        return tuple(column[position] for column in self.columns)

    def without(self, positions: Sequence[int]) -> RegionColumns:
        """The same regions with those at ``positions`` (flat indices) left out."""
        drop = np.zeros(len(self), dtype=bool)
        drop[np.asarray(positions, dtype=np.int64)] = True
        kept = np.cumsum(np.r_[0, ~drop])  # kept[p] = regions kept before flat position p
        offsets = kept[np.asarray(self.offsets)].tolist()
        keep = np.flatnonzero(~drop).tolist()
        region_id = [self.region_id[p] for p in keep]
        x, y, w, h, phrase = ([column[p] for p in keep] for column in self.columns)
        return RegionColumns(offsets, region_id, (x, y, w, h, phrase))


@dataclass
class VGAnnotations:
    """The three aligned JSON files, validated: what a read needs before touching images.

    ``repeated_region_ids``: region ids whose exact repeats were left out of ``regions``.
    """

    ids: list[int]
    images: list[dict[str, Any]]
    regions: RegionColumns
    objects: list[list[dict[str, Any]]] | None
    image_data_path: Path
    region_path: Path
    repeated_region_ids: list[Any]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building millions of small objects triggers repeated full GC passes over all of them
    (measured: 2.3 s -> 0.9 s for 1M Regions); nothing here makes reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _number(obj: dict, key: str, path: Path, record: Any) -> float:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        raise DatasetFormatError(path, f"missing key {key!r}", record)
    if not is_json_number(value):
        raise DatasetFormatError(path, f"{key!r} must be a number, got {value!r}", record)
    return value


def _entry_id(entry: dict, keys: tuple[str, ...], path: Path, index: int) -> int:
    """The image id of a top-level entry, accepting the key variants real files use."""
    for key in keys:
        value = entry.get(key) if isinstance(entry, dict) else None
        if value is not None:
            if not is_json_int(value):
                raise DatasetFormatError(
                    path, f"{key!r} must be an integer, got {value!r:.80}", f"index {index}"
                )
            return value
    raise DatasetFormatError(path, f"missing key {' or '.join(map(repr, keys))}", f"index {index}")


def _check_aligned(ids: list[int], source: JsonListSource, keys: tuple[str, ...]) -> None:
    """The entry ids of ``source`` must equal ``ids`` index by index (HF's assertion)."""
    if len(source) != len(ids):
        raise DatasetFormatError(
            source.path,
            f"{len(source)} entries but {IMAGE_DATA} has {len(ids)}: the lists must align",
        )
    if source.table is not None:
        column = next(k for k in keys if k in source.table.column_names)
        got = source.table.column(column).to_pylist()
    else:
        got = [_entry_id(e, keys, source.path, i) for i, e in enumerate(source.rows)]
    for index, (want, have) in enumerate(zip(ids, got)):
        if want != have:
            raise DatasetFormatError(
                source.path,
                f"id {have} at index {index} but {IMAGE_DATA} has {want} there: "
                "the lists must be aligned with image_data.json",
                have,
            )


def _regions_from_json(source: JsonListSource, ids: list[int]) -> RegionColumns:
    """Validate every region of a freshly parsed file: the first read."""
    offsets, region_id = [0], []
    x: list[float] = []
    y: list[float] = []
    w: list[float] = []
    h: list[float] = []
    phrases: list[str] = []
    path = source.path
    entries = tqdm(
        zip(source.rows, ids),
        total=len(ids),
        desc=f"validating {path.name}",
        disable=len(ids) < 50_000,
        leave=False,
    )
    for entry, image_id in entries:
        # null is no region, as some real files have it
        for r in require_key(entry, "regions", path, image_id, kind=(list, NONE)) or []:
            rid = r.get("region_id") if isinstance(r, dict) else None
            where = f"image {image_id} region {rid}"
            if rid is not None and not is_json_int(rid):
                raise DatasetFormatError(
                    path, f"'region_id' must be an integer, got {rid!r:.80}", f"image {image_id}"
                )
            phrase = require_key(r, "phrase", path, where)
            if not isinstance(phrase, str):
                raise DatasetFormatError(path, f"phrase must be a string, got {phrase!r}", where)
            x.append(float(_number(r, "x", path, where)))
            y.append(float(_number(r, "y", path, where)))
            w.append(float(_number(r, "width", path, where)))
            h.append(float(_number(r, "height", path, where)))
            phrases.append(phrase.strip())
            region_id.append(rid)
        offsets.append(len(x))
    return RegionColumns(offsets, region_id, (x, y, w, h, phrases))


def _repeated_positions(region_id: Sequence[Any] | np.ndarray) -> list[tuple[int, int]]:
    """``(first, later)`` flat positions of every region whose id appeared before (ids that
    are ``None`` are never repeats). Increasing ids (one pass) have none; otherwise a sort,
    not a dict of millions of ints."""
    try:
        ids = np.asarray(region_id, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):  # None or non-integer ids: the slow way
        first: dict[Any, int] = {}
        pairs = []
        for pos, rid in enumerate(region_id):
            if rid is None:
                continue
            if rid in first:
                pairs.append((first[rid], pos))
            else:
                first[rid] = pos
        return pairs
    if ids.size < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return []
    order = np.argsort(ids, kind="stable")  # equal ids keep file order: the first comes first
    ranked = ids[order]
    later = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1
    if later.size == 0:
        return []
    firsts = order[np.searchsorted(ranked, ranked[later], side="left")]
    return sorted(zip(firsts.tolist(), order[later].tolist()), key=lambda pair: pair[1])


def _drop_repeated_regions(
    regions: RegionColumns, ids: list[int], path: Path
) -> tuple[RegionColumns, list[Any]]:
    """Leave out exact repeats of a region (same ``region_id``, image, box and phrase), which
    would otherwise count twice; a region id reused for different content is an error."""
    ids_or_array = regions.id_array if regions.id_array is not None else regions.region_id
    pairs = _repeated_positions(ids_or_array)
    if not pairs:
        return regions, []
    for first, later in pairs:
        rid = regions.region_id[later]
        image_a, image_b = ids[regions.image_of(first)], ids[regions.image_of(later)]
        row_a, row_b = regions.row(first), regions.row(later)
        if (image_a, row_a) != (image_b, row_b):
            raise DatasetFormatError(
                path,
                f"region id given twice with different content: image {image_a} "
                f"(x, y, width, height, phrase) = {row_a}, then image {image_b} {row_b}; "
                "expected unique region ids",
                f"image {image_b} region {rid}",
            )
    later = [p for _, p in pairs]
    return regions.without(later), [regions.region_id[p] for p in later]


def _regions_from_arrow(source: JsonListSource) -> RegionColumns:
    """Columns straight from the cached (validated when cached) Arrow table: the fast read.

    Offsets and region ids are read now (every record carries its region ids); boxes and
    phrases are converted to Python only when the first record's regions are used.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = source.table.column("regions").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    offsets = [0, *np.cumsum(lengths).tolist()]
    flat = column.flatten()
    if len(flat) == 0:
        return RegionColumns(offsets, [], ([], [], [], [], []))
    fields = {f.name for f in flat.type}
    ids = flat.field("region_id") if "region_id" in fields else None
    id_array = None
    if ids is None:
        region_id: list[Any] = [None] * len(flat)
    elif pa.types.is_integer(ids.type) and ids.null_count == 0:
        id_array = ids.to_numpy().astype(np.int64, copy=False)
        region_id = id_array.tolist()  # 3x faster than to_pylist for a million ints
    else:
        region_id = ids.to_pylist()

    def floats(name: str) -> list[float]:
        return pc.cast(flat.field(name), pa.float64()).to_numpy(zero_copy_only=False).tolist()

    def columns() -> BoxColumns:
        phrases = pc.utf8_trim_whitespace(flat.field("phrase")).to_pylist()
        return floats("x"), floats("y"), floats("width"), floats("height"), phrases

    return RegionColumns(offsets, region_id, columns, id_array)


def _objects(source: JsonListSource, ids: list[int]) -> list[list[dict[str, Any]]]:
    """Per image ``[{"x","y","w","h","names","synsets"}]``; ``name`` (old files) -> ``names``.

    Box numbers become floats on both paths (Arrow turns an int column with one float in it
    into floats), so a cached read equals a parsing one exactly, types included.
    """
    out = []
    path = source.path
    for entry, image_id in zip(source.dicts(), ids):
        objects = []
        for o in require_key(entry, "objects", path, image_id, kind=(list, NONE)) or []:
            where = f"image {image_id} object {o.get('object_id') if isinstance(o, dict) else None}"
            box = {k: float(_number(o, k, path, where)) for k in ("x", "y", "w", "h")}
            names = o.get("names")
            if names is None:
                names = o.get("name")
            if names is None:
                raise DatasetFormatError(path, "missing key 'names' (or the older 'name')", where)
            names = [names] if isinstance(names, str) else names
            synsets = o.get("synsets") or []
            for key, value in (("names", names), ("synsets", synsets)):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise DatasetFormatError(
                        path, f"{key!r} must be a list of strings, got {value!r:.80}", where
                    )
            objects.append({**box, "names": list(names), "synsets": list(synsets)})
        out.append(objects)
    return out


def load_annotations(root: Path, *, use_cache: bool = True) -> VGAnnotations:
    """Read and validate the three JSON files (from the Arrow cache when possible).

    The parsed files are cached only after all of them validated, so a cache hit can skip
    validation. This is the stage ``benchmarks/perf/arrow_cache.py`` times.
    """
    root = Path(root).absolute()
    with _gc_paused():
        image_src = JsonListSource(root / IMAGE_DATA, use_cache)
        images = image_src.dicts()
        ids = [_entry_id(e, ("image_id", "id"), image_src.path, i) for i, e in enumerate(images)]
        if len(set(ids)) != len(ids):
            raise DatasetFormatError(image_src.path, "duplicate image ids")
        region_src = JsonListSource(root / REGIONS, use_cache)
        _check_aligned(ids, region_src, ("id", "image_id"))
        if region_src.table is not None:
            regions = _regions_from_arrow(region_src)
        else:
            regions = _regions_from_json(region_src, ids)
        # on the raw rows, so the cached read finds (and counts) the same repeats
        regions, repeated = _drop_repeated_regions(regions, ids, region_src.path)
        object_src = objects = None
        if (root / OBJECTS).is_file():
            object_src = JsonListSource(root / OBJECTS, use_cache)
            _check_aligned(ids, object_src, ("image_id", "id"))
            objects = _objects(object_src, ids)
        for src in (image_src, region_src, object_src):
            if src is not None:
                src.store()
    return VGAnnotations(ids, images, regions, objects, image_src.path, region_src.path, repeated)


def _image_path(root: str, image: dict, image_id: int, listing: FileListing, source: Path) -> str:
    """The image file: the url's folder (VG_100K or VG_100K_2), else whichever holds it."""
    url = image.get("url") or ""
    if not isinstance(url, str):
        raise DatasetFormatError(source, f"'url' must be a string, got {url!r:.80}", image_id)
    parts = url.rstrip("/").split("/")
    filename = parts[-1] if url else f"{image_id}.jpg"
    folders = list(IMAGE_FOLDERS)
    if len(parts) >= 2 and parts[-2] in IMAGE_FOLDERS:
        folders.remove(parts[-2])
        folders.insert(0, parts[-2])
    for folder in folders:
        if listing.has(f"{root}{os.sep}{folder}", filename):
            return f"{root}{os.sep}{folder}{os.sep}{filename}"
    return f"{root}{os.sep}{folders[0]}{os.sep}{filename}"


# --------------------------------------------------------------------------- reader
@READERS.register("visual_genome")
def read_visual_genome(
    root: Path,
    split: str | None = None,
    *,
    allow_missing_images: bool = False,
    split_seed: int = 0,
    use_cache: bool = True,
) -> ReadResult:
    """Read Visual Genome with region phrases (and objects when ``objects.json`` is present)."""
    root = Path(root).absolute()
    check_split(split, SPLITS, "visual_genome")
    if not isinstance(split_seed, int) or isinstance(split_seed, bool):
        raise ValueError(f"split_seed must be an integer, got {split_seed!r}")
    ann = load_annotations(root, use_cache=use_cache)
    split_of = load_or_make_split(root, ann.ids, split_seed)
    result = ReadResult()
    result.drop_repeats(
        "duplicate_region",
        ann.region_path,
        ann.repeated_region_ids,
        "exact repeat(s) of a region (same region_id, image, box and phrase)",
    )
    listing = FileListing()
    root_str = str(root)
    n = len(ann.ids)
    with _gc_paused():
        for i in tqdm(range(n), desc="visual_genome records", disable=n < 50_000, leave=False):
            image_id, image = ann.ids[i], ann.images[i]
            if split is not None and split_of[image_id] != split:
                continue
            image_path = _image_path(root_str, image, image_id, listing, ann.image_data_path)
            if not keep_image(  # the listing's answer again: no second stat
                result, image_path, image_id, ann.image_data_path, allow_missing_images, listing
            ):
                continue
            meta: dict[str, Any] = {
                "vg_id": image_id,
                "url": image.get("url"),
                "width": image.get("width"),
                "height": image.get("height"),
                "coco_id": image.get("coco_id"),
                "flickr_id": image.get("flickr_id"),
                "region_ids": ann.regions.region_ids(i),
            }
            if ann.objects is not None:
                meta["objects"] = ann.objects[i]
            result.append(
                CaptionedImage(
                    image_id=str(image_id),
                    image_path=image_path,
                    split=split_of[image_id],
                    regions=ann.regions.lazy_regions(i),
                    source="visual_genome",
                    meta=meta,
                )
            )
    return result
