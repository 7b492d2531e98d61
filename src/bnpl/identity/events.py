"""The events identity emits (version 1 payloads).

Payloads carry ids and statuses, never personal data: events are delivered to other contexts,
exported to the data lake and kept for years, and a consumer's data must stay where it is
encrypted and can be erased. Changes are additive; a breaking change gets a new type name.

| type                               | public | data                                          |
|------------------------------------|--------|-----------------------------------------------|
| `consumer.registered`              | no     | `consumer_id`                                 |
| `consumer.kyc_verified`            | yes    | `consumer_id`, `kyc_status`                   |
| `consumer.kyc_rejected`            | yes    | `consumer_id`, `kyc_status`, `reason`         |
| `consumer.payment_method_added`    | no     | `consumer_id`, `payment_method_id`, `brand`   |
| `consumer.payment_method_removed`  | no     | `consumer_id`, `payment_method_id`            |

Every event's aggregate is the consumer (so one consumer's events are delivered in order) and
its `consumer_id` column is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import asyncpg

from bnpl.messaging import publish

CONSUMER_REGISTERED: Final = "consumer.registered"
CONSUMER_KYC_VERIFIED: Final = "consumer.kyc_verified"
CONSUMER_KYC_REJECTED: Final = "consumer.kyc_rejected"
PAYMENT_METHOD_ADDED: Final = "consumer.payment_method_added"
PAYMENT_METHOD_REMOVED: Final = "consumer.payment_method_removed"

PUBLIC_TYPES: Final = frozenset({CONSUMER_KYC_VERIFIED, CONSUMER_KYC_REJECTED})


async def emit(
    conn: asyncpg.Connection, type: str, consumer_id: str, at: datetime, **data: Any
) -> str:
    """Write one identity event to the outbox in the caller's transaction."""
    return await publish(
        conn,
        type,
        consumer_id,
        {"consumer_id": consumer_id, **data},
        occurred_at=at,
        consumer_id=consumer_id,
    )
