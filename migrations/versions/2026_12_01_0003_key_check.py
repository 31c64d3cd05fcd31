"""the server key's check value

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Which server key the database's ids are encrypted with (an HMAC of a fixed label):
    # a start with another key is refused (bot/core/keys.py: check).
    op.create_table(
        'key_check',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('value', sa.LargeBinary(length=32), nullable=False),
        sa.Column('previous', sa.LargeBinary(length=32), nullable=True),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_key_check')),
    )


def downgrade() -> None:
    op.drop_table('key_check')
