"""Appeals that came by the hotline or in person, recorded by staff into the same anonymous
statistics as the Telegram cases (`/log` in Telegram, `sezim-bot appeal add` for a
spreadsheet), so the annual report counts channels ("926 hotline calls") and every appeal
together.

Anonymous as every appeal: no name, no phone, no text. Nothing ties two offline appeals to
one person, so each counts as one person in the report's "for N people".

Data access: one ORM INSERT of the anonymous appeal record per appeal logged (`insert(Appeal)`
through the session); nothing is read back, no entity is held.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import Settings
from bot.domain.cases import CATEGORIES, FOR_WHOM, OUTCOMES
from models import Appeal

CHANNELS = ("hotline", "walk_in")
# What a recorded appeal's outcome may be: the consultations, not the bot's own outcomes.
OFFLINE_OUTCOMES = tuple(o for o in OUTCOMES if o != "client_left")
CSV_COLUMNS = ("date", "channel", "region", "kind", "for_whom", "outcome")
MAX_ROWS = 100_000


class AppealError(ValueError):
    """A recorded appeal that cannot be taken: says which line and field, and why."""


@dataclass(frozen=True)
class OfflineAppeal:
    day: date
    channel: str
    region: str | None = None
    category: str | None = None
    for_whom: str | None = None
    outcome: str | None = None

    def check(self, settings: Settings) -> None:
        if self.channel not in CHANNELS:
            raise AppealError(f"channel {self.channel!r}: one of {', '.join(CHANNELS)}")
        if self.region is not None and settings.region(self.region) is None:
            codes = ", ".join(r.code for r in settings.regions)
            raise AppealError(f"region {self.region!r}: one of {codes}")
        if self.category is not None and self.category not in CATEGORIES:
            raise AppealError(f"kind {self.category!r}: one of {', '.join(CATEGORIES)}")
        if self.for_whom is not None and self.for_whom not in FOR_WHOM:
            raise AppealError(f"for_whom {self.for_whom!r}: one of {', '.join(FOR_WHOM)}")
        if self.outcome is not None and self.outcome not in OFFLINE_OUTCOMES:
            raise AppealError(f"outcome {self.outcome!r}: one of {', '.join(OFFLINE_OUTCOMES)}")


async def record(session: AsyncSession, appeals: list[OfflineAppeal], *,
                 settings: Settings) -> int:
    """Write the appeals (all or none: the caller's transaction); how many."""
    for appeal in appeals:
        appeal.check(settings)
    if not appeals:
        return 0
    language = settings.organization.default_language
    await session.execute(insert(Appeal), [{
        "day": a.day, "month": a.day.year * 100 + a.day.month,
        # A pseudonym of no one: offline appeals are not linked to each other.
        "person": secrets.randbits(63), "region": a.region, "category": a.category,
        "for_whom": a.for_whom, "urgency": "standard", "language": language,
        "out_of_hours": False, "screen": None, "outcome": a.outcome,
        "minutes_to_reply": None, "rating": None, "channel": a.channel,
    } for a in appeals])
    return len(appeals)


def parse_csv(text: str, settings: Settings) -> list[OfflineAppeal]:
    """Rows of a spreadsheet saved as CSV (comma or semicolon, a BOM from Excel allowed),
    with the columns date, channel, region, kind, for_whom, outcome (empty: not known).
    AppealError names the first bad line and field."""
    text = text.removeprefix("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("date", "channel") if c not in header]
    if missing:
        raise AppealError(f"line 1: the column {missing[0]!r} is missing (columns: "
                          f"{', '.join(CSV_COLUMNS)})")
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise AppealError(f"line 1: unknown column {unknown[0]!r} (columns: "
                          f"{', '.join(CSV_COLUMNS)})")
    appeals: list[OfflineAppeal] = []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        if len(appeals) >= MAX_ROWS:
            raise AppealError(f"more than {MAX_ROWS} rows: split the file")
        try:
            day = date.fromisoformat(row["date"])
        except ValueError:
            raise AppealError(f"line {number}: date {row['date']!r} is not YYYY-MM-DD") \
                from None
        appeal = OfflineAppeal(day, row["channel"].lower(), row.get("region") or None,
                               row.get("kind") or None, row.get("for_whom") or None,
                               row.get("outcome") or None)
        try:
            appeal.check(settings)
        except AppealError as exc:
            raise AppealError(f"line {number}: {exc}") from None
        appeals.append(appeal)
    return appeals
