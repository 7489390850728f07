"""Tests of aiotune.space: domains, Space, the unit cube, grids and fingerprints."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiotune.errors import SpaceError, TuningError
from aiotune.space import Bool, Categorical, Domain, Float, Int, Space, domain_from_dict

PLAIN = (float, int, bool, str, type(None))
fast = settings(database=None, deadline=None, max_examples=75)


def same(a: object, b: object) -> bool:
    """Equal in type and value (so ``1``, ``1.0`` and ``True`` all differ)."""
    return type(a) is type(b) and a == b


def example_space() -> Space:
    return Space(
        lr=Float(1e-5, 1e-1, log=True),
        dropout=Float(0.0, 0.5, step=0.05),
        layers=Int(1, 8),
        width=Int(16, 1024, log=True),
        optimizer=Categorical(["adam", "sgd", "rmsprop"]),
        batchnorm=Bool(),
    )


# --- hypothesis strategies -------------------------------------------------------------------

json_scalars = st.one_of(
    st.text(max_size=5),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@st.composite
def domains(draw: st.DrawFn) -> Domain:
    kind = draw(st.sampled_from(["float", "logfloat", "stepfloat", "int", "logint", "cat", "bool"]))
    if kind == "float":
        low = draw(st.floats(-1e6, 1e6))
        return Float(low, low + draw(st.floats(1e-3, 1e6)))
    if kind == "logfloat":
        low = draw(st.floats(1e-8, 1e3))
        return Float(low, low * draw(st.floats(1.001, 1e6)), log=True)
    if kind == "stepfloat":
        step = draw(st.sampled_from([0.001, 0.05, 0.1, 0.25, 1.0, 3.0]))
        low = draw(st.integers(-1000, 1000)) * step
        return Float(low, low + draw(st.integers(1, 1000)) * step, step=step)
    if kind == "int":
        low, step = draw(st.integers(-1000, 1000)), draw(st.integers(1, 10))
        return Int(low, low + step * draw(st.integers(1, 100)), step=step)
    if kind == "logint":
        low = draw(st.integers(1, 1000))
        return Int(low, low + draw(st.integers(1, 10**6)), log=True)
    if kind == "cat":
        unique = st.lists(json_scalars, min_size=1, max_size=8, unique_by=lambda c: (type(c), c))
        return Categorical(draw(unique))
    return Bool()


seeds = st.integers(0, 2**32 - 1)
units = st.floats(-1.0, 2.0) | st.sampled_from([0.0, 1.0, 0.5, 1 - 2**-53, math.inf, -math.inf])


def check_in_domain(domain: Domain, value: Any) -> None:
    """``value`` is a plain Python value of ``domain``, checked without ``validate``."""
    assert type(value) in PLAIN
    if isinstance(domain, Float):
        assert type(value) is float
        assert domain.low <= value <= domain.high
        if domain.step is not None:
            assert value in domain.grid(None)
    elif isinstance(domain, Int):
        assert type(value) is int
        assert domain.low <= value <= domain.high
        assert (value - domain.low) % domain.step == 0
    elif isinstance(domain, Categorical):
        assert any(same(value, choice) for choice in domain.choices)
    else:
        assert type(value) is bool


# --- properties ------------------------------------------------------------------------------


@fast
@given(domains(), seeds)
def test_sample_is_plain_in_bounds_and_validates_to_itself(domain: Domain, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(5):
        value = domain.sample(rng)
        check_in_domain(domain, value)
        assert same(domain.validate(value), value)


@fast
@given(domains(), seeds)
def test_unit_round_trip(domain: Domain, seed: int) -> None:
    value = domain.sample(np.random.default_rng(seed))
    u = domain.to_unit(value)
    assert type(u) is float
    assert 0.0 <= u <= 1.0
    back = domain.from_unit(u)
    if domain.size is not None:
        assert same(back, value)
    else:
        assert isinstance(domain, Float)
        assert type(back) is float
        assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-9 * (domain.high - domain.low))


@fast
@given(domains(), units)
def test_from_unit_always_validates(domain: Domain, u: float) -> None:
    value = domain.from_unit(u)
    check_in_domain(domain, value)
    assert same(domain.validate(value), value)


@fast
@given(domains())
def test_every_grid_value_round_trips(domain: Domain) -> None:
    small = domain.size is not None and domain.size <= 2000
    values = domain.grid(None if small else 7)
    assert len(values) == (domain.size if small else min(7, domain.size or 7))
    assert len(set(values)) == len(values) or isinstance(domain, Categorical)
    for value in values[:50]:
        check_in_domain(domain, value)
        assert same(domain.validate(value), value)
        if domain.size is not None:
            assert same(domain.from_unit(domain.to_unit(value)), value)


@fast
@given(domains())
def test_domain_dict_round_trip(domain: Domain) -> None:
    d = orjson.loads(orjson.dumps(domain.to_dict()))
    again = domain_from_dict(d)
    assert again == domain
    assert hash(again) == hash(domain)
    assert repr(again) == repr(domain)


def test_discrete_domains_give_each_value_an_equal_share() -> None:
    domain = Int(0, 4)  # five values, a fifth of [0, 1] each
    assert [domain.from_unit(u) for u in (0.0, 0.19, 0.2, 0.59, 0.6, 0.99, 1.0)] == [
        0, 0, 1, 2, 3, 4, 4
    ]  # fmt: skip
    assert [domain.to_unit(v) for v in range(5)] == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])
    assert (Bool().from_unit(0.49), Bool().from_unit(0.5)) == (False, True)
    assert Categorical(["a", "b"]).to_unit("b") == 0.75


def test_log_domains_map_in_log_space() -> None:
    assert Float(1e-4, 1.0, log=True).from_unit(0.5) == pytest.approx(1e-2)
    assert Float(1e-4, 1.0, log=True).to_unit(1e-3) == pytest.approx(0.25)
    assert Float(0.0, 10.0).from_unit(0.25) == 2.5
    width = Int(16, 1024, log=True)
    assert width.from_unit(0.5) == 126  # sqrt(15.5 * 1024.5) = 126.02
    assert [width.from_unit(width.to_unit(v)) for v in range(16, 1025)] == list(range(16, 1025))


def test_from_unit_clips_and_refuses_nan() -> None:
    assert Float(0, 1).from_unit(-3.0) == 0.0
    assert Float(0, 1).from_unit(7.0) == 1.0
    assert Int(1, 8).from_unit(1.0) == 8
    with pytest.raises(SpaceError, match="nan"):
        Float(0, 1).from_unit(math.nan)


def test_sampling_is_roughly_uniform() -> None:
    rng = np.random.default_rng(0)
    ints = [Int(1, 4).sample(rng) for _ in range(4000)]
    assert all(900 < ints.count(v) < 1100 for v in (1, 2, 3, 4))
    logs = np.array([Float(1e-4, 1.0, log=True).sample(rng) for _ in range(4000)])
    assert 0.45 < np.mean(logs < 1e-2) < 0.55  # half the draws below the geometric middle


def test_sampling_is_reproducible() -> None:
    space = example_space()
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b


# --- building domains: every definition error ----------------------------------------------

BAD_DOMAINS = [
    (lambda: Float(1, 0), "low < high, got low=1.0, high=0.0"),
    (lambda: Float(1, 1), "low < high"),
    (lambda: Float(0, math.nan), "finite, got high=nan"),
    (lambda: Float(-math.inf, 0), "finite, got low=-inf"),
    (lambda: Float("0", 1), "real numbers, got low='0' (str)"),
    (lambda: Float(True, 2), "real numbers, got low=True (bool)"),
    (lambda: Float(0, None), "real numbers, got high=None"),
    (lambda: Float(0, 1, log=True), "log-scaled Float needs low > 0, got low=0.0"),
    (lambda: Float(-1, 1, log=True), "low > 0, got low=-1.0"),
    (lambda: Float(0, 1, step=0), "positive finite number, got step=0"),
    (lambda: Float(0, 1, step=-0.5), "got step=-0.5"),
    (lambda: Float(0, 1, step=math.inf), "got step=inf"),
    (lambda: Float(0, 1, step="0.1"), "got step='0.1'"),
    (lambda: Float(0, 1, step=0.3), "step=0.3 does not divide high - low = 1.0"),
    (lambda: Float(0, 1, step=2.0), "step=2.0 does not divide"),
    (lambda: Float(1, 2, log=True, step=0.5), "log-scaled Float cannot have a step, got step=0.5"),
    (lambda: Float(0, 1, log=1), "log must be True or False, got 1"),
    (lambda: Int(5, 1), "Int needs low < high, got low=5, high=1"),
    (lambda: Int(0.5, 3), "Int bounds must be integers, got low=0.5"),
    (lambda: Int(0, "3"), "integers, got high='3'"),
    (lambda: Int(False, 3), "integers, got low=False"),
    (lambda: Int(0, math.inf), "integers, got high=inf"),
    (lambda: Int(0, 10, step=3), "step=3 does not divide high - low = 10"),
    (lambda: Int(0, 10, step=0), "positive integer, got step=0"),
    (lambda: Int(0, 10, step=2.5), "positive integer, got step=2.5"),
    (lambda: Int(0, 10, log=True), "log-scaled Int needs low >= 1, got low=0"),
    (lambda: Int(1, 9, log=True, step=2), "log-scaled Int needs step=1, got step=2"),
    (lambda: Categorical([]), "at least one choice"),
    (lambda: Categorical(["a", "b", "a"]), "duplicate choice 'a'"),
    (lambda: Categorical([1, 2, 1]), "duplicate choice 1"),
    (lambda: Categorical([0.0, -0.0]), "duplicate choice"),
    (lambda: Categorical([[1], 2]), "JSON scalars (str, int, float, bool or None), got [1] (list)"),
    (lambda: Categorical([b"x"]), "got b'x' (bytes)"),
    (lambda: Categorical([object]), "JSON scalars"),
    (lambda: Categorical([math.nan]), "finite, got nan"),
    (lambda: Categorical([1.0, math.inf]), "finite, got inf"),
    (lambda: Categorical("abc"), "list or tuple of choices, got 'abc'"),
    (lambda: Categorical({"a", "b"}), "a set (unordered)"),
    (lambda: Categorical(3), "list or tuple of choices, got 3"),
]


@pytest.mark.parametrize(("build", "message"), BAD_DOMAINS)
def test_bad_domain_definitions_raise(build: Any, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        build()
    assert message in str(info.value)
    assert info.value.param is None
    assert isinstance(info.value, TuningError)
    assert isinstance(info.value, ValueError)


def test_good_domain_definitions_normalise() -> None:
    f = Float(0, 1, step=1)
    assert (type(f.low), type(f.high), type(f.step)) == (float, float, float)
    assert Float(np.float32(0.5), np.int64(2)).low == 0.5
    assert type(Float(np.float32(0.5), 2).low) is float
    assert Float(-0.0, 1) == Float(0.0, 1)
    assert Float(-0.0, 1).to_dict() == Float(0.0, 1).to_dict()
    i = Int(np.int64(1), 1e3, step=np.int64(1))
    assert (i.low, i.high, i.step) == (1, 1000, 1)
    assert (type(i.low), type(i.high), type(i.step)) == (int, int, int)
    assert Float(0.1, 0.3, step=0.1).grid(None) == (0.1, 0.2, 0.3)  # 0.2 / 0.1 is 1.999...
    assert Categorical([1, True, 1.0, "1", None]).size == 5
    assert Categorical(np.array([1, 2])).choices == (1, 2)
    assert all(type(c) is int for c in Categorical(np.array([1, 2])).choices)
    assert Categorical(c for c in "ab").choices == ("a", "b")


def test_domains_are_frozen_and_pickle() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Float(0, 1).low = 2.0  # type: ignore[misc]
    for domain in (Float(0, 1, step=0.25), Int(1, 9, log=True), Categorical([1, "a"]), Bool()):
        assert pickle.loads(pickle.dumps(domain)) == domain


def test_categorical_equality_is_type_aware() -> None:
    assert Categorical([1]) != Categorical([True])
    assert Categorical([1]) != Categorical([1.0])
    assert Categorical(["a", "b"]) == Categorical(("a", "b"))
    assert Categorical(["a", "b"]) != Categorical(["b", "a"])
    assert hash(Categorical(["a", "b"])) == hash(Categorical(("a", "b")))
    assert Categorical([False, True]) != Bool()
    assert Float(0, 1) != Int(0, 1)


@pytest.mark.parametrize(
    ("domain", "text"),
    [
        (Float(1e-5, 0.1, log=True), "Float(1e-05, 0.1, log=True)"),
        (Float(0, 0.5, step=0.05), "Float(0.0, 0.5, step=0.05)"),
        (Float(-1, 1), "Float(-1.0, 1.0)"),
        (Int(1, 8), "Int(1, 8)"),
        (Int(16, 1024, log=True), "Int(16, 1024, log=True)"),
        (Int(0, 10, step=2), "Int(0, 10, step=2)"),
        (Categorical(["adam", "sgd"]), "Categorical(['adam', 'sgd'])"),
        (Bool(), "Bool()"),
    ],
)
def test_repr(domain: Domain, text: str) -> None:
    assert repr(domain) == text


# --- validate --------------------------------------------------------------------------------


def test_float_validate() -> None:
    f = Float(0, 1)
    assert same(f.validate(1), 1.0)
    assert same(f.validate(np.float32(0.5)), 0.5)
    assert same(f.validate(np.int64(0)), 0.0)
    assert same(f.validate(1 + 1e-12), 1.0)  # within tolerance, clipped
    assert same(f.validate(-1e-12), 0.0)
    stepped = Float(0, 1, step=0.1)
    assert same(stepped.validate(0.1 + 0.2), 0.3)  # snapped to the exact grid value
    assert same(stepped.validate(1), 1.0)


@pytest.mark.parametrize(
    ("domain", "value", "message"),
    [
        (Float(0, 1), True, "expected a real number, got True (bool)"),
        (Float(0, 1), "0.5", "got '0.5' (str)"),
        (Float(0, 1), None, "got None (NoneType)"),
        (Float(0, 1), math.nan, "nan is outside [0.0, 1.0]"),
        (Float(0, 1), math.inf, "inf is outside"),
        (Float(0, 1), 1.5, "1.5 is outside [0.0, 1.0]"),
        (Float(1e-5, 1e-1, log=True), 0.0, "0.0 is outside [1e-05, 0.1]"),
        (Float(0, 1, step=0.1), 0.33, "0.33 is not on the step grid (low=0.0, step=0.1)"),
        (Int(1, 8), True, "expected an integer, got True (bool)"),
        (Int(1, 8), 2.5, "expected an integer, got 2.5 (float)"),
        (Int(1, 8), "3", "got '3' (str)"),
        (Int(1, 8), 9, "9 is outside [1, 8]"),
        (Int(0, 10, step=2), 3, "3 is not on the step grid (low=0, step=2)"),
        (Categorical([1, "a"]), True, "True is not one of the choices [1, 'a']"),
        (Categorical([1, "a"]), 1.0, "1.0 is not one of the choices"),
        (Categorical([1, "a"]), "b", "'b' is not one of the choices"),
        (Categorical([1, "a"]), [1], "[1] is not one of the choices"),  # unhashable
        (Bool(), 1, "expected a bool, got 1 (int)"),
        (Bool(), "True", "expected a bool, got 'True' (str)"),
    ],
)
def test_validate_refuses(domain: Domain, value: object, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        domain.validate(value)
    assert message in str(info.value)
    assert info.value.param is None


def test_int_categorical_bool_validate_normalise() -> None:
    assert same(Int(1, 8).validate(3.0), 3)
    assert same(Int(1, 8).validate(np.int64(3)), 3)
    assert same(Int(1, 8).validate(np.float64(8.0)), 8)
    cat = Categorical([1, True, 1.0, "a", None])
    assert same(cat.validate(True), True)
    assert same(cat.validate(1), 1)
    assert same(cat.validate(1.0), 1.0)
    assert same(cat.validate(np.str_("a")), "a")
    assert cat.validate(None) is None
    assert same(Bool().validate(np.bool_(True)), True)


# --- grid and size ---------------------------------------------------------------------------


def test_domain_grids() -> None:
    assert Float(0, 1, step=0.5).grid(None) == (0.0, 0.5, 1.0)
    assert Float(0, 1, step=0.1).grid(None)[3] == 0.3
    assert Float(0, 0.5, step=0.05).grid(None)[-1] == 0.5
    assert Float(0, 1).grid(3) == (0.0, 0.5, 1.0)
    assert Float(0, 1).grid(2) == (0.0, 1.0)
    log = Float(1e-5, 1e-1, log=True).grid(5)
    assert log == pytest.approx((1e-5, 1e-4, 1e-3, 1e-2, 1e-1))
    assert (log[0], log[-1]) == (1e-5, 1e-1)
    assert Float(0, 1, step=0.25).grid(3) == (0.0, 0.5, 1.0)
    assert Float(0, 1, step=0.5).grid(10) == (0.0, 0.5, 1.0)
    assert Int(1, 8).grid(None) == (1, 2, 3, 4, 5, 6, 7, 8)
    assert Int(0, 10, step=2).grid(None) == (0, 2, 4, 6, 8, 10)
    assert Int(0, 10).grid(3) == (0, 5, 10)
    assert Int(1, 3).grid(10) == (1, 2, 3)
    assert Int(1, 1000, log=True).grid(4) == (1, 10, 100, 1000)
    assert Int(1, 4, log=True).grid(10) == (1, 2, 3, 4)
    assert Categorical(["a", "b"]).grid(None) == ("a", "b")
    assert Categorical(["a", "b"]).grid(1) == ("a", "b")
    assert Bool().grid(None) == (False, True)
    for value in Float(1e-5, 1e-1, log=True).grid(7) + Int(1, 1000, log=True).grid(7):
        assert isinstance(value, PLAIN)


def test_continuous_float_grid_needs_a_resolution() -> None:
    with pytest.raises(SpaceError, match=r"continuous Float needs a grid resolution \(Grid"):
        Float(0, 1).grid(None)


@pytest.mark.parametrize("resolution", [1, 0, -3, True, 2.5, "3"])
def test_bad_grid_resolution(resolution: Any) -> None:
    for domain in (Float(0, 1), Float(0, 1, step=0.5), Int(0, 4)):
        with pytest.raises(SpaceError, match="resolution must be an integer >= 2"):
            domain.grid(resolution)


def test_size() -> None:
    assert Float(0, 1).size is None
    assert Float(0, 1, step=0.1).size == 11
    assert Int(1, 8).size == 8
    assert Int(0, 10, step=5).size == 3
    assert Int(1, 1024, log=True).size == 1024
    assert Categorical(["a", "b", "c"]).size == 3
    assert Bool().size == 2


# --- domain_from_dict ------------------------------------------------------------------------


def test_to_dict_shapes() -> None:
    assert Float(1e-5, 0.1, log=True).to_dict() == {
        "type": "float", "low": 1e-5, "high": 0.1, "log": True, "step": None
    }  # fmt: skip
    assert Int(0, 10, step=2).to_dict() == {
        "type": "int", "low": 0, "high": 10, "log": False, "step": 2
    }  # fmt: skip
    assert Categorical(["a", 1]).to_dict() == {"type": "categorical", "choices": ["a", 1]}
    assert Bool().to_dict() == {"type": "bool"}
    assert domain_from_dict({"type": "float", "low": 0, "high": 1}) == Float(0, 1)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ([1, 2], "must be a dict, got [1, 2]"),
        ({"low": 0, "high": 1}, "unknown domain type None"),
        ({"type": "complex"}, "unknown domain type 'complex'"),
        ({"type": ["float"]}, "unknown domain type ['float']"),
        ({"type": "float", "low": 0}, "domain type 'float' needs the field(s) ['high']"),
        ({"type": "bool", "extra": 1}, "unknown field(s) ['extra'] for domain type 'bool'"),
        ({"type": "int", "low": 0, "high": "9"}, "integers, got high='9'"),
        ({"type": "categorical", "choices": []}, "at least one choice"),
    ],
)
def test_domain_from_dict_refuses(d: Any, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        domain_from_dict(d)
    assert message in str(info.value)


# --- Space -----------------------------------------------------------------------------------


def test_space_is_an_ordered_immutable_mapping() -> None:
    space = example_space()
    assert list(space) == ["lr", "dropout", "layers", "width", "optimizer", "batchnorm"]
    assert len(space) == 6
    assert space["layers"] == Int(1, 8)
    assert "lr" in space
    assert "nope" not in space
    with pytest.raises(TypeError):
        space["lr"] = Bool()  # type: ignore[index]
    with pytest.raises(AttributeError):
        space.extra = 1  # type: ignore[attr-defined]
    weird = Space({"a b": Bool(), "c": Int(0, 1)}, d=Bool())
    assert list(weird) == ["a b", "c", "d"]
    assert repr(weird) == "Space({'a b': Bool(), 'c': Int(0, 1), 'd': Bool()})"
    assert repr(Space(x=Int(0, 1), y=Bool())) == "Space(x=Int(0, 1), y=Bool())"
    assert pickle.loads(pickle.dumps(space)) == space
    assert Space(space) == space


@pytest.mark.parametrize(
    ("build", "param", "message"),
    [
        (lambda: Space(), None, "at least one parameter"),
        (lambda: Space({}), None, "at least one parameter"),
        (lambda: Space(x=3), "x", "expected a Float, Int, Categorical or Bool, got 3"),
        (lambda: Space({"x": Bool()}, x=Bool()), "x", "given twice"),
        (lambda: Space({1: Bool()}), None, "non-empty strings, got 1"),
        (lambda: Space({"": Bool()}), None, "non-empty strings, got ''"),
        (
            lambda: Space([("x", Bool())]),
            None,
            "a mapping of names to domains, got [('x', Bool())]",
        ),
    ],
)
def test_bad_spaces(build: Any, param: str | None, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        build()
    assert info.value.param == param
    assert message in str(info.value)


def test_space_sample_is_plain_and_valid() -> None:
    space = example_space()
    rng = np.random.default_rng(1)
    for _ in range(50):
        params = space.sample(rng)
        assert list(params) == list(space)
        assert all(type(v) in PLAIN for v in params.values())
        assert space.validate(params) == params


def test_space_validate_returns_a_new_dict_in_space_order() -> None:
    space = Space(a=Int(0, 9), b=Float(0, 1), c=Bool())
    given_params = {"c": True, "b": 1, "a": 3.0}
    out = space.validate(given_params)
    assert list(out.items()) == [("a", 3), ("b", 1.0), ("c", True)]
    assert out is not given_params
    assert given_params == {"c": True, "b": 1, "a": 3.0}  # untouched


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"a": 1, "b": 0.5}, "c", "missing ['c']"),
        ({"a": 1}, None, "missing ['b', 'c']"),
        (
            {"a": 1, "b": 0.5, "c": True, "zz": 0},
            "zz",
            "unknown ['zz'] (the space has ['a', 'b', 'c'])",
        ),
        ({"a": 1, "b": 0.5, "zz": 0, "yy": 0}, None, "missing ['c']; unknown ['zz', 'yy']"),
        ({"a": 1, "b": 0.5, "c": 1}, "c", "expected a bool, got 1"),
        ({"a": 10, "b": 0.5, "c": True}, "a", "10 is outside [0, 9]"),
        ({"a": 1, "b": "x", "c": True}, "b", "expected a real number, got 'x'"),
        ([("a", 1)], None, "params must be a dict"),
    ],
)
def test_space_validate_refuses(params: Any, param: str | None, message: str) -> None:
    space = Space(a=Int(0, 9), b=Float(0, 1), c=Bool())
    with pytest.raises(SpaceError) as info:
        space.validate(params)
    assert info.value.param == param
    assert message in str(info.value)
    if param is not None:
        assert str(info.value).startswith(f"parameter {param!r}: ")


def test_space_unit_cube() -> None:
    space = example_space()
    params = space.sample(np.random.default_rng(3))
    u = space.to_unit(params)
    assert u.dtype == np.float64
    assert u.shape == (6,)
    assert ((u >= 0) & (u <= 1)).all()
    back = space.from_unit(u)
    assert back == pytest.approx(params)
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in params.items()}
    assert space.from_unit(list(u)) == back
    corners = space.from_unit([0.0] * 6), space.from_unit(np.full(6, 5.0))
    assert corners[0] == {
        "lr": 1e-5, "dropout": 0.0, "layers": 1, "width": 16, "optimizer": "adam",
        "batchnorm": False,
    }  # fmt: skip
    assert corners[1]["lr"] == 0.1
    assert corners[1]["width"] == 1024


def test_space_unit_cube_errors_name_the_parameter() -> None:
    space = Space(a=Int(0, 9), b=Float(0, 1))
    with pytest.raises(SpaceError, match=r"shape \(2,\), got \(3,\)"):
        space.from_unit([0.1, 0.2, 0.3])
    with pytest.raises(SpaceError) as info:
        space.from_unit([0.1, math.nan])
    assert info.value.param == "b"
    with pytest.raises(SpaceError) as info:
        space.to_unit({"a": 99, "b": 0.5})
    assert info.value.param == "a"


def test_space_grid_order_and_contents() -> None:
    space = Space(a=Int(0, 1), b=Categorical(["x", "y", "z"]), c=Float(0, 1, step=0.5))
    points = list(space.grid())
    assert len(points) == space.grid_size() == 18
    assert points[:4] == [
        {"a": 0, "b": "x", "c": 0.0},
        {"a": 0, "b": "x", "c": 0.5},
        {"a": 0, "b": "x", "c": 1.0},
        {"a": 0, "b": "y", "c": 0.0},
    ]
    assert points[-1] == {"a": 1, "b": "z", "c": 1.0}
    assert all(space.validate(p) == p for p in points)


def test_space_grid_resolution() -> None:
    space = Space(x=Float(0, 1), n=Int(0, 100), flag=Bool())
    assert space.grid_size(3) == 3 * 3 * 2
    assert [p["x"] for p in space.grid(3)][::6] == [0.0, 0.5, 1.0]
    per_name = list(space.grid({"x": 2}))
    assert len(per_name) == space.grid_size({"x": 2}) == 2 * 101 * 2
    assert space.grid_size({"x": 4, "n": 5}) == 4 * 5 * 2


def test_space_grid_errors_name_the_parameter_and_come_early() -> None:
    space = Space(n=Int(0, 3), x=Float(0, 1))
    with pytest.raises(SpaceError) as info:
        space.grid()  # raised by the call itself, not on iteration
    assert info.value.param == "x"
    assert "continuous Float needs a grid resolution" in str(info.value)
    with pytest.raises(SpaceError) as info:
        space.grid_size({"n": 2})
    assert info.value.param == "x"
    with pytest.raises(SpaceError, match=r"unknown parameter\(s\) \['zz'\]"):
        space.grid({"x": 3, "zz": 3})
    with pytest.raises(SpaceError) as info:
        space.grid(1)
    assert info.value.param == "n"


def test_space_dict_round_trip() -> None:
    space = example_space()
    d = space.to_dict()
    assert list(d) == ["version", "params"]
    assert d["version"] == 1
    assert list(d["params"]) == list(space)
    assert d["params"]["lr"] == {
        "type": "float",
        "low": 1e-5,
        "high": 0.1,
        "log": True,
        "step": None,
    }
    again = Space.from_dict(orjson.loads(orjson.dumps(d)))
    assert again == space
    assert list(again) == list(space)
    assert again.fingerprint == space.fingerprint


def test_space_from_dict_reads_the_unversioned_form_of_older_journals() -> None:
    space = example_space()
    legacy = {"params": space.to_dict()["params"]}
    assert Space.from_dict(legacy) == space
    assert Space.from_dict(legacy).fingerprint == space.fingerprint


@pytest.mark.parametrize(
    ("d", "param", "message"),
    [
        ({"params": {"x": {"type": "float", "low": 1, "high": 0}}}, "x", "low < high"),
        ({"params": {"x": {"type": "what"}}}, "x", "unknown domain type 'what'"),
        ({"params": {"x": {"type": "int", "low": 0}}}, "x", "needs the field(s) ['high']"),
        ({"params": {"x": {"type": "bool", "lo": 0}}}, "x", "unknown field(s) ['lo']"),
        ({"params": {"x": {"type": "float", "low": "a", "high": 1}}}, "x", "low='a'"),
        ({"params": {"x": "float"}}, "x", "must be a dict"),
        ({"params": {}}, None, "at least one parameter"),
        ({"space": {}}, None, "unknown field(s) ['space']"),
        ({"version": 1}, None, "missing field 'params'"),
        ({"version": 2, "params": {}}, None, "field 'version': space format 2"),
        ({"version": "1", "params": {}}, None, "field 'version'"),
        ({"version": True, "params": {}}, None, "field 'version'"),
        ({"params": [1]}, None, "field 'params' must be a dict"),
        ("params", None, "a space description must be a dict"),
    ],
)
def test_space_from_dict_refuses(d: Any, param: str | None, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        Space.from_dict(d)
    assert info.value.param == param
    assert message in str(info.value)


def test_fingerprint_is_stable() -> None:
    space = Space(x=Float(0, 1), n=Int(1, 8, log=True), c=Categorical(["a", 1, None]), b=Bool())
    # Hard-coded: the journal compares fingerprints written by other processes and versions.
    assert space.fingerprint == "be9a1a409f7f68bec65db3ce308c85436d1c8ccc1b23ff190462ca65430b6601"
    assert len(space.fingerprint) == 64
    same_spec = Space(
        x=Float(0.0, 1.0), n=Int(1, 8, log=True), c=Categorical(("a", 1, None)), b=Bool()
    )
    assert same_spec.fingerprint == space.fingerprint
    assert example_space().fingerprint == example_space().fingerprint


@pytest.mark.parametrize(
    "other",
    [
        Space(x=Float(0, 2)),
        Space(x=Float(0, 1, step=0.5)),
        Space(x=Float(0.001, 1, log=True)),
        Space(x=Int(0, 1)),
        Space(y=Float(0, 1)),
        Space(x=Float(0, 1), y=Bool()),
        Space(x=Categorical([0.0, 1.0])),
    ],
)
def test_fingerprint_differs_for_different_spaces(other: Space) -> None:
    assert other.fingerprint != Space(x=Float(0, 1)).fingerprint
    assert other != Space(x=Float(0, 1))


def test_type_aware_choices_change_the_fingerprint() -> None:
    prints = {Space(c=Categorical([v])).fingerprint for v in (1, True, 1.0, "1")}
    assert len(prints) == 4


def test_space_equality_and_hash_by_content() -> None:
    a = Space(x=Float(0, 1), y=Bool())
    b = Space({"y": Bool(), "x": Float(0.0, 1.0)})
    assert a == b  # order does not matter for equality or the fingerprint...
    assert hash(a) == hash(b)
    assert a.fingerprint == b.fingerprint
    assert list(a) != list(b)  # ...but it is kept
    assert len({a, b, example_space()}) == 2
    assert a != {"x": Float(0, 1), "y": Bool()}
    assert a != Space(x=Float(0, 1))


def test_diff() -> None:
    a = Space(x=Float(0, 1), n=Int(1, 8), only_a=Bool())
    b = Space(x=Float(0, 1, step=0.5), n=Int(1, 8), only_b=Categorical(["p"]))
    assert a.diff(a) == []
    assert a.diff(Space(only_a=Bool(), n=Int(1, 8), x=Float(0, 1))) == []
    assert a.diff(b) == [
        "'x': Float(0.0, 1.0) here, Float(0.0, 1.0, step=0.5) in the other space",
        "'only_a': only in this space (Bool())",
        "'only_b': only in the other space (Categorical(['p']))",
    ]


def test_public_names() -> None:
    import aiotune.space as module

    assert sorted(module.__all__) == sorted(
        ["Bool", "Categorical", "Domain", "Float", "Int", "Space", "domain_from_dict"]
    )
    for name in module.__all__:
        assert getattr(module, name).__doc__
