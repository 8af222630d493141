"""Read a big JSON list file once; afterwards serve it from an Arrow file on disk.

Visual Genome's ``region_descriptions.json`` is ~700 MB: parsing it costs far more than the
rest of a read. The first read parses the JSON (and the reader validates it); ``store`` then
saves it as one Arrow IPC file under ``capbench.paths.cache_root()/arrow/<path-hash>-<state-hash>.arrow``,
keyed by the source file's absolute path, size and mtime. Later reads memory-map it (``lookup``)
and never parse JSON. Editing the source file changes its size or mtime, hence the key: the
stale entry is a miss and is deleted when the new one is stored.

Only pyarrow is needed: the cache is one table written once and memory-mapped back, which is
exactly Arrow's IPC file format. A Hugging Face ``datasets.Dataset`` would wrap the same table
in its own folder layout and state files (and cost ~1 s to import) for nothing the readers use:
they read columns of the ``pyarrow.Table`` directly.

Arrow infers one schema for the whole list, so a key that some entries lack comes back as
``None`` in those entries (e.g. Visual Genome's old ``name`` next to ``names``), and a column
mixing ints and floats comes back as floats. Readers treat ``None`` as absent; entries whose
keys agree round-trip exactly (see ``tests/data/test_arrow_cache.py``).

The cache is only ever a speed-up, never a reason for a read to fail: an entry that cannot be
loaded (a truncated or damaged Arrow file) is deleted with a warning naming it and rebuilt from
the JSON, and a cache folder that cannot be written (read-only, or ``CAPBENCH_CACHE`` naming a
file) gives a warning naming the path and a read without the cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbench.atomic import atomic_path
from capbench.cache_entry import read_cached
from capbench.data.errors import DatasetFormatError
from capbench.data.sources._common import load_json, require_file
from capbench.paths import cache_root

if TYPE_CHECKING:  # imported when a cache is really used
    import pyarrow as pa

log = logging.getLogger("capbench.data")

# Bump when the stored layout changes so old caches are never read back (2: Arrow IPC files;
# 1 was a ``datasets`` folder).
CACHE_VERSION = 2


def cache_file_for(path: Path) -> Path:
    """The cache file for ``path`` in its current state (absolute path, size, mtime)."""
    path = Path(path).absolute()
    st = path.stat()
    path_hash = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    state = f"{st.st_size}:{st.st_mtime_ns}:{CACHE_VERSION}"
    state_hash = hashlib.sha256(state.encode()).hexdigest()[:16]
    return cache_root() / "arrow" / f"{path_hash}-{state_hash}.arrow"


def lookup(path: Path) -> tuple[Path, pa.Table | None]:
    """``(cache_file, table)`` for ``path``: the table if cached, else ``None`` (a miss).

    Take the key *before* parsing the file, and hand it to ``store``: a file rewritten while
    being parsed is then never cached under its new state.
    """
    cache_file = cache_file_for(path)
    return cache_file, read_cached(cache_file, lambda: _open(cache_file))


def _open(cache_file: Path) -> pa.Table:
    """The cached table, memory-mapped: nothing is copied until a column is used."""
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(str(cache_file), "r")).read_all()


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """A list of JSON objects as one Arrow table (schema inferred over *all* rows)."""
    import pyarrow as pa

    if not all(isinstance(row, dict) for row in rows):
        raise TypeError("the Arrow cache stores JSON lists of objects only")
    return pa.Table.from_struct_array(pa.array(rows))


def store(cache_file: Path, rows: list[dict[str, Any]]) -> pa.Table | None:
    """Save ``rows`` (already parsed and validated) as the Arrow file ``cache_file``.

    Written atomically (``capbench.atomic``), so a crash never leaves a half file that
    ``lookup`` would trust; older entries for the same source file are removed. Rows Arrow
    cannot type (one key holding a list in one entry and a string in another), empty lists and
    a cache folder that cannot be written are not cached: ``None`` is returned (with a warning,
    naming the folder, for the first and the last).
    """
    import pyarrow as pa

    if not rows:  # nothing to gain, and an empty table has no columns to read back
        return None
    try:
        arrow = to_arrow(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:  # e.g. a list here, a string there
        log.warning(
            "not caching %s as Arrow (%s); it will be parsed on every read", cache_file, err
        )
        return None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with (
            atomic_path(cache_file) as tmp,
            pa.OSFile(str(tmp), "wb") as sink,
            pa.ipc.new_file(sink, arrow.schema) as writer,
        ):
            writer.write_table(arrow)
    except OSError as err:
        log.warning(
            "cannot write the Arrow cache under %s (%s); reading without it (set CAPBENCH_CACHE "
            "to a writable folder to cache)",
            cache_file.parent,
            err,
        )
        return None
    prefix = cache_file.name.split("-")[0] + "-"
    for old in cache_file.parent.glob(prefix + "*"):
        if old != cache_file:
            old.unlink(missing_ok=True)
    return read_cached(cache_file, lambda: _open(cache_file))  # None: read without it


def load_json_list(path: Path, *, use_cache: bool = True) -> pa.Table | list[Any]:
    """A JSON list file as an Arrow table (cached), or as parsed JSON when ``use_cache=False``."""
    if not use_cache:
        return load_json(path)
    cache_file, hit = lookup(path)
    if hit is not None:
        return hit
    rows = load_json(path)
    if not isinstance(rows, list):
        raise DatasetFormatError(path, "expected a JSON list at the top level")
    stored = store(cache_file, rows)
    return rows if stored is None else stored


class JsonListSource:
    """A JSON list file as a reader sees it: freshly parsed rows (a miss, or ``use_cache=False``)
    or the cached Arrow table (a hit). Readers validate ``rows`` and then call ``store``."""

    def __init__(self, path: Path, use_cache: bool = True) -> None:
        self.path = require_file(Path(path), "JSON list file")
        self.cache_file: Path | None = None
        self.rows: list[Any] | None = None
        self.table: pa.Table | None = None
        if use_cache:
            self.cache_file, self.table = lookup(self.path)
            if self.table is not None:
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
        if self.rows is not None and self.cache_file is not None:
            store(self.cache_file, self.rows)
