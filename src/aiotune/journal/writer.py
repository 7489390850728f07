""":class:`JsonlWriter`: the observer that appends a study's journal to disk."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Final, Literal

import aiofiles
import anyio
import anyio.to_thread
from aiofiles.threadpool.binary import AsyncFileIO

from aiotune._checks import check_choice
from aiotune.errors import JournalError
from aiotune.journal._lock import WriterLock
from aiotune.journal.format import (
    decode_header,
    encode_header,
    encode_repair,
    encode_trial,
    parse_line,
)
from aiotune.observers.base import StudyHandle
from aiotune.trial import Trial, TrialStatus, TuningResult

Durability = Literal["flush", "fsync"]

# A header longer than this is not one: it stops reading a huge file with no newline.
_MAX_HEADER_BYTES: Final = 64 * 1024 * 1024


class JsonlWriter:
    """Append every finished trial of a study to the JSONL journal at ``path``.

    On start, a missing or empty file gets a header line; an existing journal
    is appended to when its header matches the study's space (by fingerprint)
    and direction, and refused with a :class:`~aiotune.JournalError` otherwise.
    A torn last line left by a killed writer is ended with a newline first, so
    the lines appended after it are intact. The directory must exist.

    One journal takes one writer: from ``on_start`` until the study ends, the
    writer holds an exclusive advisory lock on the file (``flock``; the OS
    drops it if the process dies), and a second writer of the same file, in
    this process or another, fails its study before any trial runs with a
    :class:`~aiotune.JournalError` naming the holder's host and pid (kept in
    ``<path>.lock`` while the lock is held). Readers never take the lock.

    Each batch of finished trials is written with one write and a flush, at
    most one write every :attr:`WRITE_INTERVAL` seconds: trials finishing
    faster than that wait (that long at most) to share a write; with
    ``durability="fsync"`` the file is also fsynced, so a recorded trial
    survives a power cut, not only a crash of the process. ``cancelled``
    trials are never written: they run again when the study is resumed.

    The journal is ``critical``: if it cannot be written the study fails,
    rather than running on with results that would be lost.
    """

    critical = True

    WRITE_INTERVAL = 0.005
    """Seconds between two writes at least: quick trials share one write (and thread hop)."""

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "flush") -> None:
        self._path = os.fspath(path)
        self._durability: Durability = check_choice("durability", durability, ("flush", "fsync"))
        self._file: AsyncFileIO | None = None
        self._lock: WriterLock | None = None
        self._study: object = None  # the study being written, while the file is open
        self._written_at = -math.inf  # when the last write ended (anyio's clock)

    @property
    def path(self) -> str:
        """The journal file."""
        return self._path

    @property
    def durability(self) -> Durability:
        """``"flush"`` (survives a crash of the process) or ``"fsync"`` (survives a power cut)."""
        return self._durability

    def __repr__(self) -> str:
        return f"JsonlWriter({self._path!r}, durability={self._durability!r})"

    async def on_start(self, tuner: StudyHandle) -> None:
        """Lock and open the journal, checking an existing one or writing a new one's header."""
        if self._file is not None:
            if tuner is not self._study:
                raise JournalError(
                    self._path,
                    None,
                    "this JsonlWriter is already writing another study; "
                    "give each study its own writer and file",
                )
            return
        try:
            file = await aiofiles.open(self._path, "ab", buffering=0)
        except FileNotFoundError:
            directory = os.path.dirname(self._path) or os.curdir
            raise JournalError(
                self._path, None, f"cannot write: directory {directory!r} does not exist"
            ) from None
        except OSError as exc:
            raise JournalError(self._path, None, f"cannot write: {exc}") from exc
        lock = WriterLock(self._path)
        try:
            await lock.acquire(file.fileno(), tuner)  # before reading: the file is ours now
            first_line, ends_with_newline = await anyio.to_thread.run_sync(_inspect, self._path)
        except OSError as exc:
            await _close_quietly(file, lock)
            raise JournalError(self._path, None, f"cannot read: {exc}") from exc
        except BaseException:
            await _close_quietly(file, lock)
            raise
        self._file, self._lock, self._study = file, lock, tuner
        try:
            if first_line is None:
                await self._write(encode_header(tuner.space, tuner.direction, tuner.strategy))
            else:
                self._check_header(first_line, tuner)
                if not ends_with_newline:
                    await self._write(encode_repair())
        except BaseException:
            await self._abandon()
            raise

    async def on_trial(self, trial: Trial, tuner: StudyHandle) -> None:
        """Record one finished trial (see :meth:`on_trials`)."""
        await self.on_trials([trial], tuner)

    async def on_trials(self, trials: Sequence[Trial], tuner: StudyHandle) -> None:
        """Record a batch of finished trials with one write, skipping ``cancelled`` ones."""
        try:
            lines = [encode_trial(t) for t in trials if t.status is not TrialStatus.CANCELLED]
        except ValueError as exc:
            raise JournalError(self._path, None, f"cannot record {exc}") from exc
        if not lines:
            return
        if self._file is None:
            await self.on_start(tuner)
        if (wait := self._written_at + self.WRITE_INTERVAL - anyio.current_time()) > 0:
            await anyio.sleep(wait)  # the trials finishing meanwhile go in the next write
        await self._write(b"".join(lines))
        self._written_at = anyio.current_time()

    async def on_finish(self, result: TuningResult) -> None:
        """Close the journal, releasing its lock (everything recorded is already flushed)."""
        file, lock = self._file, self._lock
        self._file, self._lock, self._study = None, None, None
        if file is None:
            return
        with anyio.CancelScope(shield=True):  # never leave the file open and locked
            try:
                if lock is not None:
                    await anyio.to_thread.run_sync(lock.release)
                await file.close()
            except OSError as exc:
                raise JournalError(self._path, None, f"cannot write: {exc}") from exc

    async def _abandon(self) -> None:
        """Close the journal on an error path, releasing its lock: the study is over for it."""
        file, lock = self._file, self._lock
        self._file, self._lock, self._study = None, None, None
        if file is not None:
            await _close_quietly(file, lock)

    async def _write(self, data: bytes) -> None:
        file = self._file
        assert file is not None  # only called once the file is open
        try:
            # The file is unbuffered: each write is one system call (one thread hop
            # through aiofiles) that puts the lines in the OS's hands, as flush would.
            view = memoryview(data)
            while view:
                written = await file.write(view)
                view = view[written:]
            if self._durability == "fsync":
                await anyio.to_thread.run_sync(os.fsync, file.fileno())
        except OSError as exc:
            await self._abandon()
            raise JournalError(self._path, None, f"cannot write: {exc}") from exc
        except BaseException:  # cancelled mid-write: no on_finish will close the file
            await self._abandon()
            raise

    def _check_header(self, line: bytes, tuner: StudyHandle) -> None:
        """Refuse to append to a file that is not a journal of this very study."""
        try:
            header: dict[str, Any] = parse_line(line)
            space, direction = decode_header(header)
        except ValueError as exc:
            raise JournalError(self._path, 1, f"not a journal header: {exc}") from None
        if space.fingerprint != tuner.space.fingerprint:
            differences = "; ".join(tuner.space.diff(space)) or "their fingerprints differ"
            raise JournalError(
                self._path,
                None,
                "the journal was written for a different space "
                f"(this study's space vs the journal's: {differences}); "
                "write this study to a new file",
            )
        if direction != tuner.direction:
            raise JournalError(
                self._path,
                None,
                f"the journal's study is to {direction} the score, this one's to "
                f"{tuner.direction} it; write this study to a new file",
            )


def _inspect(path: str) -> tuple[bytes | None, bool]:
    """The first line of the file (``None`` when it is empty) and whether it ends with a newline."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            return None, True
        first_line = file.readline(_MAX_HEADER_BYTES)
        file.seek(size - 1)
        return first_line, file.read(1) == b"\n"


async def _close_quietly(file: AsyncFileIO, lock: WriterLock | None) -> None:
    """Close ``file`` and release its lock on an error path, even when cancelled.

    The first error wins: one closing it is not raised.
    """
    with anyio.CancelScope(shield=True):
        try:
            if lock is not None:
                await anyio.to_thread.run_sync(lock.release)
            await file.close()
        except OSError:
            pass
