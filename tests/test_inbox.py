"""The orchestrator's end of the report channels: what it keeps per watched trial."""

from __future__ import annotations

import asyncio

from aiotune.execution.inbox import ReportInbox


def test_a_watched_trial_keeps_its_start_and_reports_until_forgotten() -> None:
    async def main() -> None:
        seen: list[tuple[int, int, float]] = []
        inbox = ReportInbox(asyncio.get_running_loop(), on_report=lambda *r: seen.append(r))
        inbox.watch_all([1, 2])
        started: list[int] = []
        inbox.watch(3, lambda: started.append(3))
        inbox.started(1, "host:1")
        assert inbox.report(1, 0, 0.5) is False
        assert inbox.report(1, 2, 0.75) is False
        inbox.started(3, "host:3")
        at, worker, intermediate = inbox.forget(1)
        assert at is not None
        assert worker == "host:1"
        assert intermediate == {0: 0.5, 2: 0.75}
        assert inbox.forget(2) == (None, None, {})  # watched, but heard nothing
        assert inbox.forget(3)[1] == "host:3"
        assert started == [3]
        # Forgotten or never watched: a report is answered "stop", and nothing is kept.
        assert inbox.report(1, 3, 1.0) is True
        assert inbox.report(9, 0, 1.0) is True
        inbox.started(9, "host:9")
        assert inbox.forget(9) == (None, None, {})
        assert seen == [(1, 0, 0.5), (1, 2, 0.75)]

    asyncio.run(main())
