"""`json_text` (orjson) writes what the standard encoder with `default=str` wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bnpl.kit.db import json_text

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: the standard encoder takes those
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _standard(value: Any) -> Any:
    return json.loads(json.dumps(value, separators=(",", ":"), default=str))


@given(values)
def test_same_json_as_the_standard_encoder(value: Any) -> None:
    assert json.loads(json_text(value)) == _standard(value)


@dataclass
class _Point:
    x: int


def test_the_types_the_standard_encoder_wrote_with_str() -> None:
    value = {
        "at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        "day": date(2026, 12, 1),
        "amount": Decimal("12.50"),
        "point": _Point(1),
        "big": 2**70,
        7: "an int key",
    }
    assert json.loads(json_text(value)) == _standard(value)
    assert json.loads(json_text(value))["at"] == "2026-12-01 09:30:00+00:00"
