"""A reference tuning service: many studies over HTTP on one shared worker pool.

Start it from the repository root with::

    .venv/bin/python -m examples.service --data service-data --port 8000

``studies.py`` runs the studies (no HTTP in it), ``app.py`` is the Starlette
app, ``objectives.py`` the registry of objectives a request may name. This
module stays empty: worker processes import ``objectives`` through it.
"""
