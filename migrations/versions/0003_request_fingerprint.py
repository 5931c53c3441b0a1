"""bind an order to the request that placed it

The SHA-256 of the create request as the API read it, so a retry with the same
Idempotency-Key and a different body is refused instead of answered with someone else's
order. Null for orders placed before this column existed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("request_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "request_fingerprint")
