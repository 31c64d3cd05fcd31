"""Office hours that are true (issue 19 item 3): the next opening from the weekly hours and
the holidays; times for a call or a message only when a specialist of the role can keep
them; said plainly when the earliest is days away."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.dev.harness import Harness
from bot.domain import cases as case_service
from bot.domain.hours import Hours
from tests.helpers import cases, client_asks, t

BISHKEK = 6  # UTC+6, no daylight saving


def bishkek(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour - BISHKEK, minute, tzinfo=UTC) if hour >= BISHKEK \
        else datetime(year, month, day - 1, hour + 24 - BISHKEK, minute, tzinfo=UTC)


def local(moment: datetime) -> str:
    return moment.astimezone(Settings().organization.tz).strftime("%a %d.%m %H:%M")


FRIDAY_NIGHT = bishkek(2026, 12, 4, 20)  # Friday 4 December 2026, 20:00 in Bishkek


def test_a_friday_night_opens_on_monday_and_a_holiday_moves_it_on() -> None:
    hours = Hours.of(Settings())
    assert not hours.is_open(FRIDAY_NIGHT)
    assert local(hours.next_opening(FRIDAY_NIGHT)) == "Mon 07.12 09:00"  # type: ignore[arg-type]
    holiday = Hours.of(Settings.model_validate(
        {"organization": {"holidays": [date(2026, 12, 7)]}}))
    assert local(holiday.next_opening(FRIDAY_NIGHT)) == "Tue 08.12 09:00"  # type: ignore[arg-type]
    assert not holiday.is_open(bishkek(2026, 12, 7, 11))
    assert hours.is_open(bishkek(2026, 12, 7, 11))
    # An appeal on a holiday counts as out of hours in the report.
    holiday_settings = Settings.model_validate({"organization": {"holidays": ["2026-12-07"]}})
    assert case_service.out_of_hours(bishkek(2026, 12, 7, 11), holiday_settings)
    assert not case_service.out_of_hours(bishkek(2026, 12, 7, 11), Settings())


def test_no_call_is_offered_at_night_or_when_the_office_is_closed() -> None:
    hours = Hours.of(Settings())
    # Friday night: nothing "in 1 h"; the first time offered is Monday's opening.
    slots = hours.slots("lawyer", FRIDAY_NIGHT)
    assert [s.hours for s in slots] == [None] * 4
    assert [local(s.when) for s in slots] == ["Mon 07.12 09:00", "Mon 07.12 10:00",
                                              "Mon 07.12 14:00", "Mon 07.12 17:00"]
    # 02:00 on a Tuesday: never 03:00 or 05:00; the morning instead.
    night = hours.slots("lawyer", bishkek(2026, 12, 8, 2))
    assert local(night[0].when) == "Tue 08.12 09:00" and night[0].hours is None
    # A Tuesday morning: in 1 h and in 3 h are real.
    morning = hours.slots("lawyer", bishkek(2026, 12, 8, 10))
    assert [s.hours for s in morning[:2]] == [1, 3]
    for slot in [*slots, *night, *morning]:
        assert hours.can_reach("lawyer", slot.when)
        assert 8 <= slot.when.astimezone(hours.tz).hour < 21


def test_a_role_with_a_roster_is_offered_only_its_shifts() -> None:
    settings = Settings.model_validate({"roster": [
        {"member": "Nazira", "role": "psychologist", "days": ["sat", "sun"],
         "start": "19:00:00", "end": "08:00:00"}]})
    hours = Hours.of(settings)
    saturday_noon = bishkek(2026, 12, 5, 12)
    slots = hours.slots("psychologist", saturday_noon)
    # Her evening shift's first two hours (never after 21:00), on Saturday and Sunday.
    assert [local(s.when) for s in slots] == ["Sat 05.12 19:00", "Sun 06.12 19:00",
                                              "Sat 12.12 19:00"]
    # The lawyer has no roster: office hours, from Monday.
    assert local(hours.slots("lawyer", saturday_noon)[0].when) == "Mon 07.12 09:00"
    assert local(hours.next_on_duty("psychologist", saturday_noon)) == "Sat 05.12 19:00"  # type: ignore[arg-type]
    # A child psychologist's cases go to a psychologist: her shifts count.
    assert local(hours.slots("child_psychologist", saturday_noon)[0].when) == "Sat 05.12 19:00"


def test_a_forged_or_stale_time_is_not_accepted() -> None:
    hours = Hours.of(Settings())
    assert hours.slot("lawyer", FRIDAY_NIGHT, "r1") is None  # "in 1 h" is 21:00 on Friday
    assert hours.slot("lawyer", FRIDAY_NIGHT, "a202612050300") is None  # Saturday 03:00
    assert hours.slot("lawyer", FRIDAY_NIGHT, "a202612070900") is not None


async def test_at_night_she_is_told_the_earliest_time_and_offered_no_night_call(
    harness: Harness, clock: FakeClock,
) -> None:
    clock.set(FRIDAY_NIGHT.replace(hour=17))  # Friday 23:00 in Bishkek
    phone = await client_asks(harness, category="legal", lang="ru", contact="call_later",
                              send=False)
    screen = phone.last()
    monday = t(harness, "ru", "slot_day", day="Понедельник", time="09:00")
    assert t(harness, "ru", "ask_time_earliest", time=monday) in screen.plain()
    labels = phone.buttons(screen)
    assert t(harness, "ru", "slot_in_hours", hours=1) not in labels
    assert monday in labels
    # A time from a forged button is not taken: the current times are shown again.
    cq = await phone.press_data(screen, "c:tm:a202612050300")
    assert (await phone.answered(cq)).get("text") == t(harness, "ru", "expired")
    await harness.settle()
    await phone.press(monday)
    await harness.settle()
    await phone.send("0555 123 456")
    await harness.settle()
    await phone.press(t(harness, "ru", "btn_send"))
    await harness.settle()
    (case,) = await cases(harness)
    assert case.contact_at is not None and local(case.contact_at.replace(tzinfo=UTC)) == \
        "Mon 07.12 09:00"


async def test_nobody_on_duty_at_night_says_when_the_next_shift_begins(
    harness: Harness, clock: FakeClock,
) -> None:
    clock.set(FRIDAY_NIGHT)
    phone = harness.phone("Client", language_code="en")
    await phone.send("/start")
    await harness.settle()
    await phone.press(t(harness, "en", "btn_danger_yes"))
    await harness.settle()
    await phone.press(t(harness, "en", "btn_write_yes"))
    await harness.settle()
    (case,) = await cases(harness)
    assert t(harness, "en", "nobody_on_duty", number=case.id) in phone.text()
    monday = t(harness, "en", "slot_day", day="Monday", time="09:00")
    assert t(harness, "en", "next_shift", time=monday) in phone.text()
