"""``python -m aiotune``: the ``aiotune`` command (see :mod:`aiotune.cli`)."""

from aiotune.cli import main

raise SystemExit(main())
