"""The stamp of the order workflow's write that last changed an order row

`orders.workflow_chain`, `workflow_task_began`, `workflow_write`: each status write of the
order's workflow carries its chain of runs, when its workflow task began, and its number
(WriteStamp). A write the row holds from the same chain, a task begun no later and a number
at or above the one now made was made by a workflow task that was lost (its worker or the Temporal server died before the
task was recorded): the workflow's write replaces it instead of being refused as an
outside change (docs/architecture.md, "Writes a lost workflow task made").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("workflow_chain", sa.String(64), nullable=True))
    op.add_column(
        "orders", sa.Column("workflow_task_began", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("orders", sa.Column("workflow_write", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "workflow_write")
    op.drop_column("orders", "workflow_task_began")
    op.drop_column("orders", "workflow_chain")
