"""Two roles protect the ledger: the owner migrates, the service may only append to the journal.

A database of its own, owned by a login role that is no superuser, migrated by it and granted
to a service role with `accounting db grant`, exactly as docs/operations.md tells a DBA to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app.adapters.roles import SERVICE
from app.adapters.schema import metadata
from app.cli import main, upgrade
from app.factory import create_app
from tests import factories
from tests.e2e.conftest import BASE, Api
from tests.factories import item
from tests.webhook_receiver import Receiver

PERMISSION_DENIED = "42501"
JUNE_CUT = {
    "country": "DE",
    "from": "2024-06-01",
    "to": "2024-06-30",
    "vatType": "NORMAL",
    "fromRate": 19,
    "toRate": 16,
    "mode": "keep-gross",
}


@dataclass(frozen=True)
class Roles:
    owner: str
    service: str
    owner_url: str
    service_url: str


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": url})


def one_line_refusal(result: Result) -> str:
    """The command refused: exit status 2, one line on standard error, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def roles(database_url: str) -> Iterator[Roles]:
    """A database owned by its own owner role, migrated by it, granted to a service role."""
    suffix = uuid.uuid4().hex[:10]
    owner, service, name = f"acc_owner_{suffix}", f"acc_service_{suffix}", f"acc_roles_{suffix}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        for role in (owner, service):
            connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'"))
        connection.execute(text(f"CREATE DATABASE {name} OWNER {owner}"))
    base = make_url(database_url).set(database=name)
    urls = [
        base.set(username=role, password=f"pw-{role}").render_as_string(hide_password=False)
        for role in (owner, service)
    ]
    try:
        upgrade(urls[0])
        granted = cli(urls[0], "db", "grant", "--role", service)
        assert granted.exit_code == 0, granted.output
        yield Roles(owner, service, *urls)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            for role in (service, owner):
                connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


@pytest.fixture
def as_owner(roles: Roles) -> Iterator[Engine]:
    engine = create_engine(roles.owner_url, poolclass=NullPool)
    yield engine
    with engine.begin() as connection:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables}"))
    engine.dispose()


@pytest.fixture
def as_service(roles: Roles, as_owner: Engine) -> Iterator[Engine]:
    engine = create_engine(roles.service_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def booked_entry(engine: Engine) -> None:
    """An order and a one-line-pair journal entry on it, inserted by the engine's role."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO orders (business_code, order_reference, customer_number, currency,"
                " version, paid_total, refunded_total, credited_total, header, created_at)"
                " VALUES ('1000', 'ORD1', 'C1', 'EUR', 1, 0, 0, 0, '{}', now())"
            )
        )
        connection.execute(
            text(
                "INSERT INTO journal_entries (business_code, entry_id, order_reference, kind,"
                " document_reference, document_date, created_at)"
                " VALUES ('1000', 'E1', 'ORD1', 'payment', 'P1', '2024-06-10', now())"
            )
        )
        connection.execute(
            text(
                "INSERT INTO journal_lines (business_code, entry_id, line_no, account, debit,"
                " credit) VALUES ('1000', 'E1', 1, 'payment-clearing', 100, 0),"
                " ('1000', 'E1', 2, 'receivable', 0, 100)"
            )
        )


def refused(engine: Engine, statement: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(statement))
    return caught.value


def lines(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = "SELECT line_no, account, debit, credit FROM journal_lines ORDER BY line_no"
        return [tuple(row) for row in connection.execute(text(query))]


# --- the service's role -------------------------------------------------------------------


def test_the_service_role_appends_to_the_journal_but_never_changes_it(
    as_service: Engine,
) -> None:
    booked_entry(as_service)
    assert lines(as_service) == [(1, "payment-clearing", 100, 0), (2, "receivable", 0, 100)]

    for statement in (
        "UPDATE journal_lines SET credit = 90 WHERE line_no = 2",
        "DELETE FROM journal_lines",
        "UPDATE journal_entries SET document_reference = 'P2'",
        "DELETE FROM journal_entries",
    ):
        error = refused(as_service, statement)
        assert getattr(error.orig, "sqlstate", None) == PERMISSION_DENIED, statement
        assert "permission denied for table journal_" in str(error.orig)
    assert lines(as_service) == [(1, "payment-clearing", 100, 0), (2, "receivable", 0, 100)]


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("UPDATE invoice_versions SET status = 'nullified', nullified_by = 'CN1'", True),
        ("UPDATE invoice_versions SET gross = 0", False),
        ("UPDATE credit_notes SET gross = 0", False),
        ("UPDATE payments SET amount = 1", False),
        ("UPDATE orders SET paid_total = 0, version = version + 1", True),
        ("UPDATE orders SET currency = 'USD'", False),
        ("DELETE FROM orders", False),
        ("UPDATE positions SET state = 'open'", True),
        ("UPDATE idempotency_keys SET response_body = NULL", False),
        ("DELETE FROM idempotency_keys", True),
        ("UPDATE api_keys SET revoked_at = now()", False),
        ("INSERT INTO api_keys SELECT * FROM api_keys", False),
        ("SELECT count(*) FROM outbox", True),
        ("UPDATE outbox SET payload = NULL", False),
        ("UPDATE outbox SET position = NULL", True),
        ("SELECT nextval('outbox_seq')", True),
        ("DELETE FROM outbox", False),
        ("DELETE FROM webhook_endpoints", True),
        ("UPDATE tax_correction_items SET status = 'failed'", True),
        ("SELECT version_num FROM alembic_version", True),
        ("CREATE TABLE scratch (id integer)", False),
    ],
)
def test_the_service_role_holds_only_what_the_service_does(
    as_service: Engine, statement: str, allowed: bool
) -> None:
    if allowed:
        with as_service.begin() as connection:
            connection.execute(text(statement))
    else:
        error = refused(as_service, statement)
        assert getattr(error.orig, "sqlstate", None) == PERMISSION_DENIED


# --- the trigger ----------------------------------------------------------------------------


def test_the_trigger_refuses_updates_and_deletes_even_to_the_owner(as_owner: Engine) -> None:
    booked_entry(as_owner)

    for statement, message in (
        ("UPDATE journal_lines SET credit = 90 WHERE line_no = 2", "UPDATE on journal_lines"),
        ("DELETE FROM journal_lines WHERE line_no = 1", "DELETE on journal_lines"),
        ("UPDATE journal_entries SET document_reference = 'P2'", "UPDATE on journal_entries"),
        ("DELETE FROM journal_entries", "DELETE on journal_entries"),
    ):
        error = refused(as_owner, statement)
        assert f"the journal is append-only: {message} refused" in str(error.orig)
    assert lines(as_owner) == [(1, "payment-clearing", 100, 0), (2, "receivable", 0, 100)]


def test_the_owner_can_still_empty_the_tables_with_truncate(as_owner: Engine) -> None:
    booked_entry(as_owner)
    with as_owner.begin() as connection:
        connection.execute(text("TRUNCATE journal_lines, journal_entries"))
    assert lines(as_owner) == []


# --- applying the grants ------------------------------------------------------------------


def privileges(engine: Engine, role: str) -> set[tuple[str, str, str]]:
    """(table, column or '*', privilege) held by the role."""
    with engine.connect() as connection:
        tables = connection.execute(
            text(
                "SELECT table_name, '*', privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = :role"
            ),
            {"role": role},
        ).all()
        columns = connection.execute(
            text(
                "SELECT table_name, column_name, privilege_type"
                " FROM information_schema.column_privileges WHERE grantee = :role"
                " AND privilege_type = 'UPDATE'"
            ),
            {"role": role},
        ).all()
    return {tuple(row) for row in [*tables, *columns]}  # type: ignore[misc]


def test_granting_again_changes_nothing_and_takes_back_what_was_added(
    roles: Roles, as_owner: Engine
) -> None:
    before = privileges(as_owner, roles.service)
    assert ("journal_lines", "*", "INSERT") in before
    assert ("invoice_versions", "status", "UPDATE") in before
    assert not {p for p in before if p[0].startswith("journal_") and p[2] != "SELECT"} - {
        ("journal_entries", "*", "INSERT"),
        ("journal_lines", "*", "INSERT"),
    }

    with as_owner.begin() as connection:
        connection.execute(text(f"GRANT UPDATE, DELETE ON journal_lines TO {roles.service}"))
    assert ("journal_lines", "*", "UPDATE") in privileges(as_owner, roles.service)
    again = cli(roles.owner_url, "db", "grant", "--role", roles.service)

    assert again.exit_code == 0, again.output
    assert "GRANT SELECT, INSERT ON TABLE public.journal_lines" in again.stdout
    assert privileges(as_owner, roles.service) == before


def test_upgrade_can_grant_in_the_same_command(roles: Roles, as_owner: Engine) -> None:
    before = privileges(as_owner, roles.service)
    with as_owner.begin() as connection:
        connection.execute(text(f"REVOKE ALL ON orders FROM {roles.service}"))

    result = cli(roles.owner_url, "db", "upgrade", "--grant-to", roles.service)

    assert result.exit_code == 0, result.output
    assert privileges(as_owner, roles.service) == before


def test_the_grant_refuses_a_role_the_grants_would_not_bind(
    roles: Roles, database_url: str
) -> None:
    owner = one_line_refusal(cli(roles.owner_url, "db", "grant", "--role", roles.owner))
    superuser = one_line_refusal(cli(roles.owner_url, "db", "grant", "--role", "postgres"))
    missing = one_line_refusal(cli(roles.owner_url, "db", "grant", "--role", "no_such_role"))
    by_service = one_line_refusal(cli(roles.service_url, "db", "grant", "--role", roles.service))

    assert owner == f'Error: role "{roles.owner}" is (or is a member of) the owner of the tables'
    assert superuser == 'Error: role "postgres" is a superuser: no grant or revoke applies to it'
    assert missing.startswith('Error: role "no_such_role" does not exist')
    assert by_service == (
        f'Error: role "{roles.service}" does not own the tables: use the owner\'s DATABASE_URL'
    )


def test_every_table_has_the_services_privileges_decided() -> None:
    assert set(SERVICE) == {*metadata.tables, "alembic_version"}


# --- the service under its role -------------------------------------------------------------


def test_the_service_runs_a_whole_lifecycle_under_its_role(roles: Roles, as_owner: Engine) -> None:
    made = cli(roles.owner_url, "keys", "create", "--business", "1000", "--role", "staff")
    assert made.exit_code == 0, made.output
    refused_key = cli(roles.service_url, "keys", "create", "--business", "1000", "--role", "staff")
    assert "permission denied for table api_keys" in one_line_refusal(refused_key)
    app = create_app({"DATABASE_URL": roles.service_url, "TESTING": True})
    try:
        api = Api(app.test_client(), made.stdout.splitlines()[-1])
        receiver = Receiver().up()
        hook = api.post(f"{BASE}/1000/webhooks", {"url": receiver.url,
                                                  "eventTypes": ["refundCreated"]})  # fmt: skip
        receiver.secret = hook.get_json()["secret"]
        lifecycle(api)
        try:
            relayed = cli(roles.service_url, "relay", "--once")
            assert relayed.exit_code == 0, relayed.output
        finally:
            receiver.down()
        assert [e["type"] for e in receiver.events().values()] == ["refundCreated"] * 4
        feed = api.get(f"{BASE}/1000/events?limit=1000")
        assert feed.status_code == 200 and len(feed.get_json()["events"]) > 4
        job = api.post(f"{BASE}/1000/tax-corrections", JUNE_CUT)
        assert job.status_code == 202, job.get_json()
        worked = cli(roles.service_url, "worker", "--once", "--poll", "0.05")
        assert worked.exit_code == 0, worked.output
        report = api.get(f"{BASE}/1000/tax-corrections/{job.get_json()['jobId']}").get_json()
        assert report["status"] == "completed"
        assert report["counts"]["corrected"] == 1
        assert report["counts"]["blocked"] == 2
    finally:
        app.extensions["accounting"].engine.dispose()
    checked = cli(roles.service_url, "verify")
    assert checked.exit_code == 0, checked.output
    assert checked.stderr == "verify: 2 orders checked, 0 violations\n"
    purged = cli(roles.service_url, "idempotency", "purge", "--older-than", "24h")
    assert purged.exit_code == 0, purged.output


def lifecycle(api: Api) -> None:
    """Every kind of write: invoices, a keyed payment, a cancellation, a return, a correction,
    a goodwill, each refunding what was overpaid; then the reads."""
    order = factories.OrderFactory(items=[item(1), item(2, "23.80"), item(3, "5.00")])
    ref = order["orderReference"]
    assert api.create_order(order).status_code == 200
    invoice_a = factories.InvoiceFactory(items=[{"orderItemReference": 1}])
    invoice_b = factories.InvoiceFactory(items=[{"orderItemReference": 2}])
    assert api.invoice(ref, invoice_a).status_code == 200
    assert api.invoice(ref, invoice_b).status_code == 200
    keyed = {"Idempotency-Key": f"pay-{ref}"}
    paid = api.post(f"{api.order_path(ref)}/payments", {"paymentProvider": "VISA"}, headers=keyed)
    assert paid.status_code == 200, paid.get_json()
    assert api.cancel(ref, [3]).status_code == 200
    assert api.return_items(ref, "R1", [(2, 1)]).status_code == 200
    items = [dict(i) for i in order["items"]]
    items[0].update(grossUnitPrice=Decimal("9.90"), vatAmount=Decimal("1.58"))
    body = factories.correction({**order, "items": items}, invoice_a)
    corrected = api.correct(ref, invoice_a["invoiceReference"], body)
    assert corrected.status_code == 200, corrected.get_json()
    assert api.goodwill(ref, "G1", [(1, Decimal("1.00"))]).status_code == 200
    replayed = api.post(
        f"{api.order_path(ref)}/payments", {"paymentProvider": "VISA"}, headers=keyed
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == paid.get_json()
    assert [r["amount"] for r in api.refunds(ref)] == [
        Decimal("5.00"),
        Decimal("23.80"),
        Decimal("2.00"),
        Decimal("1.00"),
    ]
    kinds = [e["kind"] for e in api.journal(ref)]
    assert kinds.count("credit-note") == 1 and kinds.count("refund") == 4
    assert api.tax_report()
    fresh, _invoice = api.invoiced_order()
    assert api.order(fresh["orderReference"])["totals"]["invoiced"] == Decimal("35.70")
