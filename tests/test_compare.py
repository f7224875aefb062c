"""What-if comparison between two runs' alert lines."""

from __future__ import annotations

from typing import Any

from replay.compare import compare, format_table


def _line(aid: str, status: str, ts: str, type_: str = "dwell_exceeded", subject: str = "1") -> dict[str, Any]:
    return {"alert_id": aid, "type": type_, "status": status, "ts": ts, "subject_id": subject, "zone_id": "anch",
            "severity": "warning"}


def test_added_removed_changed_unchanged() -> None:
    a = [
        _line("x", "open", "2026-01-01T02:00:00Z"), _line("x", "closed", "2026-01-01T03:00:00Z"),
        _line("gone", "open", "2026-01-02T02:00:00Z", subject="2"),
        _line("same", "event", "2026-01-01T01:00:00Z", type_="zone_enter"),
    ]
    b = [
        _line("y", "open", "2026-01-01T01:00:00Z"), _line("y", "closed", "2026-01-01T03:00:00Z"),
        _line("new", "open", "2026-01-03T02:00:00Z", subject="3"),
        _line("same", "event", "2026-01-01T01:00:00Z", type_="zone_enter"),
    ]
    r = compare(a, b)
    assert [i.alert_id for i in r.added] == ["new"]
    assert [i.alert_id for i in r.removed] == ["gone"]
    assert [(x.alert_id, y.alert_id) for x, y in r.changed] == [("x", "y")]
    assert r.unchanged == 1
    d = r.to_dict()
    assert d["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    table = format_table(r)
    assert "added" in table and "new" not in table.split("\n")[0]


def test_identical_runs_have_no_differences() -> None:
    a = [_line("x", "open", "2026-01-01T02:00:00Z"), _line("x", "closed", "2026-01-01T03:00:00Z")]
    r = compare(a, list(a))
    assert not r.added and not r.removed and not r.changed and r.unchanged == 1
