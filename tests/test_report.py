"""at.report: one self-contained HTML file, checked in a real (headless) browser."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aiotune as at
from aiotune.views import figures, read_snapshot
from views_browser import PageLog, browser
from views_study import XSS_CHOICE, XSS_ERROR, make_mo_study_sync, make_study_sync

__all__ = ["browser"]  # the fixture


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, at.TuningResult]:
    path = tmp_path_factory.mktemp("report") / "trials.jsonl"
    return path, make_study_sync(path, trials=30)


def open_report(browser: Any, path: Path) -> tuple[Any, PageLog]:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    log = PageLog(page)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return page, log


@pytest.mark.slow
def test_report_of_a_real_study_loads_offline_without_errors_with_every_plot(
    browser: Any, study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    journal, result = study
    out = at.report(journal, tmp_path / "report.html")
    assert out == tmp_path / "report.html"
    html = out.read_text()
    assert "<script src=" not in html  # everything inlined
    assert "<link" not in html
    page, log = open_report(browser, out)
    # history, importance, statuses, contour, parallel coordinates, intermediate values,
    # timeline, and one slice per parameter (4)
    expected = 7 + len(result.trials[0].params)
    assert page.locator("svg.chart").count() == expected
    titles = page.locator("section.fig h2").all_text_contents()
    assert titles[:3] == ["Optimisation history", "Parameter importance", "Status counts"]
    assert {"Parallel coordinates", "Intermediate values", "Timeline of trials per worker"} <= set(
        titles
    )
    assert any(t.startswith("Contour: ") for t in titles)
    assert [t for t in titles if t.startswith("Slice: ")] == [
        f"Slice: {name}" for name in ("lr", "layers", "opt", "bn")
    ]
    cards = page.locator("#cards").inner_text()
    assert str(len(result.trials)) in cards
    best = page.locator("#best table").inner_text()
    assert f"{result.best.score:.6g}" in best
    assert log.errors == []
    assert log.external == []
    page.close()


@pytest.mark.slow
def test_hostile_strings_in_params_and_errors_show_as_text(
    browser: Any, study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    _, result = study
    assert any(t.params["opt"] == XSS_CHOICE for t in result.trials)
    out = at.report(result, tmp_path / "report.html")  # from a TuningResult this time
    page, log = open_report(browser, out)
    assert page.evaluate("window.__xss") is None  # nothing ran
    assert page.locator("img").count() == 0
    failures = page.locator("#failures table").inner_text()
    assert XSS_ERROR in failures
    ticks = page.locator(".xtick text").all_text_contents()
    assert XSS_CHOICE in ticks  # the categorical choice, as a tick label of the 'opt' slice
    assert log.errors == []
    page.close()


@pytest.fixture(scope="module")
def mo_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, at.TuningResult]:
    path = tmp_path_factory.mktemp("report-mo") / "mo.jsonl"
    return path, make_mo_study_sync(path, trials=40)


def trace_points(page: Any, figure: str) -> dict[str, int]:
    """Points drawn per named trace of a figure, read from the page."""
    traces = page.locator(f"#fig-{figure} g.trace").all()
    return {g.get_attribute("data-name"): int(g.get_attribute("data-points")) for g in traces}


@pytest.mark.slow
def test_report_of_a_multi_objective_study_draws_its_pareto_front(
    browser: Any, mo_study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    journal, result = mo_study
    front = result.pareto_front
    complete = [t for t in result.trials if t.is_complete]
    infeasible = [t for t in complete if not t.feasible]
    assert front
    assert infeasible
    page, log = open_report(browser, at.report(journal, tmp_path / "mo.html"))
    titles = page.locator("section.fig h2").all_text_contents()
    assert titles[0] == "Pareto front"
    assert "Optimisation history" not in titles
    assert [t for t in titles if t.startswith("Slice: ")] == ["Slice: x", "Slice: y", "Slice: kind"]
    assert trace_points(page, "pareto") == {
        "dominated": len(complete) - len(infeasible) - len(front),
        "infeasible": len(infeasible),
        "boundary of the dominated region": 2 * len(front) - 1,  # the front and its corners
        "Pareto front": len(front),
    }
    axes = page.locator("#fig-pareto svg text").all_text_contents()
    assert {"score 1 (maximize)", "score 2 (minimize)"} <= set(axes)
    assert "Score: score 1 (maximize)." in page.locator("#fig-slice-0 .note").inner_text()
    rows = page.locator("#front table tr").all_inner_texts()[1:]
    assert [int(row.split()[0]) for row in rows] == [t.number for t in front]
    assert rows[0].split()[1:3] == [f"{v:.6g}" for v in front[0].scores]
    cards = page.locator("#cards").inner_text().lower()
    assert "best score" not in cards
    assert f"pareto front\n{len(front)} trials" in cards
    assert f"infeasible\n{len(infeasible)}" in cards
    assert page.locator("#best").count() == 0
    assert page.evaluate("window.__xss") is None
    assert log.errors == []
    page.close()


def test_three_objectives_are_drawn_pairwise_and_a_constrained_history_marks_infeasible() -> None:
    trials = tuple(
        at.Trial(
            number=i,
            params={"x": i / 10},
            status=at.TrialStatus.COMPLETE,
            scores=(i / 10, (10 - i) / 10, float(i % 3)),
            constraints=(1.0 if i == 4 else -1.0,),
        )
        for i in range(10)
    )
    view = figures.build_view(read_snapshot(at.TuningResult(trials, direction=("maximize",) * 3)))
    by_id = {f["id"]: f for f in view["figures"]}
    assert [i for i in by_id if i.startswith("pareto")] == [
        "pareto-0-1",
        "pareto-0-2",
        "pareto-1-2",
    ]
    assert "a projection" in by_id["pareto-0-2"]["note"]
    names = {t["name"]: t for t in by_id["pareto-0-1"]["figure"]["data"]}
    assert "boundary of the dominated region" not in names  # no staircase in a projection
    assert names["infeasible"]["customdata"] == [4]
    engine_front = at.TuningResult(trials, direction=("maximize",) * 3).pareto_front
    assert view["summary"]["front_total"] == len(engine_front) > 1
    assert [r["number"] for r in view["summary"]["front"]] == [t.number for t in engine_front]
    assert view["summary"]["best"] is None
    assert view["top"] == []

    single = tuple(
        at.Trial(
            number=i, params={"x": i}, status=at.TrialStatus.COMPLETE, score=float(i),
            constraints=(float(i - 6),),
        )
        for i in range(10)
    )  # fmt: skip
    view = figures.build_view(read_snapshot(at.TuningResult(single)))
    history = {t.get("name"): t for t in view["figures"][0]["figure"]["data"]}
    assert history["infeasible"]["x"] == [7, 8, 9]
    assert history["score"]["x"] == list(range(7))
    assert history["best so far"]["y"][-1] == 6.0  # the best feasible
    assert view["summary"]["best"]["number"] == 6
    assert view["summary"]["infeasible"] == 3
    assert [r["number"] for r in view["top"]][:3] == [6, 5, 4]


def test_report_needs_no_plotting_library_and_stays_small(
    monkeypatch: pytest.MonkeyPatch, study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly would raise ImportError
    out = at.report(study[1], tmp_path / "r.html")
    assert out.stat().st_size < 300_000  # 30 trials: the data and a ~20 kB script
    assert "drawChart" in out.read_text()


def _synthetic(n: int) -> at.TuningResult:
    trials = tuple(
        at.Trial(
            number=i,
            params={"x": (i * 7919 % 1000) / 1000, "c": ["a", "b", "c"][i % 3]},
            status=at.TrialStatus.COMPLETE if i % 10 else at.TrialStatus.FAILED,
            score=None if i % 10 == 0 else float(i % 97),
            error=at.ErrorInfo("ValueError", f"bad {i}") if i % 10 == 0 else None,
            intermediate={0: 0.0, 1: float(i % 5)},
            started_at=1000.0 + i,
            finished_at=1001.5 + i,
            duration=1.5,
            worker=f"w{i % 4}",
        )
        for i in range(n)
    )
    return at.TuningResult(trials=trials)


def test_a_big_study_is_sampled_and_says_so() -> None:
    view = figures.build_view(read_snapshot(_synthetic(9000)))
    by_id = {f["id"]: f for f in view["figures"]}
    history = by_id["history"]
    assert len(history["figure"]["data"][0]["x"]) <= figures.MAX_POINTS
    assert "Showing" in history["note"]
    slice_x = by_id["slice-0"]["figure"]["data"][0]["x"]
    assert len(slice_x) <= figures.MAX_POINTS
    assert "Showing 150 of 9,000" in by_id["intermediate"]["note"]
    assert f"last {figures.MAX_BARS:,} of 9,000" in by_id["timeline"]["note"]
    bars = sum(len(trace["x"]) for trace in by_id["timeline"]["figure"]["data"])
    assert bars == figures.MAX_BARS
    # The best score stays on the plot, and the best-so-far line reaches the end.
    best = max(t.score or 0 for t in _synthetic(9000).trials)
    assert best in history["figure"]["data"][0]["y"]
    assert history["figure"]["data"][1]["x"][-1] == 8999
    assert view["summary"]["counts"]["failed"] == 900
    assert view["failures_total"] == 900
    assert len(view["failures"]) == figures.MAX_FAILURES


def test_importance_finds_the_parameter_that_matters() -> None:
    from aiotune.views import summary

    trials = [
        at.Trial(
            number=i,
            params={"matters": i % 5, "noise": (i * 31) % 17},
            status=at.TrialStatus.COMPLETE,
            score=float((i % 5) ** 2) + ((i * 31) % 17) * 0.01,
        )
        for i in range(200)
    ]
    weights = summary.importance(trials, ["matters", "noise"])
    assert weights["matters"] > 0.9
    assert weights["noise"] < 0.1


def test_the_views_fast_front_is_the_engines_front_ties_included() -> None:
    from aiotune.trial import pareto_front
    from aiotune.views import summary

    rng = np.random.default_rng(0)
    both = ("maximize", "minimize")
    for directions in (both, ("minimize",) * 2, ("maximize",) * 2, (*both, "maximize")):
        for _ in range(30):
            trials = [
                at.Trial(
                    number=i,
                    params={},
                    status=at.TrialStatus.COMPLETE if i % 7 else at.TrialStatus.FAILED,
                    scores=tuple(float(v) for v in rng.integers(0, 6, size=len(directions)))
                    if i % 7
                    else (),
                    constraints=(float(rng.integers(-3, 2)),),
                )
                for i in range(40)
            ]
            assert summary.front(trials, directions) == list(pareto_front(trials, directions))


@pytest.mark.slow
def test_hovering_a_point_names_its_trial_and_dragging_zooms(
    browser: Any, study: tuple[Path, at.TuningResult], tmp_path: Path
) -> None:
    _, result = study
    page, log = open_report(browser, at.report(result, tmp_path / "report.html"))
    scores = "#fig-history g.trace[data-name='score']"
    first = page.locator(f"{scores} path").first.get_attribute("d")
    assert first is not None
    # The first circle of the path: "M<x - r> <y>a...": its centre, in page coordinates.
    x, y = (float(v) for v in first[1:].split("a", 1)[0].split())
    box = page.locator("#fig-history svg.chart").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + x + 3, box["y"] + y)
    tip = page.locator("#charttip")
    assert tip.is_visible()
    assert tip.inner_text().startswith("trial ")
    number = int(tip.inner_text().split()[1])
    assert number in {t.number for t in result.trials if t.is_complete}
    assert f"score {result.trials[number].score:.6g}" in tip.inner_text()

    drawn = int(page.locator(scores).get_attribute("data-points") or 0)
    assert drawn == len([t for t in result.trials if t.is_complete])
    left, top = box["x"] + 70, box["y"] + 20
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move(left + 120, top + 200, steps=4)
    page.mouse.up()
    zoomed = int(page.locator(scores).get_attribute("data-points") or 0)
    assert 0 <= zoomed < drawn
    assert page.locator("#fig-history .zoomed").is_visible()
    page.locator("#fig-history svg.chart").dblclick()
    assert int(page.locator(scores).get_attribute("data-points") or 0) == drawn
    assert page.locator("#fig-history .zoomed").count() == 0
    assert log.errors == []
    page.close()
