"""Charts for the statistics, rendered off-screen with matplotlib (labels in any of the
three languages: matplotlib's DejaVu Sans has the Kyrgyz letters ң, ө, ү)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must come before pyplot

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from bot.domain.stats import SUPPRESSED, Grid  # noqa: E402

COLORS = ["#7b3f8c", "#d98c3f", "#3f7b8c", "#8c3f52", "#5a8c3f", "#3f4f8c", "#8c7b3f",
          "#a35fb3", "#5fa3b3", "#b35f73", "#7fb35f", "#5f6fb3"]


def _number(cell: str) -> int:
    return 0 if cell == SUPPRESSED or not cell.isdigit() else int(cell)


def bar_chart(grid: Grid) -> bytes:
    """A horizontal bar chart of a breakdown Grid (stacked for two dimensions), as PNG."""
    body = grid.rows[:-1]  # the last row is the total
    labels = [row[0] for row in body][::-1]
    height = max(2.8, 0.42 * len(labels) + 1.6)
    fig, ax = plt.subplots(figsize=(8, height), dpi=110)
    try:
        _draw_bars(ax, grid)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def _draw_bars(ax: Any, grid: Grid) -> None:
    body = grid.rows[:-1]
    labels = [row[0] for row in body][::-1]
    if len(grid.header) <= 3:  # one dimension: appeals (and people)
        values = [_number(row[1]) for row in body][::-1]
        bars = ax.barh(labels, values, color=COLORS[0])
        for bar, row in zip(bars, body[::-1], strict=True):
            ax.annotate(row[1], (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        ax.set_xlabel(grid.header[1])
    else:  # two dimensions: stacked by the columns, without the total column
        left = [0] * len(labels)
        for index, name in enumerate(grid.header[1:-1]):
            values = [_number(row[index + 1]) for row in body][::-1]
            ax.barh(labels, values, left=left, label=name,
                    color=COLORS[index % len(COLORS)])
            left = [a + b for a, b in zip(left, values, strict=True)]
        if labels:
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06),
                      ncol=min(6, len(grid.header) - 2), frameon=False)
    if not labels:
        ax.text(0.5, 0.5, "—", ha="center", va="center", fontsize=24,
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(grid.title, fontsize=11, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="y", labelsize=9)


def report_pdf(grids: Sequence[Grid], *, title: str, center: str, period: str,
               source: str) -> bytes:
    """The annual report as one PDF: a title page with every section's lines, then the
    appeals by region and by month as charts, and where the figures come from. What
    `grids` holds is what is printed (suppressed cells stay suppressed)."""
    out = io.BytesIO()
    with PdfPages(out) as pdf:
        pages = _text_pages(grids, title=title, center=center, period=period)
        for lines in pages:
            fig = plt.figure(figsize=(8.27, 11.69))  # A4
            y = 0.95
            for text, size, weight in lines:
                fig.text(0.08, y, text, fontsize=size, weight=weight, va="top",
                         family="DejaVu Sans")
                y -= 0.024 * (size / 10) + 0.006
            pdf.savefig(fig)
            plt.close(fig)
        fig, axes = plt.subplots(2, 1, figsize=(8.27, 11.69))
        try:
            for ax, grid in zip(axes, grids[:2], strict=False):
                _draw_bars(ax, grid)
            fig.text(0.08, 0.035, "\n".join(textwrap.wrap(source, 110)), fontsize=8,
                     color="#555555", va="top")
            fig.tight_layout(rect=(0, 0.04, 1, 1))
            pdf.savefig(fig)
        finally:
            plt.close(fig)
        info = pdf.infodict()
        info["Title"] = f"{title}, {center}, {period}"
        info["Creator"] = "sezim-bot"
    return out.getvalue()


def _text_pages(grids: Sequence[Grid], *, title: str, center: str,
                period: str) -> list[list[tuple[str, int, str]]]:
    lines: list[tuple[str, int, str]] = [(title, 18, "bold"), (center, 12, "normal"),
                                         (period, 12, "normal"), ("", 8, "normal")]
    for grid in [*grids[2:], *grids[:2]]:
        lines.append((grid.title, 12, "bold"))
        for row in grid.rows:
            if grid.header[-1] == "":  # the report's own words: "410 consultations for 297"
                text = f"{row[0]}: {row[-1]}"
            elif len(row) == 2:
                text = f"{row[0]}: {row[1]}"
            else:
                text = f"{row[0]}: " + " · ".join(
                    f"{name} {cell}" for name, cell in zip(grid.header[1:], row[1:],
                                                            strict=True))
            lines.append(("   " + text, 9, "normal"))
        lines.append(("", 6, "normal"))
    pages: list[list[tuple[str, int, str]]] = []
    page: list[tuple[str, int, str]] = []
    used = 0.0
    for line in lines:
        need = 0.024 * (line[1] / 10) + 0.006
        if used + need > 0.88 and page:
            pages.append(page)
            page, used = [], 0.0
        page.append(line)
        used += need
    if page:
        pages.append(page)
    return pages
