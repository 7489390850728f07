"""Reading a journal back: :func:`read_journal` and :func:`load`.

Synchronous and blocking: async code calls these through a thread
(``anyio.to_thread.run_sync``). The file is read one line at a time, so memory
grows with the trials kept, not with the file's raw bytes.
"""

from __future__ import annotations

import logging
import operator
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from aiotune._checks import check_choice
from aiotune.errors import JournalError
from aiotune.journal.format import decode_header, decode_trial, parse_line, same_study
from aiotune.space import Space
from aiotune.trial import StudyDirection, Trial, TuningResult

logger = logging.getLogger("aiotune")

OnCorrupt = Literal["raise", "skip"]


@dataclass(frozen=True, slots=True)
class Journal:
    """A journal read back from disk.

    ``header`` is the first line's object; ``space`` and ``direction`` come
    from it. ``trials`` are in number order. ``skipped_lines`` lists the
    1-based numbers of corrupt lines passed over with ``on_corrupt="skip"``;
    ``torn_tail`` says whether the last line was an incomplete write, ignored.
    """

    path: str
    header: dict[str, Any]
    space: Space
    direction: StudyDirection
    trials: tuple[Trial, ...]
    skipped_lines: tuple[int, ...] = ()
    torn_tail: bool = False


def read_journal(path: str | os.PathLike[str], *, on_corrupt: OnCorrupt = "raise") -> Journal:
    """Read the journal at ``path``.

    A last line without its newline that does not parse is a torn write (the
    writer was killed mid-line): it is ignored and logged, and
    ``Journal.torn_tail`` is set. Any other bad line raises
    :class:`~aiotune.JournalError` with its 1-based line number; with
    ``on_corrupt="skip"`` it is logged and listed in ``skipped_lines`` instead.
    A missing, empty or header-less file always raises.
    """
    check_choice("on_corrupt", on_corrupt, ("raise", "skip"))
    where = os.fspath(path)
    try:
        file = open(where, "rb")  # closed by the with below
    except FileNotFoundError:
        raise JournalError(where, None, "no such file") from None
    except OSError as exc:
        raise JournalError(where, None, f"cannot read: {exc}") from None
    with file:
        try:
            return _read(where, file, on_corrupt)
        except OSError as exc:
            raise JournalError(where, None, f"cannot read: {exc}") from None


def load(path: str | os.PathLike[str], *, on_corrupt: OnCorrupt = "raise") -> TuningResult:
    """Read the journal at ``path`` into a :class:`~aiotune.TuningResult`.

    The result holds every recorded trial and the study's direction; its
    ``stop_reason`` is ``None`` (the journal does not record why a run ended).
    See :func:`read_journal` for ``on_corrupt``.
    """
    journal = read_journal(path, on_corrupt=on_corrupt)
    return TuningResult(trials=journal.trials, direction=journal.direction, stop_reason=None)


def _read(path: str, lines: BinaryIO, on_corrupt: OnCorrupt) -> Journal:
    first = lines.readline()
    if not first:
        raise JournalError(path, 1, "empty file: a journal starts with a header line")
    try:
        header = parse_line(first)
        space, direction = decode_header(header)
    except ValueError as exc:
        raise JournalError(path, 1, f"not a journal header: {exc}") from None

    skip = on_corrupt == "skip"
    trials: list[Trial] = []
    seen: dict[int, int] = {}  # trial number -> line it was read from
    skipped: list[int] = []
    torn_tail = False
    unparsed: tuple[int, str] | None = None  # a bad line, unless a repair line follows it

    def corrupt(lineno: int, problem: str) -> None:
        if not skip:
            raise JournalError(path, lineno, problem)
        skipped.append(lineno)
        logger.warning("%s, line %d: skipping a corrupt line: %s", path, lineno, problem)

    for lineno, line in enumerate(lines, start=2):
        if line.isspace():
            continue
        try:
            obj = parse_line(line)
        except ValueError as exc:
            if not line.endswith(b"\n"):  # only the last line can lack its newline
                torn_tail = True
                logger.warning(
                    "%s, line %d: ignoring an incomplete last line (a torn write)", path, lineno
                )
                break
            if unparsed is not None:
                corrupt(*unparsed)
            unparsed = (lineno, str(exc))
            continue
        if obj.get("kind") == "repair":  # the bad line before it, if any, was a torn write
            if unparsed is not None:
                logger.info("%s, line %d: a torn write, repaired later", path, unparsed[0])
                unparsed = None
            continue
        if unparsed is not None:
            corrupt(*unparsed)
            unparsed = None
        try:
            if obj.get("kind") == "header":
                problem = _check_repeated_header(header, obj)
                if not problem:
                    continue
            else:
                trial = decode_trial(obj, space=space)
                first_seen = seen.get(trial.number)
                if first_seen is None:
                    seen[trial.number] = lineno
                    trials.append(trial)
                    continue
                problem = f"trial {trial.number} was already recorded on line {first_seen}"
        except ValueError as exc:
            problem = str(exc)
        corrupt(lineno, problem)
    if unparsed is not None:
        corrupt(*unparsed)

    trials.sort(key=operator.attrgetter("number"))
    return Journal(
        path=path,
        header=header,
        space=space,
        direction=direction,
        trials=tuple(trials),
        skipped_lines=tuple(skipped),
        torn_tail=torn_tail,
    )


def _check_repeated_header(first: dict[str, Any], obj: dict[str, Any]) -> str:
    """Why a later header line is not acceptable, or ``""`` when it repeats the first."""
    try:
        decode_header(obj)
    except ValueError as exc:
        return f"not a valid header: {exc}"
    if not same_study(first, obj):
        return "a second header describes a different study than line 1's"
    return ""
