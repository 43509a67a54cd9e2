"""gunicorn's threaded worker, answering the requests gunicorn refuses itself as problem+json.

A request line or header too long, or a request gunicorn cannot parse, never reaches the app:
gunicorn answers it with an HTML page. This worker answers the same statuses (400, 414, 431,
...) with the body every other error has (SPEC section 8), no request id being known yet.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

# (error, status, code, detail): the first that the error is answers it, so the subclasses
# come before ParseException; anything else is a bug, 500.
REFUSALS: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (errors.LimitRequestLine, 414, "uri-too-long", "the request line is too long"),
    (errors.LimitRequestHeaders, 431, "headers-too-large", "the request's headers are too large"),
    (errors.ParseException, 400, "malformed-request", "the request is not valid HTTP"),
    (BaseException, 500, "internal-error", "an unexpected error occurred; it has been logged"),
)


def problem_bytes(status: int, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 answer carrying a problem+json body; the connection then closes."""
    reason = HTTPStatus(status).phrase
    request_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "type": f"https://errors.accounting.example/{code}",
            "title": reason,
            "status": status,
            "detail": detail,
            "code": code,
            "requestId": request_id,
            "errors": [],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemWorker(ThreadWorker):
    """gunicorn's gthread worker; its own refusals in the service's error format."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        _, status, code, detail = next(r for r in REFUSALS if isinstance(exc, r[0]))
        if status == 500:
            self.log.exception("error handling a request")  # a bug: the trace goes to the log
        else:
            self.log.warning("refused a request gunicorn could not take: %s", type(exc).__name__)
        try:
            client.sendall(problem_bytes(status, code, detail))
        except OSError:
            self.log.debug("could not send the refusal")
