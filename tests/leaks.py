"""What must never be stored or logged: full card numbers, CVCs, passwords, bearer tokens and
secrets (API.md: "the full number and CVC are never stored, logged or echoed"; secret keys
and webhook secrets are shown once; passwords and refresh tokens are kept only as hashes).

`scan` finds them in text (a database dump, log lines); `dump` writes every row of every
table of a database as text (what the data section of a `pg_dump` holds, through `COPY`, so
it works with any server the suite runs on).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable

import asyncpg

# Credentials the suite itself uses (tests/support.py, bnpl bench's seed, tests/conftest.py).
KNOWN_SECRETS = ("correct horse battery", "bench password, shared", "test-admin-token")

# A card number stands alone (not inside a hex hash or an id, nor the fraction of a decimal
# number): brand prefix and length, then the Luhn check.
_CARD = re.compile(
    r"(?<![0-9A-Za-z.])(4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|3[47][0-9]{13}|6011[0-9]{12})"
    r"(?![0-9A-Za-z])"
)
PATTERNS: dict[str, re.Pattern[str]] = {
    "cvc field": re.compile(r"""["']?\b(?:cvc|cvv|cvc2)["']?\s*[:=]""", re.IGNORECASE),
    "password field": re.compile(r""""password"\s*:\s*"(?!\*+")[^"]+"""),
    "bearer token": re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    "access token (JWT)": re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    ),
    "refresh token": re.compile(r"(?<![A-Za-z0-9_])rt_[A-Za-z0-9_-]{20,}"),
    "merchant secret key": re.compile(r"\bsk_(?:test|live)_[A-Za-z0-9_-]{16,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{16,}"),
}


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scan(text: str) -> dict[str, list[str]]:
    """What leaked, by kind (each finding cut short, so a report does not leak it again)."""
    found: dict[str, list[str]] = {}
    cards = [m for m in _CARD.findall(text) if luhn_ok(m)]
    if cards:
        found["card number"] = [c[:4] + "..." + c[-2:] for c in cards]
    for name, pattern in PATTERNS.items():
        hits = pattern.findall(text)
        if hits:
            found[name] = [h[:12] + "..." for h in hits]
    for secret in KNOWN_SECRETS:
        if secret in text:
            found.setdefault("known password or token", []).append(secret[:4] + "...")
    return found


def scan_lines(lines: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        for name, hits in scan(line).items():
            found.setdefault(name, []).extend(hits)
    return found


async def dump(conn: asyncpg.Connection) -> tuple[str, int]:
    """Every row of every table outside PostgreSQL's own schemas, as COPY text; and the
    number of tables."""
    tables = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    )
    out = io.BytesIO()
    for t in tables:
        out.write(f"-- {t['table_schema']}.{t['table_name']}\n".encode())
        await conn.copy_from_table(t["table_name"], schema_name=t["table_schema"], output=out)
    return out.getvalue().decode("utf-8", errors="replace"), len(tables)
