"""quick exit pauses a case, code word

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:09:34.429403
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Quick exit pauses a case; the code word that resumes it; deletions retried.
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_from', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('after_exit_case_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('after_exit_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tries', sa.SmallInteger(), server_default='0', nullable=False))

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_word_hmac', sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column('code_word_set_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('code_word_fails', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('code_word_day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('code_word_locked', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('erased', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('exited_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    # Quick exit pauses a case; the code word that resumes it; deletions retried.
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('exited_at')
        batch_op.drop_column('erased')
        batch_op.drop_column('code_word_locked')
        batch_op.drop_column('code_word_day')
        batch_op.drop_column('code_word_fails')
        batch_op.drop_column('code_word_set_at')
        batch_op.drop_column('code_word_hmac')

    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_column('tries')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('after_exit_at')
        batch_op.drop_column('after_exit_case_id')
        batch_op.drop_column('paused_from')
        batch_op.drop_column('paused_at')

