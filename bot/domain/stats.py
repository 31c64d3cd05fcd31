"""Anonymous statistics from the appeal records: breakdowns, the annual report, suppression.

Every figure comes from `appeals`, which holds no link to a person: a yearly pseudonym
(an HMAC of the Telegram id, the server secret and the year) lets distinct people be
counted within a year, never across years, never back to an account. For a period that
spans several years, "people" is the sum of each year's distinct people.

Figures meant to leave the center (`external=True`) suppress every cell under 5 ("<5")
and, where a row or column would then give a suppressed cell away through its total, the
next smallest cell too (complementary suppression).

Data access: read-only SELECTs of `Appeal`'s and `Case`'s columns (aggregates), side by
side on connections of their own when the session has nothing under way; never an entity.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.core.i18n import Texts
from models import Appeal

DIMENSIONS = ("region", "category", "month", "urgency", "language", "outcome", "for_whom",
              "out_of_hours", "screen")
SUPPRESS_BELOW = 5
SUPPRESSED = "<5"
PERIODS = ("this_month", "last_month", "this_quarter", "this_year", "last_year")
# Outcomes that are consultations, in the order of the center's annual report.
SERVICES = ("legal", "psych", "child_psych", "shelter", "court_civil", "court_criminal",
            "rights_civil", "rights_criminal", "referral", "partner")


# The report's lines: the child psychologist's in two, parents and children.
REPORT_SERVICES = ("legal", "psych", "child_psych_parents", "child_psych_children", "shelter",
                   "court_civil", "court_criminal", "rights_civil", "rights_criminal",
                   "referral", "partner")
CHANNELS = ("telegram", "hotline", "walk_in")


class StatsError(ValueError):
    """A request for figures that cannot be answered (bad period or breakdown)."""


def parse_by(text: str | Sequence[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    dims = [d.strip().lower() for d in items if d.strip()]
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not 1 <= len(dims) <= 2:
        raise StatsError(f"--by takes one or two of {', '.join(DIMENSIONS)}")
    return dims


def period_bounds(name: str, today: date) -> tuple[date, date]:
    """First and last day (inclusive) of a named period around `today`."""
    if name == "this_month":
        start = today.replace(day=1)
        return start, _month_end(start)
    if name == "last_month":
        start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return start, _month_end(start)
    if name == "this_quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        start = today.replace(month=first_month, day=1)
        return start, _month_end(start.replace(month=first_month + 2))
    if name == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if name == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    raise StatsError(f"unknown period {name!r}; choose from {', '.join(PERIODS)}")


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


AnySelect = Select[*tuple[Any, ...]]


async def _side_by_side(session: AsyncSession,
                        statements: Sequence[AnySelect]) -> list[list[tuple[Any, ...]]]:
    """The rows of each statement. A report's statements each read a whole year of
    records; when the session has nothing under way, each runs on a connection of its own,
    at the same time (SQLite's readers do not wait for each other, PostgreSQL's server
    gives each its own process), else one after the other in the session."""
    engine = session.bind
    if session.in_transaction() or not isinstance(engine, AsyncEngine) or \
            len(statements) < 2:
        return [[tuple(r) for r in await session.execute(s)] for s in statements]

    async def run(statement: AnySelect) -> list[tuple[Any, ...]]:
        async with engine.connect() as connection:
            return [tuple(r) for r in await connection.execute(statement)]

    return list(await asyncio.gather(*(run(s) for s in statements)))


def _column(dim: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = getattr(Appeal, dim)
    return column


def years(start: date, end: date) -> list[tuple[date, date]]:
    """The period cut at each 1 January: pseudonyms change there, so people are counted
    within each piece and added up."""
    pieces = []
    cursor = start
    while cursor <= end:
        last = min(end, date(cursor.year, 12, 31))
        pieces.append((cursor, last))
        cursor = last + timedelta(days=1)
    return pieces


@dataclass
class Grid:
    """A table of labels and cells, the one shape every output format is made from."""

    title: str
    header: list[str]
    rows: list[list[str]]
    # The same table for machines: each row's code (its dimension's value, "total"), each
    # value column's code, and the numbers (None where suppressed).
    row_keys: list[str] = field(default_factory=list)
    column_keys: list[str] = field(default_factory=list)
    values: list[list[int | float | None]] = field(default_factory=list)
    # A section of the annual report: its stable English name in JSON.
    key: str = ""

    def text(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows])
                  for i in range(len(self.header))]
        lines = [self.title, ""]
        for index, row in enumerate([self.header, *self.rows]):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                                 zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()

    def csv_file(self) -> bytes:
        """The CSV as a file: UTF-8 with a byte-order mark, so that Excel reads Cyrillic
        and Kyrgyz letters right."""
        return self.csv().encode("utf-8-sig")

    def as_dict(self, dims: Sequence[str] | None = None) -> dict[str, Any]:
        """Codes as keys, numbers as numbers (null where suppressed); the words in the
        center's language under "title", "columns" and "labels". A table made without
        codes (the annual report's sections) keeps its labels, with numbers as numbers."""
        if not self.row_keys:
            return {"title": self.title, "columns": self.header,
                    "rows": [dict(zip(self.header, map(_number, row), strict=True))
                             for row in self.rows]}
        if dims is None:  # a section of the annual report
            dims = ["row"]
        records = []
        for key, label, values in zip(self.row_keys, self.rows, self.values, strict=True):
            record: dict[str, Any] = {dims[0]: key}
            record.update(zip(self.column_keys, values, strict=True))
            records.append((record, label[0]))
        return {**({"section": self.key} if self.key else {}),
                "title": self.title, "columns": self.header,
                "rows": [r for r, _ in records if r[dims[0]] != "total"],
                "total": next((r for r, _ in records if r[dims[0]] == "total"), None),
                "labels": {dims[0]: {r[dims[0]]: label for r, label in records}}}


@dataclass
class Breakdown:
    """Counts of appeals and distinct people by one or two dimensions."""

    dims: list[str]
    start: date
    end: date
    # key (one value per dimension) -> (appeals, people)
    cells: dict[tuple[str | None, ...], tuple[int, int]] = field(default_factory=dict)
    total: tuple[int, int] = (0, 0)
    # Distinct people per value of the first dimension (two-dimension tables).
    row_people: dict[str | None, int] = field(default_factory=dict)


def _totals(in_period: ColumnElement[bool]) -> AnySelect:
    """Appeals and distinct people in a period within one year."""
    return select(func.count(), func.count(func.distinct(Appeal.person))).where(in_period)


async def breakdown(
    session: AsyncSession, *, start: date, end: date, by: Sequence[str]
) -> Breakdown:
    """Appeals and distinct people in [start, end] by the given dimensions."""
    dims = parse_by(by)
    columns = [_column(d).label(d) for d in dims]
    result = Breakdown(dims=dims, start=start, end=end)
    sums: dict[tuple[str | None, ...], list[int]] = defaultdict(lambda: [0, 0])
    total = [0, 0]
    per_row: dict[str | None, int] = defaultdict(int)
    for first, last in years(start, end):
        in_period = Appeal.day.between(first, last)
        statements = [
            select(*columns, func.count(), func.count(func.distinct(Appeal.person)))
            .where(in_period).group_by(*columns),
            _totals(in_period),
        ]
        if len(dims) == 2:
            statements.append(select(columns[0], func.count(func.distinct(Appeal.person)))
                              .where(in_period).group_by(columns[0]))
        cells, totals, *rows_people = await _side_by_side(session, statements)
        for row in cells:
            key = tuple(_value(d, v) for d, v in zip(dims, row[:len(dims)], strict=True))
            sums[key][0] += int(row[-2])
            sums[key][1] += int(row[-1])
        total[0] += int(totals[0][0])
        total[1] += int(totals[0][1])
        for value, count in (rows_people[0] if rows_people else ()):
            per_row[_value(dims[0], value)] += int(count)
    result.cells = {k: (v[0], v[1]) for k, v in sums.items()}
    result.total = (total[0], total[1])
    result.row_people = dict(per_row)
    return result


def _value(dim: str, value: Any) -> str | None:
    if value is None:
        return None
    if dim == "month":
        return f"{int(value) // 100:04d}-{int(value) % 100:02d}"
    if isinstance(value, bool) or dim == "out_of_hours":
        return "yes" if value else "no"
    return str(value)


# ---------------------------------------------------------------------- suppression


def suppress_lines(matrix: list[list[int]], lines: list[list[tuple[int, int]]],
                   protected: set[tuple[int, int]] | None = None) -> set[tuple[int, int]]:
    """Cells to hide: every cell under 5, then complements until no line (a row or column
    with its total) has exactly one hidden cell, which its total would give away."""
    hidden = {(r, c) for r, row in enumerate(matrix) for c, v in enumerate(row)
              if v < SUPPRESS_BELOW}
    totals = protected or set()
    changed = True
    while changed:
        changed = False
        for line in lines:
            inside = [cell for cell in line if cell in hidden]
            if len(inside) != 1:
                continue
            candidates = [cell for cell in line if cell not in hidden and cell not in totals]
            if not candidates:
                candidates = [cell for cell in line if cell not in hidden]
            if not candidates:
                continue
            hidden.add(min(candidates, key=lambda cell: (matrix[cell[0]][cell[1]], cell)))
            changed = True
    return hidden


_SYMBOLS = re.compile(r"[^\w\s\-().,/+<>]")


def _label(texts: Texts | None, language: str, dim: str, value: str | None) -> str:
    """A value's name in the language, without the emoji the chat buttons carry."""
    return _SYMBOLS.sub("", _name(texts, language, dim, value)).strip()


def _name(texts: Texts | None, language: str, dim: str, value: str | None) -> str:
    if value is None:
        return "—"
    if texts is None:
        return value
    if dim == "region":
        return texts.region_name(language, value) if texts.settings.region(value) else value
    keys = {"category": "cat_", "urgency": "urgency_", "outcome": "outcome_",
            "for_whom": "for_", "screen": "screen_"}
    if dim in keys:
        return texts.t(language, keys[dim] + value)
    if dim == "language":
        from bot.core.i18n import LANGUAGE_NAMES
        return LANGUAGE_NAMES.get(value, value)
    if dim == "out_of_hours":
        return texts.t(language, "btn_yes" if value == "yes" else "btn_no")
    return value


def _order(dim: str, values: set[str | None], texts: Texts | None) -> list[str | None]:
    if dim == "region" and texts is not None:
        order = [r.code for r in texts.settings.regions]
        return sorted(values, key=lambda v: (order.index(v) if v in order else len(order),
                                             v or "~"))
    return sorted(values, key=lambda v: (v is None, v or ""))


def grid(result: Breakdown, *, texts: Texts | None = None, language: str = "en",
         external: bool = False) -> Grid:
    """The breakdown as a Grid, suppressed for external use if asked."""
    def t(key: str) -> str:
        return texts.t(language, key) if texts else key

    dim_title = {d: t(f"stats_dim_{d}") for d in result.dims}
    span = {"start": result.start.isoformat(), "end": result.end.isoformat()}
    title = texts.t(language, "stats_title", **span) if texts else \
        "{start} .. {end}".format(**span)
    appeals_h, people_h, total_h = t("stats_appeals"), t("stats_people"), t("stats_total")
    if len(result.dims) == 1:
        dim = result.dims[0]
        keys = _order(dim, {k[0] for k in result.cells}, texts)
        matrix = [[result.cells[(k,)][0], result.cells[(k,)][1]] for k in keys]
        matrix.append([result.total[0], result.total[1]])
        n = len(matrix)
        hidden: set[tuple[int, int]] = set()
        if external:
            lines = [[(r, col) for r in range(n)] for col in (0, 1)]
            hidden = suppress_lines(matrix, lines, protected={(n - 1, 0), (n - 1, 1)})
        rows = []
        values: list[list[int | float | None]] = []
        for r, key in enumerate([*keys, "__total__"]):
            label = total_h if key == "__total__" else _label(texts, language, dim, key)
            rows.append([label] + [SUPPRESSED if (r, c) in hidden else str(matrix[r][c])
                                   for c in (0, 1)])
            values.append([None if (r, c) in hidden else matrix[r][c] for c in (0, 1)])
        return Grid(title, [dim_title[dim], appeals_h, people_h], rows,
                    row_keys=[*map(_code, keys), "total"], column_keys=["appeals", "people"],
                    values=values)
    first, second = result.dims
    row_keys = _order(first, {k[0] for k in result.cells}, texts)
    col_keys = _order(second, {k[1] for k in result.cells}, texts)
    matrix = [[result.cells.get((r, c), (0, 0))[0] for c in col_keys] for r in row_keys]
    for row in matrix:
        row.append(sum(row))
    # An empty period has no rows: its total row is zeros (the total column included).
    matrix.append([sum(col) for col in zip(*matrix, strict=True)] if matrix
                  else [0] * (len(col_keys) + 1))
    nr, nc = len(matrix), len(matrix[0])
    hidden = set()
    if external:
        lines = [[(r, c) for c in range(nc)] for r in range(nr)] + \
                [[(r, c) for r in range(nr)] for c in range(nc)]
        totals = {(r, nc - 1) for r in range(nr)} | {(nr - 1, c) for c in range(nc)}
        hidden = suppress_lines(matrix, lines, protected=totals)
    header = [f"{dim_title[first]} \\ {dim_title[second]}"] + \
        [_label(texts, language, second, c) for c in col_keys] + [total_h]
    rows = []
    values = []
    for r, key in enumerate([*row_keys, "__total__"]):
        label = total_h if key == "__total__" else _label(texts, language, first, key)
        rows.append([label] + [SUPPRESSED if (r, c) in hidden else str(matrix[r][c])
                               for c in range(nc)])
        values.append([None if (r, c) in hidden else matrix[r][c] for c in range(nc)])
    return Grid(title, header, rows, row_keys=[*map(_code, row_keys), "total"],
                column_keys=[*map(_code, col_keys), "total"], values=values)


def _number(cell: str) -> int | str | None:
    if cell == SUPPRESSED:
        return None
    return int(cell) if cell.isdecimal() and cell.isascii() else cell


def _code(key: str | None) -> str:
    """A dimension's value as JSON keys it ("unknown" for none given)."""
    return "unknown" if key is None else str(key)


# ---------------------------------------------------------------------- the annual report


def percentile(values: list[tuple[int, int]], q: float) -> float | None:
    """The q-quantile (0..1, nearest rank) of a distribution given as (value, count)."""
    total = sum(c for _, c in values)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, count in sorted(values):
        seen += count
        if seen >= rank:
            return float(value)
    return float(sorted(values)[-1][0])


def _cell_value(cell: str) -> int | float | None:
    """A cell as a number for JSON: None where suppressed or empty."""
    try:
        return int(cell)
    except ValueError:
        try:
            return float(cell)
        except ValueError:
            return None


def _keyed(grid: Grid, key: str, row_keys: list[str], column_keys: list[str],
           values: list[list[int | float | None]] | None = None) -> Grid:
    """The report section `grid` with its codes for machines (JSON)."""
    grid.key, grid.row_keys, grid.column_keys = key, row_keys, column_keys
    grid.values = values if values is not None else [
        [_cell_value(c) for c in row[1:1 + len(column_keys)]] for row in grid.rows]
    return grid


def _counts_grid(title: str, header: list[str], counts: list[tuple[str, int]], total: int,
                 total_label: str, external: bool) -> Grid:
    """One column of counts with its total, suppressed as one line if asked."""
    matrix = [[n] for _, n in counts] + [[total]]
    hidden: set[tuple[int, int]] = set()
    if external:
        hidden = suppress_lines(matrix, [[(r, 0) for r in range(len(matrix))]],
                                protected={(len(matrix) - 1, 0)})
    labels = [label for label, _ in counts] + [total_label]
    rows = [[label, SUPPRESSED if (r, 0) in hidden else str(matrix[r][0])]
            for r, label in enumerate(labels)]
    return Grid(title, header, rows)


async def annual_report(
    session: AsyncSession, *, start: date, end: date, texts: Texts | None = None,
    language: str = "en", external: bool = False,
    during: tuple[date, date] | None = None,
) -> list[Grid]:
    """The shape of the center's annual report, straight from the appeal records.

    Five queries per calendar year, side by side, each answered from a covering index the
    planner picks (models: `Appeal`): appeals by region, month and channel; consultations by
    service with distinct people; the child psychologist's two parts; appeals and people in
    total; urgency, danger screen, hours and minutes to the first reply.
    """
    def t(key: str, **values: Any) -> str:
        if texts is not None:
            return texts.t(language, key, **values)
        return key + (" " + json.dumps(values) if values else "")

    by_region: dict[str | None, int] = defaultdict(int)
    by_month: dict[str | None, int] = defaultdict(int)
    service: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_channel: dict[str, int] = defaultdict(int)
    total = [0, 0]
    mix: dict[tuple[str, str | None, bool, int | None], int] = defaultdict(int)
    for first, last in years(start, end):
        in_period = Appeal.day.between(first, last)
        by_place, services, child_psych, totals, mixes = await _side_by_side(
            session, [
                select(Appeal.region, Appeal.month, Appeal.channel, func.count())
                .where(in_period).group_by(Appeal.region, Appeal.month, Appeal.channel),
                select(Appeal.outcome, func.count(), func.count(func.distinct(Appeal.person)))
                .where(in_period, Appeal.outcome.in_(SERVICES)).group_by(Appeal.outcome),
                select(Appeal.for_whom, func.count(),
                       func.count(func.distinct(Appeal.person)))
                .where(in_period, Appeal.outcome == "child_psych").group_by(Appeal.for_whom),
                _totals(in_period),
                select(Appeal.urgency, Appeal.screen, Appeal.out_of_hours,
                       Appeal.minutes_to_reply, func.count()).where(in_period)
                .group_by(Appeal.urgency, Appeal.screen, Appeal.out_of_hours,
                          Appeal.minutes_to_reply),
            ])
        for region, month, channel, n in by_place:
            by_region[_value("region", region)] += int(n)
            by_month[_value("month", month)] += int(n)
            by_channel[str(channel)] += int(n)
        for outcome, n, people in services:
            service[str(outcome)][0] += int(n)
            service[str(outcome)][1] += int(people)
        # The child psychologist's work, as the report gives it: with parents (about a
        # child) and with children themselves (who asked for themselves), each counted.
        # People are counted within each part (a person is in one of them: she asks for
        # herself, or about her child).
        for for_whom, n, people in child_psych:
            part = "child_psych_children" if for_whom == "me" else "child_psych_parents"
            service[part][0] += int(n)
            service[part][1] += int(people)
        total[0] += int(totals[0][0])
        total[1] += int(totals[0][1])
        for urgency, screen, hours, minutes, n in mixes:
            mix[(str(urgency), screen, bool(hours), minutes)] += int(n)

    regions = _order("region", set(by_region), texts)
    months = _order("month", set(by_month), texts)
    grids = [
        _keyed(_counts_grid(
            t("report_by_region"), [t("stats_dim_region"), t("stats_appeals")],
            [(_label(texts, language, "region", r), by_region[r]) for r in regions],
            total[0], t("stats_total"), external),
            "by_region", [str(r or "unknown") for r in regions] + ["total"], ["appeals"]),
        _keyed(_counts_grid(
            t("report_by_month"), [t("stats_dim_month"), t("stats_appeals")],
            [(str(m), by_month[m]) for m in months], total[0], t("stats_total"), external),
            "by_month", [str(m) for m in months] + ["total"], ["appeals"]),
    ]

    # How appeals came: "926 hotline calls", and every appeal together.
    grids.append(_keyed(_counts_grid(
        t("report_by_channel"), [t("report_channel"), t("stats_appeals")],
        [(t(f"channel_{c}"), by_channel.get(c, 0)) for c in CHANNELS], total[0],
        t("stats_total"), external), "by_channel", [*CHANNELS, "total"], ["appeals"]))

    # Consultations by service, with distinct people: "410 consultations for 297 people".
    # Each stands alone (not parts of one total), so each is suppressed on its own.
    service_rows = []
    for s in REPORT_SERVICES:
        cells = [SUPPRESSED if external and v < SUPPRESS_BELOW else str(v)
                 for v in service[s]]
        # A hidden count takes the word form of "many" (5): the form of the real one would
        # tell whether it is 1 or 2 to 4.
        n, m = (v if c != SUPPRESSED else SUPPRESS_BELOW for v, c in zip(service[s], cells,
                                                                         strict=True))
        words = {"consultations": texts.plural(language, "word_consultations", n),
                 "people": texts.plural(language, "word_people", m)} if texts else \
            {"consultations": "consultations", "people": "people"}
        # Plain text (a table cell), not Telegram's HTML: "<5" stays "<5".
        line = html.unescape(texts.t(language, "report_n_for_m", n=cells[0], m=cells[1],
                                     **words)) \
            if texts else f"{cells[0]} consultations for {cells[1]} people"
        label = texts.t(language, f"report_{s}") if s.startswith("child_psych_") and texts \
            else _label(texts, language, "outcome", s)
        service_rows.append([label, *cells, line])
    grids.append(_keyed(Grid(t("report_services"),
                             [t("stats_dim_outcome"), t("stats_consultations"),
                              t("stats_people"), ""], service_rows),
                        "services", list(REPORT_SERVICES), ["consultations", "people"]))

    emergencies = sum(n for (u, _, _, _), n in mix.items() if u == "emergency")
    screened = sum(n for (_, sc, _, _), n in mix.items() if sc is not None)
    screened_in = sum(n for (_, sc, _, _), n in mix.items() if sc == "screened_in")
    out_of_hours = sum(n for (_, _, h, _), n in mix.items() if h)

    def share(part: int, whole: int) -> str:
        if whole == 0:
            return "—"
        if external and (part < SUPPRESS_BELOW or whole - part < SUPPRESS_BELOW):
            return SUPPRESSED
        return f"{100 * part / whole:.0f}% ({part}/{whole})"

    def count(n: int) -> str:
        return SUPPRESSED if external and n < SUPPRESS_BELOW else str(n)

    shares = Grid(t("report_shares"), [t("report_measure"), t("report_value")], [
        [t("report_appeals_total"), count(total[0])],
        [t("stats_people"), count(total[1])],
        [t("report_share_emergency"), share(emergencies, total[0])],
        [t("report_share_screened_in"), share(screened_in, screened)],
        [t("report_share_out_of_hours"), share(out_of_hours, total[0])],
    ])
    parts = [(total[0], None), (total[1], None), (emergencies, total[0]),
             (screened_in, screened), (out_of_hours, total[0])]
    grids.append(_keyed(
        shares, "shares", ["appeals", "people", "emergency", "screened_in", "out_of_hours"],
        ["count", "of"], [[None, None] if row[1] == SUPPRESSED else [part, whole]
                          for row, (part, whole) in zip(shares.rows, parts, strict=True)]))

    if during is not None:
        # "115 appeals were received from all regions during the state of emergency".
        first, last = during
        n_during, regions_during = (await session.execute(
            select(func.count(), func.count(func.distinct(Appeal.region)))
            .where(Appeal.day.between(first, last)))).one()
        grids.append(_keyed(Grid(
            t("report_during_title"), [t("report_measure"), t("report_value")], [
                [t("report_during", start=first.isoformat(), end=last.isoformat()),
                 count(int(n_during))],
                [t("report_during_regions"), str(int(regions_during))],
            ]), "during", ["appeals", "regions"], ["value"]))

    # Minutes to the first specialist reply by urgency: median and 90th percentile.
    reply_rows = []
    for urgency in ("emergency", "high", "standard"):
        dist: dict[int, int] = defaultdict(int)
        for (u, _, _, minutes), n in mix.items():
            if u == urgency and minutes is not None:
                dist[minutes] += n
        values = sorted(dist.items())
        n = sum(dist.values())
        if external and n < SUPPRESS_BELOW:
            cells = [SUPPRESSED, SUPPRESSED, SUPPRESSED]
        else:
            p50, p90 = percentile(values, 0.5), percentile(values, 0.9)
            cells = [str(n), "—" if p50 is None else f"{p50:g}",
                     "—" if p90 is None else f"{p90:g}"]
        reply_rows.append([_label(texts, language, "urgency", urgency), *cells])
    grids.append(_keyed(Grid(t("report_reply_times"),
                             [t("stats_dim_urgency"), t("stats_appeals"), t("report_median"),
                              t("report_p90")], reply_rows),
                        "reply_minutes", ["emergency", "high", "standard"],
                        ["appeals", "median", "p90"]))
    return grids


def report_text(grids: Sequence[Grid], heading: str) -> str:
    return "\n\n".join([heading, *(g.text() for g in grids)])


def report_csv(grids: Sequence[Grid]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for index, g in enumerate(grids):
        if index:
            writer.writerow([])
        writer.writerow([g.title])
        writer.writerow(g.header)
        writer.writerows(g.rows)
    return out.getvalue()


def report_json(grids: Sequence[Grid], *, start: date, end: date, external: bool) -> str:
    return json.dumps({"from": start.isoformat(), "to": end.isoformat(), "external": external,
                       "sections": [g.as_dict() for g in grids]}, ensure_ascii=False, indent=2)


def breakdown_json(g: Grid, *, result: Breakdown, external: bool) -> str:
    return json.dumps({"from": result.start.isoformat(), "to": result.end.isoformat(),
                       "by": result.dims, "external": external, **g.as_dict(result.dims)},
                      ensure_ascii=False, indent=2)


def today_in(tz: Any, now: datetime) -> date:
    return now.astimezone(tz).date()
