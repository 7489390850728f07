"""The journal's on-disk format: one JSON object per line, encoded with orjson.

Format version 1. The file is UTF-8 text, one JSON object per line, each line
ending with ``\\n``. Blank lines are ignored. Reading it never runs code (no
pickle anywhere): every value is a JSON scalar, list or object.

Line 1 is the header, which describes the study::

    {"kind": "header",
     "format": 1,                          # this format's version
     "aiotune": "0.1.0",                   # the writing package's version, or "unknown"
     "space": {"version": 1, "params": {...}},  # Space.to_dict(), conditions included
     "fingerprint": "9f2c...",             # Space.fingerprint (sha256 hex)
     "direction": "maximize",              # or "minimize", or a list of them (several objectives)
     "strategy": "Random(seed=0)",         # repr(strategy), for people only
     "created_at": 1732712345.12}          # seconds since the epoch

A header written before the space carried a ``version`` has the bare
``{"params": {...}}``; it reads as version 1, with the same fingerprint.
A header has no ``number``. A later line may repeat the header (a run that
appended to the file); it must describe the same study: the same ``format``,
``space``, ``fingerprint`` and ``direction`` (``aiotune``, ``strategy`` and
``created_at`` may differ).

Every other line records one finished trial::

    {"kind": "trial",
     "number": 7,                          # int >= 0, unique in the file
     "params": {"lr": 0.001, "layers": 3}, # valid in the header's space
     "status": "complete",                 # complete | failed | pruned | timeout | cancelled
     "score": 0.91,                        # finite number, or null
     "scores": [0.91, 12.5],               # optional: one per objective (several objectives)
     "constraints": [-0.5, 0.0],           # optional: constraint values (feasible when all <= 0)
     "intermediate": [[0, 0.5], [1, 0.8]], # [step, value] pairs, step an int
     "error": null,                        # or {"type": ..., "message": ..., "traceback": ...}
     "previous_errors": [],                # errors of earlier attempts, same shape
     "attempts": 1,                        # int >= 1
     "started_at": 1732712346.0,           # seconds since the epoch, or null
     "finished_at": 1732712350.5,          # seconds since the epoch, or null
     "duration": 4.5,                      # seconds, or null
     "worker": "host:4242"}                # "hostname:pid" that ran it, or null

A writer that finds the file's last line torn (a previous writer was killed
mid-line) ends it with ``\n`` and writes a repair line right after it::

    {"kind": "repair", "at": 1732712399.0}  # the line above was torn; ignore it

so the file stays append-only and a later reader knows the bad line above
the repair line is a torn write, not corruption.

``number``, ``params`` and ``status`` are required; a missing optional field
takes the :class:`~aiotune.Trial` default. Unknown fields are refused.
Intermediate values are ``[step, value]`` pairs because JSON object keys are
strings and orjson refuses int keys. Numbers are checked before encoding:
orjson writes NaN and infinities as ``null`` without a word, so encoding a
non-finite score, intermediate value or time raises :class:`ValueError`.
``JsonlWriter`` never records ``cancelled`` trials (they run again on resume).

The functions here raise :class:`ValueError` with a precise message; the
reader turns it into ``JournalError(path, line, message)``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from aiotune.errors import SpaceError
from aiotune.space import Space
from aiotune.trial import ErrorInfo, StudyDirection, Trial, TrialStatus

FORMAT_VERSION: Final = 1

_DIRECTIONS: Final = ("maximize", "minimize")
_STATUSES: Final = {status.value: status for status in TrialStatus}
_HEADER_FIELDS: Final = frozenset(
    {"kind", "format", "aiotune", "space", "fingerprint", "direction", "strategy", "created_at"}
)
# The header fields that identify a study: a repeated header must agree on these.
_STUDY_FIELDS: Final = ("format", "space", "fingerprint", "direction")
_TRIAL_FIELDS: Final = frozenset(
    {
        "kind",
        "number",
        "params",
        "status",
        "score",
        "scores",
        "constraints",
        "intermediate",
        "error",
        "previous_errors",
        "attempts",
        "started_at",
        "finished_at",
        "duration",
        "worker",
    }
)
_ERROR_FIELDS: Final = frozenset({"type", "message", "traceback"})


@functools.cache
def package_version() -> str:
    """The installed aiotune version, or ``"unknown"`` when it is not installed."""
    try:
        return importlib.metadata.version("aiotune")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- encoding ----------------------------------------------------------------


def encode_header(space: Space, direction: StudyDirection, strategy: object) -> bytes:
    """The header line of a new journal, ending with ``b"\\n"``."""
    if not (isinstance(direction, str) and direction in _DIRECTIONS) and not (
        isinstance(direction, tuple) and direction and all(d in _DIRECTIONS for d in direction)
    ):
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    header = {
        "kind": "header",
        "format": FORMAT_VERSION,
        "aiotune": package_version(),
        "space": space.to_dict(),
        "fingerprint": space.fingerprint,
        "direction": direction if isinstance(direction, str) else list(direction),
        "strategy": repr(strategy),
        "created_at": time.time(),
    }
    return orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE)


def encode_repair() -> bytes:
    """A newline ending a torn last line, then the repair line that marks it as torn."""
    return b"\n" + orjson.dumps(
        {"kind": "repair", "at": time.time()}, option=orjson.OPT_APPEND_NEWLINE
    )


def encode_trial(trial: Trial) -> bytes:
    """One trial's line, ending with ``b"\\n"``.

    Raises :class:`ValueError` when a number is not finite (orjson would write ``null``).
    """
    if not _all_finite(trial):
        _raise_not_finite(trial)
    number = trial.number
    line: dict[str, Any] = {
        "kind": "trial",
        "number": number,
        "params": trial.params,
        "status": trial.status,  # a str enum: orjson writes its value
        "score": trial.score,
    }
    if len(trial.scores) > 1:
        line["scores"] = trial.scores
    if trial.constraints is not None:
        line["constraints"] = trial.constraints
    line["intermediate"] = list(trial.intermediate.items()) if trial.intermediate else []
    line["error"] = None if trial.error is None else _encode_error(trial.error)
    errors = trial.previous_errors
    line["previous_errors"] = [_encode_error(error) for error in errors] if errors else []
    line["attempts"] = trial.attempts
    line["started_at"] = trial.started_at
    line["finished_at"] = trial.finished_at
    line["duration"] = trial.duration
    line["worker"] = trial.worker
    try:
        return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError as exc:  # e.g. a categorical choice orjson cannot encode
        raise ValueError(f"trial {number}: cannot encode as JSON: {exc}") from None


def _all_finite(trial: Trial) -> bool:
    """Whether every number of ``trial`` is finite: one sum, the common case's check.

    False also when something is not a number, or a time is missing: the slow
    path then names the culprit, or finds none (a ``None`` time is fine).
    """
    try:
        # ``scores`` holds ``score`` too (see Trial)
        total = sum(trial.scores) + trial.started_at + trial.finished_at + trial.duration  # type: ignore[operator]
        for value in trial.params.values():
            if type(value) is float:
                total += value
        if trial.intermediate:
            total += sum(trial.intermediate.values())
            if not all(type(step) is int for step in trial.intermediate):
                return False
        if trial.constraints is not None:
            total += sum(trial.constraints)
    except TypeError:
        return False
    return math.isfinite(total)


def _raise_not_finite(trial: Trial) -> None:
    """Name the first value of ``trial`` that is not a finite number (the slow path)."""
    number = trial.number
    for name, value in trial.params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"trial {number}: param {name!r} is {value}, not a finite number")
    for what, value in (
        ("score", trial.score),
        ("started_at", trial.started_at),
        ("finished_at", trial.finished_at),
        ("duration", trial.duration),
    ):
        _finite_or_none(value, number, what)
    for value in trial.scores:
        _finite(value, number, "score")
    for value in trial.constraints or ():
        _finite(value, number, "constraint")
    for step, value in trial.intermediate.items():
        _step(step, number)
        _finite(value, number, f"intermediate value at step {step}")


def _finite(value: object, number: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"trial {number}: {what} is {value!r:.80}, not a number")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"trial {number}: {what} is {result}, not a finite number")
    return result


def _finite_or_none(value: object, number: int, what: str) -> float | None:
    return None if value is None else _finite(value, number, what)


def _step(step: object, number: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"trial {number}: intermediate step {step!r:.80} is not an int")
    return int(step)


def _encode_error(error: ErrorInfo | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


# --- decoding ----------------------------------------------------------------


def parse_line(line: bytes) -> dict[str, Any]:
    """The JSON object on one line; :class:`ValueError` when it is not JSON or not an object."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(obj)}")
    return obj


def decode_header(obj: Mapping[str, Any]) -> tuple[Space, StudyDirection]:
    """Check a header object and return the study's space and direction.

    Raises :class:`ValueError` saying which field is wrong.
    """
    kind = obj.get("kind")
    if kind != "header":
        raise ValueError(f"expected a header (kind 'header'), got kind {kind!r:.80}")
    _no_unknown_fields(obj, _HEADER_FIELDS, "header")
    version = _field(obj, "format", int, "header")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"journal format {version} is not supported (this aiotune reads {FORMAT_VERSION})"
        )
    raw = obj.get("direction")
    direction: StudyDirection
    if isinstance(raw, list) and len(raw) > 1 and all(d in _DIRECTIONS for d in raw):
        direction = tuple(raw)  # several objectives
    else:
        direction = _field(obj, "direction", str, "header")
        if direction not in _DIRECTIONS:
            raise ValueError(
                f"header: direction must be 'maximize' or 'minimize', not {direction!r}"
            )
    fingerprint = _field(obj, "fingerprint", str, "header")
    _field(obj, "aiotune", str, "header")
    _field(obj, "strategy", str, "header")
    if not _is_number(obj.get("created_at")):
        raise ValueError(f"header: 'created_at' must be a number, got {obj.get('created_at')!r}")
    space_dict = _field(obj, "space", dict, "header")
    try:
        space = Space.from_dict(space_dict)
    except (SpaceError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"header: invalid space ({exc})") from None
    if space.fingerprint != fingerprint:
        raise ValueError(
            f"header: fingerprint {fingerprint!r} does not match its space "
            f"(which has fingerprint {space.fingerprint!r})"
        )
    return space, direction


def same_study(first: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two headers describe the same study (a repeated header is then harmless).

    Spaces compare without their ``version``, so an older writer's header matches.
    """
    return all(_study_value(first, key) == _study_value(other, key) for key in _STUDY_FIELDS)


def _study_value(header: Mapping[str, Any], key: str) -> Any:
    value = header.get(key)
    if key == "space" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "version"}
    return value


def decode_trial(obj: Mapping[str, Any], *, space: Space | None = None) -> Trial:
    """Build a :class:`Trial` from a trial line's object, checking every field.

    With ``space``, the params must also be valid in it (``space.validate``).
    Raises :class:`ValueError` saying which field is wrong.
    """
    kind = obj.get("kind")
    if kind != "trial":
        raise ValueError(f"unknown kind {kind!r:.80} (expected 'trial' or 'header')")
    if not obj.keys() <= _TRIAL_FIELDS:
        _no_unknown_fields(obj, _TRIAL_FIELDS, "trial")

    number = _field(obj, "number", int, "trial")
    if number < 0:
        raise ValueError(f"trial: 'number' must be >= 0, got {number}")
    where = f"trial {number}"
    params = _field(obj, "params", dict, where)
    if space is not None:
        try:
            params = space.validate(params)
        except SpaceError as exc:
            raise ValueError(f"{where}: params do not fit the journal's space: {exc}") from None
    status_text = _field(obj, "status", str, where)
    status = _STATUSES.get(status_text)
    if status is None:
        raise ValueError(
            f"{where}: unknown status {status_text!r:.80} (expected one of {', '.join(_STATUSES)})"
        )

    error = obj.get("error")
    previous = obj.get("previous_errors", ())
    if not isinstance(previous, list | tuple):
        raise ValueError(f"{where}: 'previous_errors' must be a list, got {_json_type(previous)}")
    attempts = obj.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"{where}: 'attempts' must be an int >= 1, got {attempts!r:.80}")
    worker = obj.get("worker")
    if worker is not None and not isinstance(worker, str):
        raise ValueError(f"{where}: 'worker' must be a string or null, got {_json_type(worker)}")

    return Trial(
        number=number,
        params=params,
        status=status,
        score=_number_or_none(obj, "score", where),
        scores=_numbers(obj, "scores", where) or (),
        constraints=_numbers(obj, "constraints", where),
        intermediate=_decode_intermediate(obj.get("intermediate", ()), where),
        error=None if error is None else _decode_error(error, f"{where}: 'error'"),
        previous_errors=tuple(
            _decode_error(e, f"{where}: 'previous_errors'[{i}]") for i, e in enumerate(previous)
        ),
        attempts=attempts,
        started_at=_number_or_none(obj, "started_at", where),
        finished_at=_number_or_none(obj, "finished_at", where),
        duration=_number_or_none(obj, "duration", where),
        worker=worker,
    )


def _decode_intermediate(pairs: object, where: str) -> dict[int, float]:
    if not isinstance(pairs, list | tuple):
        raise ValueError(
            f"{where}: 'intermediate' must be a list of [step, value] pairs, "
            f"got {_json_type(pairs)}"
        )
    result: dict[int, float] = {}
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(
                f"{where}: 'intermediate' entries must be [step, value] pairs, got {pair!r:.80}"
            )
        step, value = pair
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"{where}: intermediate step {step!r:.80} is not an int")
        if step in result:
            raise ValueError(f"{where}: intermediate step {step} appears twice")
        if not _is_number(value):
            raise ValueError(
                f"{where}: intermediate value at step {step} must be a finite number, "
                f"got {value!r:.80}"
            )
        result[step] = float(value)
    return result


def _decode_error(obj: object, where: str) -> ErrorInfo:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be an object or null, got {_json_type(obj)}")
    _no_unknown_fields(obj, _ERROR_FIELDS, where)
    type_ = _field(obj, "type", str, where)
    message = _field(obj, "message", str, where)
    traceback = obj.get("traceback", "")
    if not isinstance(traceback, str):
        raise ValueError(f"{where}: 'traceback' must be a string, got {_json_type(traceback)}")
    return ErrorInfo(type_, message, traceback)


def _field(obj: Mapping[str, Any], name: str, kind: type[Any], where: str) -> Any:
    """The required field ``name``, which must be of JSON type ``kind``."""
    try:
        value = obj[name]
    except KeyError:
        raise ValueError(f"{where}: missing field {name!r}") from None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(
            f"{where}: {name!r} must be {_KIND_NAMES[kind]}, got {_json_type(value)} {value!r:.80}"
        )
    return value


def _numbers(obj: Mapping[str, Any], name: str, where: str) -> tuple[float, ...] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_number(v) for v in value):
        raise ValueError(f"{where}: {name!r} must be a list of finite numbers, got {value!r:.80}")
    return tuple(float(v) for v in value)


def _number_or_none(obj: Mapping[str, Any], name: str, where: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(f"{where}: {name!r} must be a finite number or null, got {value!r:.80}")
    return float(value)


def _is_number(value: object) -> bool:
    """Whether ``value`` is a finite JSON number (``bool`` is not one).

    Exact type checks: JSON numbers decode to plain ``float`` and ``int``.
    """
    kind = type(value)
    return (kind is float and math.isfinite(value)) or kind is int  # type: ignore[arg-type]


def _no_unknown_fields(obj: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field {', '.join(map(repr, unknown))}")


_KIND_NAMES: Final[dict[type[Any], str]] = {
    int: "an int",
    str: "a string",
    dict: "an object",
    list: "a list",
}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
