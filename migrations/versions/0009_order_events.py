"""Order events and their deliveries (webhooks, customer e-mails)

`order_events`: the outbox, one row per fact an order emitted (the id comes from the
order and the fact, so a fact recorded again is the same row). `event_deliveries`: each
event to each target and where its delivery stands. `webhook_endpoint_states`: endpoints
a receiver disabled with 410. `orders.customer_email_refused`: the mail server's answer
when it refused the customer's address for good.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = "'pending', 'failing', 'delivered', 'failed', 'refused', 'disabled'"


def upgrade() -> None:
    op.add_column("orders", sa.Column("customer_email_refused", sa.String(500), nullable=True))
    op.create_table(
        "order_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.order_id"],
            name="fk_order_events_order_id_orders",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name="pk_order_events"),
    )
    op.create_index(
        "ix_order_events_order_id_occurred_at", "order_events", ["order_id", "occurred_at"]
    )
    op.create_index("ix_order_events_occurred_at", "order_events", ["occurred_at"])
    op.create_table(
        "event_deliveries",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_answer", sa.String(500), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(f"state IN ({_STATES})", name="ck_event_deliveries_state_known"),
        sa.CheckConstraint("attempts >= 0", name="ck_event_deliveries_attempts_not_negative"),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["order_events.event_id"],
            name="fk_event_deliveries_event_id_order_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "target", name="pk_event_deliveries"),
    )
    op.create_index("ix_event_deliveries_state_target", "event_deliveries", ["state", "target"])
    op.create_table(
        "webhook_endpoint_states",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_webhook_endpoint_states"),
    )


def downgrade() -> None:
    op.drop_table("webhook_endpoint_states")
    op.drop_table("event_deliveries")
    op.drop_table("order_events")
    op.drop_column("orders", "customer_email_refused")
