"""Random search, reproducible per trial number."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from aiotune._checks import check_seed
from aiotune.strategies.base import drive
from aiotune.trial import Params, Trial

if TYPE_CHECKING:
    from aiotune.history import History
    from aiotune.space import Space

_WORDS = struct.Struct("<8Q")  # one 64-byte BLAKE2b digest: eight 64-bit words
_ULP = 2.0**-53


class RandomCore:
    """The ask/tell core of :class:`Random`: trial ``k``'s params depend on (seed, k) alone.

    Trial ``k`` gets the point ``space.from_unit(u)`` of the unit cube, with
    ``u[i]`` the ``i``-th 64-bit word of BLAKE2b keyed by the seed over
    ``b"k:block"`` (eight words per block), keeping its top 53 bits: a
    counter-based stream, so no generator is built or advanced per trial.
    """

    def __init__(self, space: Space, seed: int) -> None:
        self._space = space
        key = hashlib.blake2b(b"aiotune.Random:%d" % seed).digest()
        self._keyed = hashlib.blake2b(key=key)  # copied per block: cheaper than keying anew
        self._size = len(space)
        self._blocks = -(-self._size // 8)

    def tell(self, trial: Trial) -> None:
        """Random search learns nothing from results."""

    def ask(self, number: int, pending: Mapping[int, Params]) -> Params:
        """The params of trial ``number``: the same for the same seed, whatever else ran."""
        return self._space.from_unit(self.units(number))

    def units(self, number: int) -> list[float]:
        """Trial ``number``'s point of the unit cube, one coordinate per parameter."""
        words: list[int] = []
        for block in range(self._blocks):
            hasher = self._keyed.copy()
            hasher.update(b"%d:%d" % (number, block))
            words += _WORDS.unpack(hasher.digest())
        del words[self._size :]
        return [(word >> 11) * _ULP for word in words]


class Random:
    """Sample params uniformly (log-uniformly for ``log`` domains).

    Trial number ``k`` gets its params from a random stream derived from
    ``seed`` and ``k`` alone, so the same seed gives the same params for each
    trial number whatever the concurrency or finishing order, and a resumed
    study re-runs exactly the points its crash interrupted. Without a seed one
    is drawn, and shown in the ``repr`` (and so in the journal's header).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed)

    def suggest(self, space: Space, history: History) -> AsyncIterator[Params]:
        """Yield random params forever; the study's ``max_trials`` or observers end it."""
        return drive(RandomCore(space, self.seed), history)

    def __repr__(self) -> str:
        return f"Random(seed={self.seed})"
