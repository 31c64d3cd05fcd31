"""Bad input from a client or a stranger: a clear answer, nothing lost, the bot keeps going."""

from __future__ import annotations

import pytest

from bot.dev.emulator import Phone
from bot.dev.harness import Harness
from tests.helpers import cases, t


async def started(h: Harness, language: str = "en") -> Phone:
    phone = h.phone("Aida", language_code=language)
    await phone.send("/start")
    await h.settle()
    return phone


@pytest.mark.parametrize("kind", ["sticker", "voice", "photo", "location", "contact",
                                  "document", "video"])
async def test_media_outside_a_conversation_gets_an_explanation(harness: Harness,
                                                                kind: str) -> None:
    phone = await started(harness)
    if kind == "location":
        await phone.send_location()
    elif kind == "contact":
        await phone.send_contact("+996555123456")
    else:
        await phone.send_media(kind)
    replies = await phone.wait_reply(2)
    assert replies[0].plain() == t(harness, "en", "media_not_read")
    assert "Are you in danger right now?" in replies[1].plain()  # the current menu again


async def test_an_overlong_text_is_answered_and_the_step_kept(harness: Harness) -> None:
    phone = await started(harness)
    await phone.press("I need help")
    await harness.settle()
    await phone.send("a" * 5000)
    reply, menu = await phone.wait_reply(2)
    assert "too long" in reply.plain()
    assert "can anyone else read this phone" in menu.plain()
    await phone.press("No, only me")
    await harness.settle()
    assert "Who needs help?" in phone.last().plain()


async def test_an_edited_message_is_answered(harness: Harness) -> None:
    phone = await started(harness)
    sent = await phone.send("hello")
    await harness.settle()
    await phone.edit(sent, "hello again")
    (reply,) = await phone.wait_reply()
    assert reply.plain() == t(harness, "en", "edited")


@pytest.mark.parametrize("data", ["c:reg:mars", "c:q:99:y", "c:nonsense", "garbage",
                                  "c:lang:xx", "c:res:../../etc/passwd", "s:take:1",
                                  "s:close:1:legal", "c:" + "x" * 62])
async def test_forged_callback_data_is_refused_politely(harness: Harness, data: str) -> None:
    phone = await started(harness)
    cq = await phone.press_data(phone.last(), data)
    answer = await phone.answered(cq)
    assert answer.get("text") in (t(harness, "en", "expired"), t(harness, "en", "not_staff"),
                                  t(harness, "en", "expired_button"))
    await harness.settle()
    assert await cases(harness) == []
    # Still working.
    await phone.press("I need help")
    await harness.settle()
    assert "can anyone else read this phone" in phone.last().plain()


async def test_unknown_command_is_answered(harness: Harness) -> None:
    phone = await started(harness)
    await phone.send("/whatever")
    replies = await phone.wait_reply(2)
    assert replies[0].plain() == t(harness, "en", "unknown_command")


async def test_staff_commands_from_a_stranger_are_refused(harness: Harness) -> None:
    stranger = await started(harness)
    for command in ("/queue", "/duty on", "/cases", "/close", "/staff list"):
        await stranger.send(command)
        (reply,) = await stranger.wait_reply()
        assert reply.plain() == t(harness, "en", "not_staff")


async def test_a_flood_gets_one_calm_answer_and_quick_exit_still_works(
    harness: Harness,
) -> None:
    phone = await started(harness)
    assert harness.settings is not None
    limit = harness.settings.limits.messages_per_minute
    for i in range(limit + 15):
        await phone.send(f"message {i}")
    await harness.settle()
    slow = [m for m in phone.all_bot_messages()
            if m.plain() == t(harness, "en", "slow_down")]
    assert len(slow) == 1
    # Another person is served as usual.
    other = await started(harness)
    assert "Are you in danger right now?" in other.last().plain()
    # And she can still leave at once.
    await phone.send("/exit")
    await harness.settle()
    assert phone.last().plain() == t(harness, "en", "exit_done")


async def test_slow_down_is_said_in_the_language_she_chose_not_her_phones(
    harness: Harness,
) -> None:
    phone = await started(harness, language="en")
    await phone.send("/language")
    await harness.settle()
    await phone.press("Кыргызча")
    await harness.settle()
    assert harness.settings is not None
    for i in range(harness.settings.limits.messages_per_minute + 5):
        await phone.send(f"message {i}")
    await harness.settle()
    texts = [m.plain() for m in phone.all_bot_messages()]
    assert t(harness, "ky", "slow_down") in texts
    assert t(harness, "en", "slow_down") not in texts


async def test_group_chats_and_channel_posts_are_ignored_without_error(
    harness: Harness,
) -> None:
    phone = await started(harness)
    await harness.emulator.raw_update({"channel_post": {
        "message_id": 1, "date": 0, "chat": {"id": -100123, "type": "channel", "title": "x"},
        "text": "hello"}})
    await harness.emulator.raw_update({"message": {
        "message_id": 5, "date": 0, "chat": {"id": -42, "type": "group", "title": "g"},
        "from": phone.user.as_dict(), "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})
    await harness.settle()
    await phone.send("/help")
    (reply,) = await phone.wait_reply()
    assert "What I can do" in reply.plain()


async def test_an_internal_error_gets_a_useful_answer_and_no_personal_data_in_the_log(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.domain.flow import Flow

    def broken(self: Flow) -> None:
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(Flow, "help", broken)
    phone = await started(harness)
    caplog.set_level("INFO")
    await phone.send("/help")
    (reply,) = await phone.wait_reply()
    assert "102" in reply.plain() and "/start" in reply.plain()
    assert any("failed: RuntimeError" in r.getMessage() for r in caplog.records)
    assert str(phone.id) not in caplog.text and "Aida" not in caplog.text
    monkeypatch.undo()
    await phone.send("/help")  # and the bot goes on
    (reply,) = await phone.wait_reply()
    assert "What I can do" in reply.plain()


@pytest.mark.parametrize("data", ["s:take:²", "s:take:" + "9" * 40, "s:close:²:legal",
                                  "s:pass:١٢", "s:zzz:1", "s:use:-1", "s:take:", "garbage",
                                  "x:take:1", "s:st:²"])
async def test_forged_card_buttons_from_staff_get_the_expired_answer(
    harness: Harness, data: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Non-ASCII digits pass `str.isdigit`, 40 digits overflow a database integer: both
    are forged data, answered as an expired button, never a traceback."""
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    await lawyer.send("/queue")
    await harness.settle()
    cq = await lawyer.press_data(lawyer.last(), data)
    answer = await lawyer.answered(cq)
    assert answer.get("text") in (t(harness, None, "expired_button"),
                                  t(harness, None, "expired"))
    await harness.settle()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("data", ["c:rate:²", "c:q:²:y", "c:q:" + "9" * 40 + ":y"])
async def test_forged_client_buttons_with_odd_digits_are_refused(
    harness: Harness, data: str, caplog: pytest.LogCaptureFixture,
) -> None:
    phone = await started(harness)
    cq = await phone.press_data(phone.last(), data)
    answer = await phone.answered(cq)
    assert answer.get("text") == t(harness, "en", "expired")
    await harness.settle()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_id_answers_anyone_with_their_own_id_and_nothing_else(harness: Harness) -> None:
    stranger = harness.phone("Stranger", language_code="en")
    await stranger.send("/id")
    (reply,) = await stranger.wait_reply()
    assert reply.plain() == t(harness, "en", "your_id", number=stranger.id)
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    await lawyer.send("/id")
    (reply,) = await lawyer.wait_reply()
    assert reply.plain() == t(harness, None, "your_id", number=lawyer.id)
    # In a client's chat it is recorded: quick exit takes it away too.
    client = await started(harness)
    await client.send("/id")
    await harness.settle()
    await client.send("/exit")
    await harness.settle()
    assert [m.plain() for m in client.messages()] == [t(harness, "en", "exit_done")]


async def test_an_update_the_library_cannot_read_is_skipped_and_never_comes_back(
    harness: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback without `chat_instance` (an older local Bot API server sends such) sits
    between two women's first messages: both are answered, it is confirmed and counted, and
    after a restart it does not stop the bot again."""
    first = harness.phone("Aida", language_code="en")
    second = harness.phone("Bermet", language_code="en")
    await first.send("/start")
    await harness.emulator.raw_update({"callback_query": {
        "id": "77", "from": first.user.as_dict(), "data": "c:danger:no"}})
    await second.send("/start")
    await harness.settle()
    for phone in (first, second):
        assert "Are you in danger right now?" in phone.last().plain()
    skipped = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(skipped) == 1 and "callback_query" in skipped[0]
    assert "c:danger" not in skipped[0] and "Aida" not in skipped[0]
    await harness.stop_bot()
    await harness.start_bot()
    third = harness.phone("Cholpon", language_code="en")
    await third.send("/start")
    await harness.settle()
    assert "Are you in danger right now?" in third.last().plain()
    assert len([r for r in caplog.records if "could not be read" in r.getMessage()]) == 1
    assert all(u["update_id"] > 2 for u in harness.emulator.updates)  # confirmed
