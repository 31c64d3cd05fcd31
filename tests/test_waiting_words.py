"""What she writes while her request waits reaches the specialist who takes it (issue 21
item 1): copied right after the card, in order, by message id (no content stored); she is
told so; quick exit before the take drops them; her code word is never among them."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.dev.harness import Harness
from models import WaitingMessage
from tests.helpers import cases, client_asks, t
from tests.test_quick_exit import WORD, press, s, send


async def waiting_rows(h: Harness) -> int:
    assert h.app is not None
    async with h.app.bot_data.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WaitingMessage)) or 0)


async def test_her_words_photo_and_voice_while_waiting_follow_the_card_in_order(
    harness: Harness,
) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    await send(harness, client, "I need to know how to get my documents back")
    # She is told that the specialist will see it: she need not tell it again.
    assert client.last().plain() == t(harness, "en", "waiting_text")
    await client.send_photo("his message last night")
    await harness.settle()
    await client.send_media("voice")
    await harness.settle()
    assert client.last().plain() == t(harness, "en", "waiting_text")
    # A danger word gets the numbers at once, and reaches the specialist too.
    await send(harness, client, "he has a knife")
    assert "102" in client.text()
    assert await waiting_rows(harness) == 4
    before = len(lawyer.bot_messages())
    await press(harness, lawyer, s(harness, "btn_take"))
    (case,) = await cases(harness)
    after = lawyer.bot_messages()[before:]
    assert [m.plain() for m in after[:2]] == [
        s(harness, "taken_you", number=case.id), s(harness, "waiting_copies", count=4)]
    text, photo, voice, knife = after[2:]
    assert knife.plain() == "he has a knife"
    assert text.plain() == "I need to know how to get my documents back"
    assert photo.media and photo.media["type"] == "photo"
    assert "his message last night" in photo.plain()
    assert voice.media and voice.media["type"] == "voice"
    assert await waiting_rows(harness) == 0  # the ids are gone once copied
    # A reply to a copy reaches her, as an answer to her own message.
    await lawyer.send("I see it. We can ask the police to help you.", reply_to=text)
    await harness.settle()
    answer = client.bot_messages()[-1]
    assert answer.plain() == "I see it. We can ask the police to help you."
    assert answer.reply_to is not None


async def test_quick_exit_before_the_take_drops_what_she_wrote(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    await send(harness, client, "He reads my phone at night")
    assert await waiting_rows(harness) == 1
    await press(harness, client, t(harness, "en", "btn_exit"))
    assert await waiting_rows(harness) == 0
    before = len(lawyer.bot_messages())
    await press(harness, lawyer, s(harness, "btn_take"))
    texts = [m.plain() for m in lawyer.bot_messages()[before:]]
    assert "He reads my phone at night" not in texts
    assert not any(s(harness, "waiting_copies", count=1) == x for x in texts)


async def test_her_code_word_typed_while_waiting_is_never_copied(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    await press(harness, client, t(harness, "en", "btn_code_word"))
    await send(harness, client, WORD)
    assert t(harness, "en", "code_word_saved").split(",")[0] in client.text()
    await send(harness, client, WORD)  # by mistake, while she waits
    assert client.last().plain() == t(harness, "en", "waiting_text")
    await send(harness, client, "Can I talk now?")
    before = len(lawyer.bot_messages())
    await press(harness, lawyer, s(harness, "btn_take"))
    texts = [m.plain() for m in lawyer.bot_messages()[before:]]
    assert s(harness, "waiting_copies", count=1) in texts
    assert texts[-1] == "Can I talk now?"
    assert not any(WORD in x for x in texts)
