"""Callback data: one small frozen class per kind of button, one table, one encode and decode.

Telegram hands a tapped button's data back as it was sent, or as anyone chose to forge it,
in at most 64 bytes. Each kind of button is declared once, in `TABLE`, with its compact
prefix and the type of each field; `encode` writes the one form of an object (the prefix,
then the fields, joined by ":"), and `decode` reads it back or returns None for anything
that is not exactly such a form (unknown, garbled, overlong, out of range): it never raises.
Whether a decoded tap is one she may make now (her menu, her case) is for whoever handles it.

Free of Telegram types, like the rest of the domain.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import Any

from bot.core.config import LANGUAGES

MAX_BYTES = 64  # Telegram's limit on callback data
SEPARATOR = ":"


@dataclass(frozen=True)
class Callback:
    """What a button says when tapped: the base of every kind in `TABLE`."""


# ---------------------------------------------------------------------- the client's buttons


@dataclass(frozen=True)
class Exit(Callback):
    """Quick exit, on every message she gets."""


@dataclass(frozen=True)
class ChooseCodeWord(Callback):
    """The offer to choose a code word."""


@dataclass(frozen=True)
class RaiseUrgency(Callback):
    """"I'm in danger now", under the numbers a danger word brought while she waits."""


@dataclass(frozen=True)
class CheckInTime(Callback):
    """Her answer to the offer of a check-in after case `case_id`: a slot, or "no"."""

    case_id: int
    slot: str


@dataclass(frozen=True)
class CheckInReply(Callback):
    """Her answer to the check-in itself: "ok", or "talk"."""

    case_id: int
    answer: str


@dataclass(frozen=True)
class Danger(Callback):
    """Is she in danger now: "yes" or "no"."""

    answer: str


@dataclass(frozen=True)
class Library(Callback):
    """The library of topics."""


@dataclass(frozen=True)
class Topic(Callback):
    """One topic of the library."""

    topic: str


@dataclass(frozen=True)
class Language(Callback):
    code: str


@dataclass(frozen=True)
class Home(Callback):
    pass


@dataclass(frozen=True)
class Write(Callback):
    """After the emergency numbers: does she want a specialist to write ("yes", "no")."""

    answer: str


@dataclass(frozen=True)
class Safety(Callback):
    """Does anyone else read this phone: "shared" or "private"."""

    answer: str


@dataclass(frozen=True)
class Skip(Callback):
    pass


@dataclass(frozen=True)
class Back(Callback):
    pass


@dataclass(frozen=True)
class ForWhom(Callback):
    whom: str


@dataclass(frozen=True)
class Category(Callback):
    code: str


@dataclass(frozen=True)
class Region(Callback):
    code: str


@dataclass(frozen=True)
class StartScreening(Callback):
    """The danger screen's first question."""


@dataclass(frozen=True)
class Answer(Callback):
    """Her answer to question `question` of the danger screen."""

    question: int
    yes: bool


@dataclass(frozen=True)
class Contact(Callback):
    """How she would like to be reached (`cases.CONTACTS`)."""

    way: str


@dataclass(frozen=True)
class Time(Callback):
    """A time for a specialist to write or call (`hours.Slot.code`)."""

    slot: str


@dataclass(frozen=True)
class Send(Callback):
    """"Yes, send" under the summary of her request."""


@dataclass(frozen=True)
class End(Callback):
    """She ends the conversation, or withdraws her request."""


@dataclass(frozen=True)
class Rate(Callback):
    stars: int


@dataclass(frozen=True)
class Forget(Callback):
    """/forget confirmed ("yes") or not ("no")."""

    answer: str


@dataclass(frozen=True)
class AutoDelete(Callback):
    """Her messages delete themselves after `minutes` (0: never)."""

    minutes: int


# ---------------------------------------------------------------------- staff's buttons


@dataclass(frozen=True)
class Take(Callback):
    case_id: int


@dataclass(frozen=True)
class Pass(Callback):
    case_id: int


@dataclass(frozen=True)
class Close(Callback):
    """Close `case_id` with `outcome` (`cases.OUTCOMES`)."""

    case_id: int
    outcome: str


@dataclass(frozen=True)
class Called(Callback):
    """A call case: she was reached; the outcome is asked next."""

    case_id: int


@dataclass(frozen=True)
class NoAnswer(Callback):
    case_id: int


@dataclass(frozen=True)
class TryLater(Callback):
    case_id: int


@dataclass(frozen=True)
class OfferCheckIn(Callback):
    case_id: int


@dataclass(frozen=True)
class HandOverTo(Callback):
    """Offer `case_id` to the colleague `staff_id`."""

    case_id: int
    staff_id: int


@dataclass(frozen=True)
class HandOverToRole(Callback):
    """Offer `case_id` to everyone of `role` on duty."""

    case_id: int
    role: str


@dataclass(frozen=True)
class TakeOver(Callback):
    handover_id: int


@dataclass(frozen=True)
class QuickReply(Callback):
    """One of the center's quick replies, to the client of `case_id`."""

    case_id: int
    reply: str


@dataclass(frozen=True)
class QuickTopic(Callback):
    """A topic of the library, to the client of `case_id`."""

    case_id: int
    topic: str


@dataclass(frozen=True)
class UseCase(Callback):
    """Make `case_id` the case her plain messages go to."""

    case_id: int


@dataclass(frozen=True)
class LogAppeal(Callback):
    """/log: the channel ("h" hotline, "w" walk-in) and the choices so far, each an index
    into its question's list or None (skipped)."""

    channel: str
    picks: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class StatsView(Callback):
    """/stats for `period`, broken down `by`."""

    period: str
    by: str


# ---------------------------------------------------------------------- field types


@dataclass(frozen=True)
class Number:
    """A non-negative integer in ASCII digits, within `low`..`high` (a database integer)."""

    low: int = 0
    high: int = 2**31 - 1
    python_type: Any = int

    def read(self, text: str) -> int | None:
        if not (0 < len(text) <= len(str(self.high)) and text.isascii() and text.isdigit()):
            return None
        value = int(text)
        return value if self.low <= value <= self.high else None

    def write(self, value: Any) -> str:
        return str(value)

    def widest(self) -> int:
        return self.high


@dataclass(frozen=True)
class Text:
    """A string matching `pattern` (ASCII); `widest` is the longest it can be."""

    pattern: str = r"[a-z0-9_]{1,24}"
    widest_value: str = "a" * 24
    python_type: Any = str

    def read(self, text: str) -> str | None:
        return text if re.fullmatch(self.pattern, text, re.ASCII) else None

    def write(self, value: Any) -> str:
        return str(value)

    def widest(self) -> str:
        return self.widest_value


def one_of(*values: str) -> Text:
    return Text("|".join(re.escape(v) for v in values), max(values, key=len))


@dataclass(frozen=True)
class Flag:
    """A bool, written `yes` or `no`."""

    yes: str = "y"
    no: str = "n"
    python_type: Any = bool

    def read(self, text: str) -> bool | None:
        return True if text == self.yes else False if text == self.no else None

    def write(self, value: Any) -> str:
        return self.yes if value else self.no

    def widest(self) -> bool:
        return len(self.yes) >= len(self.no)


@dataclass(frozen=True)
class Picks:
    """The last field only: up to `most` indices below `below`, each or `-` (None)."""

    most: int
    below: int = 100
    python_type: Any = tuple[int | None, ...]

    def read_all(self, texts: list[str]) -> tuple[int | None, ...] | None:
        if len(texts) > self.most:
            return None
        picks: list[int | None] = []
        for text in texts:
            number = None if text == "-" else Number(high=self.below - 1).read(text)
            if number is None and text != "-":
                return None
            picks.append(number)
        return tuple(picks)

    def write_all(self, value: tuple[int | None, ...]) -> list[str]:
        return ["-" if v is None else str(v) for v in value]

    def widest(self) -> tuple[int | None, ...]:
        return (self.below - 1,) * self.most


Scalar = Number | Text | Flag
Spec = Scalar | Picks

ID = Number(low=1)
WORD = Text()
# Ids of the center's texts (topics, quick replies) and of regions: letters, digits, "_".
CONTENT_ID = Text(r"[A-Za-z0-9_]{1,32}", "a" * 32)
YES_NO = one_of("yes", "no")


@dataclass(frozen=True)
class Kind:
    """One kind of button: its prefix, its class, its fields' types in the class's order."""

    prefix: str
    cls: type[Callback]
    fields: tuple[tuple[str, Spec], ...]


def _kind(prefix: str, cls: type[Callback], **fields: Spec) -> Kind:
    return Kind(prefix, cls, tuple(fields.items()))


# Every kind of button in the project, once. "c:" the client's, "s:" staff's: the handlers
# route on the side's prefix (`CLIENT_PATTERN`, `staff_pattern`).
TABLE: tuple[Kind, ...] = (
    # The client's.
    _kind("c:exit", Exit),
    _kind("c:codeword", ChooseCodeWord),
    _kind("c:raise", RaiseUrgency),
    _kind("c:ci", CheckInTime, case_id=ID, slot=Text(r"no|\dd\d\d", "3d11")),
    _kind("c:ck", CheckInReply, case_id=ID, answer=one_of("ok", "talk")),
    _kind("c:danger", Danger, answer=YES_NO),
    _kind("c:info", Library),
    _kind("c:res", Topic, topic=CONTENT_ID),
    _kind("c:lang", Language, code=one_of(*LANGUAGES)),
    _kind("c:home", Home),
    _kind("c:write", Write, answer=YES_NO),
    _kind("c:safe", Safety, answer=one_of("shared", "private")),
    _kind("c:skip", Skip),
    _kind("c:back", Back),
    _kind("c:for", ForWhom, whom=WORD),
    _kind("c:cat", Category, code=WORD),
    _kind("c:reg", Region, code=CONTENT_ID),
    _kind("c:scr", StartScreening),
    _kind("c:q", Answer, question=Number(low=1, high=99), yes=Flag()),
    _kind("c:ct", Contact, way=WORD),
    _kind("c:tm", Time, slot=Text(r"r\d|a\d{12}", "a" + "0" * 12)),
    _kind("c:ok", Send),
    _kind("c:end", End),
    _kind("c:rate", Rate, stars=Number(low=1, high=5)),
    _kind("c:fg", Forget, answer=YES_NO),
    _kind("c:ad", AutoDelete, minutes=Number(high=1440)),
    # Staff's.
    _kind("s:take", Take, case_id=ID),
    _kind("s:pass", Pass, case_id=ID),
    _kind("s:close", Close, case_id=ID, outcome=WORD),
    _kind("s:called", Called, case_id=ID),
    _kind("s:noanswer", NoAnswer, case_id=ID),
    _kind("s:later", TryLater, case_id=ID),
    _kind("s:ci", OfferCheckIn, case_id=ID),
    _kind("s:hv", HandOverTo, case_id=ID, staff_id=ID),
    _kind("s:hr", HandOverToRole, case_id=ID, role=WORD),
    _kind("s:ht", TakeOver, handover_id=ID),
    _kind("s:qr", QuickReply, case_id=ID, reply=CONTENT_ID),
    _kind("s:qt", QuickTopic, case_id=ID, topic=CONTENT_ID),
    _kind("s:use", UseCase, case_id=ID),
    _kind("s:lg", LogAppeal, channel=one_of("h", "w"), picks=Picks(most=4)),
    _kind("s:st", StatsView, period=WORD, by=WORD),
)

_BY_PREFIX = {kind.prefix: kind for kind in TABLE}
_BY_CLASS = {kind.cls: kind for kind in TABLE}


def kind_of(cls: type[Callback]) -> Kind:
    return _BY_CLASS[cls]


def encode(data: Callback) -> str:
    """The callback data of a button saying `data`."""
    kind = _BY_CLASS[type(data)]
    parts = [kind.prefix]
    for (_name, spec), value in zip(kind.fields, dataclasses.astuple(data), strict=True):
        if isinstance(spec, Picks):
            parts += spec.write_all(value)
        else:
            parts.append(spec.write(value))
    return SEPARATOR.join(parts)


def decode(data: object) -> Callback | None:
    """What a tapped button says, or None for anything no button of ours carries."""
    if not isinstance(data, str) or not data.isascii() or len(data) > MAX_BYTES:
        return None
    parts = data.split(SEPARATOR)
    kind = _BY_PREFIX.get(SEPARATOR.join(parts[:2]))
    if kind is None:
        return None
    texts = parts[2:]
    scalars = [(name, spec) for name, spec in kind.fields if not isinstance(spec, Picks)]
    rest = [(name, spec) for name, spec in kind.fields if isinstance(spec, Picks)]
    if len(texts) < len(scalars) or (not rest and len(texts) > len(scalars)):
        return None
    values: dict[str, Any] = {}
    for (name, scalar), text in zip(scalars, texts, strict=False):
        values[name] = scalar.read(text)
    for name, picks in rest:  # the last field, if any: whatever parts are left
        values[name] = picks.read_all(texts[len(scalars):])
    if any(value is None for value in values.values()):
        return None
    result = kind.cls(**values)
    # One form for each: "c:rate:05" or "c:q:1:y:" is no button's.
    return result if encode(result) == data else None


def _prefixes(classes: tuple[type[Callback], ...]) -> str:
    return "(?:" + "|".join(re.escape(_BY_CLASS[c].prefix) for c in classes) + f")(?:{SEPARATOR}|$)"


def pattern(*classes: type[Callback]) -> str:
    """A regular expression matching data that begins as the kinds `classes` do (whether
    it decodes or not: the handler answers a forged one), for routing."""
    return "^" + _prefixes(classes)


def staff_pattern(*but: type[Callback]) -> str:
    """A regular expression matching staff's data ("s:..."), but for the kinds `but`."""
    return "^" + (f"(?!{_prefixes(but)})" if but else "") + re.escape("s" + SEPARATOR)


# Every tap on the client's side ("c:..."), a kind of hers or forged.
CLIENT_PATTERN = "^" + re.escape("c" + SEPARATOR)


def widest(cls: type[Callback]) -> Callback:
    """The kind `cls` with every field at its longest: its longest encoding."""
    kind = _BY_CLASS[cls]
    return kind.cls(**{name: spec.widest() for name, spec in kind.fields})


def _check_table() -> None:
    """Each kind's fields are its class's, in order, with the types the table says; every
    prefix is two parts; the widest encoding fits Telegram's limit."""
    assert len(_BY_PREFIX) == len(TABLE) and len(_BY_CLASS) == len(TABLE)
    for kind in TABLE:
        hints = typing.get_type_hints(kind.cls)
        names = [f.name for f in dataclasses.fields(kind.cls)]
        assert names == [name for name, _ in kind.fields], kind.prefix
        assert all(hints[name] == spec.python_type for name, spec in kind.fields), kind.prefix
        assert all(isinstance(spec, Picks) == (index == len(kind.fields) - 1)
                   for index, (_, spec) in enumerate(kind.fields)
                   if isinstance(spec, Picks)), kind.prefix
        assert len(kind.prefix.split(SEPARATOR)) == 2, kind.prefix
        assert kind.prefix.split(SEPARATOR)[0] in ("c", "s"), kind.prefix
        assert len(encode(widest(kind.cls)).encode("utf-8")) <= MAX_BYTES, kind.prefix


_check_table()
