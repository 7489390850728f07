"""One writer per journal: an exclusive advisory lock held while a study writes.

A :class:`~aiotune.JsonlWriter` takes ``flock(LOCK_EX)`` on its own open file
of the journal before it writes anything, and holds it until it closes the
file. ``flock`` locks belong to the open file description, not the process:
two writers in one process conflict as two processes do, and closing some
other descriptor of the file (a reader's) does not drop the lock, as it would
drop a POSIX ``fcntl`` record lock. The OS releases it when its holder's file
is closed, however the holder ends, SIGKILL included.

Who holds the lock is written beside the journal in ``<journal>.lock``
(``{"host", "pid", "since"}``), for the error a refused writer raises. That
file is only a label: the lock is the ``flock``, so a label left behind by a
killed writer blocks nothing, and the next writer replaces it.

Readers never lock. A study resuming a journal probes the lock (shared, non
blocking, released at once) and records the file's size; if the journal has
grown by the time the study's own writer holds the lock, another study wrote
to it in between, and the writer refuses to append records that would clash.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any, Final

import anyio
import anyio.to_thread
import orjson

from aiotune.errors import JournalError
from aiotune.journal.reader import Journal, read_journal

logger = logging.getLogger("aiotune")

# A writer that finds the lock taken tries again for this long, so that a resuming
# study's momentary probe (a shared lock held for microseconds) never fails it.
_PATIENCE: Final = 0.25
_RETRY_EVERY: Final = 0.025


@dataclass(frozen=True, slots=True)
class _Stamp:
    """A journal file as a resuming study read it: its identity and size."""

    device: int
    inode: int
    size: int


# The journal each resuming study read, keyed by the study (a Tuner).
_resumed: weakref.WeakKeyDictionary[Any, _Stamp] = weakref.WeakKeyDictionary()


def label_path(path: str) -> str:
    """Where the holder of ``path``'s lock is named."""
    return path + ".lock"


class WriterLock:
    """The exclusive lock of one writer on its journal, open as ``fd``.

    The lock itself goes when ``fd`` is closed; :meth:`release` removes the
    holder's label and must be called first, while the lock is still held.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._labelled = False

    async def acquire(self, fd: int, study: object) -> None:
        """Lock the journal open as ``fd`` for ``study``, or raise :class:`~aiotune.JournalError`.

        The error names the holder when its label says who it is. A journal
        ``study`` resumed is refused too when it grew after the study read it.
        """
        deadline = anyio.current_time() + _PATIENCE
        while True:
            try:
                locked = await anyio.to_thread.run_sync(_try_lock, fd, _LOCK_EX)
            except OSError as exc:  # no locks here (some network or FUSE file systems)
                logger.warning(
                    "%s: cannot lock the journal (%s); nothing stops a second writer",
                    self._path,
                    exc,
                )
                return
            if locked is None:  # not a regular file (a device, a pipe): nothing to protect
                return
            if locked:
                break
            if anyio.current_time() >= deadline:
                holder = await anyio.to_thread.run_sync(_holder, self._path)
                raise JournalError(
                    self._path,
                    None,
                    f"another study is writing this journal ({holder}); one journal takes one "
                    "writer: write this study to another file, or wait for that one to end",
                )
            await anyio.sleep(_RETRY_EVERY)
        self._labelled = True  # from here on the label is ours to write and remove
        await anyio.to_thread.run_sync(_check_unchanged, fd, self._path, _stamp_of(study))
        await anyio.to_thread.run_sync(_write_label, self._path)

    def release(self) -> None:
        """Remove the holder's label (blocking: call it from a thread), before closing the file."""
        if self._labelled:
            self._labelled = False
            try:
                os.unlink(label_path(self._path))
            except OSError:
                pass


async def read_for_resume(path: str | os.PathLike[str], study: object) -> Journal:
    """Read the journal at ``path`` for ``study`` to resume, refusing one being written.

    Raises :class:`~aiotune.JournalError` when another live study holds the
    journal's lock. The size read is kept, so that ``study``'s own writer can
    refuse the file if another study appends to it before that writer starts.
    """
    where = os.fspath(path)
    stamp = await anyio.to_thread.run_sync(_probe, where)
    if stamp is not None:
        try:
            _resumed[study] = stamp
        except TypeError:  # a study that cannot be weakly referenced: no later check
            pass
    return await anyio.to_thread.run_sync(read_journal, where)


# -- blocking helpers, run in a thread ------------------------------------------------------

if sys.platform != "win32":
    import fcntl

    _LOCK_EX: Final = fcntl.LOCK_EX
    _LOCK_SH: Final = fcntl.LOCK_SH

    def _flock(fd: int, how: int) -> None:
        fcntl.flock(fd, how | fcntl.LOCK_NB)

else:  # pragma: no cover - no flock on Windows: journals are not locked there
    _LOCK_EX: Final = 2
    _LOCK_SH: Final = 1

    def _flock(fd: int, how: int) -> None:
        raise OSError(errno.ENOSYS, "no flock on Windows")


def _try_lock(fd: int, how: int) -> bool | None:
    """Take the lock without waiting: ``True``, ``False`` when held, ``None`` for no file."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    try:
        _flock(fd, how)
    except BlockingIOError:
        return False
    return True


def _probe(path: str) -> _Stamp | None:
    """Refuse a journal another study is writing; its identity and size as of now."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # reading it reports the problem
    try:
        try:
            locked = _try_lock(fd, _LOCK_SH)
        except OSError:
            locked = None  # no locks here: nothing to check
        if locked is False:
            raise JournalError(
                path,
                None,
                f"cannot resume: another study is writing this journal ({_holder(path)}); "
                "wait for it to end",
            )
        info = os.fstat(fd)
        return _Stamp(info.st_dev, info.st_ino, info.st_size)
    finally:
        os.close(fd)  # drops the shared lock


def _check_unchanged(fd: int, path: str, stamp: _Stamp | None) -> None:
    """Refuse a resumed journal that another study appended to after it was read."""
    if stamp is None:
        return
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) == (stamp.device, stamp.inode) and info.st_size != stamp.size:
        raise JournalError(
            path,
            None,
            f"another study wrote to this journal after this one read it to resume "
            f"({stamp.size} bytes then, {info.st_size} now), so their trials would clash; "
            "resume it again",
        )


def _stamp_of(study: object) -> _Stamp | None:
    try:
        return _resumed.get(study)
    except TypeError:  # not weakly referenceable: it cannot have been recorded
        return None


def _write_label(path: str) -> None:
    label = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        with open(label_path(path), "wb") as file:
            file.write(orjson.dumps(label) + b"\n")
    except OSError as exc:  # the lock holds without it; a refused writer just cannot say who
        logger.debug("%s: cannot write %s: %s", path, label_path(path), exc)


def _holder(path: str) -> str:
    """Who holds ``path``'s lock, from its label: ``"host h, pid p, since t"`` or unknown."""
    unknown = "holder unknown"
    try:
        with open(label_path(path), "rb") as file:
            label = orjson.loads(file.read(4096))
        host, pid, since = label["host"], label["pid"], label["since"]
    except (OSError, orjson.JSONDecodeError, TypeError, KeyError):
        return unknown
    if not (isinstance(host, str) and isinstance(pid, int) and isinstance(since, str)):
        return unknown
    if host == socket.gethostname():
        if pid == os.getpid():
            return f"this process, pid {pid}, since {since}"
        if not _alive(pid):
            return unknown  # a label left by a writer that was killed
    return f"host {host}, pid {pid}, since {since}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else
    return True
