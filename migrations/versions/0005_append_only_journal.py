"""the journal is append-only: a trigger refuses every UPDATE and DELETE of its rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Keep every migration backward compatible with the code still running: add before you use,
stop using before you drop. Every table's keys start with business_code.

A booked entry is corrected by booking its reversal, never by rewriting it. The service's role
has no UPDATE or DELETE on the journal tables (`accounting db grant`); this trigger refuses
them to every role, the tables' owner included. TRUNCATE fires no row trigger, so the owner
can still empty a scratch database. PostgreSQL only: SQLite is the embedded single-user
database. No code running today updates or deletes a journal row, so this is backward
compatible.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOURNAL_TABLES = ("journal_entries", "journal_lines")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION journal_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the journal is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                USING HINT = 'book a reversing entry instead';
        END
        $$
        """
    )
    for table in JOURNAL_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION journal_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in JOURNAL_TABLES:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION journal_append_only()")
