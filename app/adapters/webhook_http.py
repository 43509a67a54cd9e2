"""POSTing one webhook: every network wait bounded, the answer's body never read whole."""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

ANSWER_BYTES = 1024  # what is read of an answer's body (only its status matters)


@dataclass(frozen=True)
class Answer:
    """What became of one POST: a 2xx is delivered; anything else failed, and why."""

    delivered: bool
    status: int | None
    error: str | None
    seconds: float


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST body to url; connecting, sending and each read wait at most `timeout` seconds.
    Redirects are not followed (a 3xx is a failure): the subscription names the URL."""
    started = time.monotonic()
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(ANSWER_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        reason = str(error).splitlines()[0] if str(error) else ""
        return Answer(False, None, f"{type(error).__name__}: {reason}"[:300], _since(started))
    finally:
        connection.close()
    ok = 200 <= status < 300
    return Answer(ok, status, None if ok else f"HTTP {status}", _since(started))


def _since(started: float) -> float:
    return time.monotonic() - started
