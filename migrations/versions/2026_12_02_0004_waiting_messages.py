"""what she writes while her request waits, by id, for the specialist who takes it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Message ids only, never content: copied to the taker, then deleted.
    op.create_table(
        'waiting_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.BigInteger(), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                                name=op.f('fk_waiting_messages_case_id_cases'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_waiting_messages')),
    )
    op.create_index('ix_waiting_messages_case', 'waiting_messages', ['case_id', 'message_id'])


def downgrade() -> None:
    op.drop_index('ix_waiting_messages_case', table_name='waiting_messages')
    op.drop_table('waiting_messages')
