"""`accounting relay`: deliver the events to the merchants' webhooks (app/service/relay.py)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
from prometheus_client import start_http_server

from app.adapters import migrations
from app.adapters.db import STATEMENT_TIMEOUT_MS, command_engine
from app.adapters.schema import outbox, webhook_deliveries, webhook_endpoints
from app.config import at_least_a_day
from app.service.relay import Relay, Settings


@click.command()
@click.option("--once", is_flag=True, help="Number, then deliver what is due, and return.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Endpoints served at once (PostgreSQL; SQLite: one).")  # fmt: skip
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 30),
              help="Seconds each network wait of a delivery may take.")  # fmt: skip
@click.option("--retry-base", default=5.0, show_default=True, type=click.FloatRange(0.01, 3600),
              help="Seconds before the first retry, doubled each failure, to an hour.")  # fmt: skip
@click.option("--give-up-after", default="24h", show_default=True,
              help="Disable an endpoint failing this long (at least 24h).")  # fmt: skip
@click.option("--metrics-port", default=None, type=click.IntRange(1, 65535),
              help="Serve the relay's Prometheus metrics on 127.0.0.1 at this port.")  # fmt: skip
def relay(
    once: bool,
    threads: int,
    timeout: float,
    retry_base: float,
    give_up_after: str,
    metrics_port: int | None,
) -> None:
    """Deliver the outbox's events to the webhooks, signed (Standard Webhooks), retried with
    backoff; several relays may run."""
    settings = Settings(
        timeout_s=timeout,
        base_delay_s=retry_base,
        max_delay_s=max(3600.0, retry_base),
        give_up_after_s=at_least_a_day(
            give_up_after, "an endpoint is retried at least 24 h before it is disabled"
        ).total_seconds(),
    )
    with command_engine(statement_timeout_ms=STATEMENT_TIMEOUT_MS) as engine:
        with engine.connect() as connection:  # a database never migrated fails here
            migrations.read_nothing_from(connection, outbox, webhook_endpoints, webhook_deliveries)
        worker = Relay(engine, settings)
        if metrics_port is not None:
            start_http_server(metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
        if once:
            numbered = worker.number()
            delivered = 0
            while worker.deliver_one():
                delivered += 1
            click.echo(f"relay: {numbered} events numbered, {delivered} endpoints served", err=True)
            return
        stop = threading.Event()

        def stopping(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        click.echo("relay ready", err=True)
        worker.run(stop, threads if worker.hold else 1)
        click.echo("relay: stopping", err=True)
