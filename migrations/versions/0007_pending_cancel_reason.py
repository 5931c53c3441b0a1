"""A cancellation recorded mid-charge, on the row

`pending_cancel_reason` on orders: set when the customer's cancel met a PaymentIntent mid-
charge (the API answered 202: the order is cancelled, any payment refunded, once it
settles). It lived only in the workflow's state; a run resumed from the row (its workflow
terminated) now carries it on. Meaningful only while the order is not Cancelled.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("pending_cancel_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "pending_cancel_reason")
