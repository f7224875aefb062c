"""What a replay writes besides the alert and dead-letter lines: ``summary.json``, ``report.html`` and plots.

``summary.json`` is the runner's summary (the ingest counts, alert lines by
type and status, engine figures; ``streams.summary``) extended with:

* ``alerts_by_type``: incidents (distinct ``alert_id``) per alert type;
* ``per_zone``: for every fence, ``kind``, ``visits`` (engine ``zone_enter``
  paired with its ``zone_exit``), ``open_visits`` (still inside at the end),
  ``unique_subjects`` (subjects with at least one accepted position inside) and
  ``dwell`` p50/p95/max in seconds over the closed visits;
* ``per_subject``: ``positions``, ``distance_m`` (geodesic, in time order),
  ``time_in_zones_s`` (closed visits, summed over zones) and ``alerts``
  (``open`` and ``event`` lines).

Everything is a function of event time and input, nothing of the wall clock,
and the JSON is written with sorted keys: two replays of the same input give
the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geofence.fence import ZoneSet
from geofence.timefmt import parse_iso_utc
from replay.report import build_report
from replay.stats import speeds_kn, subject_stats, visits_from_alerts, zone_stats
from replay.tap import Recording
from streams.runner import RunResult
from streams.summary import write_summary

__all__ = [
    "OUTPUT_FILES",
    "PLOT_FILES",
    "build_replay_summary",
    "clear_outputs",
    "write_replay_summary",
    "write_report_files",
]

#: Plot file names in the output directory.
PLOT_FILES: tuple[str, ...] = ("alerts_over_time.png", "dwell_per_zone.png", "speed_profiles.png")
#: Every file a replay (re)writes in its output directory.
OUTPUT_FILES: tuple[str, ...] = ("alerts.jsonl", "dead_letter.jsonl", "summary.json", "report.html", *PLOT_FILES)

_SPEED_SUBJECTS = 12


def clear_outputs(out_dir: Path, extra: Sequence[str] = ()) -> None:
    """Remove the files a previous replay left in ``out_dir`` (the JSONL sinks append)."""
    for name in (*OUTPUT_FILES, *extra):
        (out_dir / name).unlink(missing_ok=True)


def alerts_by_type(alert_lines: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Incidents (distinct alert ids) per type."""
    seen: dict[str, str] = {}
    for line in alert_lines:
        seen.setdefault(str(line["alert_id"]), str(line["type"]))
    return dict(sorted(Counter(seen.values()).items()))


def build_replay_summary(
    result: RunResult, zones: ZoneSet, recording: Recording | None, alert_lines: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``summary.json`` mapping (see the module docstring); without a recording only the run's figures."""
    summary = result.summary(zone_version=zones.version)
    summary["alerts_by_type"] = alerts_by_type(alert_lines)
    if recording is not None:
        summary["per_zone"] = zone_stats(zones, recording.subject_id, recording.lon_deg, recording.lat_deg, alert_lines)
        summary["per_subject"] = subject_stats(
            recording.subject_id, recording.ts_s, recording.lon_deg, recording.lat_deg, alert_lines
        )
    return summary


def write_replay_summary(path: Path, summary: Mapping[str, Any]) -> Path:
    """Write the summary as the runner does (indented, sorted keys, trailing newline)."""
    write_summary(path, summary)
    return path


def _speed_profiles(
    recording: Recording, alert_lines: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[list[float], list[float]]]:
    """Speed over time for the subjects with the most warning/critical incidents (else any incidents)."""
    weight: Counter[str] = Counter()
    for line in alert_lines:
        if line.get("status") in ("open", "event"):
            serious = line.get("severity") in ("warning", "critical")
            weight[str(line["subject_id"])] += 1000 if serious else 1
    chosen = sorted(weight, key=lambda s: (-weight[s], s))[:_SPEED_SUBJECTS]
    if not chosen or not len(recording):
        return {}
    wanted = np.isin(recording.subject_id.astype(str), np.asarray(chosen, dtype=str))
    sid = recording.subject_id[wanted]
    order, speed = speeds_kn(
        sid, recording.ts_s[wanted], recording.lon_deg[wanted], recording.lat_deg[wanted], recording.sog_kn[wanted]
    )
    ids = sid.astype(str)[order]
    ts = recording.ts_s[wanted][order]
    out: dict[str, tuple[list[float], list[float]]] = {}
    for subject in chosen:
        m = (ids == subject) & np.isfinite(speed)
        if m.any():
            out[subject] = (ts[m].tolist(), speed[m].tolist())
    return out


def _alert_times(alert_lines: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """Per subject, (type, time) of every warning/critical opening or event."""
    out: dict[str, list[tuple[str, float]]] = {}
    for line in alert_lines:
        if line.get("status") in ("open", "event") and line.get("severity") in ("warning", "critical"):
            out.setdefault(str(line["subject_id"]), []).append((str(line["type"]), parse_iso_utc(str(line["ts"]))))
    return out


def write_report_files(
    out_dir: Path,
    zones: ZoneSet,
    recording: Recording,
    alert_lines: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    *,
    title: str = "geofence replay report",
) -> list[Path]:
    """Write ``report.html`` and the PNG plots into ``out_dir``; return their paths."""
    from replay import plots  # matplotlib costs ~0.7 s to import: only commands that plot pay for it

    report = out_dir / "report.html"
    report.write_text(build_report(zones, recording.tracks(), alert_lines, summary, title=title), encoding="utf-8")
    dwell: dict[str, list[float]] = {}
    for zone_id, visits in visits_from_alerts(alert_lines).items():
        closed = [end - start for _, start, end in visits if end is not None]
        if closed:
            dwell[zone_id] = closed
    return [
        report,
        plots.plot_alerts_over_time(alert_lines, out_dir / PLOT_FILES[0]),
        plots.plot_dwell(dwell, out_dir / PLOT_FILES[1]),
        plots.plot_speed_profiles(
            _speed_profiles(recording, alert_lines), out_dir / PLOT_FILES[2], alert_times=_alert_times(alert_lines)
        ),
    ]
