"""Zone rules: enter/exit with hysteresis and min_inside_s, restricted_entry, zone_cross, dwell_exceeded."""

from __future__ import annotations

import orjson
import pytest

from geofence.engine import Engine
from geofence.errors import ConfigError
from tests.test_engine_support import T0, batch, fence, run, track, types, zones

ZS = zones(
    fence("port1", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=30),
    fence("r1", "restricted", 0.3, 0.0, 0.31, 0.1),
    fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1, max_dwell_min=10, min_inside_s=120),
)


def _through_port(n: int = 100, dt: float = 30.0) -> list[dict[str, object]]:
    return track("v1", T0, dt, [(-0.05 + 0.002 * k, 0.05) for k in range(n)], sog=8.0)


def test_enter_stay_leave_gives_one_enter_and_one_exit() -> None:
    lines = run(Engine(ZS), _through_port())
    assert types(lines) == [("zone_enter", "event"), ("zone_exit", "event")]
    enter, exit_ = map(orjson.loads, lines)
    assert enter["zone_id"] == exit_["zone_id"] == "port1"
    assert exit_["details"]["dwell_s"] > 0
    assert len(enter["details"]["track"]) <= 5


def test_edge_jitter_within_hysteresis_gives_no_events() -> None:
    # 25 m default hysteresis; jitter of +-10 m around the west edge (lon 0.0), ~0.00009 deg = 10 m
    rows = track("v1", T0, 10, [(0.00009 * (-1) ** k, 0.05) for k in range(200)], sog=0.0)
    assert run(Engine(ZS), rows) == []


def test_first_sighting_inside_counts_as_enter() -> None:
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 5, sog=0.0)
    assert types(run(Engine(ZS), rows)) == [("zone_enter", "event")]


def test_min_inside_s_dates_the_enter_at_the_first_inside_report() -> None:
    short = track("a", T0, 30, [(0.4995, 0.05), (0.5005, 0.05), (0.5005, 0.05), (0.4995, 0.05)], sog=0.0)
    long = track("b", T0, 60, [(0.4995, 0.05)] + [(0.501, 0.05)] * 5, sog=0.0)
    eng = Engine(ZS)
    lines = [orjson.loads(x) for x in run(eng, short + long)]
    enters = [d for d in lines if d["type"] == "zone_enter"]
    assert [d["subject_id"] for d in enters] == ["b"]  # 'a' left after 60 s < 120 s
    assert enters[0]["ts"] == "2023-11-14T22:14:20Z"  # first inside report of b (T0 + 60)


def test_restricted_entry_is_critical_and_comes_with_zone_enter() -> None:
    rows = track("v1", T0, 30, [(0.28 + 0.001 * k, 0.05) for k in range(40)], sog=7.0)
    got = [orjson.loads(x) for x in run(Engine(ZS), rows)]
    kinds = {(d["type"], d["severity"]) for d in got}
    assert ("restricted_entry", "critical") in kinds
    assert ("zone_enter", "info") in kinds


def test_zone_cross_when_no_report_lies_inside() -> None:
    rows = track("v1", T0, 600, [(0.29, 0.05), (0.32, 0.05), (0.35, 0.05)], sog=10.0)
    got = [orjson.loads(x) for x in run(Engine(ZS), rows)]
    assert [(d["type"], d["zone_id"]) for d in got] == [("zone_cross", "r1")]


def test_dwell_opens_updates_on_doubling_and_closes_on_exit() -> None:
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 70 + [(0.2, 0.05)] * 3, sog=0.0)
    got = types(run(Engine(ZS), rows))
    assert got.count(("dwell_exceeded", "open")) == 1
    assert got.count(("dwell_exceeded", "update")) == 1  # 60 min = 2 x 30 min
    assert got.count(("dwell_exceeded", "closed")) == 1


def test_no_dwell_alert_below_the_limit() -> None:
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 20 + [(0.2, 0.05)] * 3, sog=0.0)
    assert ("dwell_exceeded", "open") not in types(run(Engine(ZS), rows))


def test_percentile_dwell_needs_a_baseline() -> None:
    zs = zones(fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1, max_dwell_min="p99"))
    with pytest.raises(ConfigError, match="p99"):
        Engine(zs)
    eng = Engine(zs, baseline={("anc", None): {"p99": 10.0}})
    rows = track("v1", T0, 60, [(0.55, 0.05)] * 15, sog=0.0)
    assert ("dwell_exceeded", "open") in types(run(eng, rows))


def test_set_zones_changes_version_of_later_alerts() -> None:
    eng = Engine(ZS)
    first = eng.process(batch(track("v1", T0, 60, [(0.05, 0.05)] * 3, sog=0.0))).alerts
    z2 = zones(fence("port1", "port", 0.0, 0.0, 0.1, 0.1), fence("new", "berth", 0.7, 0.0, 0.8, 0.1))
    eng.set_zones(z2)
    later = eng.process(batch(track("v2", T0 + 200, 60, [(0.75, 0.05)] * 3, sog=0.0))).alerts
    later += eng.finish().alerts
    assert first and all(a.zone_version == ZS.version for a in first)
    assert later and all(a.zone_version == z2.version for a in later)
