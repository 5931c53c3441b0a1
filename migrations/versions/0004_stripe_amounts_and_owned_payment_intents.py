"""Stripe's amounts on the order, ops' resolution note, and the PaymentIntents the
service created

`amount_refunded` and `dispute_status` on orders (null until Stripe reports a refund or a
dispute), `resolution_note` (what ops noted resolving a problem by hand); `order_payment_intents` lists every PaymentIntent created for an order, so an
event about a PaymentIntent of another system on the same Stripe account is told apart.
It starts with the PaymentIntent each existing order recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("amount_refunded", sa.Numeric(18, 2), nullable=True))
    op.add_column("orders", sa.Column("dispute_status", sa.String(50), nullable=True))
    op.add_column("orders", sa.Column("resolution_note", sa.String(1000), nullable=True))
    op.create_table(
        "order_payment_intents",
        sa.Column("payment_intent_id", sa.String(255), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.order_id"],
            name="fk_order_payment_intents_order_id_orders",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("payment_intent_id", name="pk_order_payment_intents"),
    )
    op.create_index(
        "ix_order_payment_intents_order_id", "order_payment_intents", ["order_id"]
    )
    op.execute(
        "INSERT INTO order_payment_intents (payment_intent_id, order_id, created_date) "
        "SELECT stripe_payment_intent_id, order_id, updated_date FROM orders "
        "WHERE stripe_payment_intent_id IS NOT NULL ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_index("ix_order_payment_intents_order_id", table_name="order_payment_intents")
    op.drop_table("order_payment_intents")
    op.drop_column("orders", "resolution_note")
    op.drop_column("orders", "dispute_status")
    op.drop_column("orders", "amount_refunded")
