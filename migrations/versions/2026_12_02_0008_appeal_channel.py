"""how an appeal came: Telegram, the hotline or a walk-in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every appeal recorded so far came through Telegram.
    with op.batch_alter_table('appeals') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=12), nullable=False,
                                   server_default='telegram'))
    op.create_index('ix_appeals_channel_day', 'appeals', ['channel', 'day'])


def downgrade() -> None:
    op.drop_index('ix_appeals_channel_day', table_name='appeals')
    with op.batch_alter_table('appeals') as batch:
        batch.drop_column('channel')
