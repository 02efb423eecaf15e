"""The canonical JSON encoding (domain/canonical.py) that identities and history hashes are computed over.

Every rule here is also written down in docs/identity.md for implementers in other languages.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pipelinejobs_server.domain.canonical import canonical_json, depth, normalize


def test_keys_are_sorted_at_every_level() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == '{"a":{"c":3,"d":2},"b":1}'


def test_keys_sort_by_code_point() -> None:
    # Not locale order: upper case sorts before lower case, non-ASCII after ASCII.
    assert canonical_json({"b": 0, "B": 0, "é": 0, "a": 0}) == '{"B":0,"a":0,"b":0,"é":0}'


def test_separators_are_compact() -> None:
    assert canonical_json({"a": [1, 2, {"b": None}]}) == '{"a":[1,2,{"b":null}]}'


def test_list_order_is_kept() -> None:
    # Only links are sorted (by identity.py); a list inside data is ordered data.
    assert canonical_json([3, 1, 2]) == "[3,1,2]"


def test_non_ascii_is_written_as_is() -> None:
    assert canonical_json({"name": "Müller ✓ 酵母"}) == '{"name":"Müller ✓ 酵母"}'


def test_control_characters_and_quotes_are_escaped() -> None:
    assert canonical_json('a"b\\c\n\t\x00') == '"a\\"b\\\\c\\n\\t\\u0000"'


def test_literals() -> None:
    assert canonical_json([True, False, None, ""]) == '[true,false,null,""]'


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.0, "1"),
        (-3.0, "-3"),
        (0.0, "0"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (2.0**53, "9007199254740992"),
        # Past 2**53 a double no longer stands for one integer, so it stays a float.
        (2.0**53 + 2, "9007199254740994.0"),
        (1e16, "1e+16"),
        (7, "7"),
        (2**64, "18446744073709551616"),
    ],
)
def test_numbers(value: float, encoded: str) -> None:
    assert canonical_json(value) == encoded


def test_integral_float_hashes_like_int() -> None:
    # protobuf Struct carries every number as a double: 1 from one client must equal 1.0 from another.
    assert canonical_json({"n": 1.0, "m": [2.0]}) == canonical_json({"n": 1, "m": [2]})


def test_bool_is_not_a_number() -> None:
    # bool subclasses int in Python; it must stay true/false, not become 1/0.
    assert canonical_json([True, 1]) == "[true,1]"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_raise(value: float) -> None:
    with pytest.raises(ValueError, match="NaN and infinity"):
        canonical_json({"deep": [value]})


@pytest.mark.parametrize("key", [1, 1.5, None, True, ("a",)])
def test_non_string_keys_raise(key: Any) -> None:
    with pytest.raises(TypeError, match="keys must be strings"):
        canonical_json({"outer": {key: 1}})


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object()])
def test_unencodable_values_raise(value: Any) -> None:
    with pytest.raises(TypeError, match="no canonical JSON encoding"):
        canonical_json([value])


def test_nested_normalization() -> None:
    value = {"a": (1.0, [2.5, {"b": 3.0}]), "c": {"d": (4.0,)}}
    assert normalize(value) == {"a": [1, [2.5, {"b": 3}]], "c": {"d": [4]}}
    normalized = normalize(value)
    # The ints are real ints, not floats that compare equal.
    assert type(normalized["a"][0]) is int
    assert type(normalized["a"][1][1]["b"]) is int
    assert canonical_json(value) == '{"a":[1,[2.5,{"b":3}]],"c":{"d":[4]}}'


def test_normalize_does_not_mutate_its_input() -> None:
    value: dict[str, Any] = {"a": [1.0]}
    normalize(value)
    assert value == {"a": [1.0]}
    assert type(value["a"][0]) is float


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 0),
        ("text", 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 1),
        ([1, 2, 3], 1),
        ({"a": {"b": 1}}, 2),
        ({"a": [1, {"b": [2]}], "c": 1}, 4),
        ([[[[[]]]]], 5),
    ],
)
def test_depth(value: Any, expected: int) -> None:
    assert depth(value) == expected


def test_depth_handles_very_deep_values_without_recursion() -> None:
    # Bodies are checked for depth before anything recursive touches them, so depth() must not recurse.
    value: Any = []
    for _ in range(10_000):
        value = [value]
    assert depth(value) == 10_001
