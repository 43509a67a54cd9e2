"""Schemathesis against the live service, from the committed openapi.yaml.

Every operation, every check (tests/contract/schemathesis.toml says where 422 and 412 are
expected), a bounded number of generated requests: no answer may be a 5xx, and every answer
must be one openapi.yaml describes, in status, headers, media type and body.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.contract.conftest import LiveServer, Seed001
from tests.contract.openapi_check import SPEC

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
EXAMPLES = int(os.environ.get("ACCOUNTING_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("ACCOUNTING_FUZZ_SEED", "20240601")
TIMEOUT = 300


def operation_count() -> int:
    paths = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["paths"]
    methods = ("get", "put", "post", "delete")
    return sum(1 for item in paths.values() for method in item if method in methods)


def test_generated_requests_get_no_server_error_and_no_answer_outside_the_spec(
    live_server: LiveServer, seed_001: Seed001, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        *("--no-color", "--config-file", str(CONFIG), "run", str(SPEC)),
        *("--url", live_server.url, "--checks", "all", "--workers", "1"),
        *("--max-examples", str(EXAMPLES), "--seed", SEED),
        *("--header", f"X-Subscription-Key: {seed_001.key}"),
    ]

    # In a scratch directory: Schemathesis keeps its example database where it runs.
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )

    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    assert f"Tested: {operation_count()}" in output, output[-3000:]
    log = live_server.log_text()
    assert "unhandled error" not in log
    assert seed_001.key not in log
