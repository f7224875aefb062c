"""PNG plots of a replay (matplotlib, Agg backend: no display needed).

- alerts over time by type: openings and events per time bin, warnings and
  critical types above, the (far more numerous) zone events below, so that the
  rare warnings are not flattened by enter/exit counts;
- dwell distribution per zone: box plot of closed visits, busiest zones first;
- speed profile of subjects with alerts: one small panel per subject, reported
  SOG (else implied), with the times its alerts opened marked.

Bins adapt to the span of the recording (a minute to a day). Files carry no
version or date metadata, so the same replay draws the same bytes.
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

from geofence.timefmt import iso_utc, parse_iso_utc

__all__ = ["plot_alerts_over_time", "plot_dwell", "plot_speed_profiles", "time_bin_s"]

_META = {"Software": None}  # keep PNGs free of version strings
_ZONE_EVENTS = frozenset({"zone_enter", "zone_exit", "zone_cross"})
_BINS_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)


def time_bin_s(span_s: float, target_bins: int = 48) -> int:
    """The smallest of 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 1 day giving at most ``target_bins`` bins."""
    for b in _BINS_S:
        if span_s / b <= target_bins:
            return b
    return _BINS_S[-1]


def _bin_label(bin_s: int) -> str:
    return f"{bin_s // 60} min" if bin_s < 3600 else (f"{bin_s // 3600} h" if bin_s < 86400 else "day")


def _stacked(ax: Any, starts: list[tuple[str, float]], t0: float, bin_s: int, n_bins: int, title: str) -> None:
    kinds = sorted({k for k, _ in starts})
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(kinds), 1), endpoint=False))
    bottom = np.zeros(n_bins)
    x = (np.arange(n_bins) * bin_s) / 3600.0
    for colour, kind in zip(colours, kinds, strict=False):
        h = Counter(int((t - t0) // bin_s) for k, t in starts if k == kind)
        counts = np.array([h.get(i, 0) for i in range(n_bins)], dtype=float)
        ax.bar(x, counts, bottom=bottom, label=f"{kind} ({int(counts.sum())})", width=bin_s / 3600.0 * 0.9,
               align="edge", color=colour)
        bottom += counts
    if kinds:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("count")


def plot_alerts_over_time(alert_lines: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Alert openings and events per time bin, by type: warnings/critical above, zone events below."""
    starts = [
        (str(a["type"]), parse_iso_utc(str(a["ts"]))) for a in alert_lines if a.get("status") in ("open", "event")
    ]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    if starts:
        t0 = min(t for _, t in starts)
        span = max(t for _, t in starts) - t0
        bin_s = time_bin_s(span)
        n_bins = int(span // bin_s) + 1
        _stacked(top, [s for s in starts if s[0] not in _ZONE_EVENTS], t0, bin_s, n_bins,
                 f"Alerts opened per {_bin_label(bin_s)}, by type")
        _stacked(bottom, [s for s in starts if s[0] in _ZONE_EVENTS], t0, bin_s, n_bins,
                 f"Zone events per {_bin_label(bin_s)}")
        bottom.set_xlabel(f"hours since {iso_utc(t0)}")
    else:
        top.text(0.5, 0.5, "no alerts", ha="center", va="center", transform=top.transAxes)
    return _save(fig, path)


def plot_dwell(dwell_by_zone_s: Mapping[str, Sequence[float]], path: Path, *, max_zones: int = 20) -> Path:
    """Box plot of dwell (minutes) per zone, the zones with most visits first."""
    items = sorted(((z, v) for z, v in dwell_by_zone_s.items() if v), key=lambda kv: (-len(kv[1]), kv[0]))[:max_zones]
    fig, ax = plt.subplots(figsize=(10, max(3, 0.35 * len(items) + 1)))
    if items:
        minutes = [np.asarray(v) / 60.0 for _, v in items]
        ax.boxplot(minutes, orientation="horizontal", tick_labels=[f"{z} (n={len(v)})" for z, v in items])
        ax.invert_yaxis()
        ax.set_xlabel("dwell (min), closed visits")
    else:
        ax.text(0.5, 0.5, "no completed visits", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Dwell distribution per zone")
    return _save(fig, path)


def plot_speed_profiles(
    profiles: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    *,
    max_subjects: int = 12,
    alert_times: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> Path:
    """One panel per subject (up to ``max_subjects``): speed (kn) over time, alert openings marked."""
    items = list(profiles.items())[:max_subjects]
    cols = 3 if len(items) > 4 else max(len(items), 1)
    rows = max(1, -(-len(items) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.1 * rows + 0.6), sharex=True, squeeze=False)
    t0 = min((float(np.min(t)) for _, (t, _) in items if len(t)), default=0.0)
    for ax, (subject, (ts_s, speed_kn)) in zip(axes.ravel(), items, strict=False):
        t = (np.asarray(ts_s, dtype=float) - t0) / 3600.0
        ax.plot(t, np.asarray(speed_kn, dtype=float), lw=0.7, color="#1f77b4")
        for kind, at in (alert_times or {}).get(subject, []):
            ax.axvline((at - t0) / 3600.0, color="#d62728", lw=0.8, alpha=0.7)
            ax.text((at - t0) / 3600.0, ax.get_ylim()[1], kind, fontsize=6, rotation=90, va="top", ha="right")
        ax.set_title(subject, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(items):]:
        ax.set_visible(False)
    if items:
        fig.supxlabel(f"hours since {iso_utc(t0)}", fontsize=9)
        fig.supylabel("speed (kn)", fontsize=9)
        fig.suptitle("Speed profile of subjects with alerts (red: alert opened)", fontsize=10)
    else:
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no subjects with alerts", ha="center", va="center", transform=axes[0][0].transAxes)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_META)
    plt.close(fig)
    return path
