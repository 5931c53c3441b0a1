"""When an order's workflow was last resumed

`resumed_at` on orders: set when a new run of the order's workflow started from the row
after the previous run ended while the order could still change (terminated from the Web
UI, say); null for an order whose workflow never had to be resumed (the sweep that finds such orders
reads by status, which is indexed since 0001).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "resumed_at")
