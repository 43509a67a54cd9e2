"""`accounting serve` as an operator starts it: from a virtualenv never activated, listening where
ACCOUNTING_BIND says, migrating first when asked, refusing to run without a database when the
installation requires one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.live_server import free_port, stop, wait_ready

ACCOUNTING = Path(sys.executable).parent / "accounting"  # the venv's console script


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no virtualenv on the PATH, no DATABASE_URL."""
    keep = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV")}
    keep["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    keep["ACCOUNTING_VAR_DIR"] = str(tmp_path / "var")
    keep["ACCOUNTING_WORKERS"] = "1"
    return {**keep, **extra}


def test_the_console_script_serves_where_accounting_bind_says_after_migrating(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = _environment(tmp_path, ACCOUNTING_BIND=f"127.0.0.1:{port}")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ACCOUNTING), "serve", "--migrate"],
            cwd=tmp_path,  # not the project: gunicorn.conf.py and migrations found beside it
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(process, f"http://127.0.0.1:{port}/health/ready", log)
        assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5).json() == {
            "status": "ok"
        }
    finally:
        stop(process)
    assert (tmp_path / "var" / "accounting.db").exists()


def test_health_ready_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()  # a database that opens, with no schema
    port = free_port()
    env = _environment(tmp_path, ACCOUNTING_BIND=f"127.0.0.1:{port}")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ACCOUNTING), "serve"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(process, f"http://127.0.0.1:{port}/health/live", log)
        ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
    finally:
        stop(process)
    assert ready.status_code == 503
    assert ready.headers["Content-Type"] == "application/problem+json"
    assert ready.json()["code"] == "migrations-pending"
    assert ready.headers["Retry-After"]


def test_an_installation_that_requires_postgresql_refuses_to_serve_without_it(
    tmp_path: Path,
) -> None:
    env = _environment(tmp_path, ACCOUNTING_REQUIRE_DATABASE_URL="1")

    done = subprocess.run(
        [str(ACCOUNTING), "serve"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )

    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL is not set" in lines[0]
    assert "Traceback" not in done.stderr.decode()


def test_a_malformed_accounting_bind_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = _environment(tmp_path, ACCOUNTING_BIND="localhost")

    done = subprocess.run(
        [str(ACCOUNTING), "serve"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )

    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "Error: ACCOUNTING_BIND is not HOST:PORT with a port from 1 to 65535: localhost"
    ]
