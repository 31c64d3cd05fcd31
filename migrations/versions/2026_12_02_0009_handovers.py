"""a live case handed over to a colleague or a role, first take wins

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'handovers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('from_staff_id', sa.Integer(), nullable=True),
        sa.Column('to_staff_id', sa.Integer(), nullable=True),
        sa.Column('role', sa.String(length=24), nullable=True),
        sa.Column('by_staff_id', sa.Integer(), nullable=True),
        sa.Column('prompt_message_id', sa.BigInteger(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('taken_by', sa.Integer(), nullable=True),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                                name=op.f('fk_handovers_case_id_cases'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['from_staff_id'], ['staff.id'],
                                name=op.f('fk_handovers_from_staff_id_staff'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['to_staff_id'], ['staff.id'],
                                name=op.f('fk_handovers_to_staff_id_staff'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['by_staff_id'], ['staff.id'],
                                name=op.f('fk_handovers_by_staff_id_staff'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['taken_by'], ['staff.id'],
                                name=op.f('fk_handovers_taken_by_staff'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_handovers')),
    )
    op.create_index('ix_handovers_case', 'handovers', ['case_id'])
    op.create_table(
        'handover_cards',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('handover_id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['handover_id'], ['handovers.id'],
                                name=op.f('fk_handover_cards_handover_id_handovers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'],
                                name=op.f('fk_handover_cards_staff_id_staff'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_cards')),
    )
    op.create_index('ix_handover_cards_handover', 'handover_cards', ['handover_id'])


def downgrade() -> None:
    op.drop_index('ix_handover_cards_handover', table_name='handover_cards')
    op.drop_table('handover_cards')
    op.drop_index('ix_handovers_case', table_name='handovers')
    op.drop_table('handovers')
