"""Failed refunds ops settled by hand, on the row

`settled_refund_ids` on orders: the Stripe ids of refunds of ours that failed and that ops
`resolve`d (the customer paid back another way). The after-close workflow, which knows the
order only from its row and Stripe, does not count them as owed again when a later event
reaches it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("settled_refund_ids", sa.ARRAY(sa.String(255)), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("orders", "settled_refund_ids")
