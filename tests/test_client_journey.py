"""The client's journey end to end: the real bot over HTTP against the emulator."""

from __future__ import annotations

import pytest

from bot.core.clock import FakeClock
from bot.dev.emulator import Phone
from bot.dev.emulator.server import Fault
from bot.dev.harness import Harness
from bot.telegram import scheduling
from models import CaseStatus
from tests.helpers import cases, client_asks, clients, t


async def start(h: Harness, name: str = "Aida", language: str | None = "ru") -> Phone:
    phone = h.phone(name, language_code=language)
    await phone.send("/start")
    await h.settle()
    return phone


async def test_first_message_gives_greeting_language_choice_exit_and_danger_question(
    harness: Harness,
) -> None:
    phone = harness.phone("Aida", language_code="ky")
    await phone.send("салам")
    await harness.settle()
    first = phone.last()
    # Telegram's language_code preselects Kyrgyz.
    assert "Сиз азыр коркунучтасызбы?" in first.plain()
    labels = phone.buttons(first)
    assert {"Кыргызча", "Русский", "English"} <= set(labels)
    assert t(harness, "ky", "btn_exit") in labels
    await phone.press("English")
    await harness.settle()
    assert "Are you in danger right now?" in phone.last().plain()
    assert t(harness, "en", "btn_exit") in phone.buttons()


async def test_her_screen_changes_even_while_telegram_is_slow_to_stop_the_spinner(
    harness: Harness,
) -> None:
    phone = await start(harness, language="en")
    # Telegram is slow to take the button's answer this once.
    harness.emulator.faults.append(Fault("delay", method="answerCallbackQuery", seconds=3))
    cq = await phone.press("I need help or advice")
    # Her next question is there while the answer to the button still hangs.
    await harness.emulator.wait_for(
        lambda: "Are you in danger right now?" not in phone.last().plain(), timeout=2.5)
    assert cq not in harness.emulator.callback_answers
    await harness.settle()
    assert cq in harness.emulator.callback_answers


async def test_unknown_language_code_falls_back_to_the_default(harness: Harness) -> None:
    phone = await start(harness, language="de")
    assert "Вы сейчас в опасности?" in phone.last().plain()


async def test_after_i_am_in_danger_a_shared_phone_gets_two_lines_not_eight(
    harness: Harness,
) -> None:
    phone = await start(harness, language="ky")
    await phone.press(t(harness, "ky", "btn_danger_yes"))
    await harness.settle()
    await phone.press(t(harness, "ky", "btn_write_yes"))
    await harness.settle()
    await phone.press(t(harness, "ky", "btn_safe_shared"))
    await harness.settle()
    texts = [m.plain() for m in phone.messages()]
    assert t(harness, "ky", "safety_shared_short") in texts
    assert t(harness, "ky", "safety_shared") not in texts
    assert len(t(harness, "ky", "safety_shared_short")) < len(t(harness, "ky", "safety_shared")) / 2
    (client,) = await clients(harness)
    assert client.auto_delete_minutes == 60


async def test_danger_now_gives_the_numbers_in_the_first_answer(harness: Harness) -> None:
    phone = await start(harness, language="en")
    await phone.press(t(harness, "en", "btn_danger_yes"))
    (first, *_) = await phone.wait_reply()
    text = first.plain()
    for number in ("102", "103", "112", "+996 312 512640"):
        assert number in text
    assert t(harness, "en", "btn_write_yes") in phone.buttons(first)
    # Nothing was asked first and no case exists until she accepts the offer.
    assert await cases(harness) == []
    await phone.press(t(harness, "en", "btn_write_yes"))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.urgency == "emergency"
    assert case.status == CaseStatus.WAITING
    # Nobody is on duty: she is told so, with the hotline and when she will be answered.
    assert t(harness, "en", "nobody_on_duty", number=case.id) in phone.text()
    # Region may be asked after, and skipped.
    await phone.press(t(harness, "en", "btn_safe_private"))
    await harness.settle()
    assert t(harness, "en", "ask_region_after") in phone.last().plain()
    await phone.press(t(harness, "en", "btn_skip"))
    await harness.settle()
    assert t(harness, "en", "region_thanks") in phone.last().plain()
    (case,) = await cases(harness)
    assert case.region is None


async def _triage(h: Harness, phone: Phone, lang: str, *, category: str, region: str,
                  yes: set[int]) -> None:
    await phone.press(t(h, lang, "btn_danger_no"))
    await h.settle()
    await phone.press(t(h, lang, "btn_safe_private"))
    await h.settle()
    await phone.press(t(h, lang, "for_child"))
    await h.settle()
    await phone.press(t(h, lang, f"cat_{category}"))
    await h.settle()
    assert h.settings is not None
    reg = h.settings.region(region)
    assert reg is not None
    await phone.press(reg.name(lang))
    await h.settle()
    await phone.press(t(h, lang, "btn_screen_start"))
    await h.settle()
    for number in range(1, 12):
        assert t(h, lang, "q_header", number=number, total=11) in phone.last().plain()
        await phone.press(t(h, lang, "btn_yes") if number in yes else t(h, lang, "btn_no"))
        await h.settle()
    await phone.press(t(h, lang, "contact_chat_now"))
    await h.settle()
    assert t(h, lang, "confirm_ask") in phone.last().plain()
    await phone.press(t(h, lang, "btn_send"))
    await h.settle()


@pytest.mark.parametrize(
    ("lang", "category", "region", "yes", "urgency"),
    [
        ("ky", "legal", "naryn", {2}, "high"),  # any of 1-3: screened in
        ("ru", "psych", "osh_city", {4, 5, 6, 11}, "high"),  # four of 4-11: screened in
        ("en", "child", "bishkek", {4, 5, 6}, "standard"),  # three of 4-11: not screened in
    ],
)
async def test_full_triage_in_each_language_creates_the_right_case(
    harness: Harness, lang: str, category: str, region: str, yes: set[int], urgency: str,
) -> None:
    phone = await start(harness, language=lang)
    await _triage(harness, phone, lang, category=category, region=region, yes=yes)
    (case,) = await cases(harness)
    assert (case.category, case.region, case.urgency, case.for_whom, case.language) == (
        category, region, urgency, "child", lang)
    assert case.screen == ("screened_in" if urgency == "high" else "not_screened_in")
    assert case.screen_flags == ",".join(str(q) for q in sorted(yes))
    if urgency == "high":
        assert t(harness, lang, "screened_in_note") in phone.text()


async def test_every_step_can_be_skipped_and_gone_back_from(harness: Harness) -> None:
    phone = await start(harness, language="en")
    await phone.press("I need help")
    await harness.settle()
    await phone.press("Skip")  # the phone-safety question
    await harness.settle()
    assert "Who needs help?" in phone.last().plain()
    await phone.press("Me")
    await harness.settle()
    assert "What kind of help" in phone.last().plain()
    await phone.press("Back")
    await harness.settle()
    assert "Who needs help?" in phone.last().plain()
    for _ in range(4):  # for whom, kind, region, danger screen
        await phone.press("Skip")
        await harness.settle()
    assert "How should a specialist reach you?" in phone.last().plain()
    await phone.press("Skip")
    await harness.settle()
    assert "Shall we pass this to a specialist?" in phone.last().plain()
    await phone.press("Yes, send")
    await harness.settle()
    (case,) = await cases(harness)
    assert (case.category, case.for_whom, case.region, case.screen) == (None, None, None, None)
    assert case.urgency == "standard"
    assert case.contact == "chat_now"


async def test_callback_at_a_safe_time_with_a_phone_number_stored_encrypted(
    harness: Harness,
) -> None:
    phone = await start(harness, language="ru")
    await phone.press(t(harness, "ru", "btn_danger_no"))
    await harness.settle()
    await phone.press(t(harness, "ru", "btn_safe_shared"))
    await harness.settle()
    # A shared phone: auto-delete is on and she is told how to hide the chat.
    assert t(harness, "ru", "safety_shared").splitlines()[0] in phone.text()
    (client,) = await clients(harness)
    assert client.shared_device is True and client.auto_delete_minutes == 60
    for _ in range(4):
        await phone.press(t(harness, "ru", "btn_skip"))
        await harness.settle()
    await phone.press(t(harness, "ru", "contact_call_later"))
    await harness.settle()
    await phone.press(t(harness, "ru", "slot_today", time="17:00"))
    await harness.settle()
    await phone.send("12345")
    await harness.settle()
    assert t(harness, "ru", "phone_invalid") in phone.text()
    await phone.send("0555 12-34-56")
    await harness.settle()
    assert "+996 555 123 456" not in phone.last().plain()  # never echoed back
    await phone.press(t(harness, "ru", "btn_send"))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.contact == "call_later" and case.contact_at is not None
    # Not stored as typed, nor as written back to her (a three-digit run alone can turn up
    # in any ciphertext by chance).
    assert case.phone_enc is not None
    assert not any(form in case.phone_enc for form in (b"555123456", b"555 12-34-56",
                                                       b"555 123 456"))
    assert harness.app is not None
    assert harness.app.bot_data.crypto.decrypt(case.phone_enc) == "+996 555 123 456"


async def test_danger_words_interrupt_any_step(harness: Harness) -> None:
    phone = await start(harness, language="ky")
    await phone.press(t(harness, "ky", "btn_danger_no"))
    await harness.settle()
    await phone.press(t(harness, "ky", "btn_safe_private"))
    await harness.settle()
    await phone.send("ал мени өлтүрөм деди")
    (reply,) = await phone.wait_reply()
    assert "102" in reply.plain() and t(harness, "ky", "btn_write_yes") in phone.buttons(reply)
    await phone.send("хочу умереть")
    (reply,) = await phone.wait_reply()
    assert t(harness, "ky", "emergency_self_harm").splitlines()[0] in reply.plain()


async def test_information_library_and_no_shelter_address(harness: Harness) -> None:
    phone = await start(harness, language="ru")
    await phone.press(t(harness, "ru", "btn_info"))
    await harness.settle()
    assert harness.app is not None
    texts = harness.app.bot_data.texts
    titles = [texts.resource("ru", rid).title for rid in texts.resource_ids]
    assert set(titles) <= set(phone.buttons())
    await phone.press(texts.resource("ru", "legal_rights").title)
    await harness.settle()
    assert "охранный ордер" in phone.last().plain()
    assert "24 часов" in phone.last().plain()
    await phone.press(t(harness, "ru", "btn_library"))
    await harness.settle()
    await phone.press(texts.resource("ru", "services").title)
    await harness.settle()
    assert "«Нур»" in phone.last().plain()


async def test_quick_exit_leaves_only_the_neutral_message(harness: Harness) -> None:
    phone = await start(harness, language="en")
    await phone.press("I need help")
    await harness.settle()
    await phone.send("some words of hers")
    await harness.settle()
    await phone.press("Quick exit")
    await harness.settle()
    visible = phone.messages()
    assert [m.plain() for m in visible] == [t(harness, "en", "exit_done")]
    # Her own messages went too, not only the bot's.
    assert all(m.deleted for m in harness.emulator.chat(phone.id).messages[:-1])
    # /exit does the same.
    await phone.send("/start")
    await harness.settle()
    await phone.send("/exit")
    await harness.settle()
    assert [m.plain() for m in phone.messages()] == [t(harness, "en", "exit_done")]


async def test_messages_older_than_48_hours_are_left_alone(harness: Harness) -> None:
    phone = await start(harness, language="en")
    harness.emulator.advance(49 * 3600)
    await phone.send("/exit")
    await harness.settle()
    texts = [m.plain() for m in phone.messages()]
    # Telegram refuses to delete them; the bot carries on and says the neutral word.
    assert texts[-1] == t(harness, "en", "exit_done") and len(texts) == 3


async def test_auto_delete_fires_after_a_restart(harness: Harness, clock: FakeClock) -> None:
    phone = await start(harness, language="en")
    await phone.send("/autodelete")
    await harness.settle()
    await phone.press("After 1 hour")
    await harness.settle()
    assert len(phone.messages()) > 2
    await harness.kill_bot()
    await harness.start_bot()
    clock.advance(minutes=61)
    assert harness.app is not None
    ran = await scheduling.run_due(harness.app)
    assert ran >= 1
    await harness.settle()
    assert phone.messages() == []


async def test_a_restart_mid_triage_resumes_at_the_same_step(harness: Harness) -> None:
    phone = await start(harness, language="en")
    await phone.press("I need help")
    await harness.settle()
    await phone.press("No, only me")
    await harness.settle()
    await phone.press("Me")
    await harness.settle()
    assert "What kind of help" in phone.last().plain()
    await harness.kill_bot()
    await harness.start_bot()
    # The menu from before the restart still works: its step lives in the database.
    await phone.press("Legal")
    await harness.settle()
    assert "Where are you?" in phone.last().plain()


async def test_old_buttons_get_a_polite_expired_answer_and_the_current_menu(
    harness: Harness,
) -> None:
    phone = await start(harness, language="en")
    home = phone.last()
    await phone.send("/help")
    await harness.settle()
    cq = await phone.press("Information", message=home)
    answer = await phone.answered(cq)
    assert answer.get("text") == t(harness, "en", "expired")
    await harness.settle()
    assert "Are you in danger right now?" in phone.last().plain()


async def test_language_and_help_commands(harness: Harness) -> None:
    phone = await start(harness, language="ru")
    await phone.send("/language")
    await harness.settle()
    await phone.press("English")
    await harness.settle()
    await phone.send("/help")
    await harness.settle()
    assert "What I can do" in phone.last().plain() and "102" in phone.last().plain()


async def test_forget_erases_her_record_but_not_the_statistics(harness: Harness) -> None:
    phone = await start(harness, language="en")
    await phone.press("Yes, I'm in danger now")
    await harness.settle()
    await phone.press("Yes, write to me here")
    await harness.settle()
    await phone.send("/forget")
    await harness.settle()
    await phone.press("Yes, erase")
    await harness.settle()
    assert await clients(harness) == []
    (case,) = await cases(harness)
    assert case.client_id is None and case.purged_at is not None
    assert case.appeal_id is not None  # the anonymous record stays
    assert [m.plain() for m in phone.messages()] == [t(harness, "en", "forget_done")]


async def test_a_second_request_while_one_waits_does_not_make_a_second_case(
    harness: Harness,
) -> None:
    """She asks again (the triage from /start) while her first request still waits: she
    is told it is still waiting, and no second card goes out."""
    await harness.add_staff("Aigul", ["lawyer"])
    phone = await client_asks(harness)
    await phone.send("/start")
    await harness.settle()
    for label in ("btn_danger_no", "btn_skip", "cat_legal", "btn_skip", "btn_skip",
                  "contact_chat_now", "btn_send"):
        await phone.press(t(harness, "en", label))
        await harness.settle()
    assert t(harness, "en", "request_open", number=1) in phone.last().plain()
    assert len(await cases(harness)) == 1


async def test_a_danger_word_while_she_waits_gives_the_numbers_and_asks_before_raising(
    harness: Harness,
) -> None:
    """A word that may be a false alarm does not jump her request ahead of others by itself:
    the numbers come at once, and one tap makes it urgent."""
    phone = await client_asks(harness, category="legal", lang="en")
    (case,) = await cases(harness)
    before = case.urgency
    assert before != "emergency"
    await phone.send("he will kill me")
    await harness.settle()
    answer = phone.last()
    assert "102" in answer.plain() and t(harness, "en", "btn_raise") in phone.buttons(answer)
    (case,) = await cases(harness)
    assert case.urgency == before
    await phone.press(t(harness, "en", "btn_raise"), message=answer)
    await harness.settle()
    (case,) = await cases(harness)
    assert case.urgency == "emergency"
    assert phone.last().plain() == t(harness, "en", "raised_done")
