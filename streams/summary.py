"""The run summary (``--summary FILE``): event-time figures only, so a replay reproduces it byte for byte.

No wall-clock figure (elapsed time, rates, lag, restart count) is written here;
those go to stderr (:mod:`streams.stats`). A run resumed from a checkpoint
writes the same summary as an uninterrupted run over the same input, because
its totals are carried in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from geofence.decode.accounting import Counts
from geofence.engine_api import EngineStats
from geofence.timefmt import iso_utc

__all__ = ["build_summary", "write_summary"]


def build_summary(
    *,
    inputs: Sequence[str],
    counts: Counts,
    alert_lines: int,
    alert_lines_by_type: Mapping[str, int],
    alert_lines_by_status: Mapping[str, int],
    engine: EngineStats | None,
    finished: bool,
    zone_version: str | None = None,
    sorted_inputs: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Assemble the summary mapping.

    Fields: ``inputs``, ``counts`` (the accounting buckets, see docs/ingest.md),
    ``dead_letter_reasons``, ``dead_letter_rate`` (dead letters / input lines),
    ``accounting_balanced``, ``alert_lines`` (and by type and status),
    ``open_alerts``, ``subjects``, ``late``, ``watermark``, ``max_event_ts``,
    ``watermark_delay_s``, ``finished`` (input fully consumed), ``zone_version``,
    ``sorted_inputs`` (file inputs that were not in event-time order and were
    processed sorted) and ``notes``.
    """
    c = counts.to_dict()
    reasons = c.pop("dead_letter_reasons")
    wm = None if engine is None else engine.watermark_s
    newest = None if engine is None else engine.max_event_ts_s
    return {
        "inputs": list(inputs),
        "counts": c,
        "dead_letter_reasons": reasons,
        "dead_letter_rate": round(counts.dead_letter / counts.input_lines, 6) if counts.input_lines else 0.0,
        "accounting_balanced": counts.balanced(),
        "alert_lines": alert_lines,
        "alert_lines_by_type": dict(sorted(alert_lines_by_type.items())),
        "alert_lines_by_status": dict(sorted(alert_lines_by_status.items())),
        "open_alerts": None if engine is None else engine.open_alerts,
        "subjects": None if engine is None else engine.subjects,
        "late": None if engine is None else engine.late,
        "watermark": None if wm is None else iso_utc(wm),
        "max_event_ts": None if newest is None else iso_utc(newest),
        "watermark_delay_s": None if wm is None or newest is None else round(newest - wm, 3),
        "finished": finished,
        "zone_version": zone_version,
        "sorted_inputs": list(sorted_inputs),
        "notes": list(notes),
    }


def write_summary(path: str | Path, summary: Mapping[str, Any]) -> None:
    """Write ``summary`` as indented JSON with sorted keys and a trailing newline (deterministic bytes)."""
    data = orjson.dumps(dict(summary), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    Path(path).write_bytes(data)
