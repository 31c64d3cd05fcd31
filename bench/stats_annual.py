"""How long a year's report takes over many appeal records (SQLite by default).

    .venv/bin/python bench/stats_annual.py [--records 1000000] [--database-url URL]

Generates the records (a year, 11 regions, every category, urgency and outcome, a pool of
distinct people), then times the annual report and a region breakdown through the same
code `sezim-bot stats` runs. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.core.config import DEFAULT_REGIONS, Settings
from bot.core.db import create_engine, sessionmaker
from bot.core.i18n import Texts
from bot.core.migrate import upgrade
from bot.domain import stats

CATEGORIES = ("psych", "legal", "shelter", "child", "other", None)
OUTCOMES = ("legal", "psych", "child_psych", "shelter", "court_civil", "court_criminal",
            "referral", "no_contact", None)


def rows(n: int, year: int, seed: int = 1) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    regions = [r.code for r in DEFAULT_REGIONS]
    people = [rng.getrandbits(63) for _ in range(max(1, n // 3))]
    start = date(year, 1, 1)
    out = []
    for _ in range(n):
        urgency = rng.choice(("emergency", "high", "standard", "standard"))
        day = start + timedelta(days=rng.randrange(365))
        out.append((
            day.isoformat(), day.year * 100 + day.month, rng.choice(people),
            rng.choice(regions), rng.choice(CATEGORIES), rng.choice(("me", "child", "other")),
            urgency, rng.choice(("ru", "ky", "en")), rng.random() < 0.4,
            rng.choice((None, "screened_in", "not_screened_in")), rng.choice(OUTCOMES),
            rng.randrange(0, 90) if rng.random() < 0.8 else None,
        ))
    return out


async def prepare(url: str, n: int, year: int) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    data = rows(n, year)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        # Raw sqlite3 for the bulk load only: generating the data is not what is measured.
        await engine.dispose()
        conn = sqlite3.connect(str(parsed.database))
        conn.executemany(
            "INSERT INTO appeals (day, month, person, region, category, for_whom, urgency,"
            " language, out_of_hours, screen, outcome, minutes_to_reply)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            data)
        conn.commit()
        # No ANALYZE, as the bot never runs it: without statistics SQLite's planner answers
        # each query from its covering index; with them it prefers skip-scans of a day
        # index that read table rows (7.4 s instead of 1.0 s for the same queries).
        conn.close()
        return
    await engine.dispose()
    # PostgreSQL: COPY for the bulk load, then VACUUM ANALYZE as autovacuum would, so the
    # visibility map allows index-only scans.
    import asyncpg

    keys = ["day", "month", "person", "region", "category", "for_whom", "urgency", "language",
            "out_of_hours", "screen", "outcome", "minutes_to_reply"]
    records = [(date.fromisoformat(str(r[0])), *r[1:]) for r in data]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.copy_records_to_table("appeals", records=records, columns=keys)
        await conn.execute("VACUUM ANALYZE appeals")
    finally:
        await conn.close()


async def measure(url: str, year: int, repeats: int) -> dict[str, float]:
    engine = create_engine(url)
    sessions = sessionmaker(engine)
    texts = Texts(Settings())
    start, end = date(year, 1, 1), date(year, 12, 31)
    timings: dict[str, list[float]] = {"annual_report": [], "breakdown_region": [],
                                       "breakdown_region_month": []}
    for _ in range(repeats):
        async with sessions() as session:
            t0 = time.perf_counter()
            await stats.annual_report(session, start=start, end=end, texts=texts,
                                      language="en")
            timings["annual_report"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await stats.breakdown(session, start=start, end=end, by=["region"])
            timings["breakdown_region"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await stats.breakdown(session, start=start, end=end, by=["region", "month"])
            timings["breakdown_region_month"].append(time.perf_counter() - t0)
    await engine.dispose()
    return {k: statistics.median(v) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        asyncio.run(prepare(url, args.records, 2026))
        load = time.perf_counter() - t0
        result = asyncio.run(measure(url, 2026, args.repeats))
    print(f"{args.records:,} appeal records ({make_url(url).get_backend_name()}), "
          f"loaded in {load:.1f} s; median of {args.repeats} runs:")
    for name, seconds in result.items():
        print(f"  {name:<24} {seconds * 1000:8.0f} ms")
    print(json.dumps({"records": args.records, "backend": make_url(url).get_backend_name(),
                      "seconds": {k: round(v, 4) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
