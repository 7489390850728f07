"""Search spaces: the domains of single parameters and the :class:`Space` that names them.

Pure data, no I/O. Every value a domain returns is a plain Python ``float``,
``int``, ``bool``, ``str`` or ``None`` (never a numpy scalar), so params are
JSON-able and pickle cheaply to worker processes.

The unit cube: ``to_unit``/``from_unit`` map each parameter onto ``[0, 1]``.
Continuous floats map linearly (log domains in log space). Discrete domains
(stepped floats, ints, choices, bools) give each of their ``n`` values an equal
share: ``from_unit(u)`` is value number ``min(floor(u * n), n - 1)`` and
``to_unit`` returns the centre of that value's share, ``(i + 0.5) / n``. A log
``Int`` maps like a log ``Float`` over ``[low - 0.5, high + 0.5]``, then rounds.
``sample(rng)`` is ``from_unit`` of one uniform draw, so sampling and the unit
cube always agree.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import numpy as np
import orjson

from aiotune.errors import SpaceError

__all__ = ["Bool", "Categorical", "Domain", "Float", "Int", "Space", "domain_from_dict"]

Scalar: TypeAlias = str | int | float | bool | None
_T = TypeVar("_T")
_TOL = 1e-9  # relative tolerance for float bounds and step grids
SPACE_FORMAT = 1  # the "version" of Space.to_dict()


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
        return self._clip(self.low + _unit(u) * (self.high - self.low))

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


def _mismatch(
    missing: list[str], unknown: list[str], inactive: list[str], names: list[str]
) -> None:
    """Raise the ``SpaceError`` for params whose names do not match the space."""
    problems = [f"missing {missing!r}"] if missing else []
    if inactive:
        problems.append(f"inactive {inactive!r} (present, but their conditions do not hold)")
    if unknown:
        problems.append(f"unknown {unknown!r} (the space has {names!r})")
    wrong = missing + inactive + unknown  # the error names the parameter when there is just one
    param = wrong[0] if len(wrong) == 1 and isinstance(wrong[0], str) else None
    raise SpaceError(param, "params do not match the space: " + "; ".join(problems))


class Space(Mapping[str, Domain]):
    """An ordered, immutable mapping of parameter names to domains.

    ``Space(lr=Float(1e-5, 1e-1, log=True), layers=Int(1, 8))``, or
    ``Space({"name with spaces": Bool()})`` for names that are not identifiers.
    Equality, hashing and :attr:`fingerprint` are by content and ignore the
    order of the parameters; the order still decides the order of
    :meth:`grid` points and of :meth:`to_unit` coordinates.

    A space with conditions (``when=`` on a domain) is a tree: a params dict
    holds exactly the *active* parameters (an inactive one is absent, not
    ``None``). Everything that knows a space's shape lives here, so that
    strategies never re-implement it: :meth:`sample`, :meth:`validate`,
    :meth:`active`, :meth:`repair`, the unit cube and :meth:`grid` all follow
    the conditions. A condition on an unknown parameter, on a ``Float``, on a
    value outside the parent's domain, or a cycle is a ``SpaceError`` naming
    the conditional parameter, raised here.
    """

    __slots__ = ("_conditions", "_domains", "_fingerprint", "_order", "_parents")

    def __init__(self, params: Mapping[str, Domain] | None = None, /, **domains: Domain) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise _bad(f"Space takes a mapping of names to domains, got {params!r}")
        merged: dict[str, Domain] = {}
        for name, domain in itertools.chain((params or {}).items(), domains.items()):
            if not isinstance(name, str) or not name:
                raise _bad(f"parameter names must be non-empty strings, got {name!r}")
            if name in merged:
                raise SpaceError(name, "given twice")
            if not isinstance(domain, Domain):
                raise SpaceError(
                    name, f"expected a Float, Int, Categorical or Bool, got {domain!r}"
                )
            merged[name] = domain
        if not merged:
            raise _bad("a Space needs at least one parameter")
        self._domains = merged
        # name -> ((parent, {type-aware keys of the values that activate it}), ...)
        self._conditions = _each(
            {n: d for n, d in merged.items() if d.when}, lambda n, d: self._check_condition(n, d)
        )
        self._parents = frozenset(p for conds in self._conditions.values() for p, _ in conds)
        self._order = self._topological_order()
        # Only the params: the fingerprint of a space stays what it was before to_dict()
        # carried a version, so older journals still resume.
        blob = orjson.dumps({"params": self._params_dict()}, option=orjson.OPT_SORT_KEYS)
        self._fingerprint = hashlib.sha256(blob).hexdigest()

    def _check_condition(
        self, name: str, domain: Domain
    ) -> tuple[tuple[str, frozenset[tuple[type, object]]], ...]:
        out = []
        for parent, values in condition(domain):
            if parent == name:
                raise _bad(f"when= names the parameter itself ({parent!r})")
            if parent not in self._domains:
                raise _bad(
                    f"when= names the unknown parameter {parent!r} "
                    f"(the space has {list(self._domains)!r})"
                )
            parent_domain = self._domains[parent]
            if isinstance(parent_domain, Float):
                raise _bad(
                    f"when= names {parent!r}, a Float ({parent_domain!r}); a condition needs "
                    "a Categorical, Bool or Int parent"
                )
            keys = set()
            for value in values:
                try:
                    valid = parent_domain.validate(value)
                except SpaceError:
                    raise _bad(
                        f"when={{{parent!r}: {value!r}}}: {value!r} is not a value of "
                        f"{parent!r} ({parent_domain!r})"
                    ) from None
                keys.add((type(valid), valid))
            out.append((parent, frozenset(keys)))
        return tuple(out)

    def _topological_order(self) -> tuple[str, ...]:
        """The names, parents before children, otherwise in space order."""
        if not self._conditions:
            return tuple(self._domains)
        placed: dict[str, None] = {}
        left = list(self._domains)
        while left:
            ready = [n for n in left if all(p in placed for p, _ in self._conditions.get(n, ()))]
            if not ready:
                raise SpaceError(left[0], f"its condition is part of a cycle: {self._cycle(left)}")
            placed.update(dict.fromkeys(ready))
            left = [n for n in left if n not in placed]
        return tuple(placed)

    def _cycle(self, left: list[str]) -> str:
        path, name = [left[0]], left[0]
        while True:
            name = next(p for p, _ in self._conditions[name] if p in left)
            if name in path:
                cycle = [*path[path.index(name) :], name]
                return " -> ".join(f"{n!r}" for n in cycle) + " (each is active only when "
                "the next one is)"
            path.append(name)

    def __getitem__(self, name: str) -> Domain:
        return self._domains[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._domains)

    def __len__(self) -> int:
        return len(self._domains)

    def __eq__(self, other: object) -> bool:
        return self._domains == other._domains if isinstance(other, Space) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __repr__(self) -> str:
        if all(name.isidentifier() for name in self._domains):
            return f"Space({', '.join(f'{n}={d!r}' for n, d in self._domains.items())})"
        return f"Space({self._domains!r})"

    # --- conditions -----------------------------------------------------------------------

    @property
    def is_conditional(self) -> bool:
        """Whether any parameter has a condition (``when=``)."""
        return bool(self._conditions)

    @property
    def conditions(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        """``{name: {parent: (value, ...)}}`` for each conditional parameter, a parent's
        entry before its children's; values as the parent's domain normalises them."""
        return {
            name: {parent: tuple(value for _, value in keys) for parent, keys in conds}
            for name, conds in sorted(
                self._conditions.items(), key=lambda item: self._order.index(item[0])
            )
        }

    def _holds(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active, given the values of the active parameters so far."""
        for parent, keys in self._conditions.get(name, ()):
            if parent not in values:
                return False
            value = values[parent]
            if (type(value), value) not in keys:
                return False
        return True

    def _in_order(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {n: values[n] for n in self._domains if n in values}

    def _prune(self, full: Mapping[str, Any]) -> dict[str, Any]:
        """The active part of a dict that has a value for every parameter."""
        if not self._conditions:
            return dict(full)
        out: dict[str, Any] = {}
        for name in self._order:
            if self._holds(name, out):
                out[name] = full[name]
        return self._in_order(out)

    def active(self, params: Mapping[str, Any]) -> list[str]:
        """The names active under ``params``, in space order.

        ``params`` may be partial or hold extra names: a parameter is active
        when each of its parents is active and has a matching value in
        ``params`` (its own value need not be there).
        """
        seen: dict[str, Any] = {}
        names = []
        for name in self._order:
            if self._holds(name, seen):
                names.append(name)
                if name in params:
                    try:
                        seen[name] = self._domains[name].validate(params[name])
                    except SpaceError:
                        pass  # an invalid value activates nothing
        return [n for n in self._domains if n in set(names)]

    def repair(self, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Make ``params`` valid: drop inactive names, draw missing active ones with ``rng``.

        For strategies that build params their own way (e.g. one value per
        parameter of the flattened space, or a perturbed parent): the values
        given for active parameters are kept (and must be valid), an unknown
        name is a ``SpaceError``. An unconditional space's full dict comes
        back validated, and no draw is made.
        """
        if not isinstance(params, Mapping):
            raise _bad(f"params must be a dict, got {params!r}")
        if unknown := [n for n in params if n not in self._domains]:
            raise SpaceError(
                unknown[0] if len(unknown) == 1 else None,
                f"unknown parameter(s) {unknown!r} (the space has {list(self._domains)!r})",
            )
        out: dict[str, Any] = {}
        for name in self._order:
            if not self._holds(name, out):
                continue
            domain = self._domains[name]
            try:
                out[name] = domain.validate(params[name]) if name in params else domain.sample(rng)
            except SpaceError as err:
                raise err.for_param(name) from None
        return self._in_order(out)

    # --- sampling, validation, the unit cube ----------------------------------------------

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One params dict, each value drawn with ``rng`` from its domain.

        Every parameter is drawn, in space order, and the inactive ones are
        then dropped: the draws do not depend on the conditions, so this is
        :meth:`from_unit` of ``len(space)`` uniform numbers.
        """
        return self._prune({name: domain.sample(rng) for name, domain in self._domains.items()})

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check a params dict (every active name present, no inactive or unknown name,
        each value valid); return a new, normalised dict in space order."""
        if not isinstance(params, Mapping):
            raise _bad(f"params must be a dict, got {params!r}")
        if self._conditions:
            return self._validate_tree(params)
        missing = [n for n in self._domains if n not in params]
        unknown = [n for n in params if n not in self._domains]
        if missing or unknown:
            _mismatch(missing, unknown, [], list(self._domains))
        return _each(self._domains, lambda name, domain: domain.validate(params[name]))

    def _validate_tree(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [n for n in params if n not in self._domains]
        out: dict[str, Any] = {}
        missing, inactive = [], []
        for name in self._order:
            if not self._holds(name, out):
                if name in params:
                    inactive.append(name)
            elif name not in params:
                missing.append(name)
            else:
                try:
                    out[name] = self._domains[name].validate(params[name])
                except SpaceError as err:
                    raise err.for_param(name) from None
        if missing or unknown or inactive:
            _mismatch(missing, unknown, inactive, list(self._domains))
        return self._in_order(out)

    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Validate ``params`` and map them to a float64 vector in ``[0, 1]^len(space)``;
        the coordinate of an inactive parameter is ``nan``."""
        valid = self.validate(params)
        units = _each(valid, lambda name, value: self._domains[name].to_unit(value))
        return np.array([units.get(n, math.nan) for n in self._domains], dtype=np.float64)

    def from_unit(self, u: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, Any]:
        """The params at unit-cube point ``u`` (coordinates are clipped into ``[0, 1]``);
        the coordinates of parameters left inactive are ignored (they may be ``nan``)."""
        if (vector := np.asarray(u, dtype=np.float64)).shape != (len(self),):
            raise _bad(f"expected a unit vector of shape ({len(self)},), got {vector.shape}")
        xs = dict(zip(self._domains, vector.tolist(), strict=True))
        if not self._conditions:
            return _each(self._domains, lambda name, domain: domain.from_unit(xs[name]))
        out: dict[str, Any] = {}
        for name in self._order:
            if self._holds(name, out):
                try:
                    out[name] = self._domains[name].from_unit(xs[name])
                except SpaceError as err:
                    raise err.for_param(name) from None
        return self._in_order(out)

    # --- grids ----------------------------------------------------------------------------

    def _axes(self, resolution: int | Mapping[str, int] | None) -> dict[str, tuple[Any, ...]]:
        per_name: Mapping[str, int | None]
        if not isinstance(resolution, Mapping):
            per_name = dict.fromkeys(self._domains, resolution)
        elif unknown := [n for n in resolution if n not in self._domains]:
            raise _bad(f"grid resolution given for unknown parameter(s) {unknown!r}")
        else:
            per_name = resolution
        return _each(self._domains, lambda n, d: d.grid(per_name.get(n)))

    def grid(self, resolution: int | Mapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
        """Every point of the grid, in parameter order (the last parameter varies fastest).

        ``resolution`` applies to every ``Float`` and ``Int`` (see their ``grid``), or
        per name as a mapping (names left out get ``None``). Errors are raised by
        the call itself, not on the first iteration. In a conditional space the
        points are the valid params dicts only, each once: an inactive parameter
        does not multiply the points (parents are varied before their children).
        """
        axes = self._axes(resolution)
        if not self._conditions:
            names = list(self._domains)
            product = itertools.product(*axes.values())
            return (dict(zip(names, point, strict=True)) for point in product)
        return self._tree_points(axes, 0, {})

    def _tree_points(
        self, axes: Mapping[str, tuple[Any, ...]], i: int, chosen: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        while i < len(self._order) and not self._holds(self._order[i], chosen):
            i += 1
        if i == len(self._order):
            yield self._in_order(chosen)
            return
        name = self._order[i]
        for value in axes[name]:
            yield from self._tree_points(axes, i + 1, {**chosen, name: value})

    def grid_size(self, resolution: int | Mapping[str, int] | None = None) -> int:
        """The number of points :meth:`grid` yields for ``resolution``."""
        axes = self._axes(resolution)
        if not self._conditions:
            return math.prod(len(axis) for axis in axes.values())
        return self._tree_size(axes, 0, {})

    def _tree_size(
        self, axes: Mapping[str, tuple[Any, ...]], i: int, chosen: dict[str, Any]
    ) -> int:
        size = 1
        for j in range(i, len(self._order)):
            name = self._order[j]
            if not self._holds(name, chosen):
                continue
            if name in self._parents:  # its value decides what follows: branch on it
                return size * sum(
                    self._tree_size(axes, j + 1, {**chosen, name: value}) for value in axes[name]
                )
            size *= len(axes[name])
        return size

    def to_dict(self) -> dict[str, Any]:
        """``{"version": 1, "params": {name: domain.to_dict(), ...}}`` in space order; JSON-able.

        This is the space in a journal's header and the form to send over the
        wire; :meth:`from_dict` reads it back (and the unversioned
        ``{"params": ...}`` of journals written before the version existed).
        """
        return {"version": SPACE_FORMAT, "params": self._params_dict()}

    def _params_dict(self) -> dict[str, Any]:
        return {name: domain.to_dict() for name, domain in self._domains.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Space:
        """Rebuild a space from :meth:`to_dict` output.

        Raises ``SpaceError`` naming the field at fault: a top-level field
        (``version``, ``params``) with ``param=None``, or the parameter whose
        domain description is wrong.
        """
        if not isinstance(d, Mapping):
            raise _bad(
                f'a space description must be a dict {{"version": {SPACE_FORMAT}, '
                f'"params": {{...}}}}, got {d!r:.200}'
            )
        if unknown := sorted(map(str, set(d) - {"version", "params"})):
            raise _bad(
                f"unknown field(s) {unknown} in a space description (expected 'version', 'params')"
            )
        version = d.get("version", SPACE_FORMAT)  # a journal from before the version: 1
        if isinstance(version, bool) or version != SPACE_FORMAT:
            raise _bad(
                f"field 'version': space format {version!r:.80} is not supported "
                f"(this aiotune reads {SPACE_FORMAT})"
            )
        if "params" not in d:
            raise _bad("missing field 'params' in a space description")
        if not isinstance(d["params"], Mapping):
            raise _bad(f"field 'params' must be a dict of name to domain, got {d['params']!r:.200}")
        return cls(_each(d["params"], lambda _, spec: domain_from_dict(spec)))

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex digest of the sorted-key JSON of ``{"params": to_dict()["params"]}``;
        stable across runs and versions."""
        return self._fingerprint

    def diff(self, other: Space) -> list[str]:
        """Human-readable differences from ``other``; empty when the spaces are equal."""
        lines = []
        for name, domain in self._domains.items():
            if name not in other:
                lines.append(f"{name!r}: only in this space ({domain!r})")
            elif domain != other[name]:
                lines.append(f"{name!r}: {domain!r} here, {other[name]!r} in the other space")
        others = [(n, d) for n, d in other.items() if n not in self._domains]
        return lines + [f"{n!r}: only in the other space ({d!r})" for n, d in others]
