"""Motion rules: unexpected_stop, overspeed, position_jump (with quarantine)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from geofence.engine import Engine
from geofence.rules import RulesConfig
from tests.test_engine_support import T0, batch, fence, run, track, types, zones

ZS = zones(
    fence("fw", "fairway", 0.0, 0.0, 1.0, 0.1, speed_limit_kn=10),
    fence("anc", "anchorage", 0.4, 0.0, 0.5, 0.1),
    fence("port", "port", 2.0, 0.0, 2.1, 0.1),
)


def _stop_track(lon: float, sog: float | None, dt: float = 30.0) -> list[dict[str, object]]:
    moving = [(lon - 0.02 + 0.001 * k, 0.05) for k in range(20)]
    stopped = [(lon, 0.05)] * int(1800 / dt)
    leave = [(lon + 0.001 * k, 0.05) for k in range(1, 60)]
    pts = moving + stopped + leave
    extra = {} if sog is None else {"sog": sog}
    rows = track("v1", T0, dt, pts, **extra)
    if sog is not None:  # moving parts report a moving SOG
        for r, p in zip(rows, pts, strict=True):
            r["sog"] = 0.1 if p == (lon, 0.05) else 4.0
    return rows


def test_stop_in_fairway_gives_one_open_and_one_closed() -> None:
    lines = run(Engine(ZS), _stop_track(0.2, sog=0.1))
    stops = [orjson.loads(x) for x in lines if b"unexpected_stop" in x]
    assert [d["status"] for d in stops] == ["open", "closed"]
    assert stops[0]["zone_id"] == "fw"
    assert stops[0]["details"]["started"] < stops[0]["ts"]
    assert stops[1]["details"]["duration_s"] >= 1800 - 60


def test_stop_without_sog_on_minute_data_is_detected() -> None:
    lines = run(Engine(ZS), _stop_track(0.2, sog=None, dt=60.0))
    assert [s for t, s in types(lines) if t == "unexpected_stop"] == ["open", "closed"]


def test_stop_in_anchorage_inside_fairway_is_allowed() -> None:
    # the anchorage is the smallest containing zone with an opinion: stopping is allowed there
    lines = run(Engine(ZS), _stop_track(0.45, sog=0.1))
    assert not [t for t, _ in types(lines) if t == "unexpected_stop"]


def test_stop_outside_zones_only_when_switched_on() -> None:
    assert not [t for t, _ in types(run(Engine(ZS), _stop_track(1.5, sog=0.1))) if t == "unexpected_stop"]
    cfg = RulesConfig.from_toml("[defaults.unexpected_stop]\noutside_zones = true\n")
    assert ("unexpected_stop", "open") in types(run(Engine(ZS, cfg), _stop_track(1.5, sog=0.1)))


def test_short_stop_gives_nothing() -> None:
    rows = track("v1", T0, 60, [(0.2, 0.05)] * 10 + [(0.2 + 0.002 * k, 0.05) for k in range(1, 20)], sog=0.0)
    assert not [t for t, _ in types(run(Engine(ZS), rows)) if t == "unexpected_stop"]


def test_overspeed_opens_after_min_time_and_closes() -> None:
    fast = track("v1", T0, 10, [(0.1 + 0.0005 * k, 0.05) for k in range(60)], sog=14.0)
    slow = track("v1", T0 + 600, 10, [(0.13 + 0.0002 * k, 0.05) for k in range(100)], sog=6.0)
    got = [orjson.loads(x) for x in run(Engine(ZS), fast + slow) if b"overspeed" in x]
    assert [d["status"] for d in got] == ["open", "closed"]
    assert got[0]["details"]["limit_kn"] == 10.0 and got[0]["details"]["speed_kn"] == 14.0


def test_brief_overspeed_is_ignored() -> None:
    rows = track("v1", T0, 10, [(0.1 + 0.0005 * k, 0.05) for k in range(6)], sog=14.0)
    rows += track("v1", T0 + 60, 10, [(0.103 + 0.0002 * k, 0.05) for k in range(50)], sog=6.0)
    assert not [t for t, _ in types(run(Engine(ZS), rows)) if t == "overspeed"]


def test_position_jump_is_an_event_and_the_suspect_is_quarantined() -> None:
    # a single outlier in the port (far away) must not enter the port
    pts = (
        [(1.5 + 0.0003 * k, 0.05) for k in range(5)] + [(2.05, 0.05)] + [(1.5015 + 0.0003 * k, 0.05) for k in range(5)]
    )
    got = types(run(Engine(ZS), track("v1", T0, 30, pts, sog=5.0)))
    assert got == [("position_jump", "event")]


def test_confirmed_jump_moves_the_subject() -> None:
    pts = [(1.5 + 0.0003 * k, 0.05) for k in range(5)] + [(2.05 + 0.0003 * k, 0.05) for k in range(5)]
    got = types(run(Engine(ZS), track("v1", T0, 30, pts, sog=5.0)))
    assert got == [("position_jump", "event"), ("zone_enter", "event")]


def _stops(lines: list[bytes]) -> list[dict[str, object]]:
    return [d for d in map(orjson.loads, lines) if d["type"] == "unexpected_stop"]


def test_regression_stop_without_sog_starts_with_the_stationary_window() -> None:
    """Without SOG the stop is geometric, as movingpandas' ``TrajectoryStopDetector``: it begins at the first
    report of the first ``min_duration_s`` window whose reports all lie within ``diameter_m``.

    Minute data arriving at 0.001 deg (111 m) a minute: the last two approach reports (222 m and 111 m before
    the stop point, T0 + 18 and 19 min) fit in the 250 m diameter with the stop, the one before does not. The
    engine used to start at the first report with a derived speed below 1 kn (T0 + 21 min), two steps late.
    """
    stops = _stops(run(Engine(ZS), _stop_track(0.2, sog=None, dt=60.0)))
    assert stops[0]["details"]["started"] == "2023-11-14T22:31:20Z"  # T0 + 18 min
    assert [d["status"] for d in stops] == ["open", "closed"]


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_geometric_stop_survives_snapshots_and_batch_sizes(size: int) -> None:
    rows = _stop_track(0.2, sog=None, dt=60.0)
    ref = run(Engine(ZS), rows, 1000)
    assert run(Engine(ZS), rows, size) == ref
    eng = Engine(ZS)
    out: list[bytes] = []
    for k in range(0, len(rows), 13):
        out += [a.to_json() for a in eng.process(batch(rows[k : k + 13])).alerts]
        eng = Engine.restore(eng.snapshot(), ZS)
    out += [a.to_json() for a in eng.finish().alerts]
    assert out == ref


def test_long_geometric_stop_keeps_a_small_window() -> None:
    """A stop of 2 days on minute data: the window is compacted to its hull (a few points, not 2,880)."""
    rng = np.random.default_rng(3)
    pts = [(0.2 + float(x), 0.05 + float(y)) for x, y in rng.normal(0, 0.0002, (2880, 2))]
    eng = Engine(ZS)
    lines = run(eng, track("v1", T0, 60, pts))
    assert [d["status"] for d in _stops(lines)] == ["open"]
    assert all(len(w.pts) <= 40 for w in eng._c.stop_win.values())


def test_stop_with_sog_starts_at_the_first_slow_report() -> None:
    stops = _stops(run(Engine(ZS), _stop_track(0.2, sog=0.1, dt=60.0)))
    assert stops[0]["details"]["started"] == "2023-11-14T22:33:20Z"  # the first report with SOG 0.1


def _two_berths(dt: float = 60.0) -> list[dict[str, object]]:
    """Stopped 30 min at A, then drifted 200 m (beyond the 125 m disc) at SOG 0.1 and stopped 30 min at B."""
    a, b = 0.2, 0.2 + 200 / 111_195
    pts = [(a, 0.05)] * 30 + [(b, 0.05)] * 30 + [(b + 0.001 * k, 0.05) for k in range(1, 20)]
    rows = track("v1", T0, dt, pts, sog=0.1)
    for r in rows[60:]:
        r["sog"] = 4.0
    return rows


def test_regression_zero_cooldown_does_not_resume_a_broken_stop() -> None:
    """With ``cooldown_s = 0`` a stop broken by a slow report closes and that report starts the next stop.

    ``_resume`` used to cancel the close at the same instant, so one alert slid from A to B.
    """
    cfg = RulesConfig.from_toml("[defaults.unexpected_stop]\ncooldown_s = 0\nmin_duration_s = 900\n")
    stops = _stops(run(Engine(ZS, cfg), _two_berths()))
    assert [(d["status"], d["details"]["started"]) for d in stops] == [
        ("open", "2023-11-14T22:13:20Z"),
        ("closed", "2023-11-14T22:13:20Z"),
        ("open", "2023-11-14T22:43:20Z"),
        ("closed", "2023-11-14T22:43:20Z"),
    ]
    assert stops[1]["ts"] == "2023-11-14T22:43:20Z"  # closed at the report that left the disc


def test_stop_broken_within_the_cooldown_is_one_incident() -> None:
    stops = _stops(run(Engine(ZS), _two_berths()))  # default cool-down 600 s
    assert [d["status"] for d in stops] == ["open", "closed"]
