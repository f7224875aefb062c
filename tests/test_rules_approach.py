"""Approach checker: warns before entry when the course leads into restricted water, not otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geofence.errors import ConfigError
from geofence.fence import Fence, ZoneKind, ZoneSet
from geofence.rules.approach import ApproachChecker

GEOD = Geod(ellps="WGS84")
BOX = Fence("R1", "restricted box", ZoneKind.RESTRICTED, shapely.box(114.00, 30.00, 114.01, 30.01))
FAR_BOX = Fence("R2", "second box", ZoneKind.RESTRICTED, shapely.box(114.05, 30.00, 114.06, 30.01))
FAIRWAY = Fence("F1", "fairway", ZoneKind.FAIRWAY, shapely.box(113.90, 29.95, 114.10, 30.05))


def test_fires_before_entry_for_a_vessel_heading_at_the_box() -> None:
    checker = ApproachChecker([BOX])
    lon, lat = 113.99, 30.005
    idx, tte = checker.check([lon], [lat], [90.0], [10.0])
    assert idx.tolist() == [0]
    gap_m = GEOD.inv(lon, lat, 114.00, lat)[2]
    assert tte[0] == pytest.approx(gap_m / (10.0 * 1852 / 3600), rel=0.01)
    assert 0 < tte[0] < 600


def test_silent_for_parallel_slow_inside_or_out_of_horizon() -> None:
    checker = ApproachChecker([BOX])
    lon = np.array([113.99, 113.99, 114.005, 113.95, 113.99])
    lat = np.array([30.005, 30.005, 30.005, 30.005, 30.005])
    cog = np.array([0.0, 90.0, 90.0, 90.0, np.nan])
    sog = np.array([10.0, 1.0, 10.0, 10.0, 10.0])
    # parallel (north), slow, already inside, 4.8 km away at 10 kn (3.1 km in 10 min), no course
    idx, tte = checker.check(lon, lat, cog, sog)
    assert idx.tolist() == [-1, -1, -1, -1, -1]
    assert np.isnan(tte).all()
    # a longer horizon brings the far one in
    idx, _ = checker.check(lon[3:4], lat[3:4], cog[3:4], sog[3:4], horizon_s=1800.0)
    assert idx.tolist() == [0]


def test_first_fence_on_the_course_wins_and_inside_one_still_warns_for_the_next() -> None:
    checker = ApproachChecker([FAR_BOX, BOX])
    idx, tte = checker.check([113.99, 114.005], [30.005, 30.005], [90.0, 90.0], [20.0, 20.0])
    assert idx.tolist() == [1, 0]  # BOX first; from inside BOX the next is FAR_BOX
    assert np.all(tte > 0)


def test_from_zones_keeps_restricted_fences_only() -> None:
    checker = ApproachChecker.from_zones(ZoneSet.of([FAIRWAY, BOX]))
    assert checker.fence_ids == ("R1",)
    assert len(ApproachChecker([])) == 0
    idx, tte = ApproachChecker([]).check([114.0], [30.0], [0.0], [10.0])
    assert idx.tolist() == [-1] and np.isnan(tte[0])
    with pytest.raises(ConfigError, match="min_speed_kn"):
        ApproachChecker([BOX], min_speed_kn=-1)


@settings(max_examples=150, deadline=None)
@given(
    lon=st.floats(113.97, 114.04),
    lat=st.floats(29.98, 30.03),
    cog=st.floats(0.0, 360.0),
    sog=st.floats(0.0, 30.0),
    horizon=st.floats(60.0, 1200.0),
)
def test_matches_brute_force_and_grows_with_the_horizon(
    lon: float, lat: float, cog: float, sog: float, horizon: float
) -> None:
    checker = ApproachChecker([BOX, FAR_BOX])
    idx, tte = checker.check([lon], [lat], [cog], [sog], horizon)
    moving = sog > checker.min_speed_kn
    end = GEOD.fwd(lon, lat, cog, sog * 1852 / 3600 * horizon)[:2] if moving else (lon, lat)
    seg = shapely.LineString([(lon, lat), end])
    expect = {
        j
        for j, f in enumerate([BOX, FAR_BOX])
        if moving and seg.intersects(f.geometry) and not f.geometry.intersects(shapely.Point(lon, lat))
    }
    if idx[0] == -1:
        assert not expect
    else:
        assert int(idx[0]) in expect
        assert 0.0 <= tte[0] <= horizon * (1 + 1e-9)
        # the entry point is on the fence boundary
        frac = tte[0] / horizon
        entry = seg.interpolate(frac, normalized=True)
        assert [BOX, FAR_BOX][int(idx[0])].geometry.distance(entry) < 1e-7
        idx2, tte2 = checker.check([lon], [lat], [cog], [sog], horizon * 2)
        # The path is a straight (lon, lat) chord to the geodesic end point, so doubling the horizon bends it
        # slightly: at 30 kn over 25 km the entry time moves by up to ~0.1 %. Allow 0.5 %.
        assert idx2[0] == idx[0] and tte2[0] == pytest.approx(tte[0], rel=5e-3, abs=0.01)
    assert math.isnan(tte[0]) == (idx[0] == -1)
