"""The domains of single parameters: :class:`Float`, :class:`Int`, :class:`Categorical`,
:class:`Bool`, their ``when=`` conditions, and their dict form.

See :mod:`aiotune.space` for the unit cube and the conditions' semantics.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import numpy as np

from aiotune.errors import SpaceError

__all__ = [
    "Bool",
    "Categorical",
    "Condition",
    "Domain",
    "Float",
    "Int",
    "condition",
    "domain_from_dict",
]

Scalar: TypeAlias = str | int | float | bool | None
_T = TypeVar("_T")
_TOL = 1e-9  # relative tolerance for float bounds and step grids


def _bad(problem: str) -> SpaceError:
    return SpaceError(None, problem)


def _each(items: Mapping[str, _T], op: Callable[[str, _T], Any]) -> dict[str, Any]:
    """``{name: op(name, item)}``; a ``SpaceError`` is re-raised naming the parameter."""
    out: dict[str, Any] = {}
    for name, item in items.items():
        try:
            out[name] = op(name, item)
        except SpaceError as err:
            raise err.for_param(name) from None
    return out


def _is_real(x: object) -> bool:
    if type(x) is float or type(x) is int:  # the common case, without the ABC check
        return True
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _as_int(x: object) -> int | None:
    """``x`` as an ``int`` if it is an integer or an integral finite float, else ``None``."""
    if isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_):
        return int(x)
    if isinstance(x, float | np.floating) and math.isfinite(x) and float(x).is_integer():
        return int(x)
    return None


def _check_log(log: object) -> bool:
    if not isinstance(log, bool | np.bool_):
        raise _bad(f"log must be True or False, got {log!r}")
    return bool(log)


def _check_resolution(resolution: object) -> int:
    if isinstance(resolution, bool | np.bool_) or not isinstance(resolution, int | np.integer):
        raise _bad(f"grid resolution must be an integer >= 2, got {resolution!r}")
    if resolution < 2:
        raise _bad(f"grid resolution must be an integer >= 2, got {resolution}")
    return int(resolution)


Condition: TypeAlias = tuple[tuple[str, tuple[Scalar, ...]], ...]
_NO_CONDITION: Condition = ()


def _scalar(value: object, where: str) -> Scalar:
    v = _plain(value)
    if type(v) not in (str, int, float, bool, type(None)):
        raise _bad(f"{where} must be a JSON scalar (str, int, float, bool or None), got {v!r:.80}")
    if isinstance(v, float) and not math.isfinite(v):
        raise _bad(f"{where} must be finite, got {v!r}")
    return v + 0.0 if isinstance(v, float) else v  # type: ignore[return-value]


def _check_when(when: object) -> Condition:
    """``when=`` normalised to ``((parent, (value, ...)), ...)`` sorted by parent name."""
    if when is None:
        return _NO_CONDITION
    if not isinstance(when, Mapping):
        raise _bad(
            f"when= must be a dict of parent name to a value or a list of values, got {when!r:.80}"
        )
    out: list[tuple[str, tuple[Scalar, ...]]] = []
    for parent, raw in when.items():
        if not isinstance(parent, str) or not parent:
            raise _bad(f"when= keys must be parameter names (non-empty strings), got {parent!r}")
        raws = list(raw) if isinstance(raw, list | tuple) else [raw]
        values = [_scalar(v, f"when={{{parent!r}: ...}} values") for v in raws]
        if not values:
            raise _bad(f"when={{{parent!r}: []}} lists no value, so the parameter is never active")
        keys = [(type(v), v) for v in values]
        if len(set(keys)) != len(keys):
            raise _bad(f"when={{{parent!r}: {values!r}}} lists a value twice")
        out.append((parent, tuple(values)))
    return tuple(sorted(out, key=lambda item: item[0]))


def condition(domain: Domain) -> Condition:
    """``domain.when`` as ``((parent, (value, ...)), ...)``; ``()`` when unconditional."""
    return tuple(domain.when.items()) if domain.when else _NO_CONDITION


def _when_key(when: Condition) -> tuple[Any, ...]:
    """A type-aware identity of a condition, so ``1`` and ``True`` differ."""
    return tuple((p, tuple((type(v).__name__, v) for v in vs)) for p, vs in when)


def _when_repr(when: Condition) -> str:
    if not when:
        return ""
    items = ", ".join(
        f"{p!r}: {vs[0]!r}" if len(vs) == 1 else f"{p!r}: {list(vs)!r}" for p, vs in when
    )
    return f"when={{{items}}}"


def _when_dict(when: Condition) -> dict[str, Any]:
    return {"when": {p: list(vs) for p, vs in when}} if when else {}


def _unit(u: float) -> float:
    if math.isnan(u := float(u)):
        raise _bad("a unit-cube coordinate must be a number, got nan")
    return min(max(u, 0.0), 1.0)


def _index(u: float, n: int) -> int:
    return min(math.floor(_unit(u) * n), n - 1)


class Domain(ABC):
    """The set of values one parameter can take. Immutable, hashable, comparable by content.

    Every domain takes ``when={"parent": value_or_values, ...}``: the parameter
    is then *active* only when each named parameter is active and its value
    equals (or is one of) the given value(s). The :class:`Space` checks the
    condition against the parents' domains; ``when`` reads back normalised as
    ``{"parent": (value, ...), ...}`` sorted by parent name, or ``None`` when
    the parameter is always active.
    """

    __slots__ = ()
    when: Mapping[str, tuple[Scalar, ...]] | None

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn uniformly (log-uniformly for log domains) with ``rng``."""
        return self.from_unit(float(rng.random()))

    @abstractmethod
    def validate(self, value: object) -> Any:
        """Check ``value`` and return it normalised (plain Python type, snapped to the grid)."""

    @abstractmethod
    def to_unit(self, value: object) -> float:
        """Map a valid ``value`` into ``[0, 1]`` (see the module docstring)."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at unit coordinate ``u`` (clipped into ``[0, 1]``)."""

    @abstractmethod
    def grid(self, resolution: int | None) -> tuple[Any, ...]:
        """The values a grid search tries, in increasing order (choices in their order)."""

    @property
    @abstractmethod
    def size(self) -> int | None:
        """How many distinct values the domain has; ``None`` for a continuous ``Float``."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, read back by :func:`domain_from_dict`."""


@dataclass(frozen=True, slots=True, repr=False)
class Float(Domain):
    """A real number in ``[low, high]``; log-scaled with ``log=True``, or on the grid
    ``low, low + step, ..., high`` with ``step`` (which must divide ``high - low``)."""

    low: float
    high: float
    log: bool = field(default=False, kw_only=True)
    step: float | None = field(default=None, kw_only=True)
    when: Mapping[str, Any] | None = field(default=None, kw_only=True, compare=False)
    _n: int = field(default=0, init=False, compare=False)  # steps from low to high
    _when: tuple[Any, ...] = field(default=(), init=False, repr=False)  # compared, type-aware

    def __post_init__(self) -> None:
        for name, x in (("low", self.low), ("high", self.high)):
            if not _is_real(x):
                raise _bad(
                    f"Float bounds must be real numbers, got {name}={x!r} ({type(x).__name__})"
                )
            if not math.isfinite(x):
                raise _bad(f"Float bounds must be finite, got {name}={x!r}")
        # + 0.0 turns -0.0 into 0.0, which equals it and so must serialise alike.
        low, high, log, step = float(self.low) + 0.0, float(self.high) + 0.0, self.log, self.step
        if low >= high:
            raise _bad(f"Float needs low < high, got low={low!r}, high={high!r}")
        if (log := _check_log(log)) and low <= 0:
            raise _bad(f"a log-scaled Float needs low > 0, got low={low!r}")
        n = 0
        if step is not None:
            if log:
                raise _bad(f"a log-scaled Float cannot have a step, got step={step!r}")
            if not _is_real(step) or not math.isfinite(step) or step <= 0:
                raise _bad(f"step must be a positive finite number, got step={step!r}")
            step = float(step)
            n = round(steps := (high - low) / step)
            if n < 1 or abs(steps - n) > _TOL * max(1.0, steps):
                raise _bad(
                    f"step={step!r} does not divide high - low = {high - low!r} "
                    f"(low={low!r}, high={high!r})"
                )
        when = _check_when(self.when)
        for name, v in (("low", low), ("high", high), ("log", log), ("step", step), ("_n", n)):
            object.__setattr__(self, name, v)
        object.__setattr__(self, "when", dict(when) or None)
        object.__setattr__(self, "_when", _when_key(when))

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        extra += f", step={self.step!r}" if self.step is not None else ""
        extra += f", {_when_repr(condition(self))}" if self.when else ""
        return f"Float({self.low!r}, {self.high!r}{extra})"

    def _at(self, i: int) -> float:
        # One correctly rounded quotient per value: 0.3 rather than 0.1 * 3 = 0.30000000000000004.
        return self.high if i == self._n else self.low + (self.high - self.low) * i / self._n

    def _clip(self, v: float) -> float:
        return min(max(v, self.low), self.high)

    def validate(self, value: object) -> float:
        """Accept a finite real (not a bool) in ``[low, high]``, on the step grid if stepped
        (both up to a relative 1e-9); return it as a float snapped exactly onto the grid."""
        if not _is_real(value):
            raise _bad(f"expected a real number, got {value!r} ({type(value).__name__})")
        v, tol = float(value), _TOL * (self.high - self.low)  # type: ignore[arg-type]
        if not math.isfinite(v) or not self.low - tol <= v <= self.high + tol:
            raise _bad(f"{value!r} is outside [{self.low!r}, {self.high!r}]")
        if self.step is None:
            return self._clip(v)
        i = round(k := (v - self.low) / (self.high - self.low) * self._n)
        if abs(k - i) > _TOL * max(1.0, k):
            raise _bad(f"{value!r} is not on the step grid (low={self.low!r}, step={self.step!r})")
        return self._at(i)

    def to_unit(self, value: object) -> float:
        v = self.validate(value)
        if self.step is not None:
            return (round((v - self.low) / (self.high - self.low) * self._n) + 0.5) / (self._n + 1)
        if self.log:
            return min(math.log(v / self.low) / math.log(self.high / self.low), 1.0)
        return min((v - self.low) / (self.high - self.low), 1.0)

    def from_unit(self, u: float) -> float:
        if self.step is not None:
            return self._at(_index(u, self._n + 1))
        if self.log:
            return self._clip(self.low * math.exp(_unit(u) * math.log(self.high / self.low)))
        if type(u) is not float or not 0.0 <= u <= 1.0:  # the common case skips _unit
            u = _unit(u)
        value = self.low + u * (self.high - self.low)
        return value if value <= self.high else self.high  # rounding, at u = 1

    def grid(self, resolution: int | None) -> tuple[float, ...]:
        """Every step value if ``resolution`` is None, else ``resolution`` points from low
        to high inclusive (log-spaced for log; snapped to the step grid and deduplicated)."""
        if resolution is None:
            if self.step is None:
                raise _bad(
                    "a continuous Float needs a grid resolution (Grid(resolution=...)) or a step"
                )
            return tuple(self._at(i) for i in range(self._n + 1))
        r = _check_resolution(resolution)
        if self.step is not None:
            return tuple(dict.fromkeys(self._at(round(i * self._n / (r - 1))) for i in range(r)))
        spaced = np.geomspace if self.log else np.linspace
        points: list[float] = spaced(self.low, self.high, r).tolist()
        return (self.low, *map(self._clip, points[1:-1]), self.high)

    @property
    def size(self) -> int | None:
        return None if self.step is None else self._n + 1

    def to_dict(self) -> dict[str, Any]:
        fields = {k: getattr(self, k) for k in ("low", "high", "log", "step")}
        return {"type": "float", **fields, **_when_dict(condition(self))}


@dataclass(frozen=True, slots=True, repr=False)
class Int(Domain):
    """An integer in ``[low, high]`` (both included) on the grid ``low + k * step``;
    log-scaled with ``log=True`` (which needs ``low >= 1`` and ``step=1``)."""

    low: int
    high: int
    log: bool = field(default=False, kw_only=True)
    step: int = field(default=1, kw_only=True)
    when: Mapping[str, Any] | None = field(default=None, kw_only=True, compare=False)
    _when: tuple[Any, ...] = field(default=(), init=False, repr=False)  # compared, type-aware

    def __post_init__(self) -> None:
        low, high, step, log = _as_int(self.low), _as_int(self.high), _as_int(self.step), self.log
        if low is None or high is None:
            name, raw = ("low", self.low) if low is None else ("high", self.high)
            raise _bad(f"Int bounds must be integers, got {name}={raw!r}")
        if low >= high:
            raise _bad(f"Int needs low < high, got low={low}, high={high}")
        if step is None or step <= 0:
            raise _bad(f"Int step must be a positive integer, got step={self.step!r}")
        if (log := _check_log(log)) and low < 1:
            raise _bad(f"a log-scaled Int needs low >= 1, got low={low}")
        if log and step != 1:
            raise _bad(f"a log-scaled Int needs step=1, got step={step}")
        if (high - low) % step:
            raise _bad(
                f"step={step} does not divide high - low = {high - low} (low={low}, high={high})"
            )
        when = _check_when(self.when)
        for name, v in (("low", low), ("high", high), ("log", log), ("step", step)):
            object.__setattr__(self, name, v)
        object.__setattr__(self, "when", dict(when) or None)
        object.__setattr__(self, "_when", _when_key(when))

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        extra += f", step={self.step}" if self.step != 1 else ""
        extra += f", {_when_repr(condition(self))}" if self.when else ""
        return f"Int({self.low}, {self.high}{extra})"

    def _log_range(self) -> tuple[float, float]:
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def validate(self, value: object) -> int:
        """Accept an integer (not a bool) or an exactly integral float, in bounds and on
        the step grid; return an ``int``."""
        if (v := _as_int(value)) is None:
            raise _bad(f"expected an integer, got {value!r} ({type(value).__name__})")
        if not self.low <= v <= self.high:
            raise _bad(f"{value!r} is outside [{self.low}, {self.high}]")
        if (v - self.low) % self.step:
            raise _bad(f"{value!r} is not on the step grid (low={self.low}, step={self.step})")
        return v

    def to_unit(self, value: object) -> float:
        v = self.validate(value)
        if self.log:
            a, b = self._log_range()
            return (math.log(v) - a) / (b - a)
        return ((v - self.low) // self.step + 0.5) / self.size

    def from_unit(self, u: float) -> int:
        if self.log:
            a, b = self._log_range()
            v = math.floor(math.exp(a + _unit(u) * (b - a)) + 0.5)
            return min(max(v, self.low), self.high)
        return self.low + self.step * _index(u, self.size)

    def grid(self, resolution: int | None) -> tuple[int, ...]:
        """Every value if ``resolution`` is None, else ``resolution`` evenly spaced values
        (log-spaced for log), rounded onto the step grid and deduplicated."""
        if resolution is None:
            return tuple(range(self.low, self.high + 1, self.step))
        r, n = _check_resolution(resolution), self.size - 1
        if self.log:
            points: list[float] = np.geomspace(self.low, self.high, r).tolist()
            values = (min(max(round(p), self.low), self.high) for p in points)
        else:
            values = (self.low + self.step * round(i * n / (r - 1)) for i in range(r))
        return tuple(dict.fromkeys(values))

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def to_dict(self) -> dict[str, Any]:
        fields = {k: getattr(self, k) for k in ("low", "high", "log", "step")}
        return {"type": "int", **fields, **_when_dict(condition(self))}


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class Categorical(Domain):
    """One of a fixed, ordered list of JSON scalars (``str``, ``int``, ``float``, ``bool``,
    ``None``). Choices compare by type and value, so ``1``, ``1.0`` and ``True`` differ."""

    choices: tuple[Scalar, ...]
    when: Mapping[str, Any] | None
    # (type, value) -> position: the type-aware identity of each choice.
    _lookup: dict[tuple[type, object], int]

    def __init__(self, choices: Iterable[Scalar], *, when: Mapping[str, Any] | None = None) -> None:
        raw: object = choices
        if isinstance(raw, str | bytes | set | frozenset) or not isinstance(raw, Iterable):
            kind = "a set (unordered)" if isinstance(raw, set | frozenset) else repr(raw)
            raise _bad(f"Categorical needs a list or tuple of choices, got {kind}")
        # -0.0 becomes 0.0: the two compare equal, so they must serialise alike.
        items = [c + 0.0 if type(c) is float else c for c in map(_plain, raw)]
        lookup: dict[tuple[type, object], int] = {}
        for c in items:
            if type(c) not in (str, int, float, bool, type(None)):
                raise _bad(
                    "choices must be JSON scalars (str, int, float, bool or None), "
                    f"got {c!r} ({type(c).__name__})"
                )
            if isinstance(c, float) and not math.isfinite(c):
                raise _bad(f"choices must be finite, got {c!r}")
            if (type(c), c) in lookup:
                raise _bad(f"duplicate choice {c!r} in {items!r}")
            lookup[type(c), c] = len(lookup)
        if not lookup:
            raise _bad("Categorical needs at least one choice, got none")
        object.__setattr__(self, "choices", tuple(items))
        object.__setattr__(self, "when", dict(_check_when(when)) or None)
        object.__setattr__(self, "_lookup", lookup)

    def __repr__(self) -> str:
        extra = f", {_when_repr(condition(self))}" if self.when else ""
        return f"Categorical({list(self.choices)!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Categorical):
            return NotImplemented
        mine, theirs = _when_key(condition(self)), _when_key(condition(other))
        return list(self._lookup) == list(other._lookup) and mine == theirs

    def __hash__(self) -> int:
        return hash((tuple(self._lookup), _when_key(condition(self))))

    def _position(self, value: object) -> int:
        v = _plain(value)
        try:
            return self._lookup[type(v), v]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            raise _bad(f"{value!r} is not one of the choices {list(self.choices)!r}") from None

    def validate(self, value: object) -> Scalar:
        """Return the stored choice equal to ``value`` in type and value."""
        return self.choices[self._position(value)]

    def to_unit(self, value: object) -> float:
        return (self._position(value) + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Scalar:
        return self.choices[_index(u, len(self.choices))]

    def grid(self, resolution: int | None) -> tuple[Scalar, ...]:
        """All choices, in order (``resolution`` is ignored)."""
        return self.choices

    @property
    def size(self) -> int:
        return len(self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices), **_when_dict(condition(self))}


@dataclass(frozen=True, slots=True, repr=False)
class Bool(Domain):
    """``False`` or ``True`` (``from_unit``: ``False`` below 0.5)."""

    when: Mapping[str, Any] | None = field(default=None, kw_only=True, compare=False)
    _when: tuple[Any, ...] = field(default=(), init=False, repr=False)  # compared, type-aware

    def __post_init__(self) -> None:
        when = _check_when(self.when)
        object.__setattr__(self, "when", dict(when) or None)
        object.__setattr__(self, "_when", _when_key(when))

    def __repr__(self) -> str:
        return f"Bool({_when_repr(condition(self))})"

    def validate(self, value: object) -> bool:
        """Accept a ``bool`` or numpy bool only (``0`` and ``1`` are refused)."""
        if not isinstance(value, bool | np.bool_):
            raise _bad(f"expected a bool, got {value!r} ({type(value).__name__})")
        return bool(value)

    def to_unit(self, value: object) -> float:
        return 0.75 if self.validate(value) else 0.25

    def from_unit(self, u: float) -> bool:
        return bool(_index(u, 2))

    def grid(self, resolution: int | None) -> tuple[bool, ...]:
        """``(False, True)`` (``resolution`` is ignored)."""
        return (False, True)

    @property
    def size(self) -> int:
        return 2

    def to_dict(self) -> dict[str, Any]:
        return {"type": "bool", **_when_dict(condition(self))}


_FIELDS: dict[str, tuple[type[Domain], set[str], set[str]]] = {
    "float": (Float, {"low", "high"}, {"log", "step", "when"}),
    "int": (Int, {"low", "high"}, {"log", "step", "when"}),
    "categorical": (Categorical, {"choices"}, {"when"}),
    "bool": (Bool, set(), {"when"}),
}


def domain_from_dict(d: Mapping[str, Any]) -> Domain:
    """Rebuild a domain from :meth:`Domain.to_dict` output; raise ``SpaceError`` if invalid."""
    if not isinstance(d, Mapping):
        raise _bad(f"a domain description must be a dict, got {d!r}")
    if not isinstance(d.get("type"), str) or d["type"] not in _FIELDS:
        raise _bad(f"unknown domain type {d.get('type')!r} (expected one of {list(_FIELDS)})")
    cls, required, optional = _FIELDS[d["type"]]
    if missing := sorted(required - set(d)):
        raise _bad(f"domain type {d['type']!r} needs the field(s) {missing}, got {dict(d)!r}")
    if unknown := sorted(map(str, set(d) - required - optional - {"type"})):
        raise _bad(f"unknown field(s) {unknown} for domain type {d['type']!r}: {dict(d)!r}")
    return cls(**{k: v for k, v in d.items() if k != "type"})
