"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from bnpl.gateway import MetricsReader, runtime
from bnpl.messaging import metrics as bus_metrics
from bnpl.messaging.kafka import KafkaBus

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

# This process's database pool when scraped: busy near max means requests queue for a
# connection (BNPL_DB_POOL_MAX, or PostgreSQL's max_connections, is the limit).
POOL = Gauge("bnpl_db_pool_connections", "Database pool connections of this process", ["state"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """The database (and the broker, when one is configured) answer."""
    checks: dict[str, str] = {}
    rt = runtime(request)
    try:
        await rt.db.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if isinstance(rt.bus, KafkaBus):
        checks["broker"] = await rt.bus.broker_check()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", dependencies=[MetricsReader], response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus text format. For the operator token, or `BNPL_METRICS_TOKEN` when set
    (request counts and latencies per route are not for everyone to read). The bus's depth
    and lag are read from the database now; if it does not answer within a second, the
    last figures are served (and `/readyz` says why). On Kafka, with the consumer lag of
    every group (`bnpl_kafka_consumer_lag`)."""
    db = runtime(request).db
    pool = db.pool
    size, idle = pool.get_size(), pool.get_idle_size()
    POOL.labels("busy").set(size - idle)
    POOL.labels("idle").set(idle)
    POOL.labels("max").set(pool.get_max_size())
    try:
        await asyncio.wait_for(bus_metrics.refresh(db), timeout=1.0)
    except Exception:
        log.warning("bus metrics not refreshed", exc_info=True)
    bus = runtime(request).bus
    if isinstance(bus, KafkaBus):
        try:
            await bus.refresh_metrics()
        except Exception:
            log.warning("reading the consumer lag failed", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
