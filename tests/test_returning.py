"""A returning client (issue 21 item 2): her new request's card lists her earlier ones
(number, date, kind, outcome, who handled it) and goes first to the specialist who handled
the last one, if on duty for the role; /forget breaks the link."""

from __future__ import annotations

from datetime import timedelta

from bot.dev.emulator import Phone
from bot.dev.harness import Harness
from tests.helpers import client_asks, t
from tests.test_quick_exit import press, send


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


def cards(phone: Phone, h: Harness) -> list[str]:
    return [m.plain() for m in phone.bot_messages() if s(h, "btn_take") in phone.buttons(m)]


async def ask_again(h: Harness, phone: Phone) -> None:
    await send(h, phone, "/start")
    for label in ("btn_danger_no", "btn_skip", "cat_legal", "btn_skip", "btn_skip",
                  "contact_chat_now", "btn_send"):
        await press(h, phone, t(h, "en", label))


async def test_her_second_request_lists_the_first_and_goes_to_who_helped_her(
    harness: Harness,
) -> None:
    bermet = await harness.add_staff("Bermet", ["lawyer"])
    aigul = await harness.add_staff("Aigul", ["lawyer"], on_duty=False)
    client = await client_asks(harness, category="legal", lang="en")
    await press(harness, bermet, s(harness, "btn_take"))
    await send(harness, bermet, "/close")
    await press(harness, bermet, s(harness, "outcome_legal"))
    await press(harness, client, "⭐⭐⭐⭐⭐")
    # Bermet is busy with someone else now; Aigul, free, comes on duty.
    await client_asks(harness, category="legal", lang="en", name="Another")
    await press(harness, bermet, s(harness, "btn_take"))
    await send(harness, aigul, "/duty on")
    await ask_again(harness, client)
    # The least loaded would be Aigul; she wrote before, so Bermet has it first.
    card = cards(bermet, harness)[-1]
    assert "3" in card.splitlines()[0]
    assert all("3" not in c.splitlines()[0] for c in cards(aigul, harness))
    assert s(harness, "card_earlier") in card
    line = next(x for x in card.splitlines() if x.startswith("• №1") or x.startswith("• #1"))
    assert s(harness, "cat_legal") in line and s(harness, "outcome_legal") in line
    assert "Bermet" in line
    # The other client's request is not hers: not listed.
    assert "№2" not in card and "#2" not in card
    # The card she takes keeps the list.
    await press(harness, bermet, s(harness, "btn_take"))
    assert s(harness, "card_earlier") in bermet.bot_messages()[-2].plain() or \
        any(s(harness, "card_earlier") in m.plain() and m.edited for m in bermet.bot_messages())


async def test_after_forget_her_next_request_starts_afresh(harness: Harness) -> None:
    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    client = await client_asks(harness, category="legal", lang="en")
    await press(harness, lawyer, s(harness, "btn_take"))
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_legal"))
    await send(harness, client, "/forget")
    await press(harness, client, t(harness, "en", "btn_forget_yes"))
    # The same account writes again: a new person to the bot.
    await send(harness, client, "/start")
    for label in ("btn_danger_no", "btn_safe_private", "btn_skip", "cat_legal", "btn_skip",
                  "btn_skip", "contact_chat_now", "btn_send"):
        await press(harness, client, t(harness, "en", label))
    assert "2" in cards(lawyer, harness)[-1].splitlines()[0]
    assert s(harness, "card_earlier") not in cards(lawyer, harness)[-1]


async def test_the_link_is_gone_after_returning_months(harness: Harness) -> None:
    from bot.domain import retention
    from tests.helpers import cases

    lawyer = await harness.add_staff("Aigul", ["lawyer"])
    await client_asks(harness, category="legal", lang="en")
    await press(harness, lawyer, s(harness, "btn_take"))
    await send(harness, lawyer, "/close")
    await press(harness, lawyer, s(harness, "outcome_legal"))
    assert harness.app is not None and harness.settings is not None
    (case,) = await cases(harness)
    assert case.chat_hmac is not None
    clock = harness.clock
    for months, linked in ((11, True), (13, False)):
        async with harness.app.bot_data.sessions() as session, session.begin():
            await retention.purge(session, settings=harness.settings,
                                  now=clock.now() + timedelta(days=30 * months))
        (case,) = await cases(harness)
        assert (case.chat_hmac is not None) is linked, months
