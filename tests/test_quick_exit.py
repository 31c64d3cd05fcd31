"""The phone in his hands: after quick exit, whoever holds her phone sees nothing of her case,
nothing reaches her chat that she did not choose, and she comes back with her code word.

Every test runs the real bot over HTTP against the emulator, as a client, a specialist and
the person who picks up her phone after she pressed quick exit would.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.core.clock import FakeClock
from bot.dev.emulator import Phone
from bot.dev.emulator.server import Fault
from bot.dev.harness import Harness
from bot.domain import code_word
from bot.telegram import scheduling
from models import Appeal, Case, CaseStatus, ChatMessage, Client, DueTime
from tests.helpers import cases, client_asks, clients, t

WORD = "sunflower"


def s(h: Harness, key: str, **values: object) -> str:
    """A staff text (staff read the center's default language)."""
    return t(h, None, key, **values)


def before_time(h: Harness, key: str, **values: object) -> str:
    """A staff text up to the time it names (the time is the test's own)."""
    return s(h, key, time="\x00", **values).split("\x00")[0]


def cards(phone: Phone, h: Harness) -> list[str]:
    take = s(h, "btn_take")
    return [m.plain() for m in phone.bot_messages() if take in phone.buttons(m)]


async def press(h: Harness, phone: Phone, *labels: str) -> None:
    for label in labels:
        await phone.press(label)
        await h.settle()


async def send(h: Harness, phone: Phone, text: str) -> None:
    await phone.send(text)
    await h.settle()


async def in_conversation(h: Harness, *, word: str | None = WORD) -> tuple[Phone, Phone]:
    """A client talking with a lawyer, with her code word chosen when he joined."""
    lawyer = await h.add_staff("Aigul", ["lawyer"])
    client = await client_asks(h, category="legal", lang="en")
    await press(h, lawyer, s(h, "btn_take"))
    assert t(h, "en", "specialist_joined", role="lawyer") in client.text()
    if word is not None:
        await press(h, client, t(h, "en", "btn_code_word"))
        await send(h, client, word)
        assert t(h, "en", "code_word_saved").split(",")[0] in client.text()
    await send(h, client, "He took my passport")
    assert lawyer.bot_messages()[-1].plain() == "He took my passport"
    return client, lawyer


async def later(h: Harness, clock: FakeClock, **delta: float) -> None:
    """Time passes: whatever falls due meanwhile runs."""
    clock.advance(**delta)
    assert h.app is not None
    await scheduling.run_due(h.app)
    await h.settle()


def only_the_neutral_word(h: Harness, phone: Phone) -> bool:
    return [m.plain() for m in phone.messages()] == [t(h, "en", "exit_done")]


async def quick_exit(h: Harness, phone: Phone) -> None:
    await press(h, phone, t(h, "en", "btn_exit"))
    assert [m.plain() for m in phone.messages()] == [t(h, "en", "exit_done")]


async def ask_for_later(h: Harness, *, call: bool, slot: str = "slot_in_hours",
                        phone_number: str = "+996 700 111 222") -> Phone:
    phone = h.phone("Client", language_code="en")
    await send(h, phone, "/start")
    await press(h, phone, t(h, "en", "btn_danger_no"), t(h, "en", "btn_safe_private"),
                t(h, "en", "btn_skip"), t(h, "en", "cat_legal"), t(h, "en", "btn_skip"),
                t(h, "en", "btn_skip"),
                t(h, "en", "contact_call_later" if call else "contact_chat_later"),
                t(h, "en", slot, hours=3))
    if call:
        await send(h, phone, phone_number)
    await press(h, phone, t(h, "en", "btn_send"))
    return phone


async def ask_again(h: Harness, phone: Phone) -> None:
    """A chat request from /start, the way anyone new makes it (the safety question and
    the rest skipped): after quick exit that is what whoever holds her phone sees."""
    await send(h, phone, "/start")
    await press(h, phone, t(h, "en", "btn_danger_no"), t(h, "en", "btn_skip"),
                t(h, "en", "btn_skip"), t(h, "en", "cat_legal"), t(h, "en", "btn_skip"),
                t(h, "en", "btn_skip"), t(h, "en", "contact_chat_now"), t(h, "en", "btn_send"))


async def test_the_specialist_is_told_and_what_she_writes_is_not_delivered(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    # Told at once, in one message, that someone may be reading her phone.
    assert lawyer.bot_messages()[-1].plain() == s(harness, "paused_notice", number=1)
    (case,) = await cases(harness)
    assert (case.status, case.paused_from) == (CaseStatus.PAUSED, CaseStatus.ACTIVE)
    await send(harness, lawyer, "Did you manage to get to the police station?")
    # Nothing reaches her chat; the lawyer is told, per message.
    assert only_the_neutral_word(harness, client)
    assert lawyer.bot_messages()[-1].plain() == s(harness, "not_delivered_paused", number=1)
    # A restart changes none of it: the pause is in the database.
    await harness.stop_bot()
    await harness.start_bot()
    await send(harness, lawyer, "Are you safe?")
    assert only_the_neutral_word(harness, client)
    assert "Are you safe?" not in client.text()


async def test_whoever_holds_her_phone_starts_afresh_and_reaches_nobody(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    seen_by_lawyer = len(lawyer.bot_messages())
    await send(harness, client, "who is this?")
    await client.send_photo("what is this")
    await harness.settle()
    assert len(lawyer.bot_messages()) == seen_by_lawyer  # nothing relayed
    await send(harness, client, "/start")
    # The greeting as to anyone new: no case number, no specialist, nothing of before.
    assert t(harness, "en", "home").splitlines()[0] in client.last().plain()
    visible = client.text()
    for earlier in ("#1", "lawyer", "passport", t(harness, "en", "waiting")):
        assert earlier not in visible
    # "I need help" walks the triage again; sending it is a new case, not "already with us".
    await press(harness, client, t(harness, "en", "btn_danger_no"))
    await press(harness, client, t(harness, "en", "btn_skip"), t(harness, "en", "btn_skip"),
                t(harness, "en", "cat_legal"), t(harness, "en", "btn_skip"),
                t(harness, "en", "btn_skip"), t(harness, "en", "contact_chat_now"),
                t(harness, "en", "btn_send"))
    assert "#2" in client.last().plain() and "#1" not in client.text()
    first, second = await cases(harness)
    assert first.status == CaseStatus.PAUSED and second.status == CaseStatus.WAITING
    # Its card tells the specialist, and only the specialist, of the paused case.
    (card,) = cards(lawyer, harness)
    assert s(harness, "card_title", number=2, urgency="").strip(" ·") in card
    assert before_time(harness, "card_after_exit", number=1) in card
    assert second.after_exit_case_id == 1


async def test_the_code_word_brings_her_back_and_nothing_is_replayed(harness: Harness) -> None:
    client, lawyer = await in_conversation(harness)
    # The word did not stay in her chat, and it is stored only as an HMAC.
    assert WORD not in client.text()
    (record,) = await clients(harness)
    assert record.code_word_hmac is not None and WORD.encode() not in record.code_word_hmac
    await quick_exit(harness, client)
    await send(harness, lawyer, "Did you manage to get to the police station?")
    await send(harness, client, "  Sunflower ")
    # Back in the conversation; the lawyer is told; the undelivered message is not replayed.
    assert client.last().plain() == t(harness, "en", "back_in_conversation", role="lawyer")
    assert "police station" not in client.text()
    assert WORD not in client.text().lower()  # her message with the word is deleted
    assert lawyer.bot_messages()[-1].plain() == s(harness, "client_back", number=1)
    assert all("unflower" not in m.plain() for m in lawyer.bot_messages())  # never relayed
    (case,) = await cases(harness)
    assert case.status == CaseStatus.ACTIVE and case.paused_at is None
    # The relay works again, both ways.
    await send(harness, client, "I am back")
    assert lawyer.bot_messages()[-1].plain() == "I am back"
    await send(harness, lawyer, "Glad you are safe")
    assert client.last().plain() == "Glad you are safe"


async def test_a_wrong_word_does_nothing_and_the_sixth_wrong_try_in_a_day_is_refused(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    before = len(lawyer.bot_messages())
    for guess in ("password", "kitten", "help", "bishkek", "aigerim"):
        await send(harness, client, guess)
        # Answered as anyone new would be: nothing tells that a code word exists.
        assert client.last().plain() in (t(harness, "en", "home"),) or \
            t(harness, "en", "home").splitlines()[0] in client.last().plain()
    assert len(lawyer.bot_messages()) == before
    (case,) = await cases(harness)
    assert case.status == CaseStatus.PAUSED
    # The sixth try, even with the right word, is refused: the word is locked.
    await send(harness, client, WORD)
    (case,) = await cases(harness)
    assert case.status == CaseStatus.PAUSED
    assert t(harness, "en", "back_in_conversation", role="lawyer") not in client.text()
    # Still locked the next day, until a specialist resets it.
    clock.advance(days=1)
    await send(harness, client, WORD)
    (case,) = await cases(harness)
    assert case.status == CaseStatus.PAUSED
    await send(harness, lawyer, "/codeword 1")
    assert lawyer.bot_messages()[-1].plain() == s(harness, "code_word_reset_done", number=1)
    await send(harness, client, WORD)
    (case,) = await cases(harness)
    assert case.status == CaseStatus.ACTIVE


async def test_wrong_tries_on_different_days_do_not_add_up(harness: Harness,
                                                           clock: FakeClock) -> None:
    client, _ = await in_conversation(harness)
    await quick_exit(harness, client)
    for _ in range(code_word.MAX_FAILS_A_DAY - 1):
        await send(harness, client, "wrong")
    clock.advance(days=1)
    await send(harness, client, "wrong")
    await send(harness, client, WORD)
    (case,) = await cases(harness)
    assert case.status == CaseStatus.ACTIVE


async def test_a_waiting_case_exited_then_taken_sends_nothing_to_her(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=False)
    client = await client_asks(harness, category="legal", lang="en")
    assert len(cards(lawyer, harness)) == 1
    await quick_exit(harness, client)
    # The card holder is told, and the card shows it.
    assert lawyer.bot_messages()[-1].plain() == s(harness, "paused_notice", number=1)
    (card,) = cards(lawyer, harness)
    assert before_time(harness, "card_paused") in card
    # A paused chat does not escalate: nobody else is asked to start it.
    assert harness.app is not None
    harness.clock.advance(minutes=30)  # type: ignore[attr-defined]
    await scheduling.run_due(harness.app)
    await harness.settle()
    assert cards(coordinator, harness) == []
    await press(harness, lawyer, s(harness, "btn_take"))
    assert lawyer.bot_messages()[-1].plain() == s(harness, "taken_paused", number=1)
    assert only_the_neutral_word(harness, client)
    # Closed with an outcome: still nothing to her, no rating.
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_no_contact"))
    (case,) = await cases(harness)
    assert (case.status, case.outcome) == (CaseStatus.CLOSED, "no_contact")
    assert only_the_neutral_word(harness, client)


async def exited_before_its_time(h: Harness, clock: FakeClock, *,
                                 call: bool) -> tuple[Phone, Phone]:
    """A lawyer on duty; a request for later, left with quick exit; then its time comes."""
    lawyer = await h.add_staff("Aigul", ["lawyer"])
    client = await ask_for_later(h, call=call)
    await quick_exit(h, client)
    await later(h, clock, hours=3, minutes=1)
    return client, lawyer


async def test_a_safe_time_chat_exited_before_its_time_is_not_started(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await exited_before_its_time(harness, clock, call=False)
    assert cards(lawyer, harness) == []
    assert only_the_neutral_word(harness, client)


async def test_a_call_exited_before_its_time_still_reaches_the_role_flagged(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await exited_before_its_time(harness, clock, call=True)
    (card,) = cards(lawyer, harness)
    assert before_time(harness, "card_paused_call") in card
    assert "+996 700 111 222" not in card  # not before Take
    await press(harness, lawyer, s(harness, "btn_take"))
    assert "+996 700 111 222" in lawyer.text()  # the specialist decides
    await press(harness, lawyer, s(harness, "btn_called"), s(harness, "outcome_legal"))
    # No chat message of any kind: she asked for a call.
    assert only_the_neutral_word(harness, client)
    # And her number leaves the card once the case is closed.
    assert "+996 700 111 222" not in lawyer.text()


async def test_a_phone_call_client_gets_no_rating_and_no_chat_message(
    harness: Harness, clock: FakeClock,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await ask_for_later(harness, call=True)
    shown = len(client.messages())
    await later(harness, clock, hours=3, minutes=1)
    await press(harness, lawyer, s(harness, "btn_take"), s(harness, "btn_called"),
                s(harness, "outcome_legal"))
    assert len(client.messages()) == shown
    assert t(harness, "en", "conversation_closed") not in client.text()
    assert "⭐" not in " ".join(b for m in client.messages() for b in client.buttons(m))


async def test_the_number_is_on_no_untaken_card_and_on_the_takers(
    harness: Harness, clock: FakeClock,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    other = await harness.add_staff("Bermet", ["lawyer"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator", "admin"], on_duty=False)
    await ask_for_later(harness, call=True)
    await later(harness, clock, hours=3, minutes=1)
    # Nobody takes it: the next lawyer, then everyone and the coordinator get the card.
    for _ in range(3):
        clock.advance(minutes=20)
        await scheduling.run_due(harness.app)
        await harness.settle()
    everyone = [lawyer, other, coordinator]
    assert all(cards(p, harness) for p in everyone)
    for phone in everyone:
        assert "700 111 222" not in phone.text() and "700111222" not in phone.text()
    await press(harness, other, s(harness, "btn_take"))
    assert "+996 700 111 222" in other.text()
    assert "700 111 222" not in lawyer.text() and "700 111 222" not in coordinator.text()


async def test_someone_elses_contact_card_is_not_taken_as_her_number(harness: Harness) -> None:
    phone = harness.phone("Client", language_code="en")
    await send(harness, phone, "/start")
    await press(harness, phone, t(harness, "en", "btn_danger_no"),
                t(harness, "en", "btn_safe_private"), t(harness, "en", "btn_skip"),
                t(harness, "en", "cat_legal"), t(harness, "en", "btn_skip"),
                t(harness, "en", "btn_skip"), t(harness, "en", "contact_call_later"),
                t(harness, "en", "slot_in_hours", hours=3))
    await phone.send_contact("+996 555 000 111", own=False, user_id=777)
    await harness.settle()
    assert t(harness, "en", "phone_not_yours") in phone.text()
    (record,) = await clients(harness)
    assert record.step == "t_phone" and "phone" not in record.step_data
    # Her own card is accepted.
    await phone.send_contact("+996 555 222 333")
    await harness.settle()
    (record,) = await clients(harness)
    assert record.step == "t_confirm" and record.step_data.get("phone")


async def test_45_fast_messages_then_quick_exit_leave_only_the_neutral_word(
    harness: Harness,
) -> None:
    phone = harness.phone("Client", language_code="en")
    await send(harness, phone, "/start")
    assert harness.settings is not None
    assert harness.settings.limits.messages_per_minute < 45  # the flood guard drops some
    for i in range(45):
        await phone.send(f"message {i}")
    await harness.settle()
    assert t(harness, "en", "slow_down") in phone.text()
    await quick_exit(harness, phone)
    assert len(phone.messages()) == 1


async def test_a_failed_deletion_is_retried_and_a_refused_batch_deleted_one_by_one(
    harness: Harness, clock: FakeClock,
) -> None:
    client, _ = await in_conversation(harness)
    # Telegram fails the batch (5xx) through every retry of the transport: she is still
    # told "Done.", and the ids are kept for the next try (with those swept after it).
    harness.emulator.faults.append(Fault("500", method="deleteMessages", times=5))
    await press(harness, client, t(harness, "en", "btn_exit"))
    assert client.last().plain() == t(harness, "en", "exit_done")
    assert len(client.messages()) > 1
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        kept = (await session.scalars(select(ChatMessage.tries))).all()
        due = (await session.scalars(select(DueTime.kind).where(
            DueTime.done_at.is_(None)))).all()
    assert kept and max(kept) >= 1 and "redelete" in due
    # The retry, a few seconds later, goes through.
    clock.advance(seconds=6)
    await scheduling.run_due(harness.app)
    await harness.settle()
    assert only_the_neutral_word(harness, client)
    # deleteMessages refused as a whole: each message is deleted by itself.
    await send(harness, client, "/start")
    await send(harness, client, "hello")
    harness.emulator.faults.append(Fault("400", method="deleteMessages", times=5))
    calls = len(harness.emulator.calls)
    await press(harness, client, t(harness, "en", "btn_exit"))
    assert only_the_neutral_word(harness, client)
    methods = [method for method, _ in harness.emulator.calls[calls:]]
    assert "deleteMessage" in methods


async def while_a_reply_is_on_its_way(h: Harness, client: Phone, lawyer: Phone,
                                      button: str) -> None:
    """The lawyer's answer is on its way (Telegram is slow) when she taps `button`."""
    h.emulator.faults.append(Fault("delay", method="copyMessage", seconds=1.5))
    await lawyer.send("Here is what you can do next")
    await asyncio.sleep(0.3)
    await press(h, client, t(h, "en", button))
    await asyncio.sleep(2)
    await h.settle()


async def test_after_forget_a_reply_in_flight_is_gone(harness: Harness) -> None:
    client, lawyer = await in_conversation(harness, word=None)
    await send(harness, client, "/forget")
    await while_a_reply_is_on_its_way(harness, client, lawyer, "btn_forget_yes")
    assert [m.plain() for m in client.messages()] == [t(harness, "en", "forget_done")]
    assert "what you can do next" not in client.text()


async def test_a_reply_in_flight_at_quick_exit_is_gone(harness: Harness) -> None:
    client, lawyer = await in_conversation(harness)
    await while_a_reply_is_on_its_way(harness, client, lawyer, "btn_exit")
    assert only_the_neutral_word(harness, client)
    assert lawyer.bot_messages()[-1].plain() == s(harness, "not_delivered_paused", number=1)


async def test_every_screen_after_yes_send_has_the_exit_button(harness: Harness) -> None:
    await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    assert t(harness, "en", "btn_exit") in client.buttons(client.last())
    await send(harness, client, "hello?")
    assert t(harness, "en", "btn_exit") in client.buttons(client.last())
    # The emergency path too: the waiting screen and every notice after it.
    other = harness.phone("Other", language_code="en")
    await send(harness, other, "/start")
    await press(harness, other, t(harness, "en", "btn_danger_yes"),
                t(harness, "en", "btn_write_yes"))
    for message in other.bot_messages()[-2:]:
        assert t(harness, "en", "btn_exit") in other.buttons(message)


async def test_forget_closes_paused_cases_and_unlinks_her_appeals(harness: Harness) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    await send(harness, client, "/start")
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session:
        (before,) = (await session.scalars(select(Appeal.person))).all()
    await send(harness, client, "/forget")
    await press(harness, client, t(harness, "en", "btn_forget_yes"))
    (case,) = await cases(harness)
    assert (case.status, case.outcome, case.client_id) == (CaseStatus.CLOSED, "client_left",
                                                         None)
    async with harness.app.bot_data.sessions() as session:
        (appeal,) = (await session.scalars(select(Appeal))).all()
        left = (await session.scalars(select(Client))).all()
    assert appeal.outcome == "client_left"
    assert appeal.person != before and 0 <= appeal.person < 2 ** 63
    assert left == []
    assert lawyer.bot_messages()[-1].plain() == s(harness, "client_left", number=1)


async def test_the_paused_state_is_kept_across_a_restart_and_can_be_purged(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    await harness.kill_bot()
    await harness.start_bot()
    (case,) = await cases(harness)
    assert case.status == CaseStatus.PAUSED
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_no_contact"))
    assert only_the_neutral_word(harness, client)
    assert harness.app is not None
    from bot.domain import retention
    clock.advance(days=harness.app.bot_data.settings.retention.days_after_close + 1)
    async with harness.app.bot_data.sessions() as session, session.begin():
        await retention.purge(session, settings=harness.app.bot_data.settings,
                              now=clock.now())
    async with harness.app.bot_data.sessions() as session:
        purged = await session.get(Case, 1)
    assert purged is not None and purged.client_id is None and purged.purged_at is not None


async def test_the_code_word_is_never_relayed_whatever_her_step(harness: Harness) -> None:
    """The emergency path: the psychologist joins while she is still asked her region; the
    code word offered on that notice works, and the word itself never reaches anyone."""
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    client = harness.phone("Client", language_code="en")
    await send(harness, client, "/start")
    await press(harness, client, t(harness, "en", "btn_danger_yes"),
                t(harness, "en", "btn_write_yes"), t(harness, "en", "btn_safe_private"))
    await press(harness, psychologist, s(harness, "btn_take"))
    joined = client.find_button(t(harness, "en", "btn_code_word"))[0]
    await client.press(t(harness, "en", "btn_code_word"), message=joined)
    await harness.settle()
    assert client.last().plain() == t(harness, "en", "code_word_ask")
    await send(harness, client, WORD)
    assert all(WORD not in m.plain().lower() for m in psychologist.bot_messages())
    # Typed again in the conversation: kept back, not relayed, and answered as any relayed
    # message is (not at all).
    seen = len(client.bot_messages())
    await send(harness, client, WORD.upper())
    assert len(client.bot_messages()) == seen
    assert all(WORD not in m.plain().lower() for m in psychologist.bot_messages())


async def test_a_word_chosen_after_her_exit_does_not_bring_back_her_case(
    harness: Harness, clock: FakeClock,
) -> None:
    """He picks up her phone, makes a request of his own and chooses a code word on its
    screen: it is a word for his request, never a key to the case she left."""
    client, lawyer = await in_conversation(harness, word=None)
    await quick_exit(harness, client)
    clock.advance(minutes=5)
    await send(harness, client, "/start")
    await press(harness, client, t(harness, "en", "btn_danger_yes"),
                t(harness, "en", "btn_write_yes"), t(harness, "en", "btn_skip"),
                t(harness, "en", "btn_code_word"))
    await send(harness, client, "mine")
    await send(harness, client, "mine")
    first, second = await cases(harness)
    assert first.status == CaseStatus.PAUSED
    assert t(harness, "en", "back_in_conversation", role="lawyer") not in client.text()
    assert s(harness, "client_back", number=1) not in [m.plain() for m in lawyer.bot_messages()]


async def test_a_code_word_in_a_photo_caption_is_not_relayed(harness: Harness) -> None:
    client, lawyer = await in_conversation(harness)
    seen = len(client.bot_messages())
    await client.send_photo(WORD)
    await harness.settle()
    assert all(m.media is None or WORD not in (m.plain() or "") for m in
               lawyer.bot_messages()[-1:])
    assert lawyer.bot_messages()[-1].plain() == "He took my passport"
    assert len(client.bot_messages()) == seen  # nothing answered it


async def test_forget_takes_her_number_off_the_call_card(
    harness: Harness, clock: FakeClock,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await ask_for_later(harness, call=True)
    await later(harness, clock, hours=3, minutes=1)
    await press(harness, lawyer, s(harness, "btn_take"))
    assert "+996 700 111 222" in lawyer.text()
    await send(harness, client, "/forget")
    await press(harness, client, t(harness, "en", "btn_forget_yes"))
    assert "700 111 222" not in lawyer.text()
    assert lawyer.bot_messages()[-1].plain() == s(harness, "client_left", number=1)


async def test_forget_while_deletions_fail_finishes_them_later_then_drops_the_record(
    harness: Harness, clock: FakeClock,
) -> None:
    client, _ = await in_conversation(harness, word=None)
    await send(harness, client, "/forget")
    harness.emulator.faults.append(Fault("500", method="deleteMessages", times=5))
    await press(harness, client, t(harness, "en", "btn_forget_yes"))
    assert len(client.messages()) > 1
    (record,) = await clients(harness)
    assert record.erased and record.language is None and record.code_word_hmac is None
    await later(harness, clock, seconds=6)
    assert [m.plain() for m in client.messages()] == [t(harness, "en", "forget_done")]
    assert await clients(harness) == []


async def test_copies_telegram_applied_but_never_answered_are_swept_at_quick_exit(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    # Telegram carries out the copy and its answer is lost, every time the bot tries: five
    # copies land in her chat and the bot knows the id of none of them.
    harness.emulator.faults.append(Fault("500", method="copyMessage", times=5, when="after"))
    await send(harness, lawyer, "Did you get to the police station?")
    assert client.text().count("police station") == 5
    # She leaves from the menu sent before them (it is older than the copies).
    await quick_exit(harness, client)
    assert only_the_neutral_word(harness, client)


async def test_a_new_request_names_the_exited_case_even_once_it_was_closed(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    # The lawyer closes the paused case ("no contact") before anyone writes again.
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_no_contact"))
    (first,) = await cases(harness)
    assert first.status == CaseStatus.CLOSED
    await ask_again(harness, client)
    _, second = await cases(harness)
    assert second.after_exit_case_id == 1
    assert before_time(harness, "card_after_exit", number=1) in cards(lawyer, harness)[-1]


async def test_no_answer_tells_her_code_word_from_a_guess_where_it_resumes_nothing(
    harness: Harness,
) -> None:
    """He has her phone after she left, and a conversation of his own (or hers has ended):
    there, the bot's answers to her word and to a guess are the same, so he can test words
    only where each wrong one counts against the five a day."""
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    await ask_again(harness, client)
    await press(harness, lawyer, s(harness, "btn_take"))
    answers = []
    for guess in ("kitten", WORD, "bishkek"):
        seen = len(client.bot_messages())
        await send(harness, client, guess)
        answers.append([m.plain() for m in client.bot_messages()[seen:]])
    assert answers == [[], [], []]
    # Her case was not resumed by it, and no try was counted.
    first, second = await cases(harness)
    assert (first.status, second.status) == (CaseStatus.PAUSED, CaseStatus.ACTIVE)
    (record,) = await clients(harness)
    assert record.code_word_fails == 0
    # With her conversation over and nothing paused, the word is text like any other.
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_legal"))
    await send(harness, lawyer, "/close 1")
    await press(harness, lawyer, s(harness, "outcome_no_contact"))
    await send(harness, client, "/start")
    replies = []
    for guess in ("kitten", WORD):
        await send(harness, client, guess)
        replies.append(client.last().plain())
    assert replies[0] == replies[1]


async def test_after_quick_exit_the_screens_are_those_anyone_new_sees(
    harness: Harness, clock: FakeClock,
) -> None:
    """Nothing on the screens tells whoever holds her phone that she chose a code word or
    said the phone is shared: he is asked and offered what anyone new is."""
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    clock.advance(minutes=3)
    await send(harness, client, "/start")
    await press(harness, client, t(harness, "en", "btn_danger_no"))
    assert client.last().plain() == t(harness, "en", "safety_q")
    await press(harness, client, t(harness, "en", "btn_skip"), t(harness, "en", "btn_skip"),
                t(harness, "en", "cat_legal"), t(harness, "en", "btn_skip"),
                t(harness, "en", "btn_skip"), t(harness, "en", "contact_chat_now"),
                t(harness, "en", "btn_send"))
    after_send = client.bot_messages()[-1]
    assert t(harness, "en", "btn_code_word") in client.buttons(after_send)
    # Were a word chosen now, it would be his: the offer stops, and it opens nothing of hers.
    await press(harness, client, t(harness, "en", "btn_code_word"))
    await send(harness, client, "mine")
    await press(harness, lawyer, s(harness, "btn_take"))
    joined = client.bot_messages()[-1]
    assert t(harness, "en", "specialist_joined", role="lawyer") in joined.plain()
    assert t(harness, "en", "btn_code_word") not in client.buttons(joined)


async def test_once_she_is_back_with_her_word_she_is_not_offered_another(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    await send(harness, client, WORD)
    assert client.last().plain() == t(harness, "en", "back_in_conversation", role="lawyer")
    (record,) = await clients(harness)
    assert record.exited_at is None
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_legal"))
    await ask_again(harness, client)
    assert t(harness, "en", "btn_code_word") not in client.buttons(client.bot_messages()[-1])


async def test_in_a_conversation_begun_after_her_exit_her_word_is_not_compared(
    harness: Harness,
) -> None:
    """He asks for help from her phone and a specialist takes it: there her word is text like
    any guess (all reach the specialist alike), so he cannot test words there, uncounted,
    and walk into her conversation with the one that was held back."""
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    await ask_again(harness, client)
    await press(harness, lawyer, s(harness, "btn_take"))
    guesses = [f"guess{i}" for i in range(6)] + [WORD]
    for guess in guesses:
        await send(harness, client, guess)
    relayed = {m.plain() for m in lawyer.bot_messages()}
    assert [g for g in guesses if g not in relayed] == []
    first, second = await cases(harness)
    assert (first.status, second.status) == (CaseStatus.PAUSED, CaseStatus.ACTIVE)


async def test_her_word_brings_back_her_case_not_one_he_asked_for(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await in_conversation(harness)
    await quick_exit(harness, client)
    clock.advance(minutes=2)
    await ask_again(harness, client)  # his request, #2
    await press(harness, lawyer, s(harness, "btn_take"))
    await quick_exit(harness, client)  # he leaves too
    clock.advance(minutes=2)
    await send(harness, client, WORD)  # she is back
    first, second = await cases(harness)
    assert (first.status, second.status) == (CaseStatus.ACTIVE, CaseStatus.PAUSED)
    assert lawyer.bot_messages()[-1].plain() == s(harness, "client_back", number=1)


async def test_a_coordinator_closing_a_call_takes_the_number_off_the_takers_card(
    harness: Harness, clock: FakeClock,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=False)
    await ask_for_later(harness, call=True)
    await later(harness, clock, hours=3, minutes=1)
    await press(harness, lawyer, s(harness, "btn_take"))
    assert "+996 700 111 222" in lawyer.text()
    await send(harness, coordinator, "/close 1")
    await press(harness, coordinator, s(harness, "outcome_no_contact"))
    (case,) = await cases(harness)
    assert case.status == CaseStatus.CLOSED
    assert "+996 700 111 222" not in lawyer.text()


async def test_a_copy_landed_unanswered_is_deleted_though_ids_jumped_meanwhile(
    harness: Harness,
) -> None:
    """Should Telegram number a bot's messages across its chats, her chat's ids jump while
    others talk: the lost copies are then far below the neutral word. The chat where a send
    may have landed unanswered is swept wider."""
    client, lawyer = await in_conversation(harness)
    harness.emulator.faults.append(Fault("500", method="copyMessage", times=5, when="after"))
    await send(harness, lawyer, "Did you get to the police station?")
    assert client.text().count("police station") == 5
    harness.emulator.chat(client.id).next_id += 400  # other people's messages meanwhile
    await quick_exit(harness, client)
    assert only_the_neutral_word(harness, client)


async def test_a_retried_copy_anchors_the_deletion_of_the_one_lost_before_it(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    harness.emulator.faults.append(Fault("500", method="copyMessage", times=1, when="after"))
    await send(harness, lawyer, "Did you get to the police station?")
    assert client.text().count("police station") == 2  # the lost one, and the retry
    harness.emulator.chat(client.id).next_id += 600
    await send(harness, client, "ok")
    await quick_exit(harness, client)
    assert only_the_neutral_word(harness, client)


async def test_an_edit_in_a_conversation_edits_the_copy_on_the_other_side_both_ways(
    harness: Harness,
) -> None:
    client, lawyer = await in_conversation(harness)
    sent = await client.send("He took my passport")
    await harness.settle()
    seen = len(lawyer.bot_messages())
    await client.edit(sent, "He took my passport and my money")
    await harness.settle()
    # The lawyer's copy now reads as she corrected it; nothing new is sent.
    assert len(lawyer.bot_messages()) == seen
    copy = lawyer.bot_messages()[-1]
    assert copy.plain() == "He took my passport and my money" and copy.edited
    # A caption she corrects, too.
    photo = await client.send_photo("his mesage")
    await harness.settle()
    await client.edit(photo, "his message from last night")
    await harness.settle()
    assert "his message from last night" in lawyer.bot_messages()[-1].plain()
    # The lawyer corrects herself: the client's copy changes.
    answer = await lawyer.send("Go to the police statoin tomorrow")
    await harness.settle()
    await lawyer.edit(answer, "Go to the police station tomorrow")
    await harness.settle()
    assert client.bot_messages()[-1].plain() == "Go to the police station tomorrow"
    # Her code word, edited in, is kept back as ever.
    word = await client.send("ok")
    await harness.settle()
    seen = len(lawyer.bot_messages())
    await client.edit(word, WORD)
    await harness.settle()
    assert len(lawyer.bot_messages()) == seen
    assert WORD not in lawyer.text()
    # After her quick exit, the lawyer's edit reaches nothing, and she is told.
    await quick_exit(harness, client)
    await lawyer.edit(answer, "Go to the police station on Monday")
    await harness.settle()
    assert lawyer.last().plain() == s(harness, "edit_not_delivered")
    assert "Monday" not in client.text()


async def test_a_client_who_forges_a_staff_button_is_refused_and_the_bot_goes_on(
    harness: Harness,
) -> None:
    """A client (her record exists) sends a staff button's data on one of her messages (a
    forged tap: the period buttons of /stats): she is told it is for staff, that answer
    goes with her quick exit like everything in her chat, and the bot goes on, for her and
    for everyone else. The refusal was once sent and recorded from within the check's own
    write turn: the second turn waited for the first for ever, and the bot wrote nothing
    again until a restart."""
    client = harness.phone("Client", language_code="en")
    await send(harness, client, "/start")
    await client.press_data(client.bot_messages()[-1], "s:st:this_year:region")
    await harness.settle()
    assert client.bot_messages()[-1].plain() == t(harness, "en", "not_staff")
    other = harness.phone("Other", language_code="en")
    await send(harness, other, "/start")
    assert other.bot_messages(), "nobody else was answered after her forged tap"
    await send(harness, client, "/help")
    assert client.bot_messages()[-1].plain() != t(harness, "en", "not_staff")
    await quick_exit(harness, client)
