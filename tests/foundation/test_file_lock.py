"""One process at a time in a locked folder: the second waits, says for whom, then goes on."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from capbench import file_lock
from capbench.file_lock import exclusive
from tests.lock_holder import hold


def _take_in_a_thread(lock, what: str = "x") -> tuple[threading.Thread, threading.Event]:
    """A thread of this process taking ``lock``; the event is set once it holds it."""
    entered = threading.Event()

    def take() -> None:
        with exclusive(lock, what):
            entered.set()

    t = threading.Thread(target=take)
    t.start()
    return t, entered


def test_a_second_process_waits_for_the_holder_and_says_whom(tmp_path, capsys):
    lock, release = tmp_path / "work" / ".lock", tmp_path / "release"
    holder = hold(lock, release)
    t, entered = _take_in_a_thread(lock, "training in work")
    time.sleep(0.5)
    assert not entered.is_set()  # blocked while the other process holds it
    release.touch()
    t.join(timeout=30)
    assert entered.is_set() and holder.wait(timeout=30) == 0
    err = capsys.readouterr().err
    assert f"waiting for pid {holder.pid} on " in err
    assert f"which is training in work (lock {lock})" in err


def test_a_free_lock_is_taken_silently_and_names_its_holder(tmp_path, capsys):
    lock = tmp_path / "a" / "b.lock"
    with exclusive(lock, "x"):
        assert lock.read_text().startswith("pid ")
    with exclusive(lock, "x"):  # released: taken again at once
        pass
    assert capsys.readouterr().err == ""


def test_a_filesystem_without_locks_goes_on_with_a_warning(tmp_path, monkeypatch):
    def no_locks(*_):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(file_lock.fcntl, "flock", no_locks)
    ran = []
    warned = pytest.warns(UserWarning, match=r"cannot lock .*No locks available.*may do the same")
    with warned, exclusive(tmp_path / "nfs.lock", "training in nfs"):
        ran.append(True)
    assert ran == [True]
    # the body's own error is not reported as raised "during handling of" flock's
    with pytest.raises(RuntimeError) as err, exclusive(tmp_path / "nfs.lock", "training"):
        raise RuntimeError("the training failed")
    assert err.value.__context__ is None


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / ".lock"
    holder = hold(lock, tmp_path / "never")
    holder.kill()
    holder.wait(timeout=30)
    t, entered = _take_in_a_thread(lock)
    t.join(timeout=30)
    assert entered.is_set()
