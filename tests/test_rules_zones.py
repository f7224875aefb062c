"""Zone rules: enter/exit with hysteresis and min_inside_s, restricted_entry, zone_cross, dwell_exceeded."""

from __future__ import annotations

import orjson
import pytest

from geofence.engine import Engine
from geofence.positions import StaticReport
from geofence.rules.config import RulesConfig
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


def test_percentile_dwell_uses_the_baseline_and_names_it() -> None:
    zs = zones(fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1, max_dwell_min="p99"))
    eng = Engine(zs, baseline={("anc", None): {"p99": 10.0}})
    rows = track("v1", T0, 60, [(0.55, 0.05)] * 15, sog=0.0)
    opened = [d for d in map(orjson.loads, run(eng, rows)) if (d["type"], d["status"]) == ("dwell_exceeded", "open")]
    assert [(d["details"]["max_dwell_s"], d["details"]["threshold_source"]) for d in opened] == [
        (600.0, "baseline p99 (zone)")
    ]


def _dwell_opens(eng: Engine, minutes: int, at: tuple[float, float]) -> list[tuple[float, str]]:
    rows = track("v1", T0, 60, [at] * minutes, sog=0.0)
    return [
        (d["details"]["max_dwell_s"], d["details"]["threshold_source"])
        for d in map(orjson.loads, run(eng, rows))
        if (d["type"], d["status"]) == ("dwell_exceeded", "open")
    ]


def test_regression_percentile_dwell_without_baseline_falls_back_not_config_error() -> None:
    """``geofence run`` with the built-in catalogue (percentile fences say "p99") exited 2 with a ConfigError."""
    zs = zones(
        fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1, max_dwell_min="p99"),
        fence("prt", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min="p99"),
    )
    # anchorage: built-in kind default 2,880 min; port: no numeric value anywhere -> no dwell rule
    assert _dwell_opens(Engine(zs), 2900, (0.55, 0.05)) == [(2880 * 60.0, "default (no baseline for p99)")]
    assert _dwell_opens(Engine(zs), 2900, (0.05, 0.05)) == []
    # a baseline that has not learned this zone falls back the same way
    assert _dwell_opens(Engine(zs, baseline={("other", None): {"p99": 5.0}}), 2900, (0.55, 0.05)) == [
        (2880 * 60.0, "default (no baseline for p99)")
    ]


@pytest.mark.parametrize(
    ("rules", "want"),
    [
        ("[kinds.anchorage]\nmax_dwell_min = 30\n", (1800.0, "rules file (no baseline for p99)")),
        ("[defaults.dwell_exceeded]\nmax_dwell_min = 20\n", (2880 * 60.0, "default (no baseline for p99)")),
    ],
)
def test_percentile_fallback_follows_the_precedence(rules: str, want: tuple[float, str]) -> None:
    zs = zones(fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1, max_dwell_min="p99"))
    assert _dwell_opens(Engine(zs, RulesConfig.from_toml(rules)), 2900, (0.55, 0.05)) == [want]


@pytest.mark.parametrize(
    ("params", "rules", "want"),
    [
        ({"max_dwell_min": 10}, "", (600.0, "fence")),
        ({}, "[kinds.port]\nmax_dwell_min = 12\n", (720.0, "rules file")),
        ({}, "[defaults.dwell_exceeded]\nmax_dwell_min = 14\n", (840.0, "rules file")),
    ],
)
def test_numeric_dwell_names_its_source(params: dict[str, object], rules: str, want: tuple[float, str]) -> None:
    zs = zones(fence("prt", "port", 0.0, 0.0, 0.1, 0.1, **params))
    assert _dwell_opens(Engine(zs, RulesConfig.from_toml(rules)), 20, (0.05, 0.05)) == [want]


def test_anchorage_builtin_dwell_names_default() -> None:
    zs = zones(fence("anc", "anchorage", 0.5, 0.0, 0.6, 0.1))
    assert _dwell_opens(Engine(zs), 2900, (0.55, 0.05)) == [(2880 * 60.0, "default")]


# per ship type: 120 min for unknown types, 60 min for cargo (70)
_TYPED = {("p", None): {"p99": 120.0}, ("p", 70): {"p99": 60.0}}


@pytest.mark.parametrize("static_at_min", [40, 90])
@pytest.mark.parametrize("fast", [True, False])
def test_regression_dwell_timer_survives_static_data_after_entry(static_at_min: int, fast: bool) -> None:
    """A 3 h stay; the ship type arrives after entry and lowers the limit to 60 min.

    The dwell timer used to re-read the limit with the new type and drop itself: no alert.
    Now the deadline is rescheduled: at entry + 60 min when the static data comes first, at
    the watermark when it comes after that deadline (it cannot be dated before data already
    decided).
    """
    zs = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min="p99"))
    eng = Engine(zs, baseline=_TYPED, fast=fast)
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 180 + [(0.2, 0.05)] * 3, sog=0.0)
    out = list(eng.process(batch(rows[:static_at_min])).alerts)
    eng.add_statics([StaticReport("v1", None, ship_type=70)])
    out += eng.process(batch(rows[static_at_min:])).alerts
    out += eng.finish().alerts
    dwell = [a for a in out if a.type.value == "dwell_exceeded"]
    assert dwell[0].status.value == "open" and dwell[-1].status.value == "closed"
    opened = dwell[0]
    assert opened.details["max_dwell_s"] == 3600.0
    assert opened.details["threshold_source"] == "baseline p99 (zone, ship type)"
    w_at_static = T0 + (static_at_min - 1) * 60 - 60  # last report of the first batch minus the tolerance
    assert opened.ts_s == max(T0 + 3600.0, w_at_static)
    assert [a.status.value for a in dwell].count("open") == 1


def test_dwell_limit_raised_by_static_data_opens_later() -> None:
    zs = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min="p99"))
    eng = Engine(zs, baseline={("p", None): {"p99": 60.0}, ("p", 70): {"p99": 120.0}})
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 180 + [(0.2, 0.05)] * 3, sog=0.0)
    out = list(eng.process(batch(rows[:40])).alerts)
    eng.add_statics([StaticReport("v1", None, ship_type=70)])
    out += eng.process(batch(rows[40:])).alerts + eng.finish().alerts
    opened = [a for a in out if (a.type.value, a.status.value) == ("dwell_exceeded", "open")]
    assert [(a.ts_s, a.details["max_dwell_s"]) for a in opened] == [(T0 + 7200.0, 7200.0)]


def test_set_zones_changes_version_of_later_alerts() -> None:
    eng = Engine(ZS)
    first = eng.process(batch(track("v1", T0, 60, [(0.05, 0.05)] * 3, sog=0.0))).alerts
    z2 = zones(fence("port1", "port", 0.0, 0.0, 0.1, 0.1), fence("new", "berth", 0.7, 0.0, 0.8, 0.1))
    eng.set_zones(z2)
    later = eng.process(batch(track("v2", T0 + 200, 60, [(0.75, 0.05)] * 3, sog=0.0))).alerts
    later += eng.finish().alerts
    assert first and all(a.zone_version == ZS.version for a in first)
    assert later and all(a.zone_version == z2.version for a in later)


@pytest.mark.parametrize("fast", [True, False])
def test_zone_reload_lowering_an_exceeded_dwell_limit_opens_at_the_watermark(fast: bool) -> None:
    """Reloading the zones with max_dwell_min 120 -> 30 after 60 min inside: the new limit is already exceeded.

    The reload used to reschedule only deadlines still ahead of the watermark, so this stay raised nothing.
    """
    before = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=120))
    after = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=30))
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 180, sog=0.0)
    eng = Engine(before, fast=fast)
    out = list(eng.process(batch(rows[:61])).alerts)
    eng.set_zones(after)
    out += eng.process(batch(rows[61:])).alerts + eng.finish().alerts
    dwell = [(a.status.value, a.ts_s, a.details["max_dwell_s"]) for a in out if a.type.value == "dwell_exceeded"]
    w_at_reload = T0 + 60 * 60 - 60  # last report of the first batch minus the tolerance
    # then the doublings of the new limit: 2 x 30 min (60 min) and 4 x 30 min (120 min)
    assert dwell == [("open", w_at_reload, 1800.0), ("update", T0 + 3600.0, 1800.0), ("update", T0 + 7200.0, 1800.0)]
