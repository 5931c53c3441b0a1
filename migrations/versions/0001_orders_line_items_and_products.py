"""orders line items and products

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('orders',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('order_number', sa.String(length=50), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('customer_email', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=50), nullable=False),
    sa.Column('sub_total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('tax', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('shipping_cost', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.Column('stripe_payment_intent_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_payment_status', sa.String(length=50), nullable=True),
    sa.Column('payment_error_message', sa.String(length=1000), nullable=True),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('cancellation_reason', sa.String(length=500), nullable=True),
    sa.Column('shipping_carrier', sa.String(length=100), nullable=True),
    sa.Column('tracking_number', sa.String(length=100), nullable=True),
    sa.Column('shipping_full_name', sa.String(length=200), nullable=False),
    sa.Column('shipping_address_line1', sa.String(length=500), nullable=False),
    sa.Column('shipping_address_line2', sa.String(length=500), nullable=True),
    sa.Column('shipping_city', sa.String(length=100), nullable=False),
    sa.Column('shipping_state', sa.String(length=100), nullable=False),
    sa.Column('shipping_postal_code', sa.String(length=20), nullable=False),
    sa.Column('shipping_country', sa.String(length=100), nullable=False),
    sa.Column('shipping_phone', sa.String(length=50), nullable=True),
    sa.Column('use_separate_billing_address', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('billing_full_name', sa.String(length=200), nullable=True),
    sa.Column('billing_address_line1', sa.String(length=500), nullable=True),
    sa.Column('billing_address_line2', sa.String(length=500), nullable=True),
    sa.Column('billing_city', sa.String(length=100), nullable=True),
    sa.Column('billing_state', sa.String(length=100), nullable=True),
    sa.Column('billing_postal_code', sa.String(length=20), nullable=True),
    sa.Column('billing_country', sa.String(length=100), nullable=True),
    sa.Column('billing_phone', sa.String(length=50), nullable=True),
    sa.Column('created_date', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_date', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('Pending', 'PaymentProcessing', 'Confirmed', 'Processing', 'Shipped', 'Delivered', 'Cancelled', 'Failed')", name=op.f('ck_orders_status_known')),
    sa.CheckConstraint('sub_total >= 0 AND tax >= 0 AND shipping_cost >= 0', name=op.f('ck_orders_amounts')),
    sa.CheckConstraint('total = sub_total + tax + shipping_cost', name=op.f('ck_orders_total_adds_up')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_orders')),
    sa.UniqueConstraint('order_number', name=op.f('uq_orders_order_number'))
    )
    op.create_index(op.f('ix_orders_created_date'), 'orders', ['created_date'], unique=False)
    op.create_index(op.f('ix_orders_customer_email'), 'orders', ['customer_email'], unique=False)
    op.create_index(op.f('ix_orders_customer_id'), 'orders', ['customer_id'], unique=False)
    op.create_index(op.f('ix_orders_status'), 'orders', ['status'], unique=False)
    op.create_index(op.f('ix_orders_stripe_payment_intent_id'), 'orders', ['stripe_payment_intent_id'], unique=False)
    op.create_table('products',
    sa.Column('product_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('size', sa.String(length=50), nullable=True),
    sa.Column('estimated_msrp', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('image_urls', sa.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.CheckConstraint('estimated_msrp >= 0', name=op.f('ck_products_msrp_not_negative')),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_products'))
    )
    op.create_table('line_items',
    sa.Column('line_item_id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('product_id', sa.Uuid(), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('product_size', sa.String(length=50), nullable=True),
    sa.Column('product_image_url', sa.String(length=2000), nullable=True),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity >= 1', name=op.f('ck_line_items_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_line_items_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.order_id'], name=op.f('fk_line_items_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('line_item_id', name=op.f('pk_line_items'))
    )
    op.create_index(op.f('ix_line_items_order_id'), 'line_items', ['order_id'], unique=False)
    op.create_index(op.f('ix_line_items_product_id'), 'line_items', ['product_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_line_items_product_id'), table_name='line_items')
    op.drop_index(op.f('ix_line_items_order_id'), table_name='line_items')
    op.drop_table('line_items')
    op.drop_table('products')
    op.drop_index(op.f('ix_orders_stripe_payment_intent_id'), table_name='orders')
    op.drop_index(op.f('ix_orders_status'), table_name='orders')
    op.drop_index(op.f('ix_orders_customer_id'), table_name='orders')
    op.drop_index(op.f('ix_orders_customer_email'), table_name='orders')
    op.drop_index(op.f('ix_orders_created_date'), table_name='orders')
    op.drop_table('orders')
