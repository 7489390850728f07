"""Where a view's trials come from: a result, a live study, or journals being written.

:func:`read_snapshot` reads any of them once (blocking: call it from a
thread in async code). :func:`open_source` gives a :class:`Source` that an
async view follows: it hands out the current :class:`Snapshot` and waits
for the next change — on the live study's history, or by reading only the
bytes appended to each journal since the last look (a torn last line is
left for the next look, when its writer has finished it).
"""

from __future__ import annotations

import dataclasses
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio

from aiotune._checks import check_choice
from aiotune.errors import ConfigurationError, JournalError
from aiotune.history import History
from aiotune.journal import read_journal
from aiotune.journal.format import decode_header, decode_trial, parse_line, same_study
from aiotune.space import Space
from aiotune.trial import Params, StudyDirection, Trial, TuningResult

PathLike = str | os.PathLike[str]

POLL_INTERVAL = 0.2
"""Seconds between looks at a journal for appended trials."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A study's trials at one moment, as every view sees them.

    ``trials`` are in number order. ``space`` is ``None`` for a bare
    :class:`~aiotune.TuningResult` (which does not carry one). ``pending``
    maps the numbers of trials in flight to their params; it is ``None`` when
    the source cannot know them (a journal records finished trials only).
    ``origins`` names, per trial, the journal it came from when several were
    read (else it is empty). ``notes`` are things a reader should know (a
    torn last line, skipped corrupt lines). ``version`` grows with every change.
    """

    trials: tuple[Trial, ...]
    direction: StudyDirection
    space: Space | None = None
    pending: Mapping[int, Params] | None = None
    origins: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    label: str = "study"
    live: bool = False
    version: int = 0

    @property
    def param_names(self) -> list[str]:
        """The parameters, in the space's order (else in order of first appearance)."""
        names: dict[str, None] = dict.fromkeys(self.space) if self.space is not None else {}
        for trial in self.trials:
            for name in trial.params:
                if name not in names:
                    names[name] = None
        return list(names)


@runtime_checkable
class LiveStudy(Protocol):
    """A running study a view can follow: a :class:`~aiotune.Tuner` is one."""

    @property
    def history(self) -> History:
        """The live record."""

    @property
    def space(self) -> Space:
        """The search space."""

    @property
    def direction(self) -> StudyDirection:
        """``"maximize"`` or ``"minimize"``."""


def _paths(source: object) -> list[str] | None:
    if isinstance(source, str | os.PathLike):
        return [os.fspath(source)]
    if isinstance(source, Sequence) and source and not isinstance(source, bytes):
        if all(isinstance(p, str | os.PathLike) for p in source):
            return [os.fspath(p) for p in source]
    return None


def read_snapshot(source: object, *, on_corrupt: str = "raise") -> Snapshot:
    """One snapshot of ``source``: a result, a live study, or one or more journal paths.

    Journals are read with :func:`aiotune.journal.read_journal` (a torn last
    line is tolerated; a corrupt line raises :class:`~aiotune.JournalError`
    with its line number unless ``on_corrupt="skip"``). Several journals must
    record the same study (same space and direction); their trials are merged.
    Blocking: async code calls it from a thread.
    """
    if isinstance(source, TuningResult):
        return Snapshot(trials=source.trials, direction=source.direction, label="result")
    if isinstance(source, LiveStudy):
        return _live_snapshot(source)
    paths = _paths(source)
    if paths is None:
        raise ConfigurationError(
            "source",
            "expected a TuningResult, a running study (with .history, .space and .direction), "
            f"or journal path(s); got {type(source).__name__}",
        )
    check_choice("on_corrupt", on_corrupt, ("raise", "skip"))
    journals = [read_journal(path, on_corrupt=on_corrupt) for path in paths]  # type: ignore[arg-type]
    first = journals[0]
    notes: list[str] = []
    for journal in journals:
        if journal is not first and not same_study(first.header, journal.header):
            raise JournalError(journal.path, 1, f"records a different study than {first.path}")
        if journal.torn_tail:
            notes.append(f"{journal.path}: the last line is incomplete (a torn write), ignored")
        if journal.skipped_lines:
            lines = ", ".join(map(str, journal.skipped_lines))
            notes.append(f"{journal.path}: skipped corrupt line(s) {lines}")
    merged = [(t, j.path) for j in journals for t in j.trials]
    merged.sort(key=lambda pair: pair[0].number)
    return Snapshot(
        trials=tuple(t for t, _ in merged),
        direction=first.direction,
        space=first.space,
        origins=tuple(p for _, p in merged) if len(journals) > 1 else (),
        notes=tuple(notes),
        label=", ".join(paths),
    )


def _live_snapshot(study: LiveStudy) -> Snapshot:
    history = study.history
    trials = sorted(history.trials, key=operator.attrgetter("number"))
    return Snapshot(
        trials=tuple(trials),
        direction=study.direction,
        space=study.space,
        pending=dict(history.pending),
        label=type(study).__name__,
        live=True,
        version=history.version,
    )


class Source:
    """Something a live view follows: the current snapshot, and a wait for the next."""

    async def snapshot(self) -> Snapshot:
        """The study as it is now."""
        raise NotImplementedError

    async def wait_newer(self, version: int) -> None:
        """Return once a snapshot newer than ``version`` may be had."""
        raise NotImplementedError


class _ResultSource(Source):
    def __init__(self, result: TuningResult) -> None:
        self._snapshot = read_snapshot(result)

    async def snapshot(self) -> Snapshot:
        return self._snapshot

    async def wait_newer(self, version: int) -> None:
        await anyio.sleep_forever()  # a finished result never changes


class _LiveSource(Source):
    """A live study. Its history object may be replaced (a Tuner that resumes builds a
    new one as it starts): versions then continue from the old history's."""

    def __init__(self, study: LiveStudy) -> None:
        self._study = study
        self._history = study.history
        self._base = 0

    def _version(self) -> int:
        history = self._study.history
        if history is not self._history:
            self._base += self._history.version + 1
            self._history = history
        return self._base + history.version

    async def snapshot(self) -> Snapshot:
        version = self._version()
        snap = _live_snapshot(self._study)
        return dataclasses.replace(snap, version=version)

    async def wait_newer(self, version: int) -> None:
        while self._version() <= version:
            with anyio.move_on_after(1.0):  # look again: the history may have been replaced
                await self._history.wait_for_change()


class _JournalSource(Source):
    def __init__(self, paths: list[str], poll_interval: float) -> None:
        self._followers = [JournalFollower(path) for path in paths]
        self._poll_interval = poll_interval
        self._lock = anyio.Lock()
        self._version = 0
        self._looked_at = -1.0
        self._snapshot: Snapshot | None = None

    async def _refresh(self) -> None:
        async with self._lock:  # one look at a time, however many viewers wait
            if anyio.current_time() - self._looked_at < self._poll_interval / 2:
                return
            changed = await anyio.to_thread.run_sync(self._poll)
            self._looked_at = anyio.current_time()
            if changed or self._snapshot is None:
                self._version += changed
                self._snapshot = await anyio.to_thread.run_sync(self._build)

    def _poll(self) -> bool:
        return [follower.poll() for follower in self._followers].count(True) > 0  # poll every one

    def _build(self) -> Snapshot:
        followers = self._followers
        first = followers[0]
        notes = [note for follower in followers for note in follower.notes()]
        for follower in followers[1:]:
            if first.header is not None and follower.header is not None:
                if not same_study(first.header, follower.header):
                    notes.append(f"{follower.path}: records a different study than {first.path}")
        merged = [(t, f.path) for f in followers for t in f.trials.values()]
        merged.sort(key=lambda pair: pair[0].number)
        return Snapshot(
            trials=tuple(t for t, _ in merged),
            direction=first.direction,
            space=first.space,
            origins=tuple(p for _, p in merged) if len(followers) > 1 else (),
            notes=tuple(notes),
            label=", ".join(f.path for f in followers),
            live=True,
            version=self._version,
        )

    async def snapshot(self) -> Snapshot:
        await self._refresh()
        assert self._snapshot is not None
        return self._snapshot

    async def wait_newer(self, version: int) -> None:
        while self._version <= version:
            await anyio.sleep(self._poll_interval)
            await self._refresh()


def open_source(source: object, *, poll_interval: float = POLL_INTERVAL) -> Source:
    """A :class:`Source` following ``source``: a result, a live study, or journal path(s)."""
    if isinstance(source, TuningResult):
        return _ResultSource(source)
    if isinstance(source, LiveStudy):
        return _LiveSource(source)
    paths = _paths(source)
    if paths is None:
        raise ConfigurationError(
            "source",
            "expected a TuningResult, a running study (with .history, .space and .direction), "
            f"or journal path(s); got {type(source).__name__}",
        )
    return _JournalSource(paths, poll_interval)


class JournalFollower:
    """Reads a journal that may still be growing, a few appended bytes at a time.

    Each :meth:`poll` reads only what was appended since the last one. An
    incomplete last line waits for its writer to finish it; a line that does
    not parse and is followed by the writer's repair line was a torn write and
    is ignored; other bad lines are skipped and listed in :meth:`notes`. A
    file that shrank (replaced or truncated) is read again from the start.
    Blocking: call it from a thread.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self._reset()

    def _reset(self) -> None:
        self.header: dict[str, Any] | None = None
        self.space: Space | None = None
        self.direction: StudyDirection = "maximize"
        self.trials: dict[int, Trial] = {}
        self._offset = 0
        self._lineno = 0
        self._partial = b""
        self._unparsed: tuple[int, str] | None = None
        self._skipped: list[tuple[int, str]] = []
        self._missing = False

    def notes(self) -> list[str]:
        """What a reader should know: a missing file, skipped lines, a line still being written."""
        notes = [f"{self.path}, line {n}: skipped: {problem}" for n, problem in self._skipped]
        if self._missing:
            notes.append(f"{self.path}: no such file (yet)")
        if self._partial:
            notes.append(f"{self.path}: the last line is incomplete (being written, or torn)")
        return notes

    def poll(self) -> bool:
        """Read what was appended since the last poll; whether any trial was added.

        Raises :class:`~aiotune.JournalError` when the first line is not a journal header.
        """
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size < self._offset:  # truncated or replaced: start again
                    self._reset()
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            self._missing = True
            return False
        self._missing = False
        if not data:
            return False
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # b"" when the data ended with a newline
        before = len(self.trials)
        for line in lines:
            self._lineno += 1
            self._line(self._lineno, line)
        return len(self.trials) != before

    def _line(self, lineno: int, line: bytes) -> None:
        if self.header is None:
            try:
                header = parse_line(line)
                self.space, self.direction = decode_header(header)
            except ValueError as exc:
                raise JournalError(self.path, lineno, f"not a journal header: {exc}") from None
            self.header = header
            return
        if not line.strip():
            return
        try:
            obj = parse_line(line)
        except ValueError as exc:
            if self._unparsed is not None:
                self._skipped.append(self._unparsed)
            self._unparsed = (lineno, str(exc))
            return
        if self._unparsed is not None:
            if obj.get("kind") != "repair":  # else: the bad line was a torn write, repaired
                self._skipped.append(self._unparsed)
            self._unparsed = None
        kind = obj.get("kind")
        if kind in ("repair", "header"):
            return
        try:
            trial = decode_trial(obj, space=self.space)
        except ValueError as exc:
            self._skipped.append((lineno, str(exc)))
            return
        if trial.number in self.trials:
            self._skipped.append((lineno, f"trial {trial.number} was already recorded"))
            return
        self.trials[trial.number] = trial
