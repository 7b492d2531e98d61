from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnpl.kit.ids import PREFIXES, _b32, has_prefix, new_id

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_shape() -> None:
    for prefix in ("chk", "pm", "aud", "evt", "mer"):
        value = new_id(prefix)
        head, _, suffix = value.partition("_")
        assert head == prefix
        assert len(suffix) == 26
        assert set(suffix) <= CROCKFORD
        assert has_prefix(value, prefix)


def test_every_public_prefix_of_the_domain_is_known() -> None:
    domain = [
        "mer",
        "key",
        "cus",
        "pm",
        "chk",
        "dec",
        "pln",
        "pay",
        "ref",
        "evt",
        "ntf",
        "whe",
        "whd",
        "stl",
        "aud",
    ]
    assert set(domain) <= PREFIXES


def test_unknown_prefix_is_refused() -> None:
    for bad in ("xyz", "", "CHK", "chk_"):
        with pytest.raises(ValueError):
            new_id(bad)


def test_has_prefix() -> None:
    value = new_id("chk")
    assert not has_prefix(value, "pln")
    assert not has_prefix(value[:-1], "chk")
    assert not has_prefix(value + "0", "chk")
    assert not has_prefix("chk" + value[3:].replace("_", "-"), "chk")


def test_ids_sort_in_creation_order() -> None:
    made = [new_id("evt") for _ in range(10_000)]  # many within one millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    earlier = new_id("evt")
    time.sleep(0.002)
    assert new_id("evt") > earlier


def test_suffix_carries_the_creation_time() -> None:
    before = int(time.time() * 1000)
    value = new_id("chk").partition("_")[2]
    after = int(time.time() * 1000)
    number = 0
    for char in value:
        number = number * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    assert number < 2**128
    assert (number >> 76) & 0xF == 7  # a UUIDv7
    assert before <= number >> 80 <= after  # its first 48 bits: unix milliseconds


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_suffix_is_the_value_in_crockford_base32(value: int) -> None:
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    expected = "".join(digits[(value >> (5 * k)) & 31] for k in range(25, -1, -1))
    assert _b32(value) == expected
