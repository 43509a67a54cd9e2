"""longer credit note references

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The generated reference of a correction's credit note, CN-{invoice}-{version}, is longer than
30 characters for a 30-character invoice reference. Widening a varchar is backward compatible.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credit_notes") as batch_op:
        batch_op.alter_column(
            "reference", type_=sa.String(48), existing_type=sa.String(30), existing_nullable=False
        )
    with op.batch_alter_table("invoice_versions") as batch_op:
        batch_op.alter_column(
            "nullified_by", type_=sa.String(48), existing_type=sa.String(30), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("invoice_versions") as batch_op:
        batch_op.alter_column(
            "nullified_by", type_=sa.String(30), existing_type=sa.String(48), existing_nullable=True
        )
    with op.batch_alter_table("credit_notes") as batch_op:
        batch_op.alter_column(
            "reference", type_=sa.String(30), existing_type=sa.String(48), existing_nullable=False
        )
