"""The :class:`Space`: named domains, and the conditions that make it a tree.

See :mod:`aiotune.space` for the unit cube and the conditions' semantics.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from aiotune.errors import SpaceError
from aiotune.space._domains import (
    Domain,
    Float,
    _bad,
    _each,
    condition,
    domain_from_dict,
)

__all__ = ["SPACE_FORMAT", "Space"]

SPACE_FORMAT = 1  # the "version" of Space.to_dict()


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

    __slots__ = ("_conditions", "_domains", "_fingerprint", "_items", "_order", "_parents")

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
        self._items = tuple(merged.items())
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
        if isinstance(u, list) and len(u) == len(self):  # the common case, without numpy
            coordinates = u
        elif (vector := np.asarray(u, dtype=np.float64)).shape == (len(self),):
            coordinates = vector.tolist()
        else:
            raise _bad(f"expected a unit vector of shape ({len(self)},), got {vector.shape}")
        out: dict[str, Any] = {}
        if not self._conditions:
            try:  # one pass; on a bad coordinate, _each names the parameter at fault
                for (name, domain), x in zip(self._items, coordinates, strict=True):
                    out[name] = domain.from_unit(x)
                return out
            except SpaceError:
                xs = dict(zip(self._domains, coordinates, strict=True))
                return _each(self._domains, lambda name, domain: domain.from_unit(xs[name]))
        xs = dict(zip(self._domains, coordinates, strict=True))
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
