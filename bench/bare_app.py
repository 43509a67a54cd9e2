"""The least a write can do, as a Flask app under the same gunicorn settings as the service.

POST /bare/<row>: lock one row (SELECT ... FOR UPDATE), update it, insert one row, commit, and
answer a small JSON body. Same database, same driver (psycopg 3 through SQLAlchemy), same
engine settings (app.adapters.db.make_engine: pool, lock and statement timeouts), no key, no
body, no ORM; psycopg prepares its statements after their fifth run, as it does by default,
even with ACCOUNTING_DB_PREPARE=off (the bare handler's fastest settings are the fair ones to
compare with). bench/run serves it with

    gunicorn -c gunicorn.conf.py --workers N --bind 127.0.0.1:PORT bare_app:app

(with --pythonpath bench). Tables bench_rows and bench_events are created by bench/workload.py.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort
from sqlalchemy import event, text

from app.adapters.db import make_engine

LOCK = text("SELECT n FROM bench_rows WHERE id = :id FOR UPDATE")
UPDATE = text("UPDATE bench_rows SET n = n + 1 WHERE id = :id")
INSERT = text("INSERT INTO bench_events (row_id) VALUES (:id)")

engine = make_engine(os.environ["DATABASE_URL"])


@event.listens_for(engine, "connect")
def _prepare_as_psycopg_does_by_default(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.prepare_threshold = 5


app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/bare/<int:row>")
def write(row: int) -> dict[str, int]:
    with engine.begin() as connection:
        n = connection.execute(LOCK, {"id": row}).scalar()
        if n is None:
            abort(404)
        connection.execute(UPDATE, {"id": row})
        connection.execute(INSERT, {"id": row})
    return {"row": row, "n": n + 1}
