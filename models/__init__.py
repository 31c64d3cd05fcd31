"""SQLAlchemy models for the whole design.

Rules these tables keep:
- no conversation content: only choices, codes, due times and message-id pairs;
- Telegram chat ids and phone numbers only encrypted (`*_enc`), found again by HMAC (`*_hmac`);
- the anonymous appeal record (`appeals`) has no column that leads back to a person; a case
  points at its appeal, never the other way, so purging the case cuts the link;
- every due time lives in `due_times`; jobs are only triggers re-armed from it.
Only types that work on both SQLite and PostgreSQL; every constraint named.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Urgency(enum.StrEnum):
    EMERGENCY = "emergency"
    HIGH = "high"
    STANDARD = "standard"


class CaseStatus(enum.StrEnum):
    WAITING = "waiting"  # nobody has taken it yet
    ACTIVE = "active"  # a specialist took it; the relay is open
    # She left with quick exit: nothing about it reaches her chat until she comes back
    # with her code word (`Case.paused_from` says where it was).
    PAUSED = "paused"
    CLOSED = "closed"


class Client(Base):
    """A person who wrote to the bot: her conversation step and choices, no content."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_hmac: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    chat_id_enc: Mapped[bytes] = mapped_column(LargeBinary(255))
    language: Mapped[str | None] = mapped_column(String(2))
    # Conversation state machine: the step and the answers of a flow in progress.
    step: Mapped[str] = mapped_column(String(32), default="new")
    step_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The message whose buttons are current; buttons on any other message have expired.
    menu_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Answer to "may anyone else read this phone?": None = not asked yet.
    shared_device: Mapped[bool | None] = mapped_column(Boolean)
    auto_delete_minutes: Mapped[int | None] = mapped_column(Integer)
    # The word that brings her back after quick exit: only an HMAC under the server key.
    code_word_hmac: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # When she chose it: it resumes only a case paused after that (a word chosen from her
    # account after a quick exit was not necessarily chosen by her).
    code_word_set_at: Mapped[datetime | None]
    # Wrong tries on `code_word_day`; at the limit the word is locked until staff reset it.
    code_word_fails: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    code_word_day: Mapped[date | None] = mapped_column(Date)
    code_word_locked: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    # `/forget` was done but some of her chat's messages could not be deleted yet: the row
    # keeps only those ids (and the chat to delete them in) until they are gone.
    erased: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Her last quick exit: a message to her that was on its way then is deleted on arrival.
    exited_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class ChatMessage(Base):
    """One message id in a client's chat (hers or the bot's), kept only to delete it later."""

    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime]
    # Failed attempts to delete it (a 5xx, the network): the retry waits longer each time.
    tries: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("client_id", "message_id", name="uq_chat_messages_client_message"),
        Index("ix_chat_messages_sent_at", "sent_at"),
    )


class Staff(Base):
    """A member of the center's staff; roles in `staff_roles`."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tg_hmac: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    tg_id_enc: Mapped[bytes] = mapped_column(LargeBinary(255))
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # `/duty on|off`: overrides the roster until the time given (None: no override).
    duty_override: Mapped[bool | None] = mapped_column(Boolean)
    duty_override_until: Mapped[datetime | None]
    # The case her plain (non-reply) messages go to.
    # Plain integer, not a foreign key: staff and cases would otherwise refer to each other.
    active_case_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]

    roles: Mapped[list[StaffRole]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}


class StaffRole(Base):
    __tablename__ = "staff_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(24))

    staff: Mapped[Staff] = relationship(back_populates="roles")

    __table_args__ = (UniqueConstraint("staff_id", "role", name="uq_staff_roles_staff_role"),)


class RosterShift(Base):
    """A weekly shift, loaded from the configuration's `[[roster]]` at start-up."""

    __tablename__ = "roster_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(24))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_minute: Mapped[int] = mapped_column(SmallInteger)  # minutes after local midnight
    end_minute: Mapped[int] = mapped_column(SmallInteger)  # may be <= start: across midnight


class Appeal(Base):
    """The anonymous statistical record of one case. Nothing here leads back to a person."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    # The local month as yyyymm, kept beside the day so reports group by it on an index.
    month: Mapped[int] = mapped_column(Integer)
    # HMAC(secret, year | telegram id) in 63 bits: distinct people within a year only.
    person: Mapped[int] = mapped_column(BigInteger)
    region: Mapped[str | None] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(24))
    for_whom: Mapped[str | None] = mapped_column(String(16))
    urgency: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2))
    out_of_hours: Mapped[bool] = mapped_column(Boolean)
    screen: Mapped[str | None] = mapped_column(String(16))  # screened_in / not_screened_in
    outcome: Mapped[str | None] = mapped_column(String(32))
    minutes_to_reply: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    # How the appeal came: "telegram" (a case), "hotline" or "walk_in" (recorded by staff).
    channel: Mapped[str] = mapped_column(String(12), default="telegram",
                                         server_default="telegram")

    # Covering indexes for the reports (bench/stats_annual.py): each query of a report is
    # answered from one of them, without reading a table row; the planner picks them.
    __table_args__ = (
        Index("ix_appeals_region_person_day", "region", "person", "day"),
        Index("ix_appeals_month_person_day", "month", "person", "day"),
        Index("ix_appeals_outcome_person_day", "outcome", "person", "day"),
        Index("ix_appeals_person_day", "person", "day"),
        Index("ix_appeals_region_month_channel_day", "region", "month", "channel", "day"),
        Index("ix_appeals_outcome_for_whom_person_day", "outcome", "for_whom", "person", "day"),
        Index("ix_appeals_region_month_person_day", "region", "month", "person", "day"),
        Index("ix_appeals_urgency_screen_hours_reply_day", "urgency", "screen", "out_of_hours",
              "minutes_to_reply", "day"),
    )


class Case(Base):
    """A request for help. Links to a person (client, phone) are cut when it is purged."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), index=True
    )
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.WAITING)
    urgency: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(24))
    for_whom: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(24))
    language: Mapped[str] = mapped_column(String(2))
    # Danger screen: result and the numbers of the questions answered yes (e.g. "1,5,6").
    screen: Mapped[str | None] = mapped_column(String(16))
    screen_flags: Mapped[str | None] = mapped_column(String(40))
    contact: Mapped[str] = mapped_column(String(16), default="chat_now")
    contact_at: Mapped[datetime | None]
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary(255))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime]
    taken_at: Mapped[datetime | None]
    first_reply_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    purged_at: Mapped[datetime | None]
    # Quick exit: when, and the status it had then (waiting or active).
    paused_at: Mapped[datetime | None]
    paused_from: Mapped[str | None] = mapped_column(String(16))
    # A request made from an account whose earlier case was paused by quick exit: that
    # case and when (for the specialist only: someone else may be holding her phone).
    after_exit_case_id: Mapped[int | None] = mapped_column(Integer)
    after_exit_at: Mapped[datetime | None]
    # The HMAC of her Telegram id, kept after the 30-day purge for `[retention]
    # returning_months` so that her next request's card lists this one; /forget removes it.
    chat_hmac: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("ix_cases_status_created", "status", "created_at"),
        Index("ix_cases_owner_status", "owner_id", "status"),
        Index("ix_cases_chat_hmac", "chat_hmac"),
    )


class CaseOffer(Base):
    """A case card shown to one staff member: to edit it when someone takes the case."""

    __tablename__ = "case_offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    offered_at: Mapped[datetime]
    passed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("case_id", "staff_id", name="uq_case_offers_case_staff"),
    )


class RelayLink(Base):
    """A pair of message ids, the client's and the specialist's copy; never the content."""

    __tablename__ = "relay_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    client_message_id: Mapped[int] = mapped_column(BigInteger)
    staff_message_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_relay_links_staff_message", "staff_id", "staff_message_id"),
        Index("ix_relay_links_case", "case_id"),
    )


class Handover(Base):
    """A live case offered by its specialist (or a coordinator) to a colleague or to a role:
    the first colleague to take it continues. The note, if any, is copied, never stored;
    only the id of the message it is written under is kept."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    from_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    to_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    role: Mapped[str | None] = mapped_column(String(24))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    prompt_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    taken_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_handovers_case", "case_id"),)


class HandoverCard(Base):
    """A colleague's card for a handover: changed once someone takes it."""

    __tablename__ = "handover_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handovers.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_handover_cards_handover", "handover_id"),)


class Block(Base):
    """A sender a coordinator blocked: by the HMAC of the Telegram id (so /forget does not
    lift it), until a date. The sender still gets the emergency numbers; nothing of theirs
    reaches staff. Deleted when it expires."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_hmac: Mapped[bytes] = mapped_column(LargeBinary(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(16))
    until: Mapped[datetime]
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_blocks_chat_hmac", "chat_hmac"),)


class CoverageGap(Base):
    """A stretch with nobody of a role on duty, already told to the coordinators: they are
    told once per gap (until the next shift of the role begins, or a day without one)."""

    __tablename__ = "coverage_gaps"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    alerted_at: Mapped[datetime]
    until: Mapped[datetime | None]


class WaitingMessage(Base):
    """A message she sent while her request waited: its id only, to copy it to the
    specialist who takes the case (then the row goes). Dropped at quick exit."""

    __tablename__ = "waiting_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[datetime]

    __table_args__ = (Index("ix_waiting_messages_case", "case_id", "message_id"),)


class AuditEntry(Base):
    """Every staff action: who, what, which case. No client data in `detail`."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(32))  # "staff", "cli", "system"
    action: Mapped[str] = mapped_column(String(48))
    case_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class DueTime(Base):
    """A time something must happen (escalate, auto-delete, callback, purge).

    The JobQueue only triggers; whoever claims the row (setting `done_at` where it is
    still NULL) does the work, so a restart or a second worker neither loses nor repeats it.
    """

    __tablename__ = "due_times"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    ref_id: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    # A worker that claims the row holds it until then; a crash lets it run again after.
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)

    __table_args__ = (
        UniqueConstraint("kind", "ref_id", name="uq_due_times_kind_ref"),
        Index("ix_due_times_pending", "done_at", "due_at"),
    )


class ProcessedUpdate(Base):
    """Update ids already handled, so an update delivered twice is handled once."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_processed_updates_at", "at"),)


class KeyCheck(Base):
    """One row: an HMAC of a fixed label under the server key the database's ids are
    encrypted with, so a start with another key is refused instead of locking everyone out
    (`bot.core.keys.check`). `previous`: the key's check before the last rotation."""

    __tablename__ = "key_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[bytes] = mapped_column(LargeBinary(32))
    previous: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    set_at: Mapped[datetime]


__all__ = [
    "Appeal",
    "KeyCheck",
    "AuditEntry",
    "Base",
    "Case",
    "CaseOffer",
    "CaseStatus",
    "ChatMessage",
    "Client",
    "DueTime",
    "ProcessedUpdate",
    "RelayLink",
    "RosterShift",
    "Staff",
    "StaffRole",
    "Urgency",
]
