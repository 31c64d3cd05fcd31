"""A consented check-in (issue 21 item 6): offered at /close, accepted at a safe time she
picks, one neutral message then with "I'm OK" / "I'd like to talk" / quick exit; "talk"
opens a new request linked to the old; quick exit cancels it; never for a phone call."""

from __future__ import annotations

from bot.core.clock import FakeClock
from bot.dev.emulator import Phone
from bot.dev.harness import Harness
from bot.telegram import scheduling
from tests.helpers import cases, client_asks, t
from tests.test_quick_exit import ask_for_later, press, quick_exit, send


def s(h: Harness, key: str, **values: object) -> str:
    return t(h, None, key, **values)


async def closed_conversation(h: Harness) -> tuple[Phone, Phone]:
    lawyer = await h.add_staff("Aigul", ["lawyer"])
    client = await client_asks(h, category="legal", lang="en")
    await press(h, lawyer, s(h, "btn_take"))
    await send(h, lawyer, "/close")
    await press(h, lawyer, s(h, "outcome_legal"))
    return client, lawyer


async def at_the_time(h: Harness, clock: FakeClock, **delta: float) -> None:
    clock.advance(**delta)
    assert h.app is not None
    await scheduling.run_due(h.app)
    await h.settle()


async def test_a_check_in_at_her_time_and_talk_opens_a_linked_request(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await closed_conversation(harness)
    await press(harness, lawyer, s(harness, "btn_offer_checkin"))
    assert lawyer.last().plain() == s(harness, "checkin_offered", number=1)
    offer = client.bot_messages()[-1]
    assert offer.plain() == t(harness, "en", "checkin_offer")
    # Tuesday 10:00 now: three days on, at 11:00, is Friday.
    friday = t(harness, "en", "slot_day", day="Friday", time="11:00")
    assert friday in client.buttons(offer)
    await press(harness, client, friday)
    assert client.bot_messages()[-1].plain() == t(harness, "en", "checkin_set", time=friday)
    # Nothing comes before its time.
    await at_the_time(harness, clock, days=2)
    assert t(harness, "en", "checkin_message") not in client.text()
    await at_the_time(harness, clock, days=1, hours=1, minutes=5)
    message = client.bot_messages()[-1]
    assert message.plain() == t(harness, "en", "checkin_message")
    assert "Sezim" not in message.plain()  # neutral: nothing about the center
    assert t(harness, "en", "btn_exit") in client.buttons(message)
    await press(harness, client, t(harness, "en", "btn_checkin_talk"))
    new = (await cases(harness))[-1]
    assert new.id == 2 and new.category == "legal"
    card = next(m.plain() for m in reversed(lawyer.bot_messages()) if "2" in m.plain()
                .splitlines()[0])
    assert s(harness, "card_earlier") in card


async def test_quick_exit_cancels_it_and_a_call_never_gets_one(
    harness: Harness, clock: FakeClock,
) -> None:
    client, lawyer = await closed_conversation(harness)
    # A phone call: no offer after it, and a forged one is refused.
    caller = await ask_for_later(harness, call=True)
    await at_the_time(harness, clock, hours=3, minutes=1)  # the time she chose to be called
    await press(harness, lawyer, s(harness, "btn_take"))
    (call,) = [c for c in await cases(harness) if c.contact == "call_later"]
    await press(harness, lawyer, s(harness, "btn_called"))
    await press(harness, lawyer, s(harness, "outcome_legal"))
    assert s(harness, "btn_offer_checkin") not in lawyer.buttons(lawyer.last())
    cq = await lawyer.press_data(lawyer.last(), f"s:ci:{call.id}")
    assert (await lawyer.answered(cq))["text"] == s(harness, "checkin_not_possible",
                                                    number=call.id)
    assert t(harness, "en", "checkin_offer") not in caller.text()
    # She accepts one after her conversation, then leaves with quick exit: it never comes.
    offer_menu = next(m for m in reversed(lawyer.bot_messages())
                      if s(harness, "btn_offer_checkin") in lawyer.buttons(m))
    await lawyer.press(s(harness, "btn_offer_checkin"), message=offer_menu)
    await harness.settle()
    await press(harness, client, t(harness, "en", "slot_day", day="Friday", time="11:00"))
    assert t(harness, "en", "checkin_set", time=t(harness, "en", "slot_day", day="Friday",
                                                  time="11:00")) in client.text()
    await quick_exit(harness, client)
    await at_the_time(harness, clock, days=4)
    assert t(harness, "en", "checkin_message") not in client.text()
