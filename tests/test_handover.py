"""Handover of a live case (issue 21 item 3): the specialist picks a colleague or a role,
may add a note (copied, never stored), the first colleague to take it continues, the client
is told another specialist continues, the audit log records it; coordinators can hand over
any case."""

from __future__ import annotations

from sqlalchemy import select

from bot.dev.harness import Harness
from models import AuditEntry, Handover
from tests.helpers import client_asks, t
from tests.test_quick_exit import press, send


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


async def test_a_psychologist_hands_over_to_the_lawyer_with_a_note(harness: Harness) -> None:
    nazira = await harness.add_staff("Nazira", ["psychologist"])
    aigul = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="psych", lang="en")
    await press(harness, nazira, s(harness, "btn_take"))
    await send(harness, nazira, "/handover")
    assert s(harness, "handover_ask", number=1) in nazira.last().plain()
    await press(harness, nazira, s(harness, "handover_to", name="Aigul",
                                   roles=s(harness, "role_lawyer")))
    prompt = nazira.last()
    assert prompt.plain().startswith(s(harness, "handover_offered", number=1,
                                       who="Aigul").split(".")[0])
    await nazira.send("Alimony and the passport he took; she is safe at her sister's.",
                      reply_to=prompt)
    await harness.settle()
    assert nazira.last().plain() == s(harness, "handover_note_sent", count=1)
    assert aigul.bot_messages()[-1].plain() == \
        "Alimony and the passport he took; she is safe at her sister's."
    assert s(harness, "handover_card", name="Nazira") in aigul.text()
    # Until someone takes it, the conversation stays with Nazira; the client hears nothing.
    assert t(harness, "en", "specialist_changed", role="lawyer") not in client.text()
    await send(harness, client, "Are you still there?")
    assert nazira.bot_messages()[-1].plain() == "Are you still there?"
    await press(harness, aigul, s(harness, "btn_take_over"))
    assert s(harness, "handover_taken_you", number=1) in aigul.text()
    assert nazira.last().plain() == s(harness, "handover_done", number=1, name="Aigul")
    assert client.bot_messages()[-1].plain() == t(harness, "en", "specialist_changed",
                                                  role="lawyer")
    await send(harness, client, "Thank you")
    assert aigul.bot_messages()[-1].plain() == "Thank you"
    assert "Thank you" not in nazira.text()
    await send(harness, nazira, "one more thing")
    assert nazira.last().plain() == s(harness, "no_active_case")
    assert "one more thing" not in client.text()
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
        handover = (await session.scalars(select(Handover))).one()
    assert "case.handover" in actions and "case.take_over" in actions
    assert not hasattr(handover, "note")  # the note's words are nowhere in the database


async def test_a_colleague_who_blocked_the_bot_does_not_stop_the_handover(
    harness: Harness,
) -> None:
    """Handed over to any lawyer: one of the two has since blocked the bot. When the other
    takes it, Nazira is told, and so is the client."""
    nazira = await harness.add_staff("Nazira", ["psychologist"])
    aigul = await harness.add_staff("Aigul", ["lawyer"])
    bermet = await harness.add_staff("Bermet", ["lawyer"])
    client = await client_asks(harness, category="psych", lang="en")
    await press(harness, nazira, s(harness, "btn_take"))
    await send(harness, nazira, "/handover")
    await press(harness, nazira, s(harness, "handover_to_role",
                                   role=s(harness, "role_lawyer")))
    assert s(harness, "handover_card", name="Nazira") in aigul.text()
    assert s(harness, "handover_card", name="Nazira") in bermet.text()
    # The one added first blocks the bot: her card is the first one changed.
    blocked, taker = (aigul, bermet) if aigul.user.id < bermet.user.id else (bermet, aigul)
    blocked.user.blocked_bot = True
    await press(harness, taker, s(harness, "btn_take_over"))
    await harness.settle()
    name = taker.user.first_name
    assert nazira.last().plain() == s(harness, "handover_done", number=1, name=name)
    assert client.bot_messages()[-1].plain() == t(harness, "en", "specialist_changed",
                                                  role="lawyer")


async def test_to_a_role_the_first_take_wins_and_a_coordinator_may_hand_over(
    harness: Harness,
) -> None:
    nazira = await harness.add_staff("Nazira", ["psychologist"])
    aigul = await harness.add_staff("Aigul", ["lawyer"])
    bermet = await harness.add_staff("Bermet", ["lawyer"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    await client_asks(harness, category="psych", lang="en")
    await press(harness, nazira, s(harness, "btn_take"))
    # The coordinator hands over Nazira's case, to any lawyer on duty.
    await send(harness, coordinator, "/handover 1")
    await press(harness, coordinator, s(harness, "handover_to_role",
                                        role=s(harness, "role_lawyer")))
    bermet_card = bermet.last()
    await press(harness, aigul, s(harness, "btn_take_over"))
    assert bermet_card.plain() == s(harness, "taken_by", number=1, name="Aigul") or \
        s(harness, "taken_by", number=1, name="Aigul") in bermet.text()
    # Bermet's old button: refused, Aigul keeps it.
    cq = await bermet.press_data(bermet_card, "s:ht:1")
    assert (await bermet.answered(cq))["text"] == s(harness, "already_taken", number=1,
                                                    name="Aigul")
    # Someone never offered it cannot take it with a forged button.
    cq = await nazira.press_data(nazira.last(), "s:ht:1")
    assert (await nazira.answered(cq))["text"] == s(harness, "not_allowed")
