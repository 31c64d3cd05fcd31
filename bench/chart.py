"""Draw docs/performance.png from bench/load.py's JSON results.

    .venv/bin/python bench/chart.py RESULTS.json [MORE.json ...] --out docs/performance.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out", default="docs/performance.png")
    args = parser.parse_args()
    rows = [r for path in args.results for r in json.loads(Path(path).read_text())
            if "surge" not in r["name"] and "round trip" not in r["name"]]
    # One line per name (a run on PostgreSQL names its rows so): echo grey, ours purple,
    # square markers for a PostgreSQL run, paler triangles for one of the code before.
    # Several rounds of one run (`--rounds`): the median of each figure per point.
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["name"], row["clients"]), []).append(row)
    series: dict[str, list[dict[str, Any]]] = {}
    for (name, clients), same in groups.items():
        series.setdefault(name, []).append(
            {"clients": clients,
             **{k: statistics.median(r[k] for r in same)
                for k in ("updates_per_s", "p50_ms", "p99_ms")}})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for name, points in series.items():
        points.sort(key=lambda r: int(r["clients"]))
        color = "#999999" if name.startswith("echo") else "#7b3f8c"
        if "before" in name:  # a run of the code before a change: paler, triangles
            color = "#cccccc" if name.startswith("echo") else "#c9a3d4"
        marker = "s" if "PostgreSQL" in name else "^" if "before" in name else "o"
        xs = [r["clients"] for r in points]
        left.plot(xs, [r["updates_per_s"] for r in points], marker=marker, linestyle="-",
                  color=color, label=name)
        right.plot(xs, [r["p50_ms"] for r in points], marker=marker, linestyle="-",
                   color=color, label=f"{name} p50")
        right.plot(xs, [r["p99_ms"] for r in points], marker=marker, linestyle="--",
                   color=color, label=f"{name} p99")
    left.set_title("Throughput (updates/s)", loc="left", fontsize=10)
    left.set_xlabel("concurrent simulated people")
    right.set_title("Latency per update (ms)", loc="left", fontsize=10)
    right.set_xlabel("concurrent simulated people")
    for ax in (left, right):
        ax.set_ylim(bottom=0)  # bars of different height must look it
        ax.legend(fontsize=7, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
