"""Specialists end to end: cards, Take and Pass, escalation, the relay, closing, access."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.crypto import Crypto
from bot.core.db import create_engine, sessionmaker
from bot.core.migrate import upgrade
from bot.dev.emulator import Phone
from bot.dev.emulator.server import Fault
from bot.dev.harness import Harness
from bot.domain import cases as case_service
from bot.domain import staff as staff_service
from bot.telegram import scheduling
from handlers import client as client_handlers
from models import Appeal, AuditEntry, CaseOffer, CaseStatus, RelayLink
from tests.helpers import cases, client_asks, message_ids, t


def s(h: Harness, key: str, **values: object) -> str:
    """A staff text (staff read the center's default language)."""
    return t(h, None, key, **values)


def cards(phone: Phone, h: Harness) -> list[str]:
    take = s(h, "btn_take")
    return [m.plain() for m in phone.bot_messages() if take in phone.buttons(m)]


async def test_triage_card_take_relay_close_and_rating(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    client = await client_asks(harness, category="legal")
    # The card goes to the lawyer on duty, not to the psychologist.
    (card,) = cards(lawyer, harness)
    assert "#1" in card or "№1" in card
    assert cards(psychologist, harness) == []
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    assert t(harness, "en", "specialist_joined", role="lawyer") in client.text()
    # Text and a photo from her to the lawyer, copies without her account.
    await client.send("He took my passport")
    await harness.settle()
    await client.send_photo("his message")
    await harness.settle()
    copies = lawyer.bot_messages()[-2:]
    assert copies[0].plain() == "He took my passport"
    assert copies[1].media and copies[1].media["type"] == "photo"
    assert "forward_origin" not in str(harness.emulator.calls[-1])
    # The lawyer answers by replying, text and a photo.
    await lawyer.send("You can ask the police for the passport back.", reply_to=copies[0])
    await harness.settle()
    await lawyer.send_photo("a sample complaint")
    await harness.settle()
    answer, photo = client.bot_messages()[-2:]
    assert answer.plain() == "You can ask the police for the passport back."
    assert answer.reply_to is not None  # shown as an answer to her message
    assert photo.media and photo.media["type"] == "photo"
    # Only id pairs are kept, never the content.
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        links = (await session.scalars(select(RelayLink))).all()
    assert len(links) == 4
    # Close with the outcome; she rates the help.
    await lawyer.send("/close")
    await harness.settle()
    await lawyer.press(s(harness, "outcome_legal"))
    await harness.settle()
    assert t(harness, "en", "conversation_closed") in client.last().plain()
    await client.press("⭐⭐⭐⭐")
    await harness.settle()
    (case,) = await cases(harness)
    assert (case.status, case.outcome, case.rating) == (CaseStatus.CLOSED, "legal", 4)
    async with harness.app.bot_data.sessions() as session:
        appeal = await session.get(Appeal, case.appeal_id)
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert appeal is not None and appeal.outcome == "legal" and appeal.rating == 4
    assert appeal.minutes_to_reply == 0
    assert {"case.take", "case.close"} <= set(actions)
    # A second tap (here a forged one, on the thank-you screen) changes nothing; nor does
    # a rating of the case by her again, or by anyone else.
    await client.press_data(client.last(), "c:rate:1")
    await harness.settle()
    async with harness.app.bot_data.sessions() as session, session.begin():
        assert not await case_service.rate(session, case_id=case.id,
                                           client_id=case.client_id, rating=2)
        assert not await case_service.rate(session, case_id=case.id,
                                           client_id=case.client_id + 1, rating=1)
    (case,) = await cases(harness)
    async with harness.app.bot_data.sessions() as session:
        appeal = await session.get(Appeal, case.appeal_id)
    assert case.rating == 4 and appeal is not None and appeal.rating == 4


async def test_her_message_after_her_specialist_was_removed_is_not_lost_silently(
    harness: Harness,
) -> None:
    """Her specialist loses access mid-conversation: nothing more reaches the removed
    member, and she is told, in her language, that her message did not arrive."""
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    assert harness.app is not None
    data = harness.app.bot_data
    async with data.sessions() as session, session.begin():
        await staff_service.remove_staff(session, crypto=data.crypto, telegram_id=lawyer.id,
                                         now=data.clock.now())
    before = len(lawyer.bot_messages())
    await client.send("Are you still there?")
    await harness.settle()
    assert len(lawyer.bot_messages()) == before
    told = client.last()
    assert told.plain() == t(harness, "en", "relay_failed")
    assert told.message_id in await message_ids(harness)  # quick exit will delete it too


async def test_her_notice_and_the_spinner_do_not_wait_for_the_specialists_own_screen(
    harness: Harness,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal")
    # The lawyer's card hangs in Telegram for a while as she takes it.
    harness.emulator.faults.append(Fault("delay", method="editMessageText", seconds=3))
    take = s(harness, "btn_take")
    cq = await lawyer.press(take)
    joined = t(harness, "en", "specialist_joined", role="lawyer")
    await harness.emulator.wait_for(lambda: joined in client.text(), timeout=2.5)
    # She was told, and the lawyer's button stopped spinning, while the card still hung.
    assert take in " ".join(b for m in lawyer.bot_messages() for b in lawyer.buttons(m))
    assert cq in harness.emulator.callback_answers
    await harness.settle()
    assert all(take not in lawyer.buttons(m) for m in lawyer.bot_messages())
    assert lawyer.last().plain() == s(harness, "taken_you", number=1).replace("<b>", "") \
        .replace("</b>", "")


async def test_two_takes_at_once_leave_one_owner(harness: Harness) -> None:
    a = await harness.add_staff("Aigul", ["psychologist"])
    b = await harness.add_staff("Nazira", ["psychologist"])
    client = await client_asks(harness, category="psych")
    # Both see the case: one got the card, the other takes it from /queue.
    holder, other = (a, b) if cards(a, harness) else (b, a)
    await other.send("/queue")
    await harness.settle()
    take_first = holder.press(s(harness, "btn_take"))
    cq1 = await take_first
    cq2 = await other.press(s(harness, "btn_take_n", number=1))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.status == CaseStatus.ACTIVE
    answers = [harness.emulator.callback_answers[cq] for cq in (cq1, cq2)]
    refused = [x for x in answers if x.get("show_alert")]
    assert len(refused) == 1
    assert "Aigul" in refused[0]["text"] or "Nazira" in refused[0]["text"]
    assert client.text().count(t(harness, "en", "specialist_joined", role="psychologist")) == 1


async def test_unclaimed_case_escalates_then_goes_to_everyone(
    harness: Harness, clock: FakeClock
) -> None:
    first = await harness.add_staff("Aigul", ["lawyer"])
    second = await harness.add_staff("Bermet", ["lawyer"])
    psych = await harness.add_staff("Nazira", ["psychologist"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    await client_asks(harness, category="legal")
    got = [p for p in (first, second) if cards(p, harness)]
    assert len(got) == 1 and cards(psych, harness) == []
    assert harness.app is not None
    clock.advance(minutes=14)
    assert await scheduling.run_due(harness.app) == 0  # standard: 15 minutes
    clock.advance(minutes=2)
    assert await scheduling.run_due(harness.app) == 1
    await harness.settle()
    assert cards(first, harness) and cards(second, harness)  # the next lawyer
    assert cards(psych, harness) == [] and cards(coordinator, harness) == []
    clock.advance(minutes=16)
    assert await scheduling.run_due(harness.app) == 1
    # Then every specialist on duty and the coordinators.
    assert cards(psych, harness) and cards(coordinator, harness)


async def test_a_case_nobody_of_its_role_can_take_goes_to_everyone_at_once_and_once(
    harness: Harness, clock: FakeClock
) -> None:
    """No lawyer on duty: a legal request goes straight to every specialist on duty and the
    coordinators, and stays there (no later round sends the cards again)."""
    psych = await harness.add_staff("Nazira", ["psychologist"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    await client_asks(harness, category="legal")
    assert len(cards(psych, harness)) == 1 and len(cards(coordinator, harness)) == 1
    (case,) = await cases(harness)
    assert case.escalation_level == case_service.LEVEL_BROADCAST  # written, not just shown
    assert harness.app is not None
    clock.advance(hours=2)
    await scheduling.run_due(harness.app)  # whatever else is due by then (the purge)
    await harness.settle()
    assert len(cards(psych, harness)) == 1 and len(cards(coordinator, harness)) == 1


async def test_a_colleague_who_blocked_the_bot_does_not_keep_the_others_cards_open(
    harness: Harness,
) -> None:
    """Everyone on duty got the card; one of them has since blocked the bot. When another
    takes the case, every other colleague's card still says who took it (none is left
    with a Take button for a case that is gone), and what she wrote while she waited still
    reaches the one who took it."""
    first = await harness.add_staff("Aigul", ["psychologist"])
    second = await harness.add_staff("Bermet", ["psychologist"])
    taker = await harness.add_staff("Nazira", ["psychologist"])
    client = await client_asks(harness, category="legal")  # no lawyer: a card to all three
    assert all(len(cards(p, harness)) == 1 for p in (first, second, taker))
    await client.send("Is anyone there?")
    await harness.settle()
    first.user.blocked_bot = True
    await taker.press(s(harness, "btn_take"))
    await harness.settle()
    taken = s(harness, "taken_by", number=1, name="Nazira")
    assert cards(second, harness) == []
    assert any(m.plain() == taken for m in second.bot_messages())
    assert any(m.source and m.source[0] == client.id and m.text == "Is anyone there?"
               for m in taker.bot_messages())


async def _ask_while_offers_wait(h: Harness, monkeypatch: pytest.MonkeyPatch
                                 ) -> tuple[Phone, asyncio.Event]:
    """A chat-now request whose offer (the step after her answer) waits until the
    returned gate is set."""
    gate = asyncio.Event()
    offer = client_handlers._route_held

    async def late(*args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await offer(*args, **kwargs)

    monkeypatch.setattr(client_handlers, "_route_held", late)
    client = await client_asks(h, category="legal", send=False)
    await client.press(t(h, "en", "btn_send"))
    await h.emulator.wait_for(lambda: "#1" in client.text())  # her answer: request #1
    return client, gate


async def _offers(h: Harness) -> int:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CaseOffer)) or 0)


async def test_her_answer_does_not_wait_for_the_offer_and_the_offer_follows(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client, gate = await _ask_while_offers_wait(harness, monkeypatch)
    assert t(harness, "en", "case_sent_now", number=1) in client.text()
    assert cards(lawyer, harness) == []
    gate.set()
    await harness.settle()
    assert len(cards(lawyer, harness)) == 1


async def test_an_offer_that_failed_is_made_when_its_due_time_comes_and_once(
    harness: Harness, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offer after her answer fails (the database, the process): the due time written
    with her request routes it a few seconds later, and nothing routes it twice."""
    lawyer = await harness.add_staff("Aigul", ["lawyer"])

    async def broken(*args: Any, **kwargs: Any) -> case_service.RouteOutcome:
        raise OSError("disk I/O error")

    monkeypatch.setattr(case_service, "route_held", broken)
    await client_asks(harness, category="legal")
    assert cards(lawyer, harness) == []
    assert harness.app is not None
    clock.advance(seconds=case_service.ROUTE_GRACE.total_seconds() - 1)
    assert await scheduling.run_due(harness.app) == 0
    clock.advance(seconds=2)
    assert await scheduling.run_due(harness.app) == 1
    await harness.settle()
    assert len(cards(lawyer, harness)) == 1
    assert await scheduling.run_due(harness.app) == 0
    assert len(cards(lawyer, harness)) == 1


async def test_an_offer_late_behind_its_due_time_is_not_made_twice(
    harness: Harness, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offer after her answer comes late (a locked database): the due time has routed
    the case meanwhile, so the late offer sends nothing more."""
    first = await harness.add_staff("Aigul", ["lawyer"])
    second = await harness.add_staff("Bermet", ["lawyer"])
    _, gate = await _ask_while_offers_wait(harness, monkeypatch)
    assert harness.app is not None
    clock.advance(seconds=case_service.ROUTE_GRACE.total_seconds() + 1)
    assert await scheduling.run_due(harness.app) == 1
    await harness.emulator.wait_for(
        lambda: len(cards(first, harness)) + len(cards(second, harness)) == 1)
    gate.set()
    await harness.settle()
    assert len(cards(first, harness)) + len(cards(second, harness)) == 1
    assert await _offers(harness) == 1


async def test_a_request_withdrawn_before_its_offer_is_offered_to_nobody(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client, gate = await _ask_while_offers_wait(harness, monkeypatch)
    (case,) = await cases(harness)
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session, session.begin():
        await case_service.end_by_client(session, case=await session.merge(case),
                                         texts=harness.app.bot_data.texts,
                                         now=harness.clock.now())
    gate.set()
    await harness.settle()
    assert cards(lawyer, harness) == []
    assert await _offers(harness) == 0
    assert client.text()


async def test_pass_goes_to_the_next_person_at_once(harness: Harness) -> None:
    a = await harness.add_staff("Aigul", ["psychologist"])
    b = await harness.add_staff("Nazira", ["psychologist"])
    await client_asks(harness, category="psych")
    holder, other = (a, b) if cards(a, harness) else (b, a)
    assert cards(other, harness) == []
    await holder.press(s(harness, "btn_pass"))
    await harness.settle()
    assert len(cards(other, harness)) == 1


async def test_requests_of_a_busy_hour_are_shared_among_those_on_duty(harness: Harness) -> None:
    """A card nobody has answered yet counts as work: the next request goes to the other
    specialist, not to the same one again while the first waits for her."""
    a = await harness.add_staff("Aigul", ["psychologist"])
    b = await harness.add_staff("Nazira", ["psychologist"])
    await client_asks(harness, category="psych", name="First")
    await client_asks(harness, category="psych", name="Second")
    assert len(cards(a, harness)) == 1 and len(cards(b, harness)) == 1
    # Once she has taken hers, her case counts, and the card she passed on does not.
    holder, other = (a, b) if "№1" in cards(a, harness)[0] else (b, a)
    await holder.press(s(harness, "btn_take"))
    await harness.settle()
    await other.press(s(harness, "btn_pass"))
    await harness.settle()
    # Case 2 went on to the holder: she has case 1 and that card, the other nothing.
    await client_asks(harness, category="psych", name="Third")
    assert [c for c in cards(other, harness) if "№3" in c]
    assert not [c for c in cards(holder, harness) if "№3" in c]


async def test_pending_escalation_fires_after_a_restart_exactly_once(
    harness: Harness, clock: FakeClock
) -> None:
    first = await harness.add_staff("Aigul", ["lawyer"])
    second = await harness.add_staff("Bermet", ["lawyer"])
    await client_asks(harness, category="legal")
    await harness.kill_bot()
    clock.advance(minutes=20)
    app = await harness.start_bot()
    # The re-armed trigger and this call race for the same due time: one of them runs it.
    await scheduling.run_due(app)
    await harness.emulator.wait_for(
        lambda: len(cards(first, harness)) + len(cards(second, harness)) == 2)
    await harness.settle()
    assert await scheduling.run_due(app) == 0
    assert len(cards(first, harness)) == 1 and len(cards(second, harness)) == 1


async def test_nobody_on_duty_alerts_coordinators_and_tells_the_client(
    harness: Harness,
) -> None:
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    client = await client_asks(harness)
    assert "no specialist is on duty" in client.text()
    assert "+996 312 512640" in client.text()
    assert len(cards(coordinator, harness)) == 1


async def test_a_specialist_cannot_act_on_anothers_case_unless_coordinator(
    harness: Harness,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    other = await harness.add_staff("Bermet", ["psychologist"], on_duty=False)
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    await client_asks(harness)
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    await other.send("/close 1")
    (reply,) = await other.wait_reply()
    assert reply.plain() == s(harness, "not_your_case", number=1)
    # A forged close button does not work either.
    cq = await other.press_data(other.last(), "s:close:1:no_contact")
    assert (await other.answered(cq))["text"] == s(harness, "not_your_case", number=1)
    await coordinator.send("/close 1")
    await harness.settle()
    await coordinator.press(s(harness, "outcome_referral"))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.outcome == "referral"


async def test_staff_commands_need_the_role(harness: Harness) -> None:
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    await psychologist.send("/staff add 5 Someone admin")
    (reply,) = await psychologist.wait_reply()
    assert reply.plain() == s(harness, "not_allowed")
    admin = await harness.add_staff("Gulnara", ["admin"], on_duty=None)
    await admin.send(f"/staff remove {psychologist.id}")
    await harness.settle()
    # Removed: access ends at once, old buttons included.
    await psychologist.send("/queue")
    (reply,) = await psychologist.wait_reply()
    assert reply.plain() == t(harness, "ru", "not_staff")
    cq = await psychologist.press_data(psychologist.last(), "s:take:1")
    assert (await psychologist.answered(cq))["text"] == t(harness, "ru", "not_staff")


async def test_duty_command_and_queue(harness: Harness) -> None:
    member = await harness.add_staff("Aigul", ["lawyer"], on_duty=False)
    await client_asks(harness)
    await member.send("/duty on")
    replies = await member.wait_reply(2)
    assert replies[0].plain() == s(harness, "duty_on")
    assert "#1" in replies[1].plain() or "№1" in replies[1].plain()
    await member.send("/duty maybe")
    (reply,) = await member.wait_reply()
    assert reply.plain() == s(harness, "duty_usage")


async def test_callback_request_reaches_the_role_at_the_chosen_time_with_the_number(
    harness: Harness, clock: FakeClock
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    phone = harness.phone("Client", language_code="en")
    await phone.send("/start")
    await harness.settle()
    for label in ("I need help", "No, only me", "Skip", "Legal", "Skip", "Skip",
                  "Phone call at a safe time", "In 3 h"):
        await phone.press(label)
        await harness.settle()
    await phone.send("+996 700 111 222")
    await harness.settle()
    await phone.press("Yes, send")
    await harness.settle()
    assert cards(lawyer, harness) == []  # not before the safe time
    clock.advance(hours=3, minutes=1)
    assert harness.app is not None
    assert await scheduling.run_due(harness.app) >= 1  # the call (and the daily purge)
    await harness.settle()
    (card,) = cards(lawyer, harness)
    # The untaken card says when to call, not the number: that is for the taker only.
    assert "+996 700 111 222" not in card and "+996700111222" not in card
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    assert "+996 700 111 222" in lawyer.text()
    # She is not written to: she asked for a call.
    assert "joined" not in phone.text()
    await lawyer.press(s(harness, "btn_no_answer"))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.status == CaseStatus.WAITING and case.owner_id is None


async def test_roster_decides_who_is_on_duty_across_midnight(tmp_path: object) -> None:
    settings = Settings.model_validate({
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/r.db"},
        "roster": [
            {"member": "Night", "role": "psychologist", "days": ["sun"], "start": "20:00:00",
             "end": "08:00:00"},
            {"member": "Day", "role": "lawyer", "days": ["mon", "tue", "wed", "thu", "fri"],
             "start": "09:00:00", "end": "18:00:00"},
        ],
    })
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    sessions = sessionmaker(engine)
    crypto = Crypto("r" * 40)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with sessions() as session, session.begin():
        await staff_service.upsert_staff(session, crypto=crypto, telegram_id=1, name="Night",
                                         roles=["psychologist"], now=now)
        day = (await staff_service.upsert_staff(session, crypto=crypto, telegram_id=2,
                                                name="Day", roles=["lawyer"], now=now)).member
        assert await staff_service.sync_roster(session, settings=settings) == 6

    async def names(local: str) -> set[str]:
        when = datetime.fromisoformat(local + "+06:00")
        async with sessions() as session:
            return {m.name for m in await staff_service.on_duty(session, settings=settings,
                                                                now=when)}

    assert await names("2026-11-29T21:00") == {"Night"}  # Sunday night
    assert await names("2026-11-30T02:00") == {"Night"}  # Monday small hours
    assert await names("2026-11-30T08:30") == set()
    assert await names("2026-11-30T10:00") == {"Day"}
    assert await names("2026-11-28T10:00") == set()  # Saturday
    async with sessions() as session, session.begin():
        member = await session.get(type(day), day.id)
        assert member is not None
        member.duty_override = False
    assert await names("2026-11-30T10:00") == set()  # /duty off beats the roster
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
    assert count == 2  # both additions audited
    await engine.dispose()


async def test_several_cases_replies_and_switching_the_current_case(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    first = await client_asks(harness)
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    second = await client_asks(harness, name="Second")
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    await first.send("from the first")
    await harness.settle()
    from_first = lawyer.bot_messages()[-1]
    # Plain messages go to the current case (the newest taken: the second client).
    await lawyer.send("to whoever is current")
    await harness.settle()
    assert second.bot_messages()[-1].plain() == "to whoever is current"
    # A reply goes to the client of the replied-to message.
    await lawyer.send("answer to the first", reply_to=from_first)
    await harness.settle()
    assert first.bot_messages()[-1].plain() == "answer to the first"
    # /cases lists both and switches the current one.
    await lawyer.send("/cases")
    (listing,) = await lawyer.wait_reply()
    assert len(listing.buttons) == 2
    await lawyer.press(s(harness, "btn_use_n", number=1))
    await harness.settle()
    await lawyer.send("now to the first")
    await harness.settle()
    assert first.bot_messages()[-1].plain() == "now to the first"


async def test_the_client_can_end_the_conversation(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness)
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    await client.press(t(harness, "en", "btn_end"))
    await harness.settle()
    assert t(harness, "en", "conversation_closed") in client.last().plain()
    assert s(harness, "client_ended", number=1) in lawyer.text()
    await lawyer.press(s(harness, "outcome_psych"))
    await harness.settle()
    (case,) = await cases(harness)
    assert (case.status, case.outcome) == (CaseStatus.CLOSED, "psych")
    # Her later words no longer reach the specialist.
    await client.send("hello?")
    await harness.settle()
    assert lawyer.bot_messages()[-1].plain() != "hello?"


async def test_a_shift_start_message_tells_what_waits(db_url: str, clock: FakeClock) -> None:
    # Monday 08:55 in Bishkek; the shift starts at 09:00.
    clock.set(datetime(2026, 11, 30, 2, 55, tzinfo=UTC))
    h = Harness(db_url, clock=clock, roster=[
        {"member": "Aigul", "role": "lawyer", "days": ["mon"], "start": "09:00:00",
         "end": "18:00:00"}])
    await h.start()
    try:
        lawyer = await h.add_staff("Aigul", ["lawyer"], on_duty=None)
        await client_asks(h)  # nobody on duty yet: it waits
        await h.stop_bot()
        app = await h.start_bot()  # the roster is loaded at start
        clock.advance(minutes=6)
        await scheduling.run_due(app)
        await h.settle()
        assert s(h, "shift_start", count=1) in lawyer.text()
    finally:
        await h.stop()


async def test_the_specialist_learns_when_her_client_erases_herself(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness)
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    await client.send("/forget")
    await harness.settle()
    await client.press(t(harness, "en", "btn_forget_yes"))
    await harness.settle()
    assert lawyer.last().plain() == s(harness, "client_left", number=1)
    (case,) = await cases(harness)
    assert case.status == CaseStatus.CLOSED and case.client_id is None


async def test_staff_add_again_changes_name_and_roles_and_names_stay_unique(
    harness: Harness,
) -> None:
    """The admin runs `/staff add` for someone already there (to give her a second role):
    she is updated, told so, and nothing breaks; a second "Aigul" is refused."""
    admin = await harness.add_staff("Gulnara", ["admin"], on_duty=None)
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    await admin.send(f"/staff add {lawyer.id} Aigul K. lawyer,psychologist")
    (reply,) = await admin.wait_reply()
    assert reply.plain() == s(harness, "staff_updated", name="Aigul K.")
    await admin.send("/staff add 777 aigul k. lawyer")
    (reply,) = await admin.wait_reply()
    assert "already called" in reply.plain()
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        members = await staff_service.list_staff(session)
    assert sorted((m.name, ",".join(sorted(m.role_names))) for m in members) == [
        ("Aigul K.", "lawyer,psychologist"), ("Gulnara", "admin")]


async def test_staff_find_their_way_menus_help_and_duty_by_role(harness: Harness) -> None:
    """A new lawyer, added in Telegram by the admin: her own command menu at once, /help
    with her commands only, /duty alone says where she stands; removed, she has the
    client's menu again. A restart gives every member her menu."""
    admin = await harness.add_staff("Gulnara", ["admin"], on_duty=None)
    lawyer = harness.phone("Aigul")
    assert harness.emulator.menu_for(lawyer.id, "ru")[0] == "exit"  # the client's menu
    await admin.send(f"/staff add {lawyer.id} Aigul lawyer")
    await harness.settle()
    menu = harness.emulator.menu_for(lawyer.id, "ru")
    assert menu == ["duty", "queue", "cases", "reply", "handover", "close", "log", "codeword",
                    "roster", "help", "id"]
    await lawyer.send("/help")
    (reply,) = await lawyer.wait_reply()
    assert "/duty" in reply.plain() and "/codeword" in reply.plain()
    assert "/staff" not in reply.plain() and "/export" not in reply.plain()
    await admin.send("/help")
    (reply,) = await admin.wait_reply()
    assert "/staff" in reply.plain() and "/close" not in reply.plain()
    await lawyer.send("/duty")
    (reply,) = await lawyer.wait_reply()
    assert reply.plain() == s(harness, "duty_now_off", source=s(harness, "duty_by_roster"))
    await lawyer.send("/duty on")
    await harness.settle()
    await lawyer.send("/duty")
    (reply,) = await lawyer.wait_reply()
    assert reply.plain() == s(harness, "duty_now_on", source=s(harness, "duty_by_you"))
    await admin.send(f"/staff remove {lawyer.id}")
    await harness.settle()
    assert harness.emulator.menu_for(lawyer.id, "ru")[0] == "exit"
    # Added outside Telegram (the command line): her menu comes with the next start.
    coordinator = await harness.add_staff("Nazira", ["coordinator"], on_duty=None)
    await harness.stop_bot()
    await harness.start_bot()
    assert "stats" in harness.emulator.menu_for(coordinator.id, "ru")
    assert "staff" in harness.emulator.menu_for(admin.id, "ru")


async def test_roles_as_the_threat_model_says_and_every_view_audited(harness: Harness) -> None:
    """A psychologist cannot take a lawyer's client with a forged button; an admin (not a
    coordinator) cannot close a colleague's conversation; /queue, /cases, /staff list are
    in the audit log."""
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    admin = await harness.add_staff("Gulnara", ["admin"], on_duty=None)
    await client_asks(harness, category="legal", lang="en")
    await psychologist.send("/help")
    await psychologist.wait_reply()
    cq = await psychologist.press_data(psychologist.last(), "s:take:1")
    assert (await psychologist.answered(cq))["text"] == s(harness, "not_allowed")
    (case,) = await cases(harness)
    assert case.status == CaseStatus.WAITING
    await lawyer.press(s(harness, "btn_take"))
    await harness.settle()
    await admin.send("/close 1")
    (reply,) = await admin.wait_reply()
    assert reply.plain() == s(harness, "not_your_case", number=1)
    for phone, command in ((lawyer, "/queue"), (lawyer, "/cases"), (admin, "/staff list")):
        await phone.send(command)
        await harness.settle()
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        actions = set((await session.scalars(select(AuditEntry.action))).all())
    assert {"view.queue", "view.cases", "view.staff"} <= actions
