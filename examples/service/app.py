"""The HTTP face of the service: a Starlette app over :class:`~.studies.Service`.

::

    POST /studies                 create and start a study (JSON body, below) -> 201
    GET  /studies                 every study's summary
    GET  /studies/{id}            one: state, counts by status, best, stop reason, error
    GET  /studies/{id}/events     its trials as server-sent events (past ones first), then "end"
    POST /studies/{id}/stop       launch no new trial; those in flight finish -> 202
    POST /studies/{id}/cancel     end it now; trials in flight are cancelled -> 202
    GET  /objectives              the objectives a request may name

A creation request::

    {"space": {"params": {"x": {"type": "float", "low": 0, "high": 1}}},   # Space.to_dict()
     "objective": "sphere", "strategy": "random", "seed": 0,
     "max_trials": 30, "concurrency": 2, "id": "optional-name"}

Every error is JSON ``{"error": "<TuningError subclass>", "message": "..."}``:
400 for bad input, 404 for an unknown study, 409 for a clash with its
state, 503 when the data directory cannot be written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import aiotune as at

from .objectives import OBJECTIVES
from .studies import (
    RequestError,
    Service,
    StorageError,
    StudyConflict,
    StudyNotFound,
    StudyRun,
    trial_record,
)

logger = logging.getLogger("aiotune.service")

KEEPALIVE = 10.0
"""Seconds of silence after which a stream sends a comment (and so notices a gone client)."""

_STATUS: dict[type[at.TuningError], int] = {
    StudyNotFound: 404,
    StudyConflict: 409,
    StorageError: 503,
}


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def _error(request: Request, exc: Exception) -> Response:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    return _JSON({"error": type(exc).__name__, "message": str(exc)}, status_code=status)


async def create_study(request: Request) -> Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    run = await _service(request).create(body)
    return _JSON(run.summary(), status_code=201)


async def list_studies(request: Request) -> Response:
    return _JSON({"studies": [run.summary() for run in _service(request).runs.values()]})


async def get_study(request: Request) -> Response:
    return _JSON(_service(request).get(request.path_params["id"]).summary())


async def stop_study(request: Request) -> Response:
    run = _service(request).get(request.path_params["id"])
    run.stop()
    return _JSON(run.summary(), status_code=202)


async def cancel_study(request: Request) -> Response:
    run = _service(request).get(request.path_params["id"])
    run.cancel()
    return _JSON(run.summary(), status_code=202)


async def list_objectives(request: Request) -> Response:
    return _JSON({name: (fn.__doc__ or "").strip() for name, fn in OBJECTIVES.items()})


def _event(kind: str, data: object, event_id: int | None = None) -> bytes:
    head = f"event: {kind}\n" + ("" if event_id is None else f"id: {event_id}\n")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


_IDLE = object()


async def _next(live: MemoryObjectReceiveStream[at.Trial]) -> object:
    """The next trial, ``None`` at the end of the study, or ``_IDLE`` after a quiet spell."""
    with anyio.move_on_after(KEEPALIVE):
        try:
            return await live.receive()
        except anyio.EndOfStream:
            return None
    return _IDLE


async def _events(run: StudyRun) -> AsyncIterator[bytes]:
    """Past trials, live ones as they finish, then ``end`` with the study's summary.

    Each client has its own subscription: a client that disconnects closes it
    (Starlette cancels this generator) and the study never notices.
    """
    snapshot, live = run.subscribe()
    seen = set()
    try:
        for trial in snapshot:
            seen.add(trial.number)
            yield _event("trial", trial_record(trial), trial.number)
        while live is not None:
            item = await _next(live)
            if item is None:
                break
            if item is _IDLE:
                yield b": keep-alive\n\n"
            elif isinstance(item, at.Trial) and item.number not in seen:
                seen.add(item.number)
                yield _event("trial", trial_record(item), item.number)
    finally:
        if live is not None:
            run.unsubscribe(live)
    if run.is_over:  # else the service dropped a client that fell behind: it may reconnect
        yield _event("end", run.summary())


async def stream_study(request: Request) -> Response:
    run = _service(request).get(request.path_params["id"])
    return StreamingResponse(
        _events(run),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def create_app(data: str | os.PathLike[str], *, workers: int | None = None) -> Starlette:
    """The service's ASGI app: studies under ``data``, on one pool of ``workers`` processes.

    Its lifespan owns the :class:`~.studies.Service` (the pool and every
    study's task): startup resumes unfinished studies, shutdown cancels the
    running ones (they resume on the next start) and closes the pool.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with Service(data, workers=workers) as service:
            app.state.service = service
            logger.info(
                "serving %d studies from %s on %d workers",
                len(service.runs),
                service.data,
                service.workers,
            )
            yield
            logger.info("shutting down: running studies resume on the next start")

    return Starlette(
        routes=[
            Route("/studies", create_study, methods=["POST"]),
            Route("/studies", list_studies, methods=["GET"]),
            Route("/studies/{id}", get_study, methods=["GET"]),
            Route("/studies/{id}/events", stream_study, methods=["GET"]),
            Route("/studies/{id}/stop", stop_study, methods=["POST"]),
            Route("/studies/{id}/cancel", cancel_study, methods=["POST"]),
            Route("/objectives", list_objectives, methods=["GET"]),
        ],
        exception_handlers={at.TuningError: _error},
        lifespan=lifespan,
    )
