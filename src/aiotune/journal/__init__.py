"""The journal: a study's durable record as a JSONL file (see :mod:`aiotune.journal.format`).

:class:`JsonlWriter` appends it while a study runs; :func:`read_journal` and
:func:`load` read it back; :func:`read_for_resume` reads it for a study to
continue, refusing a journal that another study is writing.
"""

from aiotune.journal._lock import read_for_resume as read_for_resume
from aiotune.journal.reader import Journal as Journal
from aiotune.journal.reader import load as load
from aiotune.journal.reader import read_journal as read_journal
from aiotune.journal.writer import JsonlWriter as JsonlWriter

__all__ = ["Journal", "JsonlWriter", "load", "read_for_resume", "read_journal"]
