"""Quick replies and topics in her language (issue 21 item 4): from a case, a specialist
sends any library topic or any of the center's canned replies, each in the client's
language whatever the specialist's."""

from __future__ import annotations

from bot.dev.emulator.server import parse_html
from bot.dev.harness import Harness
from tests.helpers import client_asks, t
from tests.test_quick_exit import press, quick_exit, send


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


async def test_a_russian_speaking_lawyer_sends_a_kyrgyz_client_the_topic_in_kyrgyz(
    harness: Harness,
) -> None:
    assert harness.app is not None
    texts = harness.app.bot_data.texts
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="ky")
    await press(harness, lawyer, s(harness, "btn_take"))
    await send(harness, lawyer, "/reply")
    menu = lawyer.last()
    assert s(harness, "quick_title", number=1, lang_name="Кыргызча") in menu.plain()
    labels = lawyer.buttons(menu)
    # The specialist reads her buttons in Russian, the center's staff language.
    assert texts.resource("ru", "legal_rights").title in labels
    assert texts.reply("ru", "safe_now").title in labels
    await press(harness, lawyer, texts.resource("ru", "legal_rights").title)
    topic = client.bot_messages()[-1].plain()
    ky = texts.resource("ky", "legal_rights")
    assert topic.startswith(parse_html(ky.title)) and "Мыйзам" in topic
    assert texts.resource("ru", "legal_rights").title not in topic
    assert lawyer.last().plain() == s(harness, "quick_sent", number=1, lang_name="Кыргызча",
                                      title=texts.resource("ru", "legal_rights").title)
    await press(harness, lawyer, texts.reply("ru", "safe_now").title)
    assert client.bot_messages()[-1].plain().startswith(
        parse_html(texts.reply("ky", "safe_now").body).split("?")[0])
    # Quick exit stays one tap away under what she receives.
    assert t(harness, "ky", "btn_exit") in client.buttons(client.bot_messages()[-1])


async def test_no_quick_reply_reaches_a_client_who_left_or_someone_elses(
    harness: Harness,
) -> None:
    assert harness.app is not None
    texts = harness.app.bot_data.texts
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    other = await harness.add_staff("Bermet", ["lawyer"], on_duty=False)
    client = await client_asks(harness, category="legal", lang="en")
    await press(harness, lawyer, s(harness, "btn_take"))
    # A forged button from another specialist: refused, nothing sent.
    seen = len(client.bot_messages())
    cq = await other.press_data(other.last() if other.bot_messages() else lawyer.last(),
                                "s:qr:1:greeting")
    assert (await other.answered(cq))["text"] == s(harness, "not_your_case", number=1)
    assert len(client.bot_messages()) == seen
    await send(harness, lawyer, "/reply")
    await quick_exit(harness, client)
    menu, data = lawyer.find_button(texts.reply("ru", "greeting").title)
    cq = await lawyer.press_data(menu, data)
    assert (await lawyer.answered(cq))["text"] == s(harness, "not_delivered_paused", number=1)
    await harness.settle()
    assert texts.reply("en", "greeting").body.split(".")[0] not in client.text()
