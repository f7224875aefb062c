"""Regression tests named after engine bugs found while making it fast (each failed before its fix)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from geofence.engine import Engine
from tests.test_engine_support import T0, fence, run, track, zones

#: A restricted fence to the east of a fairway, so that vessels heading east get approach warnings.
APPROACH_ZS = zones(
    fence("fw", "fairway", -0.05, -0.01, 0.1, 0.03),
    fence("r", "restricted", 0.03, 0.0, 0.035, 0.02),
)


def _approach_rows() -> list[dict[str, Any]]:
    """Three vessels sailing east at 6 kn towards the restricted fence, a report every 30 s."""
    rows = []
    for j in range(3):
        lon = -0.002 * j
        for k in range(40):
            rows.append({"sid": f"v{j}", "ts": T0 + 30 * k + j, "lon": lon, "lat": 0.01, "sog": 6.0, "cog": 90.0})
            lon += 6 * 1852 / 3600 * 30 / 111_000
    rows.sort(key=lambda r: r["ts"])
    return rows


def test_approach_warning_evidence_is_the_track_at_its_record_whatever_the_batch_size() -> None:
    """Bug: approach_warning (and route_deviation) details quoted the evidence ring as it was at the end of
    the micro-batch, so the same input gave other ``details.track`` for other batch sizes."""
    rows = _approach_rows()
    ref = run(Engine(APPROACH_ZS), rows, 1)
    warnings = [orjson.loads(x) for x in ref if b'"approach_warning"' in x]
    assert warnings, "the scenario must raise approach warnings"
    for size in (7, 50, 1000):
        assert run(Engine(APPROACH_ZS), rows, size) == ref
    for w in warnings:
        if w["status"] == "open":  # the newest evidence point is the record the warning was raised at
            assert w["details"]["track"][-1][2] == w["ts"]


def _two_feed_rows() -> list[dict[str, Any]]:
    """Feeds A and B hear three vessels each; x is heard by A, then by B in the same chunk, then falls silent
    while B goes out (its vessels stop) and A keeps talking."""
    rows: list[dict[str, Any]] = []
    for k in range(400):
        for j in range(3):
            if k < 60:
                rows.append(
                    {"sid": f"b{j}", "ts": T0 + k * 10 + j, "lon": 0.01 + 1e-4 * j, "lat": 0.01, "receiver": "B"}
                )
            rows.append(
                {"sid": f"a{j}", "ts": T0 + k * 10 + j + 0.5, "lon": 0.012, "lat": 0.012 + 1e-4 * j, "receiver": "A"}
            )
    rows.append({"sid": "x", "ts": T0 + 600, "lon": 0.03, "lat": 0.01, "receiver": "A"})
    rows.append({"sid": "x", "ts": T0 + 605, "lon": 0.0301, "lat": 0.01, "receiver": "B"})
    for r in rows:
        r["sog"] = 5.0
    rows.sort(key=lambda r: r["ts"])
    return rows


@pytest.mark.parametrize("size", [20, 60, 200, 5000])
@pytest.mark.parametrize("fast", [True, False])
def test_gap_of_a_subject_heard_by_two_feeds_in_one_chunk_is_not_held_back(size: int, fast: bool) -> None:
    """Bug: the fast path kept a subject whose records in one chunk came from two feeds as cold, so it lost
    the time the other feed heard it; its ais_gap was then held back as if only the dead feed had heard it
    (and only for some batch sizes)."""
    zs = zones(fence("port", "port", 0.0, 0.0, 0.02, 0.02))
    types = [
        (d["type"], d["subject_id"])
        for d in map(orjson.loads, run(Engine(zs, fast=fast), _two_feed_rows(), size))
        if not d["type"].startswith("zone")
    ]
    assert types == [("feed_outage", "B"), ("ais_gap", "x")]


# -- position_jump: the confirmation window of a sparse reporter ------------------------------------------------


def _sparse_jumper(interval_s: float) -> list[dict[str, Any]]:
    """A boat reporting every ``interval_s`` at 0.05E, then (one MMSI, another boat) 500 km east, same interval."""
    here = [(0.05, 0.05)] * 6
    there = [(4.5 + 0.0001 * k, 0.05) for k in range(6)]
    return [{**r, "sog": 0.0} for r in track("v1", T0, interval_s, here + there)]


@pytest.mark.parametrize("fast", [True, False])
def test_regression_sparse_reporter_confirms_its_jump(fast: bool) -> None:
    """Bug: an unconfirmed suspect was discarded after a fixed 15 min, so a boat reporting every 30 min never
    confirmed its jump and each later report raised another ``position_jump`` (real data: MMSI 412588888).
    The window is now 4 x the subject's median reporting interval (15 min to 2 h)."""
    zs = zones(fence("far", "port", 4.45, 0.0, 4.55, 0.1))
    got = [(d["type"], d["ts"]) for d in map(orjson.loads, run(Engine(zs, fast=fast), _sparse_jumper(1800.0), 3))]
    jump_ts = "2023-11-15T01:13:20Z"  # T0 + 6 x 30 min
    assert sorted(got) == [("position_jump", jump_ts), ("zone_enter", jump_ts)]  # confirmed: applied at its time


def test_frequent_reporter_keeps_the_15_min_window() -> None:
    from geofence._engine_record import SUSPECT_EXPIRY_MAX_S, SUSPECT_EXPIRY_S, suspect_expiry_s

    assert suspect_expiry_s([0, 10_000, 20_000, 30_000, 40_000]) == SUSPECT_EXPIRY_S
    assert suspect_expiry_s([0, 1_800_000, 3_600_000]) == 4 * 1800.0
    assert suspect_expiry_s([0, 86_400_000]) == SUSPECT_EXPIRY_MAX_S
    assert suspect_expiry_s([5_000]) == SUSPECT_EXPIRY_S


# -- zone_cross over the antimeridian ----------------------------------------------------------------------------


def test_regression_move_over_the_antimeridian_is_the_short_hop() -> None:
    """Bug: a move from -179.99E to 179.70E was a line across the whole globe and crossed a fence at 7E (real
    data: CSCL SUMMER). Split at 180 it crosses only what lies on the short hop."""
    zs = zones(
        fence("far", "port", 7.0, 57.9, 7.2, 58.1),  # on the long way round
        fence("near", "restricted", 179.8, 57.9, 179.9, 58.1),  # on the short hop, west of 180
        fence("east", "restricted", -179.98, 57.9, -179.95, 58.1),  # on the short hop, east of -180
    )
    rows = track("v1", T0, 3600, [(-179.99, 58.0), (179.70, 58.0)], sog=12.0)
    crossed = [(d["type"], d["zone_id"]) for d in map(orjson.loads, run(Engine(zs), rows)) if d["type"] == "zone_cross"]
    assert crossed == [("zone_cross", "near")]
    back = track("v1", T0, 3600, [(179.70, 58.0), (-179.90, 58.0)], sog=12.0)
    lines = map(orjson.loads, run(Engine(zs), back))
    crossed = sorted((d["type"], d["zone_id"]) for d in lines if d["type"] == "zone_cross")
    assert crossed == [("zone_cross", "east"), ("zone_cross", "near")]


# -- dwell_exceeded through a silence ----------------------------------------------------------------------------

DWELL_ZS = zones(fence("p", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=60))


@pytest.mark.parametrize("fast", [True, False])
def test_regression_no_dwell_claim_through_a_silence(fast: bool) -> None:
    """Bug: the dwell timer opened (and updated) dwell_exceeded for a vessel silent for days (real data: Suez
    vessel 147). A deadline passing while the vessel is silent beyond its 30-min gap threshold is decided at
    its next report: inside, the line is dated there; outside, the exit ends the stay without a dwell line."""
    inside = track("v1", T0, 300, [(0.05, 0.05)] * 4)  # 15 min, then silent
    back_in = track("v1", T0 + 3 * 3600, 300, [(0.05, 0.05)] * 3)
    back_out = track("v1", T0 + 3 * 3600, 300, [(0.2, 0.05)] * 3)
    other = track("w", T0, 300, [(5.0, 5.0)] * 50)  # moves the watermark past the deadline meanwhile
    rows_in = sorted(inside + back_in + other, key=lambda r: r["ts"])
    got = [(d["type"], d["status"], d["ts"]) for d in map(orjson.loads, run(Engine(DWELL_ZS, fast=fast), rows_in, 5))]
    assert [g for g in got if g[0] == "dwell_exceeded"] == [("dwell_exceeded", "open", "2023-11-15T01:13:20Z")]
    rows_out = sorted(inside + back_out + other, key=lambda r: r["ts"])
    got = [d["type"] for d in map(orjson.loads, run(Engine(DWELL_ZS, fast=fast), rows_out, 5))]
    assert "dwell_exceeded" not in got and got.count("zone_exit") == 1


def test_dwell_of_a_vessel_that_keeps_reporting_opens_at_the_deadline() -> None:
    rows = track("v1", T0, 300, [(0.05, 0.05)] * 20)
    got = [(d["type"], d["status"], d["ts"]) for d in map(orjson.loads, run(Engine(DWELL_ZS), rows))]
    assert ("dwell_exceeded", "open", "2023-11-14T23:13:20Z") in got  # T0 + 60 min, the vessel reporting
