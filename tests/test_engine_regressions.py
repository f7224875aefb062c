"""Regression tests named after engine bugs found while making it fast (each failed before its fix)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from geofence.engine import Engine
from tests.test_engine_support import T0, fence, run, zones

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
