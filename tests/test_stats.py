"""Statistics: breakdowns with known answers, distinct people, the yearly pseudonym,
suppression that cannot be undone, outputs that agree, charts, and who may see them."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.crypto import Crypto
from bot.core.db import create_engine, sessionmaker
from bot.core.i18n import Texts
from bot.core.migrate import upgrade
from bot.dev.harness import Harness
from bot.domain import charts, sample, stats
from bot.domain.cases import create_case
from models import Appeal, Client, Urgency
from tests.helpers import t
from tests.test_config import run_cli

CRYPTO = Crypto("s" * 40)


@pytest.fixture
async def db(db_url: str) -> Any:
    engine = create_engine(db_url)
    await upgrade(engine)
    yield sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def year_2020(db: Any) -> Any:
    rows = sample.appeals_2020(CRYPTO)
    async with db() as session, session.begin():
        await session.execute(insert(Appeal), rows)
    return db, rows


async def test_every_breakdown_matches_the_records(year_2020: Any) -> None:
    db, rows = year_2020
    for dim in ("region", "category", "urgency", "language", "outcome", "for_whom",
                "out_of_hours", "screen", "month"):
        async with db() as session:
            result = await stats.breakdown(session, start=date(2020, 1, 1),
                                           end=date(2020, 12, 31), by=[dim])

        def key(row: dict[str, Any], dim: str = dim) -> str | None:
            if dim == "month":
                return row["day"].strftime("%Y-%m")
            value = row[dim]
            if isinstance(value, bool):
                return "yes" if value else "no"
            return value

        expected_appeals = Counter(key(r) for r in rows)
        expected_people = {k: len({r["person"] for r in rows if key(r) == k})
                           for k in expected_appeals}
        assert {k[0]: v[0] for k, v in result.cells.items()} == dict(expected_appeals), dim
        assert {k[0]: v[1] for k, v in result.cells.items()} == expected_people, dim
        assert result.total == (len(rows), len({r["person"] for r in rows}))


async def test_two_dimensions_and_a_period(year_2020: Any) -> None:
    db, rows = year_2020
    async with db() as session:
        result = await stats.breakdown(session, start=sample.EMERGENCY_START,
                                       end=sample.EMERGENCY_END, by=["region", "category"])
    inside = [r for r in rows if sample.EMERGENCY_START <= r["day"] <= sample.EMERGENCY_END]
    assert result.total[0] == sample.EMERGENCY_APPEALS == len(inside) == 115
    # "115 appeals were received from all regions of Kyrgyzstan".
    assert set(sample.OBLASTS_AND_CITIES) <= {k[0] for k in result.cells}
    expected = Counter((r["region"], r["category"]) for r in inside)
    assert {k: v[0] for k, v in result.cells.items()} == dict(expected)


async def test_the_annual_report_gives_the_centers_figures(year_2020: Any) -> None:
    db, _ = year_2020
    texts = Texts(Settings())
    async with db() as session:
        grids = await stats.annual_report(session, start=date(2020, 1, 1),
                                          end=date(2020, 12, 31), texts=texts, language="en")
    text = stats.report_text(grids, "2020")
    assert "410 consultations for 297 people" in text
    assert "537 consultations for 305 people" in text
    # The child psychologist's, as the report gives them: parents and children apart.
    assert "92 consultations for 81 people" in text and "52 consultations for 40 people" in text
    assert "144 consultations" not in text
    # Every line of the report's "Our services" the records can give.
    assert "19 consultations for 19 people" in text and "7 consultations for 7 people" in text
    assert "5 consultations for 5 people" in text and "6 consultations for 6 people" in text
    assert "56 consultations for 56 people" in text  # the transit home
    channels = next(g for g in grids if g.title == texts.t("en", "report_by_channel"))
    assert [texts.t("en", "channel_hotline"), "926"] in channels.rows
    assert channels.rows[-1][1] == "2110"  # every appeal, all channels together
    shares = next(g for g in grids if g.title == texts.t("en", "report_shares"))
    assert shares.rows[0][1] == "2110"
    reply = next(g for g in grids if g.title == texts.t("en", "report_reply_times"))
    emergency = reply.rows[0]
    assert int(emergency[1]) > 0 and 0 <= float(emergency[2]) <= float(emergency[3]) <= 6


async def test_distinct_people_across_cases_and_the_yearly_pseudonym(db: Any) -> None:
    """One woman, three cases in 2026 and one in 2027: one person each year, two in all."""
    settings = Settings()
    clock = FakeClock(datetime(2026, 3, 1, 8, tzinfo=UTC))
    async with db() as session, session.begin():
        client = Client(chat_hmac=CRYPTO.lookup(77), chat_id_enc=CRYPTO.encrypt(77),
                        language="ky", step="new", step_data={}, created_at=clock.now(),
                        last_seen_at=clock.now())
        session.add(client)
        await session.flush()
        for when in (datetime(2026, 3, 1, 8, tzinfo=UTC), datetime(2026, 7, 1, 8, tzinfo=UTC),
                     datetime(2026, 12, 31, 18, 30, tzinfo=UTC),  # 00:30 on 1 January in Bishkek
                     datetime(2026, 12, 1, 8, tzinfo=UTC)):
            await create_case(session, client=client, telegram_id=77, crypto=CRYPTO,
                              settings=settings, now=when, urgency=Urgency.STANDARD,
                              category="psych")
    async with db() as session:
        y2026 = await stats.breakdown(session, start=date(2026, 1, 1), end=date(2026, 12, 31),
                                      by=["category"])
        y2027 = await stats.breakdown(session, start=date(2027, 1, 1), end=date(2027, 12, 31),
                                      by=["category"])
        both = await stats.breakdown(session, start=date(2026, 1, 1), end=date(2027, 12, 31),
                                     by=["category"])
    assert y2026.total == (3, 1)
    assert y2027.total == (1, 1)
    assert both.total == (4, 2)  # the pseudonym rotated: unlinkable across years
    assert CRYPTO.pseudonym(77, 2026) != CRYPTO.pseudonym(77, 2027)


def _lines(grid: stats.Grid) -> list[list[str]]:
    """Every row and column of a two-dimensional grid's body, totals included."""
    body = [row[1:] for row in grid.rows]
    return body + [list(col) for col in zip(*body, strict=True)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=2, max_size=6), min_size=2, max_size=6)
       .filter(lambda m: len({len(r) for r in m}) == 1))
def test_no_suppressed_cell_can_be_recovered_from_totals(matrix: list[list[int]]) -> None:
    result = stats.Breakdown(dims=["region", "month"], start=date(2026, 1, 1),
                             end=date(2026, 12, 31))
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            result.cells[(f"r{r}", f"2026-{c + 1:02d}")] = (value, value)
    grid = stats.grid(result, external=True)
    flat = [cell for row in grid.rows for cell in row[1:]]
    numbers = [int(c) for c in flat if c != stats.SUPPRESSED]
    assert all(n >= stats.SUPPRESS_BELOW for n in numbers)  # nothing small is shown
    for line in _lines(grid):
        hidden = line.count(stats.SUPPRESSED)
        assert hidden != 1, f"one hidden cell is given away by its line: {line}"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12))
def test_one_dimension_suppression_keeps_the_total_safe(values: list[int]) -> None:
    result = stats.Breakdown(dims=["region"], start=date(2026, 1, 1), end=date(2026, 12, 31))
    for i, v in enumerate(values):
        result.cells[(f"r{i}",)] = (v, v)
    result.total = (sum(values), sum(values))
    grid = stats.grid(result, external=True)
    column = [row[1] for row in grid.rows]
    assert column.count(stats.SUPPRESSED) != 1
    assert all(c == stats.SUPPRESSED or int(c) >= 5 for c in column)


async def test_csv_json_and_table_agree(year_2020: Any, tmp_path: Path) -> None:
    db, _ = year_2020
    async with db() as session:
        result = await stats.breakdown(session, start=date(2020, 1, 1),
                                       end=date(2020, 12, 31), by=["region", "urgency"])
    texts = Texts(Settings())
    for external in (False, True):
        grid = stats.grid(result, texts=texts, language="ru", external=external)
        from_csv = list(csv.reader(io.StringIO(grid.csv())))
        assert from_csv == [grid.header, *grid.rows]
        from_json = json.loads(stats.breakdown_json(grid, result=result, external=external))
        # For machines: codes as keys, numbers as numbers, null where suppressed.
        records = [*from_json["rows"], from_json["total"]]
        assert [[r[k] for k in grid.column_keys] for r in records] == grid.values
        assert all(isinstance(r[k], int) or r[k] is None
                   for r in records for k in grid.column_keys)
        assert [from_json["labels"]["region"][r["region"]] for r in records] == \
            [row[0] for row in grid.rows]
        assert [[("<5" if v is None else str(v)) for v in values] for values in grid.values] \
            == [row[1:] for row in grid.rows]
        table = grid.text()
        for row in grid.rows:
            line = next(x for x in table.splitlines() if x.startswith(row[0]))
            assert line.split()[-len(row) + 1:] == row[1:] or all(c in line for c in row)
    assert "г. Бишкек" in grid.text()


def test_the_chart_is_a_real_png_with_labels_in_the_chosen_language(tmp_path: Path) -> None:
    from PIL import Image

    texts = Texts(Settings())
    result = stats.Breakdown(dims=["region"], start=date(2026, 1, 1), end=date(2026, 3, 31),
                             cells={("bishkek",): (40, 31), ("naryn",): (7, 7),
                                    ("issyk_kul",): (12, 9)}, total=(59, 47))
    grid = stats.grid(result, texts=texts, language="ky")
    assert [row[0] for row in grid.rows] == ["Бишкек шаары", "Ысык-Көл облусу",
                                             "Нарын облусу", "Бардыгы"]
    png = charts.bar_chart(grid)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    path = tmp_path / "chart.png"
    path.write_bytes(png)
    with Image.open(path) as image:
        assert image.width >= 600 and image.height >= 250
        # Not a blank canvas: bars and text were drawn.
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 20


async def test_stats_and_export_only_for_coordinators_and_admins(harness: Harness) -> None:
    assert harness.app is not None
    async with harness.app.bot_data.sessions() as session, session.begin():
        rows = sample.appeals_2020(harness.app.bot_data.crypto)
        await session.execute(insert(Appeal), rows)
    psychologist = await harness.add_staff("Nazira", ["psychologist"])
    await psychologist.send("/stats")
    (reply,) = await psychologist.wait_reply()
    assert reply.plain() == t(harness, None, "not_allowed")
    await psychologist.send("/export")
    (reply,) = await psychologist.wait_reply()
    assert reply.plain() == t(harness, None, "not_allowed")
    stranger = harness.phone("Stranger", language_code="en")
    await stranger.send("/stats")
    (reply,) = await stranger.wait_reply()
    assert reply.plain() == t(harness, "en", "not_staff")
    cq = await stranger.press_data(reply, "s:st:this_year:region")
    await harness.settle()
    assert "Appeals" not in stranger.text()
    assert cq in harness.emulator.callback_answers

    coordinator = await harness.add_staff("Gulnara", ["coordinator"], on_duty=None)
    await coordinator.send("/stats 2020-01-01 2020-12-31 category")
    chart, table = await coordinator.wait_reply(2)
    assert chart.media and chart.media["type"] == "photo"
    assert "Юридическая" in table.plain() and "2110" in table.plain()
    await coordinator.send("/export 2020-03-25 2020-05-10 region external")
    (document,) = await coordinator.wait_reply()
    assert document.media and document.media["type"] == "document"
    assert "5" in (document.caption or "")


def test_cli_stats_formats_and_the_annual_report(tmp_path: Path) -> None:
    import asyncio

    secret = secrets.token_urlsafe(48)
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"

    async def fill() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        async with sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(Appeal), sample.appeals_2020(Crypto(secret)))
        await engine.dispose()

    asyncio.run(fill())
    env = {"SEZIM_SECRET_KEY": secret, "SEZIM_DATABASE_URL": url}
    base = ["stats", "--from", "2020-01-01", "--to", "2020-12-31", "--language", "en"]
    table = run_cli(*base, "--by", "region", env=env, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "Bishkek city" in table.stdout and "2110" in table.stdout
    as_json = json.loads(run_cli(*base, "--format", "json", env=env, cwd=tmp_path).stdout)
    as_csv = list(csv.reader(io.StringIO(run_cli(*base, "--format", "csv", env=env,
                                                 cwd=tmp_path).stdout)))
    records = [*as_json["rows"], as_json["total"]]
    assert as_csv[1:] == [[as_json["labels"]["region"][r["region"]], str(r["appeals"]),
                           str(r["people"])] for r in records]
    # An empty period, by two dimensions, is a table of zeros (it crashed once).
    empty = run_cli("stats", "--from", "2019-01-01", "--to", "2019-12-31", "--by",
                    "outcome,for_whom", env=env, cwd=tmp_path)
    assert empty.returncode == 0, empty.stderr
    # A CSV file opens in Excel with its letters right: UTF-8 with a byte-order mark.
    run_cli(*base, "--format", "csv", "--out", str(tmp_path / "f.csv"), env=env, cwd=tmp_path)
    assert (tmp_path / "f.csv").read_bytes().startswith("\ufeff".encode())
    report = run_cli(*base, "--report", "annual", env=env, cwd=tmp_path)
    assert "410 consultations for 297 people" in report.stdout
    # The report as JSON: stable English names and codes, numbers as numbers, totals apart,
    # whatever the labels' language.
    annual = json.loads(run_cli("stats", "--from", "2020-01-01", "--to", "2020-12-31",
                                "--language", "ky", "--report", "annual", "--format", "json",
                                env=env, cwd=tmp_path).stdout)
    sections = {sec["section"]: sec for sec in annual["sections"]}
    assert {"row": "legal", "consultations": 410, "people": 297} in sections["services"]["rows"]
    assert {"row": "hotline", "appeals": 926} in sections["by_channel"]["rows"]
    assert sections["by_region"]["total"] == {"row": "total", "appeals": 2110}
    assert all(r["row"] != "total" for r in sections["by_region"]["rows"])
    external = run_cli("stats", "--from", "2020-03-25", "--to", "2020-05-10", "--by",
                       "region,month", "--external", env=env, cwd=tmp_path)
    assert "<5" in external.stdout
    png = run_cli(*base, "--format", "png", "--out", str(tmp_path / "c.png"), env=env,
                  cwd=tmp_path)
    assert png.returncode == 0 and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    bad = run_cli(*base, "--by", "shoe_size", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    # The annual report as one PDF: its pages (the lines, then two charts), and the
    # external one made too; a CSV for Excel on the terminal, with --excel.
    for extra, name in (([], "r.pdf"), (["--external"], "x.pdf")):
        pdf = run_cli(*base, "--report", "annual", "--format", "pdf", "--out",
                      str(tmp_path / name), *extra, env=env, cwd=tmp_path)
        assert pdf.returncode == 0, pdf.stderr
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"%PDF") and data.count(b"/Type /Page ") >= 3
    needs_out = run_cli(*base, "--report", "annual", "--format", "pdf", env=env, cwd=tmp_path)
    assert needs_out.returncode == 2 and "--out" in needs_out.stderr
    excel = run_cli(*base, "--report", "annual", "--format", "csv", "--excel", env=env,
                    cwd=tmp_path)
    assert excel.stdout.startswith("\ufeff")


@pytest.mark.parametrize(("lang", "n", "m", "expected"), [
    ("en", 1, 1, "1 consultation for 1 person"),
    ("en", 410, 297, "410 consultations for 297 people"),
    ("ru", 1, 1, "1 консультация для 1 человека"),
    ("ru", 3, 2, "3 консультации для 2 человек"),
    ("ru", 11, 21, "11 консультаций для 21 человека"),
    ("ru", 144, 121, "144 консультации для 121 человека"),
    ("ky", 1, 1, "1 адамга 1 кеңеш"),
])
def test_the_reports_numbers_agree_with_their_words(lang: str, n: int, m: int,
                                                    expected: str) -> None:
    texts = Texts(Settings())
    line = texts.t(lang, "report_n_for_m", n=n, m=m,
                   consultations=texts.plural(lang, "word_consultations", n),
                   people=texts.plural(lang, "word_people", m))
    assert line == expected


async def test_a_hidden_count_does_not_show_through_its_word(year_2020: Any) -> None:
    """Outside the center, a count under 5 shows as <5: its word takes the form of many, so
    «1 консультация» or «2 консультации» does not tell the number behind it."""
    db, _ = year_2020
    texts = Texts(Settings())
    async with db() as session:
        grids = await stats.annual_report(session, start=date(2020, 3, 1),
                                          end=date(2020, 3, 3), texts=texts, language="ru",
                                          external=True)
    text = stats.report_text(grids, "2020")
    hidden = [line for line in text.splitlines() if "<5 консультац" in line]
    assert hidden and all("<5 консультаций" in line for line in hidden)
    assert "<5 человека" not in text and "&lt;" not in text  # plain text, not HTML
