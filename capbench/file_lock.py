"""One process at a time trains in a folder: an exclusive lock on a file beside the work.

Atomic writes keep every file whole, but not two processes from doing the same work at once:
two terminals running the same rows, two SLURM jobs whose rows pretrain the same scenes trunk, a
requeued job overlapping the one it replaces. Each then trained the model itself, and the last
to finish replaced the others' files; a row that had already loaded its copy used another model
than the rows after it (on a GPU the copies can differ by rounding). With the lock, the second
process waits, says for whom, and then finds the first one's result.

``exclusive`` is the lock; ``job_lock``, what training takes, is it on rank 0 of a DDP job
only. ``flock`` locks are released by the kernel when their process dies, so a killed run leaves
no stale lock. On a filesystem without locks (some NFS mounts) the work goes on unlocked, with a
warning, as before.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

TRAIN_LOCK = ".train.lock"  # in a workdir: held by the process training there (fit_resumable)

_UNLOCKED_WARNED: set[str] = set()


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it (``pid N on HOST``), or "another process"."""
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


def _lock(fh: IO[str], path: Path, what: str) -> bool:
    """Lock ``fh`` (waiting, with a message, while another process holds it); False where the
    filesystem has no locks, with a warning once per folder."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(
            f"waiting for {_holder(path)}, which is {what} (lock {path})",
            file=sys.stderr,
            flush=True,
        )
        fcntl.flock(fh, fcntl.LOCK_EX)
    except OSError as err:  # ENOLCK, EOPNOTSUPP: a filesystem without locks
        if str(path.parent) not in _UNLOCKED_WARNED:
            _UNLOCKED_WARNED.add(str(path.parent))
            warnings.warn(
                f"{path}: cannot lock ({err}); {what} without a lock, so another process "
                "may do the same work at once",
                stacklevel=4,
            )
        return False
    return True


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the ``with`` body; a process
    that finds it held prints that it waits, for whom and for what (``what``: "training in
    FOLDER"), and blocks until it is free."""
    path = Path(path)
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        if not _lock(fh, path, what):
            yield  # outside the except clause: an error of the body is not chained to flock's
            return
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def held_by(path: str | Path) -> str | None:
    """Who holds the lock at ``path`` now (``pid N on HOST``), or None where nobody does (or the
    file is not there, or the filesystem has no locks). A look, not a lock: for work that must
    not start while another process is inside an :func:`exclusive` block, such as deleting its
    folder."""
    path = Path(path)
    if fcntl is None or not path.is_file():
        return None
    try:
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder(path)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:  # gone meanwhile, unreadable, or no locks on this filesystem
        return None
    return None


def job_lock(path: str | Path, what: str) -> AbstractContextManager[None]:
    """:func:`exclusive` for work a run's job does once: taken by rank 0 of a DDP launch only.
    Its other ranks (started by it, or beside it by SLURM or torchrun) go on unlocked: rank 0's
    trainer meets them in collectives, so a rank waiting on rank 0's lock would hang the job."""
    from capbench.ranks import launch_rank

    return exclusive(path, what) if launch_rank() == 0 else nullcontext()
