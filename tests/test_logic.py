"""Pure logic: the danger screen's rule, phone numbers, shifts, flood limits, crypto."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.crypto import Crypto
from bot.domain.limits import FloodGuard
from bot.domain.phone import normalise_kg_phone
from bot.domain.screening import ScreenResult, evaluate
from bot.domain.staff import in_shift


@pytest.mark.parametrize(
    ("yes", "no", "expected"),
    [
        ({1}, set(), ScreenResult.SCREENED_IN),
        ({2}, set(), ScreenResult.SCREENED_IN),
        ({3}, set(range(4, 12)), ScreenResult.SCREENED_IN),
        ({4, 5, 6, 7}, set(), ScreenResult.SCREENED_IN),
        ({8, 9, 10, 11}, {1, 2, 3}, ScreenResult.SCREENED_IN),
        ({4, 5, 6}, {1, 2, 3, 7, 8, 9, 10, 11}, ScreenResult.NOT_SCREENED_IN),
        (set(), set(range(1, 12)), ScreenResult.NOT_SCREENED_IN),
        (set(), {5}, ScreenResult.NOT_SCREENED_IN),
        (set(), set(), ScreenResult.SKIPPED),
    ],
)
def test_lethality_screen_rule(yes: set[int], no: set[int], expected: ScreenResult) -> None:
    answers: dict[int, bool | None] = {q: True for q in yes} | {q: False for q in no}
    result, flags = evaluate(answers)
    assert result is expected
    assert flags == sorted(yes)


def test_skipped_questions_count_as_unanswered_not_as_no() -> None:
    result, flags = evaluate({1: None, 2: None, 4: True, 5: True, 6: True, 7: None})
    assert result is ScreenResult.NOT_SCREENED_IN
    assert flags == [4, 5, 6]
    assert evaluate({1: None, 2: None})[0] is ScreenResult.SKIPPED
    with pytest.raises(ValueError):
        evaluate({12: True})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+996 555 123 456", "+996 555 123 456"),
        ("+996555123456", "+996 555 123 456"),
        ("996 (700) 12-34-56", "+996 700 123 456"),
        ("0555 123 456", "+996 555 123 456"),
        ("0312 51 26 40", "+996 312 512 640"),
        ("555123456", "+996 555 123 456"),
        ("+7 900 123 45 67", None),
        ("12345", None),
        ("0155 123 456", None),
        ("phone please", None),
        ("+996 555 123 4567", None),
        ("9" * 40, None),
    ],
)
def test_kyrgyz_phone_numbers(text: str, expected: str | None) -> None:
    assert normalise_kg_phone(text) == expected


BISHKEK = ZoneInfo("Asia/Bishkek")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    # November 2026: the 23rd is a Monday.
    return datetime(2026, 11, day, hour, minute, tzinfo=BISHKEK)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(23, 9), True), (at(23, 17, 59), True), (at(23, 18), False), (at(23, 8, 59), False),
        (at(24, 10), False),  # Tuesday: not a Monday shift
    ],
)
def test_a_day_shift(when: datetime, expected: bool) -> None:
    assert in_shift(0, 9 * 60, 18 * 60, when) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(29, 20), True),  # Sunday 20:00, the shift starts
        (at(29, 23, 59), True),
        (at(30, 0, 0), True),  # past midnight, now Monday: still Sunday's shift
        (at(30, 7, 59), True),
        (at(30, 8, 0), False),
        (at(29, 19, 59), False),
        (at(23, 3), True),  # Monday 03:00 belongs to the previous Sunday's night shift
        (at(24, 3), False),
    ],
)
def test_a_night_shift_across_midnight_and_the_week_boundary(when: datetime,
                                                             expected: bool) -> None:
    assert in_shift(6, 20 * 60, 8 * 60, when) is expected


def test_a_24_hour_shift() -> None:
    assert in_shift(2, 8 * 60, 8 * 60, at(25, 8)) is True
    assert in_shift(2, 8 * 60, 8 * 60, at(26, 7, 59)) is True
    assert in_shift(2, 8 * 60, 8 * 60, at(26, 8)) is False


def test_flood_guard_is_per_sender_and_bounded() -> None:
    guard = FloodGuard(per_minute=3, capacity=100)
    assert all(guard.allow(1, now=t) for t in (0, 1, 2))
    assert not guard.allow(1, now=3)
    assert guard.allow(2, now=3)
    assert guard.allow(1, now=70)  # the window has passed
    for sender in range(1000):
        guard.allow(sender + 10, now=100)
    assert guard.tracked <= 100
    assert guard.should_warn(5, now=0) and not guard.should_warn(5, now=10)


def test_crypto_round_trip_rotation_and_pseudonyms() -> None:
    old = Crypto("o" * 40)
    token = old.encrypt(123456789)
    assert b"123456789" not in token
    rotated = Crypto("n" * 40 + "," + "o" * 40)
    assert rotated.decrypt_int(token) == 123456789
    assert Crypto("n" * 40).decrypt(rotated.rotate(token)) == "123456789"
    assert old.lookup(5) == old.lookup(5) != Crypto("n" * 40).lookup(5)
    assert rotated.lookups(5)[1] == old.lookup(5)
    # The same person within a year, someone else the next year.
    assert old.pseudonym(42, 2026) == old.pseudonym(42, 2026)
    assert old.pseudonym(42, 2026) != old.pseudonym(42, 2027)
    assert old.pseudonym(42, 2026) != old.pseudonym(43, 2026)


