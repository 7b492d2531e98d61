"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bnpl.gateway import MetricsReader, runtime
from bnpl.messaging.kafka import KafkaBus

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


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


@router.get("/metrics", dependencies=[MetricsReader])
async def metrics(request: Request) -> Response:
    """Prometheus text format. For the operator token, or `BNPL_METRICS_TOKEN` when set
    (request counts and latencies per route are not for everyone to read). On Kafka, with
    the consumer lag of every group (`bnpl_kafka_consumer_lag`)."""
    bus = runtime(request).bus
    if isinstance(bus, KafkaBus):
        try:
            await bus.refresh_metrics()
        except Exception:
            log.warning("reading the consumer lag failed", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
