"""the annual report's covering indexes: place and channel in one, the child psychologist's parts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Region, month and channel come out of one pass over one index (bench/stats_annual.py).
    op.drop_index('ix_appeals_region_month_day', table_name='appeals')
    op.drop_index('ix_appeals_channel_day', table_name='appeals')
    op.create_index('ix_appeals_region_month_channel_day', 'appeals',
                    ['region', 'month', 'channel', 'day'])
    # "For whom" of the child psychologist's appeals, without reading a table row.
    op.create_index('ix_appeals_outcome_for_whom_person_day', 'appeals',
                    ['outcome', 'for_whom', 'person', 'day'])


def downgrade() -> None:
    op.drop_index('ix_appeals_outcome_for_whom_person_day', table_name='appeals')
    op.drop_index('ix_appeals_region_month_channel_day', table_name='appeals')
    op.create_index('ix_appeals_channel_day', 'appeals', ['channel', 'day'])
    op.create_index('ix_appeals_region_month_day', 'appeals', ['region', 'month', 'day'])
