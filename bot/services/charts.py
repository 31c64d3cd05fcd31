"""Charts for the statistics, rendered off-screen with matplotlib (labels in any of the
three languages: matplotlib's DejaVu Sans has the Kyrgyz letters ң, ө, ү)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; must come before pyplot

import matplotlib.pyplot as plt  # noqa: E402

from bot.services.stats import SUPPRESSED, Grid  # noqa: E402

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
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
