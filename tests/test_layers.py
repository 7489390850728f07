"""Imports point down the layers of docs/architecture.md, and the loop is never blocked long."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import anyio

import aiotune as at
import objectives

SRC = Path(at.__file__).parent

BOTTOM = {"errors", "space", "trial", "history", "_checks"}
# Each middle package may use the bottom and itself; observers and the journal
# share a layer (the journal writer is an observer).
MIDDLE = {
    "execution": set(),
    "strategies": set(),
    "pruning": set(),
    "observers": set(),
    "journal": {"observers"},
}
TOP = {"_blocking", "_config", "study", "tuner"}
# The edge sees everything: the package face, integrations, and the ways of seeing a study.
EDGE = {"__init__", "__main__", "integrations", "cli", "reports", "views", "web"}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiotune"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aiotune"))
    return found


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in SRC.rglob("*.py"):
        module = "aiotune." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        own = _layer_of(module)
        if own in EDGE:
            continue
        allowed = set(BOTTOM)
        if own in MIDDLE:
            allowed |= {own} | MIDDLE[own]
        elif own in TOP:
            allowed |= set(MIDDLE) | TOP
        for target in _imports(path):
            layer = _layer_of(target)
            if layer != "__init__" and layer not in allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


async def test_the_loop_keeps_running_through_start_up_trials_and_teardown() -> None:
    # Trials that outlive a cancel, a pool to start and to tear down: if any of it
    # ran on the event loop, the heartbeat would stall for seconds. The bound is
    # loose on purpose (shared, loaded CI machines); blocking would blow far past it.
    lags: list[float] = []

    async def heartbeat() -> None:
        while True:
            began = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - began - 0.01)

    space = at.Space(seconds=at.Categorical([0.2, 5.0]))
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        with anyio.move_on_after(3):
            await at.tune(objectives.sleepy, space, strategy=at.Grid(), concurrency=2)
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    assert max(lags) < 1.0
