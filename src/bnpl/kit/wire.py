"""Request field types whose wire format pydantic's defaults get wrong for this API.

- `Integer`: JSON has one number type, so `2210.0` is the integer 2210 (JSON Schema, which
  the OpenAPI document speaks, says so, and clients that write every number as a double send
  it). A whole number up to 2**53 (where a double is still exact) is taken as that integer;
  a fraction, a string or a boolean is still refused, never coerced.
- `Timestamp`: an RFC 3339 date-time string with its offset. Pydantic would also take a
  number (`0.5`, `1700000000`) as seconds since 1970, which the API never documented.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, StrictInt

_EXACT = 2**53
_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]")


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT:
        return int(value)
    return value


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-12-09T00:00:00Z")
    return value


Integer = Annotated[StrictInt, BeforeValidator(_whole_number)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
