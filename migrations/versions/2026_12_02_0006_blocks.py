"""senders a coordinator blocked, by the HMAC of their Telegram id, until a date

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'blocks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chat_hmac', sa.LargeBinary(length=32), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                                name=op.f('fk_blocks_case_id_cases'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_blocks')),
    )
    op.create_index('ix_blocks_chat_hmac', 'blocks', ['chat_hmac'])


def downgrade() -> None:
    op.drop_index('ix_blocks_chat_hmac', table_name='blocks')
    op.drop_table('blocks')
