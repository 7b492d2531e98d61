"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bnpl.gateway import MetricsReader, runtime

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """The database (and the broker, when one is configured) answer."""
    checks: dict[str, str] = {}
    try:
        await runtime(request).db.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", dependencies=[MetricsReader], response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus text format. For the operator token, or `BNPL_METRICS_TOKEN` when set
    (request counts and latencies per route are not for everyone to read)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
