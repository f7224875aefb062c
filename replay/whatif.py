"""What-if: replay the same recordings under two rule files (or two zone sets) and compare the alerts.

Each side is a complete replay in its own sub-directory (``DIR/a``, ``DIR/b``:
alerts, dead letters, summary and, unless switched off, report and plots). The
comparison (:mod:`replay.compare`: incidents matched by type, subject, zone and
overlapping time span) goes to ``DIR/compare.json`` and, as a readable table,
to ``DIR/compare.txt``. Analysts use it to see what a threshold change would
have added, removed or changed before the supervision centre adopts it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from geofence.fence import ZoneSet
from replay.compare import Comparison, compare, format_table
from replay.driver import ReplayRun, run_replay, write_report

__all__ = ["Side", "WhatIf", "run_whatif"]


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a what-if: a label (the rules or zones file name), its zones and its run options."""

    label: str
    zones: ZoneSet
    options: argparse.Namespace


@dataclass(slots=True)
class WhatIf:
    """Both replays, their labels and their comparison."""

    a: ReplayRun
    b: ReplayRun
    a_label: str
    b_label: str
    comparison: Comparison
    table: str

    def to_dict(self) -> dict[str, Any]:
        """The ``compare.json`` mapping: both sides, then the comparison (counts, by type, incidents)."""
        return {
            "a": {"label": self.a_label, "zone_version": self.a.zones.version, "alert_lines": len(self.a.alerts)},
            "b": {"label": self.b_label, "zone_version": self.b.zones.version, "alert_lines": len(self.b.alerts)},
            **self.comparison.to_dict(),
        }


def run_whatif(
    inputs: Sequence[str | Path],
    out_dir: Path,
    a: Side,
    b: Side,
    *,
    speed: float | None = None,
    progress: bool | None = False,
    report: bool = True,
    table_rows: int = 50,
) -> WhatIf:
    """Replay ``inputs`` under side ``a`` and side ``b``; write both replays and the comparison into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for name, side in (("a", a), ("b", b)):
        r = run_replay(inputs, side.zones, out_dir / name, options=side.options, speed=speed, progress=progress)
        if report:
            write_report(r, title=f"geofence what-if {name.upper()}: {side.label}")
        runs.append(r)
    comparison = compare(runs[0].alert_lines, runs[1].alert_lines)
    table = format_table(comparison, label_a=a.label, label_b=b.label, limit=table_rows)
    result = WhatIf(runs[0], runs[1], a.label, b.label, comparison, table)
    (out_dir / "compare.json").write_bytes(
        orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    (out_dir / "compare.txt").write_text(
        format_table(comparison, label_a=a.label, label_b=b.label, limit=10**9) + "\n", encoding="utf-8"
    )
    return result
