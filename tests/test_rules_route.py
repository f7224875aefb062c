"""Route plans: validation messages and the distance beyond the corridor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geofence.errors import ConfigError
from geofence.fence import Fence, ZoneKind, ZoneSet
from geofence.rules.route import Plans, parse_plans
from geofence.timefmt import parse_iso_utc

GEOD = Geod(ellps="WGS84")
FAIRWAY = Fence("FW1", "fairway", ZoneKind.FAIRWAY, shapely.box(114.00, 30.00, 114.10, 30.02))
BERTH = Fence("B1", "berth", ZoneKind.BERTH, shapely.box(114.20, 30.00, 114.21, 30.01))
ZONES = ZoneSet.of([FAIRWAY, BERTH])
LINE = {"type": "LineString", "coordinates": [[114.0, 30.0], [114.1, 30.0], [114.2, 30.05]]}


def plans(*records: dict[str, Any]) -> Plans:
    return parse_plans(records, ZONES, source="plans.jsonl")


def north(lon: float, lat: float, metres: float) -> tuple[float, float]:
    x, y, _ = GEOD.fwd(lon, lat, 0.0, metres)
    return float(x), float(y)


def test_line_corridor_zero_inside_metres_outside() -> None:
    p = parse_plans([{"subject_id": "A", "corridor": LINE, "width_m": 1000}], ZONES)
    pts = [(114.05, 30.0), north(114.05, 30.0, 400.0), north(114.05, 30.0, 1500.0), north(114.05, 30.0, -3000.0)]
    lon, lat = np.array(pts).T
    dev = p.deviation_m(np.array(["A"] * 4, dtype=object), lon, lat, np.zeros(4))
    assert dev[0] == 0.0 and dev[1] == 0.0
    assert dev[2] == pytest.approx(1000.0, rel=0.005)
    assert dev[3] == pytest.approx(2500.0, rel=0.005)


def test_zone_corridor_and_missing_or_expired_plan_give_nan() -> None:
    p = parse_plans(
        [
            (
                3,
                {
                    "subject_id": "A",
                    "corridor": "FW1",
                    "valid_from": "2024-05-01T00:00:00Z",
                    "valid_to": "2024-05-02T00:00:00Z",
                    "stops": ["B1"],
                },
            ),
            (4, {"subject_id": 413000001, "corridor": LINE, "width_m": 200}),
        ],
        ZONES,
    )
    t_in = parse_iso_utc("2024-05-01T12:00:00Z")
    t_out = parse_iso_utc("2024-05-02T00:00:00Z")  # valid_to is exclusive
    outside = north(114.05, 30.02, 2000.0)
    sid = np.array(["A", "A", "A", "nobody", "413000001"], dtype=object)
    lon = np.array([114.05, outside[0], 114.05, 114.05, 114.05])
    lat = np.array([30.01, outside[1], 30.01, 30.01, 30.0])
    ts = np.array([t_in, t_in, t_out, t_in, t_in])
    dev = p.deviation_m(sid, lon, lat, ts)
    assert dev[0] == 0.0
    assert dev[1] == pytest.approx(2000.0, rel=0.005)
    assert np.isnan(dev[2]) and np.isnan(dev[3])
    assert dev[4] == 0.0
    assert p.has_plan(sid).tolist() == [True, True, True, False, True]
    assert p.stop_allowed_zones("A") == frozenset({"B1"})
    assert p.stop_allowed_zones("A", t_out) == frozenset()
    assert p.stop_allowed_zones("413000001", t_in) == frozenset()


def test_back_to_back_plans_switch_corridor() -> None:
    p = plans(
        {"subject_id": "A", "corridor": "FW1", "valid_to": "2024-05-01T00:00:00Z"},
        {"subject_id": "A", "corridor": "B1", "valid_from": "2024-05-01T00:00:00Z"},
    )
    t = parse_iso_utc("2024-05-01T00:00:00Z")
    dev = p.deviation_m(np.array(["A", "A"], dtype=object), [114.205, 114.205], [30.005, 30.005], [t - 1, t])
    assert dev[0] > 9000 and dev[1] == 0.0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"corridor": "FW1"}, r"plans.jsonl:1: subject_id must be a non-empty string"),
        ({"subject_id": "A", "corridor": "NOPE"}, r"plans.jsonl:1 \(subject A\): corridor zone 'NOPE' is not a loaded"),
        ({"subject_id": "A", "corridor": LINE}, r"width_m must be a positive number"),
        ({"subject_id": "A", "corridor": "FW1", "width_m": 100}, r"width_m applies only to a LineString"),
        ({"subject_id": "A", "corridor": LINE, "widht_m": 100}, r"unknown key\(s\) \['widht_m'\]"),
        ({"subject_id": "A", "corridor": {"type": "Point", "coordinates": [1, 2]}, "width_m": 5}, "LineString"),
        (
            {
                "subject_id": "A",
                "corridor": {"type": "LineString", "coordinates": [[30, 114], [30, 115]]},
                "width_m": 5,
            },
            r"position 0 = \[30, 114\]",
        ),
        (
            {
                "subject_id": "A",
                "corridor": {"type": "LineString", "coordinates": [[114, 30], [114, 30]]},
                "width_m": 5,
            },
            "fewer than two distinct",
        ),
        ({"subject_id": "A", "corridor": "FW1", "stops": ["X"]}, r"stop zone 'X'"),
        ({"subject_id": "A", "corridor": "FW1", "valid_from": "2024-05-01T00:00:00"}, r"valid_from: .*no time zone"),
        (
            {
                "subject_id": "A",
                "corridor": "FW1",
                "valid_from": "2024-05-02T00:00:00Z",
                "valid_to": "2024-05-01T00:00:00Z",
            },
            "is not before valid_to",
        ),
    ],
)
def test_plan_errors_name_line_subject_and_fix(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plans(record)


def test_overlapping_plans_and_non_objects_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"plans.jsonl:2 \(subject A\): plan overlaps the plan on line 1"):
        plans({"subject_id": "A", "corridor": "FW1"}, {"subject_id": "A", "corridor": "B1"})
    with pytest.raises(ConfigError, match="must be a JSON object, got list"):
        parse_plans([(7, [1, 2])], ZONES)  # type: ignore[list-item]


@settings(max_examples=100, deadline=None)
@given(
    coords=st.lists(st.tuples(st.floats(113.0, 115.0), st.floats(29.0, 31.0)), min_size=2, max_size=5, unique=True),
    fracs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20),
    width=st.floats(20.0, 2000.0),
    offset=st.floats(-5000.0, 5000.0),
)
def test_points_on_the_line_deviate_zero_and_offsets_deviate_beyond_half_width(
    coords: list[tuple[float, float]], fracs: list[float], width: float, offset: float
) -> None:
    line = shapely.LineString(coords)
    if line.length < 1e-3:
        return
    p = parse_plans(
        [{"subject_id": "S", "corridor": {"type": "LineString", "coordinates": coords}, "width_m": width}], ZONES
    )
    pts = np.array([line.interpolate(f, normalized=True).coords[0] for f in fracs])
    sid = np.array(["S"] * len(fracs), dtype=object)
    dev = p.deviation_m(sid, pts[:, 0], pts[:, 1], np.zeros(len(fracs)))
    assert np.all(dev == 0.0)
    # moving away from the line never gives more than the offset beyond the half width, never negative
    ox, oy, _ = GEOD.fwd(pts[:, 0], pts[:, 1], np.zeros(len(fracs)), np.full(len(fracs), offset))
    dev2 = p.deviation_m(sid, ox, oy, np.zeros(len(fracs)))
    assert np.all(dev2 >= 0.0)
    assert np.all(dev2 <= max(abs(offset) - width / 2, 0.0) * 1.01 + 2.0)
