"""What-if comparison between two runs' alert lines."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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


_TYPES = ("dwell_exceeded", "ais_gap", "zone_enter")


@st.composite
def _runs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[str]]:
    """Incidents of distinct (type, subject, zone) keys with their lines, and the ids of a random subset."""
    n = draw(st.integers(min_value=0, max_value=12))
    lines: list[dict[str, Any]] = []
    ids: list[str] = []
    for k in range(n):
        kind = draw(st.sampled_from(_TYPES))
        start = draw(st.integers(min_value=0, max_value=40))
        aid = f"id{k}"
        ids.append(aid)
        if kind == "zone_enter":
            lines.append(_line(aid, "event", f"2026-01-01T{start % 24:02d}:00:00Z", kind, str(k)))
        else:
            lines.append(_line(aid, "open", f"2026-01-01T{start % 23:02d}:00:00Z", kind, str(k)))
            lines.append(_line(aid, "closed", f"2026-01-01T{start % 23 + 1:02d}:00:00Z", kind, str(k)))
    dropped = set(draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    return lines, dropped


@settings(max_examples=100, deadline=None)
@given(_runs())
def test_dropping_incidents_reports_exactly_them_as_removed_and_back_as_added(
    run: tuple[list[dict[str, Any]], set[str]],
) -> None:
    lines, dropped = run
    kept = [x for x in lines if x["alert_id"] not in dropped]
    forward = compare(lines, kept)
    assert {i.alert_id for i in forward.removed} == dropped
    assert not forward.added and not forward.changed
    assert forward.unchanged == len({x["alert_id"] for x in kept})
    backward = compare(kept, lines)
    assert {i.alert_id for i in backward.added} == dropped and not backward.removed
