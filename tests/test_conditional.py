"""Conditional spaces (``when=``): the rules of the tree, and every strategy on it."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiotune as at
from aiotune.errors import SpaceError
from aiotune.space import Bool, Categorical, Float, Int, Space


def model_space() -> Space:
    """The issue's example: model selection with per-model parameters."""
    return Space(
        model=Categorical(["svm", "rf", "knn"]),
        C=Float(1e-3, 1e3, log=True, when={"model": "svm"}),
        kernel=Categorical(["rbf", "linear"], when={"model": "svm"}),
        gamma=Float(1e-4, 1e1, log=True, when={"model": "svm", "kernel": "rbf"}),
        n_estimators=Int(10, 500, log=True, when={"model": "rf"}),
        n_neighbors=Int(1, 50, when={"model": ["knn"]}),
    )


# --- building a space ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"a": Bool(), "b": Bool(when={"zz": True})}, "b", "unknown parameter 'zz'"),
        ({"a": Float(0, 1), "b": Bool(when={"a": 0.5})}, "b", "'a', a Float"),
        ({"a": Int(0, 3), "b": Bool(when={"a": 7})}, "b", "7 is not a value of 'a'"),
        ({"a": Categorical(["x"]), "b": Bool(when={"a": ["x", "y"]})}, "b", "'y' is not"),
        ({"a": Bool(), "b": Bool(when={"a": 1})}, "b", "1 is not a value of 'a'"),
        ({"a": Bool(when={"a": True})}, "a", "names the parameter itself"),
        (
            {"a": Bool(when={"b": True}), "b": Bool(when={"a": True}), "c": Bool()},
            "a",
            "cycle: 'a' -> 'b' -> 'a'",
        ),
        (
            {"r": Bool(), "a": Bool(when={"c": True}), "b": Bool(when={"a": True}),
             "c": Bool(when={"b": True})},
            "a",
            "'a' -> 'c' -> 'b' -> 'a'",
        ),
    ],
)  # fmt: skip
def test_bad_conditions_are_refused_when_the_space_is_built(
    params: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(SpaceError) as info:
        Space(params)
    assert info.value.param == param
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("model", "when= must be a dict"),
        ({"m": []}, "lists no value"),
        ({"m": ["a", "a"]}, "lists a value twice"),
        ({"m": [object()]}, "must be a JSON scalar"),
        ({"": "a"}, "keys must be parameter names"),
        ({"m": math.inf}, "must be finite"),
    ],
)
def test_bad_when_is_refused_by_the_domain(when: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        Bool(when=when)


def test_when_is_normalised_and_compared_type_aware() -> None:
    assert Float(0, 1, when={"m": "a", "k": ["x", "y"]}).when == {"k": ("x", "y"), "m": ("a",)}
    assert Float(0, 1).when is None
    assert Bool(when={"c": 1}) != Bool(when={"c": True})
    assert Bool(when={"c": ["a", "b"]}) == Bool(when={"c": ("a", "b")})
    assert hash(Bool(when={"c": "a"})) == hash(Bool(when={"c": ["a"]}))
    assert Bool() != Bool(when={"c": "a"})
    assert Categorical([1], when={"c": "a"}) != Categorical([1])
    assert repr(Int(1, 5, when={"m": ["a", "b"]})) == "Int(1, 5, when={'m': ['a', 'b']})"


def test_an_int_parent_and_a_bool_parent() -> None:
    space = Space(
        layers=Int(1, 3),
        width2=Int(8, 64, when={"layers": [2, 3]}),
        width3=Int(8, 64, when={"layers": 3}),
        dropout=Bool(),
        rate=Float(0.1, 0.5, when={"dropout": True}),
    )
    assert space.validate({"layers": 1, "dropout": False}) == {"layers": 1, "dropout": False}
    assert space.active({"layers": 3, "dropout": True}) == list(space)
    assert space.active({"layers": 2}) == ["layers", "width2", "dropout"]
    points = list(space.grid({"width2": 2, "width3": 2, "rate": 2}))
    # layers=1: 1, layers=2: 2, layers=3: 4 — times dropout: False (1) or True (2 rates)
    assert (
        len(points)
        == (1 + 2 + 4) * (1 + 2)
        == space.grid_size({"width2": 2, "width3": 2, "rate": 2})
    )


# --- params hold only the active parameters ------------------------------------------------


def test_validate_rejects_inactive_and_missing_active() -> None:
    space = model_space()
    ok = {"model": "svm", "C": 1.0, "kernel": "linear"}
    assert space.validate(ok) == ok
    assert space.validate({"model": "knn", "n_neighbors": 3.0}) == {
        "model": "knn",
        "n_neighbors": 3,
    }
    with pytest.raises(SpaceError, match=r"inactive \['gamma'\]") as info:
        space.validate({**ok, "gamma": 0.1})
    assert info.value.param == "gamma"
    with pytest.raises(SpaceError, match=r"missing \['gamma'\]") as info:
        space.validate({**ok, "kernel": "rbf"})
    assert info.value.param == "gamma"
    with pytest.raises(SpaceError, match=r"inactive \['C', 'kernel'\]"):
        space.validate({"model": "rf", "n_estimators": 10, "C": 1.0, "kernel": "rbf"})
    with pytest.raises(SpaceError, match=r"unknown \['zz'\]"):
        space.validate({**ok, "zz": 1})
    with pytest.raises(SpaceError) as info:
        space.validate({"model": "svm", "C": 1e9, "kernel": "linear"})
    assert info.value.param == "C"
    with pytest.raises(SpaceError) as info:
        space.validate({"model": "none"})
    assert info.value.param == "model"


def test_sample_and_the_unit_cube_follow_the_tree() -> None:
    space = model_space()
    rng = np.random.default_rng(0)
    seen_models = set()
    for _ in range(200):
        params = space.sample(rng)
        assert space.validate(params) == params
        assert list(params) == space.active(params)
        seen_models.add(params["model"])
        unit = space.to_unit(params)
        assert np.isnan(unit).tolist() == [n not in params for n in space]
        assert space.from_unit(unit) == params
    assert seen_models == {"svm", "rf", "knn"}


def test_sample_draws_do_not_depend_on_the_conditions() -> None:
    flat = Space(model=Categorical(["svm", "rf", "knn"]), C=Float(1e-3, 1e3, log=True))
    tree = Space(
        model=Categorical(["svm", "rf", "knn"]), C=Float(1e-3, 1e3, log=True, when={"model": "svm"})
    )
    for seed in range(20):
        a, b = flat.sample(np.random.default_rng(seed)), tree.sample(np.random.default_rng(seed))
        assert {k: v for k, v in a.items() if k in b} == b


def test_repair() -> None:
    space = model_space()
    rng = np.random.default_rng(1)
    full = {"model": "rf", "C": 1.0, "kernel": "rbf", "gamma": 0.1, "n_estimators": 20.0,
            "n_neighbors": 3}  # fmt: skip
    assert space.repair(full, rng) == {"model": "rf", "n_estimators": 20}
    drawn = space.repair({"model": "svm", "kernel": "rbf"}, rng)
    assert set(drawn) == {"model", "kernel", "C", "gamma"}
    assert space.validate(drawn) == drawn
    with pytest.raises(SpaceError, match="unknown parameter"):
        space.repair({"model": "svm", "zz": 1}, rng)
    with pytest.raises(SpaceError) as info:
        space.repair({"model": "rf", "n_estimators": 5000}, rng)
    assert info.value.param == "n_estimators"


def test_grid_is_exact_without_duplicates() -> None:
    space = model_space()
    points = list(space.grid(3))
    # svm: C (3) x [linear: 1, rbf: gamma (3)] = 12; rf: 3 log-spaced ints; knn: 3
    assert len(points) == 12 + 3 + 3 == space.grid_size(3)
    keys = {tuple(p.items()) for p in points}
    assert len(keys) == len(points)
    for p in points:
        assert space.validate(p) == p
    with pytest.raises(SpaceError) as info:
        space.grid()  # a continuous Float needs a resolution, active or not
    assert info.value.param == "C"


# --- as data: dicts, fingerprints, journals ------------------------------------------------


def test_conditions_round_trip_through_json_and_change_the_fingerprint() -> None:
    space = model_space()
    d = orjson.loads(orjson.dumps(space.to_dict()))
    assert d["params"]["gamma"]["when"] == {"kernel": ["rbf"], "model": ["svm"]}
    assert "when" not in d["params"]["model"]
    again = Space.from_dict(d)
    assert again == space
    assert again.fingerprint == space.fingerprint
    other = Space(
        model=Categorical(["svm", "rf", "knn"]),
        C=Float(1e-3, 1e3, log=True, when={"model": "rf"}),
        kernel=Categorical(["rbf", "linear"], when={"model": "svm"}),
        gamma=Float(1e-4, 1e1, log=True, when={"model": "svm", "kernel": "rbf"}),
        n_estimators=Int(10, 500, log=True, when={"model": "rf"}),
        n_neighbors=Int(1, 50, when={"model": ["knn"]}),
    )
    assert other != space
    assert other.fingerprint != space.fingerprint
    assert space.diff(other) == [
        "'C': Float(0.001, 1000.0, log=True, when={'model': 'svm'}) here, "
        "Float(0.001, 1000.0, log=True, when={'model': 'rf'}) in the other space"
    ]


def test_from_dict_refuses_a_bad_condition_naming_the_parameter() -> None:
    d = model_space().to_dict()
    d["params"]["C"]["when"] = {"model": "lasso"}
    with pytest.raises(SpaceError) as info:
        Space.from_dict(d)
    assert info.value.param == "C"
    d["params"]["C"]["when"] = "model"
    with pytest.raises(SpaceError, match="when= must be a dict") as info:
        Space.from_dict(d)
    assert info.value.param == "C"


# --- strategies only ever produce valid params ---------------------------------------------

SPACE = model_space()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), number=st.integers(0, 10_000))
def test_random_only_produces_valid_conditional_params(seed: int, number: int) -> None:
    from aiotune.strategies.random import RandomCore

    params = RandomCore(SPACE, seed).ask(number, {})
    assert SPACE.validate(params) == params
    assert RandomCore(SPACE, seed).ask(number, {}) == params  # depends on (seed, k) alone


def tree_spaces() -> st.SearchStrategy[Space]:
    """Random small trees: each parameter may hang under an earlier discrete one."""

    @st.composite
    def build(draw: st.DrawFn) -> Space:
        domains: dict[str, Any] = {}
        for i in range(draw(st.integers(1, 5))):
            kind = draw(st.sampled_from(["cat", "bool", "int", "float"]))
            parents = [n for n, d in domains.items() if not isinstance(d, Float)]
            when = None
            if parents and draw(st.booleans()):
                parent = draw(st.sampled_from(parents))
                values = list(domains[parent].grid(None))
                chosen = draw(
                    st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)
                )
                when = {parent: chosen}
            if kind == "cat":
                domains[f"p{i}"] = Categorical(
                    ["a", "b", "c"][: draw(st.integers(1, 3))], when=when
                )
            elif kind == "bool":
                domains[f"p{i}"] = Bool(when=when)
            elif kind == "int":
                domains[f"p{i}"] = Int(0, draw(st.integers(1, 3)), when=when)
            else:
                domains[f"p{i}"] = Float(0, 1, when=when)
        return Space(domains)

    return build()


@settings(max_examples=60, deadline=None)
@given(space=tree_spaces(), seed=st.integers(0, 1000))
def test_grid_and_random_only_produce_valid_params_on_any_tree(space: Space, seed: int) -> None:
    from aiotune.strategies.grid import GridCore
    from aiotune.strategies.random import RandomCore

    points = list(space.grid(2))
    assert len(points) == space.grid_size(2)
    assert len({tuple(p.items()) for p in points}) == len(points)
    # Brute force: the valid dicts of the flattened product, pruned, are exactly the grid.
    axes = [d.grid(2) for d in space.values()]
    expected = {
        tuple(space._prune(dict(zip(space, combo, strict=True))).items())
        for combo in itertools.product(*axes)
    }
    assert {tuple(p.items()) for p in points} == expected
    core = GridCore(space, 2)
    walked = []
    while (params := core.ask(len(walked), {})) is not None:
        assert space.validate(params) == params
        walked.append(params)
    assert walked == points
    random = RandomCore(space, seed)
    for k in range(5):
        params = random.ask(k, {})
        assert space.validate(params) == params


async def test_tune_gives_the_objective_only_active_params() -> None:
    space = model_space()
    seen: list[dict[str, Any]] = []

    async def objective(params: dict[str, Any]) -> float:
        seen.append(params)
        return float(params.get("C", 0.0))

    result = await at.tune(objective, space, strategy=at.Random(seed=3), max_trials=20)
    assert len(seen) == 20
    for params in seen:
        assert space.validate(params) == params
        assert set(params) == set(space.active(params))
    assert {t.params["model"] for t in result.trials} == {"svm", "rf", "knn"}


# --- initial= and warm_start= --------------------------------------------------------------

LINE = Space(x=Int(0, 5), flag=Bool())  # 12 points


async def int_score(params: dict[str, Any]) -> float:
    return float(params["x"] + params["flag"])


def recording(seen: list[list[dict[str, Any]]], inner: Any) -> Any:
    """A user strategy that records the trials in the history at each of its asks."""

    async def strategy(space: Space, history: at.History) -> Any:
        generator = inner.suggest(space, history)
        try:
            while True:
                seen.append([dict(t.params) for t in history.trials])
                try:
                    params = await anext(generator)
                except StopAsyncIteration:
                    return
                yield params
        finally:
            await generator.aclose()

    return strategy


async def test_initial_points_run_first_and_the_strategy_sees_them() -> None:
    initial = [{"x": 5, "flag": True}, {"x": 0, "flag": False}, {"x": 5.0, "flag": True}]
    seen: list[list[dict[str, Any]]] = []
    result = await at.tune(
        int_score,
        LINE,
        strategy=recording(seen, at.Random(seed=0)),
        initial=initial,
        max_trials=5,
        concurrency=1,
    )
    assert [t.params for t in result.trials[:2]] == initial[:2]  # the duplicate runs once
    assert len(result.trials) == 5
    # The strategy was first asked after both initial points had finished.
    assert seen[0] == initial[:2]
    assert result.best is not None
    assert result.best.params == {"x": 5, "flag": True}


def test_a_bad_initial_point_is_a_space_error_up_front() -> None:
    with pytest.raises(SpaceError, match=r"initial\[1\]") as info:
        at.Tuner(int_score, LINE, initial=[{"x": 1, "flag": True}, {"x": 9, "flag": True}])
    assert info.value.param == "x"
    with pytest.raises(SpaceError, match=r"initial\[0\]: params do not match") as info:
        at.Tuner(int_score, model_space(), initial=[{"model": "rf", "n_estimators": 10, "C": 1}])
    assert info.value.param == "C"
    with pytest.raises(at.ConfigurationError, match="initial"):
        at.Tuner(int_score, LINE, initial={"x": 1, "flag": True})


async def test_initial_points_in_the_journal_are_not_rerun_on_resume(tmp_path: Any) -> None:
    journal = tmp_path / "trials.jsonl"
    initial = [{"x": 1, "flag": True}, {"x": 2, "flag": True}, {"x": 3, "flag": True}]
    kwargs: dict[str, Any] = {"strategy": at.Random(seed=1), "initial": initial}
    first = await at.tune(
        int_score, LINE, max_trials=2, observers=[at.JsonlWriter(journal)], **kwargs
    )
    assert [t.params for t in first.trials] == initial[:2]
    again = await at.tune(int_score, LINE, max_trials=6, resume=journal, **kwargs)
    params = [t.params for t in again.trials]
    assert params[:3] == initial  # the third initial point comes next, the first two not again
    assert len(again.trials) == 6


async def test_warm_start_informs_the_strategy_without_joining_the_study(tmp_path: Any) -> None:
    journal = tmp_path / "earlier.jsonl"
    earlier = await at.tune(
        int_score,
        LINE,
        strategy=at.Grid(),
        max_trials=8,
        observers=[at.JsonlWriter(journal)],
    )
    seen: list[list[dict[str, Any]]] = []
    for source in (earlier, journal, [journal]):
        seen.clear()
        result = await at.tune(
            int_score,
            LINE,
            strategy=recording(seen, at.Bayesian(seed=0, n_initial=2)),
            warm_start=source,
            concurrency=1,
        )
        # Only the 4 points the earlier study did not try are run; then the space is spent.
        assert result.stop_reason == "strategy exhausted"
        assert len(result.trials) == 4
        assert [t.number for t in result.trials] == [0, 1, 2, 3]
        done = {tuple(t.params.items()) for t in earlier.trials}
        assert not done & {tuple(t.params.items()) for t in result.trials}
        assert seen[0] == [t.params for t in earlier.trials]  # told before the first ask


async def test_warm_start_counts_nothing_toward_max_trials_and_grid_skips_its_points() -> None:
    earlier = await at.tune(int_score, LINE, strategy=at.Random(seed=2), max_trials=3)
    result = await at.tune(int_score, LINE, strategy=at.Grid(), warm_start=earlier, max_trials=5)
    assert len(result.trials) == 5
    earlier_points = {tuple(t.params.items()) for t in earlier.trials}
    assert not earlier_points & {tuple(t.params.items()) for t in result.trials}


async def test_warm_start_skips_trials_that_do_not_fit_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wide = Space(x=Int(0, 20), flag=Bool())
    earlier = await at.tune(int_score, wide, strategy=at.Random(seed=4), max_trials=12)
    fitting = sum(t.params["x"] <= 5 for t in earlier.trials)
    assert 0 < fitting < 12
    with caplog.at_level("WARNING", logger="aiotune"):
        result = await at.tune(
            int_score, LINE, strategy=at.Random(seed=0), warm_start=earlier, max_trials=2
        )
    lines = [r.getMessage() for r in caplog.records if "warm_start" in r.getMessage()]
    assert lines == [f"warm_start: skipped {12 - fitting} of 12 complete trials whose params "
                     "do not fit the space"]  # fmt: skip
    assert len(result.trials) == 2


async def test_bad_warm_start_is_a_configuration_error() -> None:
    with pytest.raises(at.ConfigurationError, match="warm_start"):
        at.Tuner(int_score, LINE, warm_start=42)
    with pytest.raises(at.ConfigurationError, match="warm_start"):
        at.Tuner(int_score, LINE, warm_start=[{"x": 1}])
    earlier = await at.tune(int_score, LINE, strategy=at.Random(seed=2), max_trials=2)
    with pytest.raises(at.ConfigurationError, match="to maximize its score, this one is to"):
        await at.tune(int_score, LINE, direction="minimize", warm_start=earlier, max_trials=2)


async def test_a_repeated_header_from_before_the_space_version_is_the_same_study(
    tmp_path: Any,
) -> None:
    from aiotune.journal import read_journal

    journal = tmp_path / "trials.jsonl"
    await at.tune(int_score, LINE, max_trials=2, observers=[at.JsonlWriter(journal)])
    lines = journal.read_bytes().splitlines()
    old = orjson.loads(lines[0])
    del old["space"]["version"]
    journal.write_bytes(b"\n".join([*lines, orjson.dumps(old)]) + b"\n")
    assert len(read_journal(journal).trials) == 2


async def test_warm_start_trials_stay_out_of_the_new_journal(tmp_path: Any) -> None:
    earlier = await at.tune(int_score, LINE, strategy=at.Random(seed=2), max_trials=3)
    journal = tmp_path / "trials.jsonl"
    await at.tune(
        int_score,
        LINE,
        strategy=at.Random(seed=9),
        warm_start=earlier,
        max_trials=2,
        observers=[at.JsonlWriter(journal)],
    )
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert [line["number"] for line in lines if line["kind"] == "trial"] == [0, 1]
