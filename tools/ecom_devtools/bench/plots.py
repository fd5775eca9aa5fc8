"""PNG plots: throughput over time of every drain and run, and the latency distributions."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from ecom_devtools.bench.context import Bench

_GROUPS = {
    "orders": ("ceiling_orders", "order_drain", "scale_orders", "profile_orders"),
    "payments": ("ceiling_payments", "payment_", "scale_payments", "profile_payments"),
    "end to end (rows completed)": ("e2e_",),
}


def throughput(bench: Bench, path: Path) -> Path:
    fig, axes = plt.subplots(len(_GROUPS), 1, figsize=(10, 3.2 * len(_GROUPS)), squeeze=False)
    for axis, (title, prefixes) in zip(axes[:, 0], _GROUPS.items(), strict=True):
        for name, points in sorted(bench.timelines.items()):
            if name.startswith(prefixes) and points:
                axis.plot([t for t, _ in points], [r for _, r in points], label=name, lw=1.2)
        axis.set_title(f"throughput over time: {title}")
        axis.set_xlabel("seconds since the first row was written")
        axis.set_ylabel("rows/s")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency(bench: Bench, path: Path) -> Path:
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    for name, values in sorted(bench.latencies.items()):
        if not values:
            continue
        millis = [1000 * v for v in values]
        hist.hist(millis, bins=60, alpha=0.5, label=name)
        cdf.plot(millis, [(i + 1) / len(millis) for i in range(len(millis))], label=name)
    hist.set_title("publish → row complete: histogram")
    hist.set_xlabel("ms")
    hist.set_ylabel("rows")
    cdf.set_title("publish → row complete: cumulative")
    cdf.set_xlabel("ms (log scale)")
    cdf.set_xscale("log")
    cdf.set_ylabel("share of rows")
    cdf.axhline(0.99, color="grey", lw=0.8, ls="--")
    for axis in (hist, cdf):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
