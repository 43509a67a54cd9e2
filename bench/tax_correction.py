"""Benchmark of batch tax corrections (issue 6) on PostgreSQL: invoices per second, peak memory.

    bash bench/run_tax_correction.sh                  # 100,000 invoices (3 lines each)
    bash bench/run_tax_correction.sh 20000 100000     # one run per size, for a comparison

For each size the schema is rebuilt, N invoiced orders are bulk-loaded, and then
`accounting tax-correction` (19 % -> 16 %, keep-gross) runs as a child process, whose wall time
and peak resident memory are reported. Afterwards every invoice must hold exactly two versions.

The loader builds each order through the domain (`Order`, `Order.create_invoice`), so amounts,
documents and journal entries are exactly those the service computes, and writes the rows the
ORM mapping would write with COPY, in batches, instead of one HTTP request per order.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, create_engine, func, select, text
from sqlalchemy.pool import NullPool

from app import jsoncodec
from app.adapters import mapper, schema
from app.cli import upgrade
from app.domain import model

ROOT = Path(__file__).resolve().parent.parent
BUSINESS = "1000"
CUSTOMER = "BENCH-CUSTOMER"
FIRST_DAY = date(2020, 7, 1)
BATCH = 2000
HEADER = {
    "orderDate": "2020-07-01",
    "orderType": "PHYSICAL_GOODS",
    "orderChannel": "ECOM",
    "supplyingCountry": "DE",
    "vatDeclarationCountry": "DE",
    "billToAddress": {"firstName": "Max", "lastName": "Mustermann", "countryCode": "DE"},
}
CORRECTION = [
    "--business", BUSINESS, "--country", "DE", "--from", "2020-07-01", "--to", "2020-12-31",
    "--vat-type", "NORMAL", "--from-rate", "19", "--to-rate", "16", "--mode", "keep-gross",
]  # fmt: skip


def _items(n: int) -> list[model.ItemSpec]:
    """Three lines: an article and shipping at 19 %, a book at 7 % (prices vary a little)."""
    return [
        model.ItemSpec(1, 1000 + 1000 * (n % 3), 1190 + n % 97, 1900, "NORMAL", "SALES_ARTICLE",
                       f"SKU-{n % 1000}", "Blumentopf XL"),
        model.ItemSpec(2, 1000, 495, 1900, "NORMAL", "SHIPPING_COSTS", "SHIP", "Versand"),
        model.ItemSpec(3, 2000, 1070 + n % 13, 700, "REDUCED", "SALES_ARTICLE",
                       f"BOOK-{n % 500}", "Gartenbuch"),
    ]  # fmt: skip


def _table_row(table: schema.Table, values: dict[str, Any]) -> dict[str, Any]:
    """A full row: the given values, and each missing one from its column's default."""
    row = {}
    for column in table.columns:
        value = values.get(column.name)
        if value is None and column.default is not None:
            value = column.default.arg(None)  # type: ignore[attr-defined]
        row[column.name] = value
    return row


def _order_rows(n: int) -> dict[str, list[dict[str, Any]]]:
    """One invoiced order as rows per table, built by the aggregate's own verbs."""
    reference = f"B{n:09d}"
    header = model.OrderHeader("DE", FIRST_DAY, dict(HEADER))
    order = model.Order(BUSINESS, reference, CUSTOMER, "EUR", header, _items(n))
    created_version = order.version
    spec = model.InvoiceSpec(
        invoice_reference=f"INV-{reference}",
        invoice_date=FIRST_DAY + timedelta(days=n % 180),
        due_date=FIRST_DAY + timedelta(days=n % 180 + 30),
        item_refs=(1, 2, 3),
        fields={"dispatchDate": str(FIRST_DAY), "shipmentReference": f"S{n}"},
    )
    invoice, effects = order.create_invoice(spec)
    on_order = {"business_code": BUSINESS, "order_reference": reference}
    changes = mapper.new_order_rows(order, effects.created)
    rows = {table.name: rows for table, rows in changes.inserts.items()}
    rows["outbox"] = []
    # The outbox events the service writes with the order and with its invoice.
    for topic, payload in (
        ("order.created", {}),
        ("invoice.created", {"reference": invoice.invoice_reference, "version": order.version}),
    ):
        rows["outbox"].append(
            _table_row(
                schema.outbox,
                {**on_order, "event_id": str(uuid.uuid4()), "topic": topic, "payload": payload},
            )
        )
    assert created_version == 1 and order.version == 2
    return rows


def _batches(count: int) -> Iterator[range]:
    for start in range(0, count, BATCH):
        yield range(start, min(start + BATCH, count))


def _copy(connection: Any, table: schema.Table, rows: Iterable[dict[str, Any]]) -> None:
    names = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [jsoncodec.dumps(row[n]) if n in json_columns else row[n] for n in names]
            )


def load(engine: Engine, count: int, start: int = 0) -> None:
    """Bulk-load `count` invoiced orders, numbered from `start`, one transaction per batch."""
    tables = [schema.metadata.tables[name] for name in (
        "orders", "positions", "invoices", "invoice_versions", "journal_entries",
        "journal_lines", "outbox",
    )]  # fmt: skip
    for batch in _batches(count):
        per_table: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tables}
        for n in batch:
            for name, rows in _order_rows(start + n).items():
                per_table[name].extend(rows)
        raw = engine.raw_connection()
        try:
            for table in tables:
                _copy(raw.driver_connection, table, per_table[table.name])
            raw.commit()
        finally:
            raw.close()


def reset(url: str) -> Engine:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    return create_engine(url, poolclass=NullPool)


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the correction's worker processes)."""
    found, i = [pid], 0
    while i < len(found):
        for task in Path(f"/proc/{found[i]}/task").glob("*/children"):
            found.extend(int(c) for c in task.read_text().split())
        i += 1
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: resident memory with shared pages split among their users."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _sample(pid: int, peak: list[int], done: threading.Event) -> None:
    while not done.wait(0.2):
        total = 0
        for member in _tree(pid):
            with contextlib.suppress(OSError):
                total += _pss_kib(member)
        peak[0] = max(peak[0], total)


def _ticks(pid: int, reaped: bool = False) -> int:
    """CPU clock ticks a process used (and, with reaped, its children that have exited)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])  # utime, stime
    return used + (int(fields[13]) + int(fields[14]) if reaped else 0)  # cutime, cstime


def _server_cpu_seconds() -> float | None:
    """CPU the PostgreSQL server (postmaster and every backend, live or exited) has used.

    Known only when PG_DIR names the server's directory (scripts/pg.sh exports it).
    """
    pg_dir = os.environ.get("PG_DIR")
    if not pg_dir:
        return None
    postmaster = int((Path(pg_dir) / "data" / "postmaster.pid").read_text().split()[0])
    ticks = _ticks(postmaster, reaped=True)
    for child in _tree(postmaster)[1:]:
        with contextlib.suppress(OSError):
            ticks += _ticks(child)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_correction(url: str, report: Path, workers: int) -> dict[str, Any]:
    """`accounting tax-correction` as a child process: its wall time, exit code and memory.

    Memory is the largest resident set of any one process of the run (from wait4) and the
    peak of the whole process tree's proportional set size, sampled every 0.2 s.
    """
    command = [str(Path(sys.executable).parent / "accounting"), "tax-correction", *CORRECTION]
    command += ["--workers", str(workers), "--report", str(report)]
    server_before = _server_cpu_seconds()
    started = time.monotonic()
    child = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": url})
    peak, done = [0], threading.Event()
    sampler = threading.Thread(target=_sample, args=(child.pid, peak, done), daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    server_after = _server_cpu_seconds()
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": seconds,
        "code": child.returncode,
        "max_rss_mib": usage.ru_maxrss / 1024,
        "tree_pss_mib": peak[0] / 1024,
        # wait4 counts the command and the worker processes it reaped.
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "server_cpu_seconds": (
            server_after - server_before
            if server_after is not None and server_before is not None
            else None
        ),
    }


def measure(url: str, count: int, workers: int, report_dir: Path) -> dict[str, Any]:
    engine = reset(url)
    started = time.monotonic()
    load(engine, count)
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
    print(f"loaded {count} invoices in {time.monotonic() - started:.1f} s", file=sys.stderr)
    run = run_correction(url, report_dir / f"tax-correction-{count}.csv", workers)
    with engine.connect() as connection:
        versions = connection.execute(
            select(schema.invoices.c.current_version, func.count()).group_by(
                schema.invoices.c.current_version
            )
        ).all()
    engine.dispose()
    if run["code"] != 0 or dict(versions) != {2: count}:
        raise SystemExit(f"correction failed: exit {run['code']}, versions {dict(versions)}")
    return {"invoices": count, "workers": workers, "per_second": count / run["seconds"], **run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000], help="invoices")
    parser.add_argument("--workers", type=int, default=2, help="correction processes")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--report-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL URL (bench/run_tax_correction.sh does)")
    results = [measure(args.database_url, n, args.workers, args.report_dir) for n in args.sizes]
    cpus = os.cpu_count() or 1
    print(f"{cpus} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(
        f"{'invoices':>9} {'workers':>7} {'seconds':>8} {'invoices/s':>10} "
        f"{'max RSS MiB':>11} {'all PSS MiB':>11} {'CPU ms/inv':>10} {'of it PG':>8} "
        f"{'CPU-bound inv/s':>15}"
    )
    for r in results:
        server = r["server_cpu_seconds"] or 0.0
        cpu = r["cpu_seconds"] + server
        print(
            f"{r['invoices']:>9} {r['workers']:>7} {r['seconds']:>8.1f} {r['per_second']:>10.1f} "
            f"{r['max_rss_mib']:>11.1f} {r['tree_pss_mib']:>11.1f} "
            f"{1000 * cpu / r['invoices']:>10.2f} {1000 * server / r['invoices']:>8.2f} "
            f"{cpus * r['invoices'] / cpu:>15.1f}"
        )
    print(
        "CPU ms/inv: the correction's processes plus the PostgreSQL server (PG when PG_DIR is "
        "set); CPU-bound inv/s: what all CPUs could do at that cost on an otherwise idle machine."
    )


if __name__ == "__main__":
    main()
