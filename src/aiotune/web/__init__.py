"""The live dashboard: :func:`dashboard` is an ASGI app showing a study as it runs.

::

    from aiotune.web import dashboard

    app.mount("/tuning", dashboard(tuner))            # in your FastAPI/Starlette app
    app.mount("/tuning", dashboard("trials.jsonl"))   # or journals another process writes

It shows what the HTML report shows, updated live: the page opens one
server-sent events stream and redraws on each new view; the server builds a
view once per change (in a thread, off the event loop), however many
people watch. Read-only: every route is a GET, none changes the study.
``aiotune serve trials.jsonl`` runs it with uvicorn on 127.0.0.1.
Needs the ``web`` extra: ``pip install 'aiotune[web]'``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from aiotune._checks import check_seconds
from aiotune.errors import MissingExtraError
from aiotune.views.figures import build_view
from aiotune.views.page import render_page, view_json
from aiotune.views.source import POLL_INTERVAL, Snapshot, Source, open_source, read_snapshot

_FEATURE = "aiotune.web.dashboard()"
KEEPALIVE = 15.0
"""Seconds between keep-alive comments on an idle event stream."""
MIN_INTERVAL = 0.5
"""Seconds between two rebuilds of the view of a busy study, at least."""


def _starlette() -> Any:
    try:
        return importlib.import_module("starlette")
    except ImportError:
        raise MissingExtraError(_FEATURE, "web") from None


class _Feed:
    """The study's current view, built once per change and shared by every viewer."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._lock = anyio.Lock()
        self._built: _View | None = None
        self._built_at = -1e9

    async def current(self) -> _View:
        """The newest view."""
        snap = await self._source.snapshot()
        async with self._lock:  # one build at a time; the others reuse it
            if self._built is None or self._built.version != snap.version:
                self._built = await anyio.to_thread.run_sync(_render, snap)
                self._built_at = anyio.current_time()
            return self._built

    async def newer(self, version: int) -> _View:
        """Wait for a view newer than ``version`` (a busy study: at most one per MIN_INTERVAL)."""
        while True:
            await self._source.wait_newer(version)
            pause = self._built_at + MIN_INTERVAL - anyio.current_time()
            if pause > 0:
                await anyio.sleep(pause)
            built = await self.current()
            if built.version != version:
                return built


@dataclass(frozen=True, slots=True)
class _View:
    """One built view: its version, its JSON text, and the same as one SSE event."""

    version: int
    text: str
    event: bytes


def _render(snap: Snapshot) -> _View:
    text = view_json(build_view(snap))
    return _View(snap.version, text, b"data: " + text.encode() + b"\n\n")


def dashboard(
    source: object, *, title: str | None = None, poll_interval: float = POLL_INTERVAL
) -> Any:
    """An ASGI app (Starlette) showing ``source`` live.

    ``source`` is a running study (anything with ``.history``, ``.space`` and
    ``.direction``: a :class:`~aiotune.Tuner`), journal path(s) that another
    process may still be appending to (read incrementally every
    ``poll_interval`` seconds; a torn last line waits for its end), or a
    finished :class:`~aiotune.TuningResult`. Mount it anywhere
    (``app.mount("/tuning", dashboard(tuner))``); it only reads.

    Routes: ``/`` the page (self-contained: its plotting script is inline),
    ``/events`` the server-sent events (one view per change, as JSON),
    ``/api/view`` the current view as JSON.
    """
    _starlette()
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route

    interval = check_seconds("poll_interval", poll_interval)
    feed = _Feed(open_source(source, poll_interval=interval))
    name = title or _title(source)

    async def page(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        view = await feed.current()
        html = render_page(
            view.text,
            title=f"aiotune dashboard: {name}",
            events_url=f"{base}/events?since={view.version}",
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def api_view(request: Request) -> Response:
        return Response((await feed.current()).text, media_type="application/json")

    async def events(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "-1"))
        except ValueError:
            since = -1

        async def stream() -> AsyncIterator[bytes]:
            version = since
            if version < 0:
                view = await feed.current()
                version = view.version
                yield view.event  # built once, sent as is to every viewer
            while True:
                got: _View | None = None
                with anyio.move_on_after(KEEPALIVE):  # never yield inside the scope
                    got = await feed.newer(version)
                if got is None:
                    yield b": keep-alive\n\n"
                else:
                    version = got.version
                    yield got.event

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)  # browsers ask; a 404 would be a console error

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
        Route("/api/view", api_view, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def _title(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return os.path.basename(os.fspath(source))
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return ", ".join(os.path.basename(os.fspath(p)) for p in source)
    return type(source).__name__


def serve(source: object, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run :func:`dashboard` for ``source`` with uvicorn until interrupted (blocking).

    Journal paths are read once first, so a missing or unreadable journal
    fails here with a :class:`~aiotune.JournalError`, not in the browser.
    """
    try:
        uvicorn = importlib.import_module("uvicorn")
    except ImportError:
        raise MissingExtraError("aiotune serve", "web") from None
    if not hasattr(source, "history"):
        read_snapshot(source, on_corrupt="skip")
    app = dashboard(source)
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["dashboard", "serve"]
