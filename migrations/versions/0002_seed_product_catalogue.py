"""seed the product catalogue

A small catalogue so a new installation can take orders at once. Fixed ids keep it the
same on every machine (tests and the README refer to them).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, insert

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

products = sa.table(
    "products",
    sa.column("product_id", sa.Uuid),
    sa.column("name", sa.String),
    sa.column("size", sa.String),
    sa.column("estimated_msrp", sa.Numeric(18, 2)),
    sa.column("image_urls", ARRAY(sa.Text)),
)

CATALOGUE = [
    ("6f1c2a3e-0001-4c1b-9a55-1d2f8e9a0001", "Vult Runner", "10", "129.99",
     ["/images/vult-runner-1.jpg", "/images/vult-runner-2.jpg"]),
    ("6f1c2a3e-0002-4c1b-9a55-1d2f8e9a0002", "Vult Court Classic", "9", "89.50",
     ["/images/court-classic.jpg"]),
    ("6f1c2a3e-0003-4c1b-9a55-1d2f8e9a0003", "Vult Trail Pro", "11", "159.00",
     ["/images/trail-pro.jpg"]),
    ("6f1c2a3e-0004-4c1b-9a55-1d2f8e9a0004", "Vult Slide", None, "24.99", []),
    ("6f1c2a3e-0005-4c1b-9a55-1d2f8e9a0005", "Vult Everyday Sock (3 pack)", "M", "12.35",
     ["/images/sock-pack.jpg"]),
    ("6f1c2a3e-0006-4c1b-9a55-1d2f8e9a0006", "Vult Laces", None, "0.05", []),
]


def upgrade() -> None:
    rows = [
        {"product_id": pid, "name": name, "size": size,
         "estimated_msrp": Decimal(msrp), "image_urls": images}
        for pid, name, size, msrp, images in CATALOGUE
    ]
    op.execute(insert(products).values(rows).on_conflict_do_nothing(index_elements=["product_id"]))


def downgrade() -> None:
    ids = [pid for pid, *_ in CATALOGUE]
    op.execute(products.delete().where(products.c.product_id.in_(ids)))
