"""What-if: compare the alerts of two replays of the same input under different rules or zones.

Alerts are grouped into incidents (all lines of one ``alert_id``). An incident of
run B matches one of run A when they share type, subject and zone and their time
spans overlap (a changed threshold moves the start, and with it the alert id).
Matched incidents whose lines differ are *changed*; unmatched ones are *added*
(only in B) or *removed* (only in A).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from geofence.timefmt import parse_iso_utc

__all__ = ["Comparison", "Incident", "compare", "format_table", "incidents"]


@dataclass(frozen=True, slots=True)
class Incident:
    """All lines of one alert id, with its span in event time."""

    alert_id: str
    type: str
    subject_id: str
    zone_id: str | None
    start_s: float
    end_s: float
    severity: str
    lines: tuple[tuple[str, str], ...]  # (status, ts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "alert_id": self.alert_id,
            "type": self.type,
            "subject_id": self.subject_id,
            "zone_id": self.zone_id,
            "start": self.lines[0][1],
            "end": self.lines[-1][1],
            "severity": self.severity,
            "lines": [list(x) for x in self.lines],
        }


def incidents(alert_lines: Sequence[Mapping[str, Any]]) -> list[Incident]:
    """Group alert lines into incidents, in start order."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in alert_lines:
        grouped[str(line["alert_id"])].append(line)
    out = []
    for aid, lines in grouped.items():
        lines = sorted(lines, key=lambda x: parse_iso_utc(str(x["ts"])))
        first = lines[0]
        times = [parse_iso_utc(str(x["ts"])) for x in lines]
        worst = max((str(x["severity"]) for x in lines), key=("info", "warning", "critical").index)
        out.append(
            Incident(
                alert_id=aid,
                type=str(first["type"]),
                subject_id=str(first["subject_id"]),
                zone_id=first.get("zone_id"),
                start_s=times[0],
                end_s=times[-1],
                severity=worst,
                lines=tuple((str(x["status"]), str(x["ts"])) for x in lines),
            )
        )
    return sorted(out, key=lambda i: (i.start_s, i.alert_id))


@dataclass(frozen=True, slots=True)
class Comparison:
    """Result of comparing run A with run B."""

    added: list[Incident]
    removed: list[Incident]
    changed: list[tuple[Incident, Incident]]
    unchanged: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with counts by type."""

        def by_type(items: Sequence[Incident]) -> dict[str, int]:
            counts: dict[str, int] = defaultdict(int)
            for i in items:
                counts[i.type] += 1
            return dict(sorted(counts.items()))

        return {
            "counts": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
                "unchanged": self.unchanged,
            },
            "added_by_type": by_type(self.added),
            "removed_by_type": by_type(self.removed),
            "changed_by_type": by_type([b for _, b in self.changed]),
            "added": [i.to_dict() for i in self.added],
            "removed": [i.to_dict() for i in self.removed],
            "changed": [{"a": a.to_dict(), "b": b.to_dict()} for a, b in self.changed],
        }


def compare(lines_a: Sequence[Mapping[str, Any]], lines_b: Sequence[Mapping[str, Any]]) -> Comparison:
    """Compare two runs' alert lines incident by incident."""
    a_items, b_items = incidents(lines_a), incidents(lines_b)
    pool: dict[tuple[str, str, str | None], list[Incident]] = defaultdict(list)
    for inc in a_items:
        pool[(inc.type, inc.subject_id, inc.zone_id)].append(inc)
    added: list[Incident] = []
    changed: list[tuple[Incident, Incident]] = []
    unchanged = 0
    for inc in b_items:
        candidates = pool.get((inc.type, inc.subject_id, inc.zone_id), [])
        match = next((a for a in candidates if a.start_s <= inc.end_s and inc.start_s <= a.end_s), None)
        if match is None:
            added.append(inc)
            continue
        candidates.remove(match)
        if match.lines == inc.lines and match.severity == inc.severity:
            unchanged += 1
        else:
            changed.append((match, inc))
    removed = sorted((a for rest in pool.values() for a in rest), key=lambda i: (i.start_s, i.alert_id))
    return Comparison(added=added, removed=removed, changed=changed, unchanged=unchanged)


def format_table(result: Comparison, *, label_a: str = "A", label_b: str = "B", limit: int = 50) -> str:
    """A readable plain-text table of the differences."""
    rows = [f"what-if: {label_a} -> {label_b}"]
    c = result.to_dict()["counts"]
    rows.append(f"added {c['added']}, removed {c['removed']}, changed {c['changed']}, unchanged {c['unchanged']}")
    rows.append(f"{'change':<8} {'type':<22} {'subject':<14} {'zone':<28} {'start':<21} {'end':<21}")
    entries = [("added", i) for i in result.added] + [("removed", i) for i in result.removed]
    entries += [("changed", b) for _, b in result.changed]
    entries.sort(key=lambda e: (e[1].start_s, e[0], e[1].alert_id))
    for what, inc in entries[:limit]:
        rows.append(
            f"{what:<8} {inc.type:<22} {inc.subject_id:<14} {inc.zone_id or '-':<28} "
            f"{inc.lines[0][1]:<21} {inc.lines[-1][1]:<21}"
        )
    if len(entries) > limit:
        rows.append(f"... {len(entries) - limit} more (see compare.json)")
    return "\n".join(rows)
