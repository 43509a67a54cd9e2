"""Structured JSON logs, each line carrying the request id; never keys or bodies."""

from __future__ import annotations

import logging
import sys

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
        return True


def configure(level: str) -> None:
    """JSON lines on stderr for the whole process, once."""
    root = logging.getLogger()
    if any(getattr(h, "_accounting", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
        )
    )
    handler.addFilter(RequestIdFilter())
    handler._accounting = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # WeasyPrint logs each step of every PDF it lays out at INFO; its warnings still show.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
