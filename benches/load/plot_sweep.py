#!/usr/bin/env python3
"""Draws the cold-thumbnail sweep (thumbnail_rows.sweep's JSON) as one PNG: throughput
and p99 latency against concurrency, one line a system. Run with the plot venv's
Python (matplotlib; scripts/setup.sh bench).

usage: plot_sweep.py DATA.json OUT.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        points = json.load(f)
    fig, (rps_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for system, series in points.items():
        conns = [p["connections"] for p in series]
        rps_ax.plot(conns, [p["rps"] for p in series], marker="o", label=system)
        p99_ax.plot(conns, [p["p99_ms"] for p in series], marker="o", label=system)
    for ax in (rps_ax, p99_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 4, 16, 64], labels=["1", "4", "16", "64"])
        ax.set_xlabel("concurrent connections (wrk)")
        ax.grid(True, alpha=0.3)
    rps_ax.set_ylabel("thumbnails / s")
    rps_ax.set_title("Cold 1600x1200 JPEG thumbnails: throughput")
    p99_ax.set_ylabel("p99 latency (ms)")
    p99_ax.set_yscale("log")
    p99_ax.set_title("p99 latency")
    rps_ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
