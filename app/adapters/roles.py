"""The service's PostgreSQL role: exactly what it needs on each table (docs/operations.md).

The tables' owner runs the migrations and applies these grants (`accounting db grant`); the
service connects as a role of its own that may read and append to the journal but never
change it, and may change only the columns the service changes. A table the service writes
anew needs its entry here: the grant refuses to run while a table has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.dialects import postgresql

from app.adapters import mapper, schema

_QUOTE = postgresql.dialect().identifier_preparer.quote


@dataclass(frozen=True)
class Privileges:
    """What the service may do on one table."""

    insert: bool = True
    update: tuple[str, ...] = ()  # the columns it may change
    delete: bool = False

    def sql(self) -> str:
        granted = ["SELECT"]
        if self.insert:
            granted.append("INSERT")
        if self.update:
            granted.append(f"UPDATE ({', '.join(_QUOTE(c) for c in self.update)})")
        if self.delete:
            granted.append("DELETE")
        return ", ".join(granted)


JOBS_PROGRESS = ("status", "total", "started_at", "finished_at")
ITEM_OUTCOME = tuple(
    c.name
    for c in schema.tax_correction_items.columns
    if c.name not in ("business_code", "job_id", "invoice_reference", "order_reference")
)

# Issued documents and journal rows are only ever inserted; the aggregate's rows change in
# the columns the data mapper may write (app/adapters/mapper.py), a version only in its status
# and nullifying credit note.
SERVICE: dict[str, Privileges] = {
    # Keys are created and revoked by an operator with the owner's DATABASE_URL.
    schema.api_keys.name: Privileges(insert=False),
    schema.orders.name: Privileges(update=mapper.ORDER.mutable),
    schema.positions.name: Privileges(update=mapper.POSITION.mutable),
    schema.invoices.name: Privileges(update=mapper.INVOICE.mutable),
    schema.invoice_versions.name: Privileges(update=mapper.VERSION.mutable),
    schema.credit_notes.name: Privileges(),
    schema.credits.name: Privileges(),
    schema.cancellations.name: Privileges(),
    schema.payments.name: Privileges(),
    schema.refunds.name: Privileges(update=mapper.REFUND.mutable),
    schema.refund_exports.name: Privileges(),
    schema.refund_export_items.name: Privileges(),
    schema.journal_entries.name: Privileges(),
    schema.journal_lines.name: Privileges(),
    # Stored answers are replayed, and purged once older than the contract's 24 h.
    schema.idempotency_keys.name: Privileges(delete=True),
    # Events are written with each change; the feed and the relay read them and give each
    # its feed position once committed (app/adapters/events.py).
    schema.outbox.name: Privileges(update=("position",)),
    # Subscriptions are the merchants' own; the relay moves their cursors and states.
    schema.webhook_endpoints.name: Privileges(
        update=("cursor", "status", "next_attempt_at", "failing_since", "disabled_reason"),
        delete=True,
    ),
    schema.webhook_deliveries.name: Privileges(
        update=tuple(
            c.name
            for c in schema.webhook_deliveries.columns
            if c.name not in ("business_code", "endpoint_id", "event_id")
        ),
        delete=True,
    ),
    schema.tax_correction_jobs.name: Privileges(update=JOBS_PROGRESS),
    schema.tax_correction_items.name: Privileges(update=ITEM_OUTCOME),
    # Read to tell whether the database is at the migrations' head.
    "alembic_version": Privileges(insert=False),
}


# Sequences the service draws from (USAGE: nextval only).
SEQUENCES = ("outbox_seq",)


class RoleRefused(Exception):
    """The grant cannot be made: no tables yet, a caller that does not own them, or a role
    that is missing, the owner, or above every grant."""


def grant_service_role(connection: Connection, role: str) -> list[str]:
    """Give `role` the service's privileges, and nothing more, in the connection's
    transaction; returns the statements run. Each table's privileges are revoked first, so
    running them again converges on this list."""
    missing = set(schema.metadata.tables) - set(SERVICE)
    if missing:
        raise AssertionError(f"no service privileges decided for {', '.join(sorted(missing))}")
    schema_name, owner, user, owning = connection.execute(
        text(
            "SELECT current_schema(), owner, current_user,"
            " owner IS NOT NULL AND pg_has_role(current_user, owner, 'USAGE')"
            " FROM (SELECT (SELECT tableowner FROM pg_tables WHERE schemaname = current_schema()"
            " AND tablename = :table) AS owner) AS tables"
        ),
        {"table": schema.journal_entries.name},
    ).one()
    if owner is None:
        raise RoleRefused("the database has no tables yet: run `accounting db upgrade` first")
    if not owning:
        # PostgreSQL only warns when someone else grants: it would look done and be nothing.
        raise RoleRefused(f'role "{user}" does not own the tables: use the owner\'s DATABASE_URL')
    found = connection.execute(
        text(
            "SELECT rolsuper, pg_has_role(oid, :owner, 'MEMBER') FROM pg_roles"
            " WHERE rolname = :role"
        ),
        {"role": role, "owner": owner},
    ).first()
    if found is None:
        raise RoleRefused(f'role "{role}" does not exist: create it first (CREATE ROLE ... LOGIN)')
    superuser, owns = found
    if superuser:
        raise RoleRefused(f'role "{role}" is a superuser: no grant or revoke applies to it')
    if owns:
        raise RoleRefused(f'role "{role}" is (or is a member of) the owner of the tables')
    grantee, where = _QUOTE(role), _QUOTE(schema_name)
    tables = {name: f"{where}.{_QUOTE(name)}" for name in SERVICE}
    statements = [
        f"GRANT USAGE ON SCHEMA {where} TO {grantee}",
        f"REVOKE ALL ON TABLE {', '.join(tables.values())} FROM {grantee}",
    ]
    statements += [
        f"GRANT {privileges.sql()} ON TABLE {tables[name]} TO {grantee}"
        for name, privileges in SERVICE.items()
    ]
    # An outbox row takes its insertion number from this sequence (migration 0007).
    sequences = ", ".join(f"{where}.{_QUOTE(name)}" for name in SEQUENCES)
    statements += [
        f"REVOKE ALL ON SEQUENCE {sequences} FROM {grantee}",
        f"GRANT USAGE ON SEQUENCE {sequences} TO {grantee}",
    ]
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements
