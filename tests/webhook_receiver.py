"""A merchant's webhook receiver on 127.0.0.1: verifies every delivery's Standard Webhooks
signature and records what arrived; it can be taken down and brought back on its port."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    body: bytes
    event: dict[str, Any]


@dataclass
class Receiver:
    """Start with `up()`; `url` stays the same across `down()` and `up()`."""

    secret: str = ""
    delay_s: float = 0.0  # how long each answer takes
    status: int = 204
    received: list[Received] = field(default_factory=list)
    refused: int = 0  # deliveries whose signature did not verify
    in_flight: dict[str, int] = field(default_factory=dict)
    most_at_once: int = 0  # the most requests for one webhook-id at the same moment
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/accounting"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                webhook_id = self.headers.get("webhook-id", "")
                receiver._enter(webhook_id)
                try:
                    receiver.arrived.set()
                    time.sleep(receiver.delay_s)
                    status = receiver._verify(body, dict(self.headers.items()))
                finally:
                    receiver._leave(webhook_id)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _enter(self, webhook_id: str) -> None:
        with self._lock:
            self.in_flight[webhook_id] = self.in_flight.get(webhook_id, 0) + 1
            self.most_at_once = max(self.most_at_once, self.in_flight[webhook_id])

    def _leave(self, webhook_id: str) -> None:
        with self._lock:
            self.in_flight[webhook_id] -= 1

    def _verify(self, body: bytes, headers: dict[str, str]) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(self.secret).verify(body, lowered)
        except Exception:
            with self._lock:
                self.refused += 1
            return 401
        event = json.loads(body, parse_float=Decimal)
        with self._lock:
            self.received.append(Received(lowered["webhook-id"], body, event))
        return self.status

    def ids(self) -> list[str]:
        with self._lock:
            return [r.webhook_id for r in self.received]

    def events(self) -> dict[str, dict[str, Any]]:
        """Each event that arrived, by its webhook-id (every copy must be the same)."""
        with self._lock:
            found: dict[str, dict[str, Any]] = {}
            for r in self.received:
                assert found.setdefault(r.webhook_id, r.event) == r.event
                assert r.event["id"] == r.webhook_id
            return found
