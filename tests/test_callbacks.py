"""Callback data (bot/domain/callbacks.py): every kind round-trips, fits Telegram's 64 bytes
at its longest, and anything forged or garbled reads as None, never an exception."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import callbacks as cb

KINDS = [kind.cls for kind in cb.TABLE]
SHORT = ("a", "h", "w", "r1", "no", "ok", "ky", "ru", "en", "yes", "talk", "3d11", "shared")


def _narrowest(cls: type[cb.Callback]) -> cb.Callback:
    """The kind `cls` with each field at a short value of its type."""
    values: dict[str, object] = {}
    for name, spec in cb.kind_of(cls).fields:
        if isinstance(spec, cb.Picks):
            values[name] = ()
        elif isinstance(spec, cb.Number):
            values[name] = spec.low
        elif isinstance(spec, cb.Flag):
            values[name] = False
        else:
            values[name] = min((c for c in (*SHORT, spec.widest()) if spec.read(c) is not None),
                               key=len)
    return cls(**values)


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.__name__)
def test_every_kind_round_trips_and_fits_at_its_longest(cls: type[cb.Callback]) -> None:
    for data in (cb.widest(cls), _narrowest(cls)):
        encoded = cb.encode(data)
        assert cb.decode(encoded) == data, encoded
        assert encoded.startswith(cb.kind_of(cls).prefix)
    longest = cb.encode(cb.widest(cls))
    assert len(longest.encode("utf-8")) <= cb.MAX_BYTES, longest


def test_each_kind_is_declared_once_with_its_classes_fields() -> None:
    assert len({k.prefix for k in cb.TABLE}) == len({k.cls for k in cb.TABLE}) == len(cb.TABLE)
    for kind in cb.TABLE:
        assert [f.name for f in dataclasses.fields(kind.cls)] == [n for n, _ in kind.fields]


@pytest.mark.parametrize("data", [
    "", "garbage", "c:", "s:", "c::", "c:nonsense", "x:take:1", "c:exit:", "c:exit:1",
    "s:take:", "s:take:-1", "s:take:0", "s:take:²", "s:take:١٢", "s:take:" + "9" * 40,
    "s:take:2147483648", "s:take:01", "s:take:1:", "s:take:1:2", "s:take: 1",
    "c:rate:²", "c:rate:0", "c:rate:6", "c:rate:05", "c:q:²:y", "c:q:" + "9" * 40 + ":y",
    "c:q:100:y", "c:q:1:yes", "c:q:1", "c:danger:maybe", "c:danger:YES", "c:lang:xx",
    "c:res:../../etc/passwd", "c:res:a-b", "c:reg:mars:1", "c:tm:b1", "c:tm:a1",
    "c:ad:-60", "c:ad:1441", "s:close:1", "s:close:1:legal:x", "s:close:1:Legal",
    "s:lg:x", "s:lg:h:1:2:3:4:5", "s:lg:h:1:-:x", "s:lg:h:100", "s:lg:h:", "s:st:²",
    "s:st:this_year", "c:" + "x" * 62, "s:qr:1:" + "a" * 60, "c:ci:1:3d11\n",
    "c:ck:1:ok\u0000", "с:exit",  # the last with a Cyrillic "с"
])
def test_forged_or_garbled_data_reads_as_nothing(data: str) -> None:
    assert cb.decode(data) is None


def test_what_is_not_text_reads_as_nothing() -> None:
    assert cb.decode(None) is None
    assert cb.decode(b"c:exit") is None
    assert cb.decode(12) is None


@given(st.text(max_size=80) | st.from_regex(r"\A[cs]:[a-z]{1,8}(:[a-z0-9_²-]{0,6}){0,5}\Z"))
def test_any_text_decodes_without_raising_and_only_to_its_one_form(data: str) -> None:
    decoded = cb.decode(data)
    if decoded is not None:
        assert cb.encode(decoded) == data
        assert len(data.encode("utf-8")) <= cb.MAX_BYTES


def test_routing_patterns_separate_the_sides_and_the_kinds() -> None:
    cards = cb.staff_pattern(cb.LogAppeal, cb.StatsView)
    stats = cb.pattern(cb.StatsView)
    log = cb.pattern(cb.LogAppeal)
    for data, routes in [
        (cb.encode(cb.Take(1)), {cards}), (cb.encode(cb.StatsView("this_year", "region")),
                                           {stats}),
        (cb.encode(cb.LogAppeal("h", (1, None))), {log}), ("s:st:²", {stats}),
        ("s:zzz:1", {cards}), (cb.encode(cb.Exit()), {cb.CLIENT_PATTERN}),
        ("c:nonsense", {cb.CLIENT_PATTERN}), ("garbage", set()),
    ]:
        matched = {p for p in (cards, stats, log, cb.CLIENT_PATTERN) if re.match(p, data)}
        assert matched == routes, data


def test_todays_forms_are_kept() -> None:
    """Buttons already in chats keep working after an upgrade."""
    assert cb.decode("c:danger:yes") == cb.Danger("yes")
    assert cb.decode("c:q:3:n") == cb.Answer(3, yes=False)
    assert cb.decode("c:lang:ky") == cb.Language("ky")
    assert cb.decode("c:ci:12:3d11") == cb.CheckInTime(12, "3d11")
    assert cb.decode("s:take:12") == cb.Take(12)
    assert cb.decode("s:close:12:legal") == cb.Close(12, "legal")
    assert cb.decode("s:lg:h:0:-:3") == cb.LogAppeal("h", (0, None, 3))
    assert cb.decode("s:st:this_year:region") == cb.StatsView("this_year", "region")
