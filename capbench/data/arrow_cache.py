"""Read a big JSON list file once; afterwards serve it from an Arrow dataset on disk.

Visual Genome's ``region_descriptions.json`` is ~700 MB: parsing it costs far more than the
rest of a read. The first read parses the JSON (and the reader validates it); ``store`` then
saves it as a Hugging Face ``datasets`` Arrow dataset under
``capbench.paths.cache_root()/arrow/<path-hash>-<state-hash>``, keyed by the source file's
absolute path, size and mtime. Later reads memory-map it (``lookup``) and never parse JSON.
Editing the source file changes its size or mtime, hence the key: the stale entry is a miss
and is deleted when the new one is stored.

The cache is only ever a speed-up, never a reason for a read to fail: an entry that cannot be
loaded (a truncated or deleted Arrow file, a mangled ``state.json``) is deleted with a warning
naming it and rebuilt from the JSON, and a cache folder that cannot be written (read-only, or
``CAPBENCH_CACHE`` naming a file) gives a warning naming the path and a read without the cache.

Arrow infers one schema for the whole list, so a key that some entries lack comes back as
``None`` in those entries (e.g. Visual Genome's old ``name`` next to ``names``), and a column
mixing ints and floats comes back as floats. Readers treat ``None`` as absent; entries whose
keys agree round-trip exactly (see ``tests/data/test_arrow_cache.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbench.data.errors import DatasetFormatError
from capbench.data.sources._common import load_json, require_file
from capbench.paths import cache_root

if TYPE_CHECKING:  # ``datasets`` takes ~1 s to import: only when a cache is really used.
    import datasets
    import pyarrow as pa

log = logging.getLogger("capbench.data")

# Bump when the stored layout changes so old caches are never read back.
CACHE_VERSION = 1


def cache_dir_for(path: Path) -> Path:
    """The cache folder for ``path`` in its current state (absolute path, size, mtime)."""
    path = Path(path).absolute()
    st = path.stat()
    path_hash = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    state = f"{st.st_size}:{st.st_mtime_ns}:{CACHE_VERSION}"
    state_hash = hashlib.sha256(state.encode()).hexdigest()[:16]
    return cache_root() / "arrow" / f"{path_hash}-{state_hash}"


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence ``datasets``' progress bars for our tiny, fast saves and loads."""
    import datasets
    from datasets.utils import logging as ds_logging

    was_disabled = datasets.are_progress_bars_disabled()
    verbosity = ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity_error()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
        ds_logging.set_verbosity(verbosity)


def lookup(path: Path) -> tuple[Path, datasets.Dataset | None]:
    """``(cache_dir, dataset)`` for ``path``: the dataset if cached, else ``None`` (a miss).

    Take the key *before* parsing the file, and hand it to ``store``: a file rewritten while
    being parsed is then never cached under its new state.
    """
    cache_dir = cache_dir_for(path)
    if not (cache_dir / "state.json").is_file():
        return cache_dir, None
    loaded = _load(cache_dir)
    if loaded is None:
        log.warning(
            "damaged Arrow cache %s (for %s): deleting it, it will be rebuilt", cache_dir, path
        )
        shutil.rmtree(cache_dir, ignore_errors=True)
    return cache_dir, loaded


def _load(cache_dir: Path) -> datasets.Dataset | None:
    """The stored dataset, or ``None`` when it cannot be loaded (the reason is logged)."""
    import datasets

    try:
        with _quiet():
            return datasets.load_from_disk(str(cache_dir))
    except Exception as err:  # datasets/pyarrow raise many types for a damaged folder
        log.debug("cannot load %s: %s: %s", cache_dir, type(err).__name__, err)
        return None


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """A list of JSON objects as one Arrow table (schema inferred over *all* rows)."""
    import pyarrow as pa

    if not all(isinstance(row, dict) for row in rows):
        raise TypeError("the Arrow cache stores JSON lists of objects only")
    return pa.Table.from_struct_array(pa.array(rows))


def store(cache_dir: Path, rows: list[dict[str, Any]]) -> datasets.Dataset | None:
    """Save ``rows`` (already parsed and validated) as the Arrow dataset at ``cache_dir``.

    Written to a temporary folder and renamed, so a crash never leaves a half cache that
    ``lookup`` would trust; older entries for the same source file are removed. Rows Arrow
    cannot type (one key holding a list in one entry and a string in another), empty lists and
    a cache folder that cannot be written are not cached: ``None`` is returned (with a warning,
    naming the folder, for the first and the last).
    """
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    if not rows:  # nothing to gain, and an empty table has no columns to read back
        return None
    try:
        arrow = to_arrow(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:  # e.g. a list here, a string there
        log.warning("not caching %s as Arrow (%s); it will be parsed on every read", cache_dir, err)
        return None
    tmp = cache_dir.with_name(f"{cache_dir.name}.tmp-{os.getpid()}")
    try:
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        with _quiet():
            datasets.Dataset(InMemoryTable(arrow)).save_to_disk(str(tmp))
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning(
            "cannot write the Arrow cache under %s (%s); reading without it (set CAPBENCH_CACHE "
            "to a writable folder to cache)",
            cache_dir.parent,
            err,
        )
        return None
    try:
        os.replace(tmp, cache_dir)
    except OSError:  # another process stored the same state first: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    prefix = cache_dir.name.split("-")[0] + "-"
    for old in cache_dir.parent.glob(prefix + "*"):
        if old != cache_dir and ".tmp-" not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    loaded = _load(cache_dir)
    if loaded is None:
        log.warning(
            "the Arrow cache %s cannot be loaded back; reading without it (delete that folder)",
            cache_dir,
        )
    return loaded


def table(dataset: datasets.Dataset) -> pa.Table:
    """The pyarrow table behind a cached dataset, for column-wise (fast) access."""
    return dataset.data.table


def load_json_list(path: Path, *, use_cache: bool = True) -> datasets.Dataset | list[Any]:
    """A JSON list file as an Arrow dataset (cached), or as parsed JSON when ``use_cache=False``."""
    if not use_cache:
        return load_json(path)
    cache_dir, hit = lookup(path)
    if hit is not None:
        return hit
    rows = load_json(path)
    if not isinstance(rows, list):
        raise DatasetFormatError(path, "expected a JSON list at the top level")
    stored = store(cache_dir, rows)
    return rows if stored is None else stored


class JsonListSource:
    """A JSON list file as a reader sees it: freshly parsed rows (a miss, or ``use_cache=False``)
    or the cached Arrow table (a hit). Readers validate ``rows`` and then call ``store``."""

    def __init__(self, path: Path, use_cache: bool = True) -> None:
        self.path = require_file(Path(path), "JSON list file")
        self.cache_dir: Path | None = None
        self.rows: list[Any] | None = None
        self.table: pa.Table | None = None
        if use_cache:
            self.cache_dir, hit = lookup(self.path)
            if hit is not None:
                self.table = table(hit)
                return
        self.rows = load_json(self.path)
        if not isinstance(self.rows, list):
            raise DatasetFormatError(self.path, "expected a JSON list at the top level")

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.table.num_rows

    def dicts(self) -> list[dict[str, Any]]:
        """Every entry as a dict (row-wise; fine for small files, slow for huge nested ones)."""
        return self.rows if self.rows is not None else self.table.to_pylist()

    def store(self) -> None:
        """Cache the parsed rows; call only after the reader validated them."""
        if self.rows is not None and self.cache_dir is not None:
            store(self.cache_dir, self.rows)
