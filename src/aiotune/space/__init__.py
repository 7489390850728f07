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

Conditions: a domain built with ``when={"parent": value_or_values}`` belongs
to a parameter that is active only when its parents are active and hold one
of those values. A params dict holds exactly the active parameters. The
:class:`Space` checks the conditions once (parents exist, are discrete, the
values are theirs, no cycle) and walks parents before children wherever it
decides activity; an inactive parameter's unit coordinate is ``nan`` in
``to_unit`` and ignored by ``from_unit``.
"""

from aiotune.space._domains import Bool, Categorical, Domain, Float, Int, domain_from_dict
from aiotune.space._domains import Condition as Condition
from aiotune.space._domains import Scalar as Scalar
from aiotune.space._domains import condition as condition
from aiotune.space._space import SPACE_FORMAT as SPACE_FORMAT
from aiotune.space._space import Space

__all__ = ["Bool", "Categorical", "Domain", "Float", "Int", "Space", "domain_from_dict"]
