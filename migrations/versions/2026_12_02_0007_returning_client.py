"""a returning client's earlier requests, linked by the HMAC of her Telegram id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('chat_hmac', sa.LargeBinary(length=32), nullable=True))
    op.create_index('ix_cases_chat_hmac', 'cases', ['chat_hmac'])
    # Cases whose client is still known take her link now.
    op.execute(
        "UPDATE cases SET chat_hmac = (SELECT clients.chat_hmac FROM clients "
        "WHERE clients.id = cases.client_id) WHERE client_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index('ix_cases_chat_hmac', table_name='cases')
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('chat_hmac')
