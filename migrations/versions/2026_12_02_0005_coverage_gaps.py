"""the coordinators are told once per gap in a role's duty

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'coverage_gaps',
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('role', name=op.f('pk_coverage_gaps')),
    )


def downgrade() -> None:
    op.drop_table('coverage_gaps')
