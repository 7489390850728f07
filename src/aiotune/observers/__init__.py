"""Observers: what sees each finished trial of a study, in its own task.

:mod:`aiotune.observers.base` defines an observer and the study handle it is
given; :mod:`aiotune.observers.stopping` holds the observers that end a study
early. The journal writer, an observer too, lives in :mod:`aiotune.journal`.
"""
