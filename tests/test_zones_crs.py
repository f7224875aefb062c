"""CRS handling of zone files: pyproj CRSs, GCJ-02 and BD-09 are converted to WGS84."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import prcoords
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer

from geofence.errors import ZoneError
from zones import check_zones, zones_from_geojson
from zones.crs import (
    bd09_to_wgs84,
    crs_name,
    gcj02_to_wgs84,
    to_wgs84,
    to_wgs84_func,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")
SEED = 20261122
# A fence ring near Guoyuan port, Chongqing, in WGS84 (lon, lat).
RING_WGS = np.array([[106.730, 29.595], [106.750, 29.595], [106.750, 29.608], [106.730, 29.608], [106.730, 29.595]])


def china_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    return rng.uniform(73.5, 134.5, n), rng.uniform(18.5, 53.0, n)


def error_m(lon_a: np.ndarray, lat_a: np.ndarray, lon_b: np.ndarray, lat_b: np.ndarray) -> np.ndarray:
    return np.asarray(GEOD.inv(lon_a, lat_a, lon_b, lat_b)[2])


def doc_in(crs: Any, ring: np.ndarray) -> dict[str, Any]:
    feat = {
        "type": "Feature",
        "properties": {"id": "guoyuan", "name": "Guoyuan", "kind": "port", "centerline": ring[:2].tolist()},
        "geometry": {"type": "Polygon", "coordinates": [ring.tolist()]},
    }
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": [feat]}
    if crs is not None:
        doc["crs"] = crs
    return doc


def max_vertex_error_m(doc: dict[str, Any]) -> float:
    fence = zones_from_geojson(doc).fences[0]
    got = shapely.get_coordinates(fence.geometry)
    want = shapely.get_coordinates(shapely.geometry.Polygon(RING_WGS))
    # shapely keeps the vertex order of the file here; compare position by position
    return float(error_m(got[:, 0], got[:, 1], want[:, 0], want[:, 1]).max())


# --- GCJ-02 and BD-09 ----------------------------------------------------------------------------


def test_gcj02_round_trip_error_below_1_m_on_many_points_in_china() -> None:
    lon, lat = china_points(20_000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    err = error_m(lon, lat, back_lon, back_lat)
    assert err.max() < 1.0, f"max round-trip error {err.max():.3g} m"
    # and the shift itself is real (hundreds of metres), so the test would notice an identity transform
    shift = error_m(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert np.median(shift) > 100


def test_bd09_round_trip_error_below_1_m() -> None:
    lon, lat = china_points(5_000)
    err = error_m(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat)))
    assert err.max() < 1.0


def test_vectorised_forms_agree_with_prcoords() -> None:
    lon, lat = china_points(300)
    gcj = np.column_stack(wgs84_to_gcj02(lon, lat))
    bd = np.column_stack(wgs84_to_bd09(lon, lat))
    ref_gcj = np.array([prcoords.wgs_gcj((b, a))[::-1] for a, b in zip(lon, lat, strict=True)])
    ref_bd = np.array([prcoords.wgs_bd((b, a))[::-1] for a, b in zip(lon, lat, strict=True)])
    ref_inv = np.array([prcoords.gcj_wgs_bored((b, a))[::-1] for a, b in gcj])
    assert np.abs(gcj - ref_gcj).max() < 1e-9
    assert np.abs(bd - ref_bd).max() < 1e-9
    assert np.abs(np.column_stack(gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])) - ref_inv).max() < 1e-6  # ~0.1 m


def test_outside_china_gcj02_is_wgs84() -> None:
    lon, lat = np.array([2.35, -74.0]), np.array([48.85, 40.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(np.column_stack(gcj02_to_wgs84(lon, lat)), np.column_stack([lon, lat]))


@settings(max_examples=50, deadline=None)
@given(lon=st.floats(74, 134), lat=st.floats(19, 53))
def test_gcj02_inverse_property(lon: float, lat: float) -> None:
    a, b = np.array([lon]), np.array([lat])
    assert error_m(a, b, *gcj02_to_wgs84(*wgs84_to_gcj02(a, b)))[0] < 1.0


# --- zone files in other CRSs --------------------------------------------------------------------


def test_gcj02_file_loads_to_the_wgs84_fence() -> None:
    gcj = np.column_stack(wgs84_to_gcj02(RING_WGS[:, 0], RING_WGS[:, 1]))
    assert max_vertex_error_m(doc_in("GCJ-02", gcj)) < 1.0
    fence = zones_from_geojson(doc_in("GCJ-02", gcj)).fences[0]
    assert fence.metadata["centerline"][0] == pytest.approx(RING_WGS[0].tolist(), abs=1e-5)


def test_bd09_file_loads_to_the_wgs84_fence() -> None:
    bd = np.column_stack(wgs84_to_bd09(RING_WGS[:, 0], RING_WGS[:, 1]))
    assert max_vertex_error_m(doc_in("BD-09", bd)) < 1.0


@pytest.mark.parametrize(
    "crs",
    [
        "EPSG:4490",
        "urn:ogc:def:crs:EPSG::4490",
        {"type": "name", "properties": {"name": "EPSG:4490"}},
        {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
        "EPSG:4326",
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        None,
    ],
)
def test_geographic_crs_forms_keep_lon_lat_order(crs: Any) -> None:
    # CGCS2000 and WGS84 differ by centimetres; EPSG:4490 declares lat-first axes, the file is still lon-first.
    assert max_vertex_error_m(doc_in(crs, RING_WGS)) < 0.5


@pytest.mark.parametrize("epsg", [4545, 4544, 3857, 32648])
def test_projected_crs_including_cgcs2000_gauss_kruger(epsg: int) -> None:
    to_proj = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    x, y = to_proj.transform(RING_WGS[:, 0], RING_WGS[:, 1])
    ring = np.column_stack([x, y])
    assert np.abs(ring).max() > 1000  # really projected metres, not degrees
    assert max_vertex_error_m(doc_in(f"EPSG:{epsg}", ring)) < 0.01


def test_projected_coordinates_out_of_range_are_reported() -> None:
    ring = np.array([[9e9, 3.3e6], [9e9 + 10, 3.3e6], [9e9 + 10, 3.3e6 + 10], [9e9, 3.3e6 + 10], [9e9, 3.3e6]])
    with pytest.raises(ZoneError, match="out of range"):
        zones_from_geojson(doc_in("EPSG:4545", ring))


@pytest.mark.parametrize("name", ["EPSG:999999", "GCJ-03", "not a crs"])
def test_unknown_crs_is_a_clear_error(name: str) -> None:
    with pytest.raises(ZoneError, match="unknown CRS"):
        to_wgs84_func(name)
    with pytest.raises(ZoneError, match=r"unknown CRS.*GCJ-02"):
        zones_from_geojson(doc_in(name, RING_WGS))


def test_crs_member_forms() -> None:
    assert crs_name(None) is None
    assert crs_name(" GCJ-02 ") == "GCJ-02"
    assert crs_name({"type": "name", "properties": {"name": "EPSG:4490"}}) == "EPSG:4490"
    for bad in (42, "", {"type": "link", "properties": {"href": "x"}}, {"type": "name", "properties": {}}):
        with pytest.raises(ZoneError, match="unsupported 'crs'"):
            crs_name(bad)


def test_transformers_are_built_once_per_crs() -> None:
    assert to_wgs84_func("EPSG:4545") is to_wgs84_func("epsg:4545")
    assert to_wgs84_func(None) is None and to_wgs84_func("WGS84") is None


def test_to_wgs84_identity_for_wgs84() -> None:
    lon, lat = to_wgs84(None, np.array([106.7]), np.array([29.6]))
    assert lon.tolist() == [106.7] and lat.tolist() == [29.6]


def test_check_reports_unknown_crs_per_file(tmp_path: Any) -> None:
    import json

    path = tmp_path / "x.geojson"
    path.write_text(json.dumps(doc_in("EPSG:0", RING_WGS)), encoding="utf-8")
    problems = check_zones([path])
    assert len(problems) == 1 and problems[0].zone_id is None and "unknown CRS" in problems[0].message
