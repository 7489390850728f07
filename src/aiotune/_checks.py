"""Argument checks shared by every public constructor, with one wording.

Each check returns the value in its canonical type or raises
:class:`~aiotune.errors.ConfigurationError` naming the argument, always as
``<argument>: must be <what>, got <value>``. Bottom layer: no I/O, no asyncio.
"""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Collection, Sequence
from typing import TypeVar

from aiotune.errors import ConfigurationError
from aiotune.trial import Direction, StudyDirection

T = TypeVar("T")


def _refuse(argument: str, what: str, value: object) -> ConfigurationError:
    return ConfigurationError(argument, f"must be {what}, got {value!r:.80}")


def check_int(argument: str, value: object, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum`` (a bool is not an int)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _refuse(argument, f"an int >= {minimum}", value)
    return int(value)


def optional_int(argument: str, value: object, minimum: int) -> int | None:
    """:func:`check_int`, letting ``None`` through."""
    return None if value is None else check_int(argument, value, minimum)


def check_seconds(argument: str, value: object) -> float:
    """``value`` as a ``float`` if it is a positive, finite number of seconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < float(value) < math.inf
    ):
        raise _refuse(argument, "a positive, finite number of seconds", value)
    return float(value)


def optional_seconds(argument: str, value: object) -> float | None:
    """:func:`check_seconds`, letting ``None`` through."""
    return None if value is None else check_seconds(argument, value)


def check_finite(argument: str, value: object) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _refuse(argument, "a finite number", value)
    return float(value)


def check_seed(value: object) -> int:
    """``value`` if it is an int >= 0; ``None`` draws a fresh 63-bit seed."""
    if value is None:
        return secrets.randbits(63)
    return check_int("seed", value, 0)


def check_direction(value: object) -> Direction:
    """``"maximize"`` or ``"minimize"``."""
    if value == "maximize":
        return "maximize"
    if value == "minimize":
        return "minimize"
    raise _refuse("direction", "'maximize' or 'minimize'", value)


def check_directions(value: object) -> StudyDirection:
    """A direction, or a sequence of them (several objectives) as a tuple.

    A sequence of one direction is that direction: a single objective.
    """
    if isinstance(value, str) or not isinstance(value, Sequence):
        return check_direction(value)
    if not value or not all(item in ("maximize", "minimize") for item in value):
        raise _refuse("direction", "'maximize', 'minimize' or a non-empty sequence of them", value)
    directions = tuple(check_direction(item) for item in value)
    return directions[0] if len(directions) == 1 else directions


def check_choice(argument: str, value: T, choices: Collection[T]) -> T:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = " or ".join(repr(choice) for choice in choices)
        raise _refuse(argument, allowed, value)
    return value
