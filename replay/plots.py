"""PNG plots of a replay (matplotlib, Agg backend: no display needed).

- alerts over time by type (hourly bins of open and event lines);
- dwell distribution per zone (box plot of closed visits, busiest zones first);
- speed profile of subjects with alerts (reported SOG, else derived).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from geofence.timefmt import parse_iso_utc

__all__ = ["plot_alerts_over_time", "plot_dwell", "plot_speed_profiles"]

_META = {"Software": None}  # keep PNGs free of version strings


def plot_alerts_over_time(alert_lines: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Stacked hourly counts of alert openings and events, by type."""
    starts = [
        (str(a["type"]), parse_iso_utc(str(a["ts"]))) for a in alert_lines if a.get("status") in ("open", "event")
    ]
    fig, ax = plt.subplots(figsize=(10, 4))
    if starts:
        t0 = min(t for _, t in starts)
        hours = max(int((max(t for _, t in starts) - t0) // 3600) + 1, 1)
        bottom = np.zeros(hours)
        for kind in sorted({k for k, _ in starts}):
            h = Counter(int((t - t0) // 3600) for k, t in starts if k == kind)
            counts = np.array([h.get(i, 0) for i in range(hours)], dtype=float)
            ax.bar(np.arange(hours), counts, bottom=bottom, label=kind, width=0.9)
            bottom += counts
        ax.legend(fontsize=7, ncol=3)
        ax.set_xlabel("hours since first alert")
    else:
        ax.text(0.5, 0.5, "no alerts", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("alerts opened / events")
    ax.set_title("Alerts over time by type")
    return _save(fig, path)


def plot_dwell(dwell_by_zone_s: Mapping[str, Sequence[float]], path: Path, *, max_zones: int = 20) -> Path:
    """Box plot of dwell (minutes) per zone, the zones with most visits first."""
    items = sorted(((z, v) for z, v in dwell_by_zone_s.items() if v), key=lambda kv: (-len(kv[1]), kv[0]))[:max_zones]
    fig, ax = plt.subplots(figsize=(10, max(3, 0.35 * len(items) + 1)))
    if items:
        minutes = [np.asarray(v) / 60.0 for _, v in items]
        ax.boxplot(minutes, orientation="horizontal", tick_labels=[z for z, _ in items])
        ax.set_xlabel("dwell (min)")
    else:
        ax.text(0.5, 0.5, "no completed visits", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Dwell distribution per zone")
    return _save(fig, path)


def plot_speed_profiles(
    profiles: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: Path, *, max_subjects: int = 12
) -> Path:
    """Speed (kn) against time (h) for up to ``max_subjects`` subjects with alerts."""
    items = sorted(profiles.items())[:max_subjects]
    fig, ax = plt.subplots(figsize=(10, 4))
    for subject, (ts_s, speed_kn) in items:
        t = np.asarray(ts_s, dtype=float)
        if t.size:
            ax.plot((t - t[0]) / 3600.0, np.asarray(speed_kn, dtype=float), lw=0.8, label=subject)
    if items:
        ax.legend(fontsize=7, ncol=4)
    else:
        ax.text(0.5, 0.5, "no subjects with alerts", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("hours since first report")
    ax.set_ylabel("speed (kn)")
    ax.set_title("Speed profile of subjects with alerts")
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_META)
    plt.close(fig)
    return path
