"""What shipped, what was captured, and returns

`line_items.quantity_shipped` (null until the order ships) and `quantity_returned`;
`orders.amount_captured` (captured at shipment, capture mode at_shipment) and
`delivered_date` (the return window runs from it); `order_returns`, one row per return ops
took (its Idempotency-Key, reason, amount refunded, the refund at Stripe, the lines).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("line_items", sa.Column("quantity_shipped", sa.Integer(), nullable=True))
    op.add_column(
        "line_items",
        sa.Column("quantity_returned", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_check_constraint(
        op.f("ck_line_items_returned_within_shipped"),
        "line_items",
        "quantity_returned >= 0 AND quantity_returned <= COALESCE(quantity_shipped, 0)"
        " AND (quantity_shipped IS NULL OR quantity_shipped BETWEEN 0 AND quantity)",
    )
    op.add_column("orders", sa.Column("amount_captured", sa.Numeric(18, 2), nullable=True))
    op.add_column("orders", sa.Column("delivered_date", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "order_returns",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("return_key", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("refund_id", sa.String(255), nullable=True),
        sa.Column("refund_status", sa.String(50), nullable=True),
        sa.Column("line_items", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.order_id"],
            name=op.f("fk_order_returns_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "return_key", name=op.f("pk_order_returns")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_order_returns_amount_positive")),
    )


def downgrade() -> None:
    op.drop_table("order_returns")
    op.drop_column("orders", "delivered_date")
    op.drop_column("orders", "amount_captured")
    op.drop_constraint(op.f("ck_line_items_returned_within_shipped"), "line_items")
    op.drop_column("line_items", "quantity_returned")
    op.drop_column("line_items", "quantity_shipped")
