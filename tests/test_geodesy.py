"""Tests of geofence.geodesy against independent formulas and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import geodesy as g

CHONGQING = (106.55, 29.56)
WUHAN = (114.30, 30.59)


def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def test_chongqing_wuhan_matches_haversine_within_half_percent() -> None:
    d = float(g.distance_m(*CHONGQING, *WUHAN)[0])
    h = _haversine_m(*CHONGQING, *WUHAN)
    assert 700_000 < d < 800_000
    assert abs(d - h) / h < 0.005


lons = st.floats(100.0, 125.0)
lats = st.floats(20.0, 35.0)


@settings(max_examples=60, deadline=None)
@given(lons, lats, lons, lats, lons, lats)
def test_symmetry_and_triangle_inequality(a: float, b: float, c: float, d: float, e: float, f: float) -> None:
    ab = float(g.distance_m(a, b, c, d)[0])
    ba = float(g.distance_m(c, d, a, b)[0])
    assert ab == pytest.approx(ba, abs=1e-6)
    ac = float(g.distance_m(a, b, e, f)[0])
    cb = float(g.distance_m(e, f, c, d)[0])
    assert ab <= ac + cb + 1e-6


def test_vectorised_shapes() -> None:
    out = g.distance_m(np.full(5, 106.0), np.full(5, 29.0), np.linspace(106, 107, 5), np.full(5, 29.0))
    assert out.shape == (5,)
    assert out[0] == 0.0
    assert np.all(np.diff(out) > 0)


def test_implied_speed_of_known_displacement() -> None:
    lon2, lat2 = g.destination(106.5, 29.5, 90.0, 1852.0)
    kn = g.implied_speed_kn([106.5, 106.5], [29.5, 29.5], [0.0, 0.0], lon2, lat2, [3600.0, 0.0])
    assert kn[0] == pytest.approx(1.0, rel=1e-9)
    assert math.isnan(kn[1])


@settings(max_examples=40, deadline=None)
@given(lons, lats, st.floats(0, 359.9), st.floats(1.0, 50_000.0))
def test_destination_round_trip(lon: float, lat: float, az: float, dist: float) -> None:
    lon2, lat2 = g.destination(lon, lat, az, dist)
    assert float(g.distance_m(lon, lat, lon2, lat2)[0]) == pytest.approx(dist, rel=1e-9, abs=1e-6)
    back = float(g.azimuth_deg(lon, lat, lon2, lat2)[0])
    assert min(abs(back - az), 360 - abs(back - az)) < 1e-6


@settings(max_examples=40, deadline=None)
@given(lons, lats, st.floats(-50_000, 50_000), st.floats(-50_000, 50_000))
def test_local_projection_round_trip_below_1_mm(lon0: float, lat0: float, dx: float, dy: float) -> None:
    proj = g.local_projection(lon0, lat0)
    lon, lat = proj.inverse(dx, dy)
    x, y = proj.forward(lon, lat)
    assert abs(x[0] - dx) < 1e-3 and abs(y[0] - dy) < 1e-3
    lon2, lat2 = proj.inverse(x, y)
    assert float(g.distance_m(lon, lat, lon2, lat2)[0]) < 1e-3


def test_local_projection_is_cached_and_centre_maps_to_origin() -> None:
    assert g.local_projection(106.551, 29.562) is g.local_projection(106.549, 29.558)
    x, y = g.local_projection(106.55, 29.56).forward(106.55, 29.56)
    assert abs(x[0]) < 1e-6 and abs(y[0]) < 1e-6


LINE = [(106.50, 29.50), (106.60, 29.52), (106.75, 29.50), (106.90, 29.60)]


def test_cross_track_on_the_line_is_zero_and_offset_is_the_offset() -> None:
    ml = g.MetricLine(LINE)
    along = np.linspace(100.0, ml.length_m - 100.0, 25)
    lon, lat = ml.interpolate(along)
    assert np.all(ml.distance_m(lon, lat) < 0.01)
    np.testing.assert_allclose(ml.project_m(lon, lat), along, atol=0.5)
    # offset points perpendicular to the first segment, away from the vertices
    az = float(g.azimuth_deg(*LINE[0], *LINE[1])[0])
    base_lon, base_lat = ml.interpolate([3000.0, 4000.0])
    for offset in (50.0, 400.0, 1500.0):
        olon, olat = g.destination(base_lon, base_lat, az + 90.0, offset)
        got = ml.distance_m(olon, olat)
        np.testing.assert_allclose(got, offset, rtol=0.01)
        np.testing.assert_allclose(g.cross_track_m(olon, olat, LINE), got)


def test_metric_line_length_matches_geodesic_sum() -> None:
    arr = np.array(LINE)
    geodesic = float(g.distance_m(arr[:-1, 0], arr[:-1, 1], arr[1:, 0], arr[1:, 1]).sum())
    assert g.MetricLine(LINE).length_m == pytest.approx(geodesic, rel=0.002)


def test_buffer_m_width_in_metres() -> None:
    line = shapely.LineString(LINE)
    poly = g.buffer_m(line, 500.0)
    ml = g.MetricLine(LINE)
    lon, lat = ml.interpolate([5000.0])
    az = float(g.azimuth_deg(*LINE[0], *LINE[1])[0])
    inside = g.destination(lon, lat, az + 90.0, 480.0)
    outside = g.destination(lon, lat, az + 90.0, 520.0)
    assert shapely.contains_xy(poly, inside[0], inside[1])[0]
    assert not shapely.contains_xy(poly, outside[0], outside[1])[0]


def test_bad_line_is_rejected_with_shape() -> None:
    with pytest.raises(ValueError, match="at least two"):
        g.MetricLine([(106.0, 29.0)])


_lon = st.floats(-180.0, 180.0, allow_nan=False)
_lat = st.floats(-90.0, 90.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(lon1=_lon, lat1=_lat, dlon=st.floats(-0.05, 0.05), dlat=st.floats(-0.05, 0.05), far=st.tuples(_lon, _lat))
def test_the_fast_paths_haversine_bound_is_never_below_the_distance(
    lon1: float, lat1: float, dlon: float, dlat: float, far: tuple[float, float]
) -> None:
    """The fast path skips the haversine of moves whose bound stays under the jump distance: sound only if the
    bound never undercuts it (short moves, moves over the antimeridian, any pair of points)."""
    from geofence._fastpath import _haversine_bound_m
    from geofence._geo import haversine_m_arr

    lon2, lat2 = lon1 + dlon, min(90.0, max(-90.0, lat1 + dlat))
    a_lon = np.array([lon1, lon1, 179.999, far[0]])
    a_lat = np.array([lat1, lat1, lat1, far[1]])
    b_lon = np.array([lon2, far[0], -179.999, -far[0]])
    b_lat = np.array([lat2, far[1], lat2, -far[1]])
    bound = _haversine_bound_m(a_lon, a_lat, b_lon, b_lat)
    exact = haversine_m_arr(a_lon, a_lat, b_lon, b_lat)
    assert (bound >= exact * (1 - 1e-12)).all(), (bound, exact)
