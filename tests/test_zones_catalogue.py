"""The shipped Yangtze catalogue: valid, complete, and on the river (checked against Natural Earth)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import LineString, Point, shape
from shapely.geometry.base import BaseGeometry

from geofence.fence import ZoneKind, ZoneSet
from zones import check_zones, default_catalogue_path, load_zones

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "zones" / "schema" / "zone.schema.json"
EAST_EXEMPT_LON = 119.6  # Natural Earth's Yangtze ends at Zhenjiang; the estuary is drawn by hand
RIVER_TOLERANCE_M = 3000.0
MAIN_STEM_NAMES = {"Chang Jiang", "Yangtze"}
TRIBUTARY_NAMES = {"jialing": "Jialing", "xiang": "Xiang"}

REQUIRED_IDS = {
    "cq-guoyuan-port", "cq-cuntan-port", "cq-jiulongpo-port", "cq-lize-hub", "cq-tangjiatuo-anchorage",
    "cq-chaotianmen-restricted", "cq-lianglu-cuntan-bonded", "cq-main-speed", "tgd-shiplock-approach",
    "tgd-dam-restricted", "tgd-maoping-anchorage", "yc-yichang-port", "yy-chenglingji-port", "cs-xianing-port",
    "wh-yangluo-port", "wh-yangluo-berth-1", "wh-bridge-speed", "nj-longtan-port", "nj-anchorage",
    "sh-waigaoqiao-port", "sh-waigaoqiao-bonded",
    "fw-jialing-lize-cq", "fw-cq-yichang", "fw-yichang-wuhan", "fw-wuhan-nanjing", "fw-nanjing-shanghai",
    "fw-xiang-chenglingji-changsha",
}
# The navigable route, upstream to downstream, as fairways meeting at shared vertices.
ROUTE = ["fw-cq-yichang", "fw-yichang-wuhan", "fw-wuhan-nanjing", "fw-nanjing-shanghai"]


@cache
def catalogue() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(default_catalogue_path().read_text(encoding="utf-8"))
    return doc


@cache
def zone_set() -> ZoneSet:
    return load_zones([default_catalogue_path()])


def features() -> dict[str, dict[str, Any]]:
    return {f["properties"]["id"]: f for f in catalogue()["features"]}


class Local:
    """Azimuthal equidistant metres around a point (geodesic distances from it are exact)."""

    def __init__(self, geom: BaseGeometry) -> None:
        c = geom.centroid
        crs = CRS.from_proj4(f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m")
        self._t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def __call__(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: np.column_stack(self._t.transform(xy[:, 0], xy[:, 1])))


def max_distance_m(geom: BaseGeometry, line: BaseGeometry) -> float:
    """Largest distance in metres from any vertex of ``geom`` to ``line`` (near part only)."""
    local = Local(geom)
    near = line.intersection(geom.buffer(0.5))
    if near.is_empty:
        return float("inf")
    near_m = local(near)
    return float(max(near_m.distance(Point(p)) for p in shapely.get_coordinates(local(geom))))


@pytest.fixture(scope="module")
def ne_rivers(real_data: Path) -> dict[str, BaseGeometry]:
    doc = json.loads((real_data / "geo" / "yangtze_basin_ne10m.geojson").read_text(encoding="utf-8"))
    main: list[BaseGeometry] = []
    trib: dict[str, list[BaseGeometry]] = {k: [] for k in TRIBUTARY_NAMES}
    for feat in doc["features"]:
        props = feat["properties"]
        if props.get("layer") != "river_centerline":
            continue
        if props.get("role") == "yangtze_main_stem" and props.get("name") in MAIN_STEM_NAMES:
            main.append(shape(feat["geometry"]))
        for key, name in TRIBUTARY_NAMES.items():
            if props.get("name") == name:
                trib[key].append(shape(feat["geometry"]))
    assert main and all(trib.values())
    return {"yangtze": shapely.union_all(main), **{k: shapely.union_all(v) for k, v in trib.items()}}


# --- validity and completeness ---------------------------------------------------------------------


def test_catalogue_passes_the_checker() -> None:
    assert check_zones([default_catalogue_path()]) == []


def test_catalogue_matches_the_json_schema() -> None:
    jsonschema.validate(catalogue(), json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_catalogue_size_count_kinds_and_required_places() -> None:
    assert default_catalogue_path().stat().st_size < 1_500_000
    zs = zone_set()
    assert len(zs) >= 25
    assert {f.kind for f in zs.fences} == set(ZoneKind)
    missing = REQUIRED_IDS - set(zs.by_id())
    assert not missing, f"missing fences: {sorted(missing)}"


def test_catalogue_says_it_is_illustrative() -> None:
    assert "illustrative" in catalogue()["disclaimer"].lower()
    assert "crs" not in catalogue()  # WGS84


def test_rule_parameters_are_sensible() -> None:
    for fence in zone_set().fences:
        p = fence.params
        if fence.kind is ZoneKind.ANCHORAGE:
            assert p.max_dwell_min == 720
        if fence.kind is ZoneKind.SPEED_LIMIT:
            assert p.speed_limit_kn is not None and 6 <= p.speed_limit_kn <= 10
        if fence.kind is ZoneKind.RESTRICTED:
            assert p.severity == "critical"
        if fence.kind is ZoneKind.CUSTOMS:
            assert p.exit_requires_release is True
        if fence.kind is ZoneKind.PORT:
            assert p.hysteresis_m == 50
        if fence.kind is not ZoneKind.FAIRWAY:
            assert fence.metadata.get("river") in {"yangtze", "jialing", "xiang"}, fence.id


def test_real_moored_vessel_is_inside_guoyuan_port() -> None:
    fences = zone_set().by_id()
    vessel = Point(106.739, 29.601)  # AIS 413788094, moored (nmea/yangtze_subset_from_above_files.nmea)
    assert fences["cq-guoyuan-port"].geometry.contains(vessel)
    assert not fences["cq-cuntan-port"].geometry.contains(vessel)


def test_port_sizes_are_realistic() -> None:
    limits_km2 = {ZoneKind.PORT: (0.2, 6.0), ZoneKind.BERTH: (0.01, 0.2), ZoneKind.ANCHORAGE: (0.3, 3.0)}
    for fence in zone_set().fences:
        if fence.kind in limits_km2:
            area = Local(fence.geometry)(fence.geometry).area / 1e6
            low, high = limits_km2[fence.kind]
            assert low <= area <= high, f"{fence.id}: {area:.2f} km²"


def test_berths_lie_inside_their_port() -> None:
    fences = zone_set().by_id()
    for fid, fence in fences.items():
        if fence.kind is ZoneKind.BERTH:
            port = fences[fid.rsplit("-berth", 1)[0] + "-port"]
            assert port.geometry.buffer(1e-5).contains(fence.geometry), fid


# --- fairways --------------------------------------------------------------------------------------


def centerline(fid: str) -> list[list[float]]:
    line: list[list[float]] = features()[fid]["properties"]["centerline"]
    return line


def test_fairways_connect_into_the_whole_navigable_route() -> None:
    for up, down in itertools.pairwise(ROUTE):
        assert centerline(up)[-1] == centerline(down)[0], (up, down)
    assert centerline("fw-jialing-lize-cq")[-1] in centerline("fw-cq-yichang")
    assert centerline("fw-xiang-chenglingji-changsha")[-1] in centerline("fw-yichang-wuhan")
    assert centerline("fw-nanjing-shanghai")[-1] == pytest.approx([121.59, 31.36], abs=0.03)


@pytest.mark.parametrize("fid", sorted(i for i in REQUIRED_IDS if i.startswith("fw-")))
def test_fairway_geometry_is_its_centerline_buffered(fid: str) -> None:
    props = features()[fid]["properties"]
    assert 2 <= len(props["centerline"]) <= 400
    # densify: the edges are straight in lon/lat, not in the test's projection
    line = LineString(props["centerline"]).segmentize(0.005)
    fence = zone_set().by_id()[fid]
    local = Local(fence.geometry)
    expected = local(line).buffer(props["width_m"] / 2)
    got = local(fence.geometry)
    assert got.symmetric_difference(expected).area / expected.area < 0.01
    # round joins are polygons: allow their chord sagitta (1 % of the half width) plus rounding
    assert got.contains(local(line).buffer(props["width_m"] / 2 * 0.99 - 1))


def test_upstream_to_downstream_order() -> None:
    assert centerline("fw-cq-yichang")[0][0] < centerline("fw-cq-yichang")[-1][0]  # west to east
    assert centerline("fw-jialing-lize-cq")[0][1] > centerline("fw-jialing-lize-cq")[-1][1]  # Jialing flows south
    assert centerline("fw-xiang-chenglingji-changsha")[0][1] < centerline("fw-xiang-chenglingji-changsha")[-1][1]


def test_dam_restricted_area_is_off_the_fairway() -> None:
    fences = zone_set().by_id()
    assert not fences["tgd-dam-restricted"].geometry.intersects(fences["fw-cq-yichang"].geometry)
    assert fences["tgd-shiplock-approach"].geometry.intersects(fences["fw-cq-yichang"].geometry)


def test_stopping_places_lie_near_a_fairway_centerline() -> None:
    lines = shapely.union_all([LineString(f["properties"]["centerline"]) for f in features().values()
                               if f["properties"]["kind"] == "fairway"])
    for fence in zone_set().fences:
        if fence.kind in (ZoneKind.PORT, ZoneKind.BERTH, ZoneKind.ANCHORAGE):
            assert max_distance_m(fence.geometry, lines) < 1500, fence.id


# --- on the river (Natural Earth, metric distances) -----------------------------------------------


def test_every_river_fence_lies_within_3_km_of_its_river(ne_rivers: dict[str, BaseGeometry]) -> None:
    checked = 0
    for fence in zone_set().fences:
        if fence.kind is ZoneKind.FAIRWAY or fence.geometry.bounds[2] > EAST_EXEMPT_LON:
            continue
        river = fence.metadata["river"]
        line = ne_rivers["yangtze"] if river == "yangtze" else ne_rivers["yangtze"].union(ne_rivers[river])
        distance = max_distance_m(fence.geometry, line)
        assert distance <= RIVER_TOLERANCE_M, f"{fence.id}: {distance:.0f} m from the {river}"
        checked += 1
    assert checked >= 20


def test_fairway_centerlines_follow_natural_earth(ne_rivers: dict[str, BaseGeometry], real_data: Path) -> None:
    doc = json.loads((real_data / "geo" / "yangtze_basin_ne10m.geojson").read_text(encoding="utf-8"))
    # the Xiang fairway crosses East Dongting Lake along NE's Yuan lake channel
    yuan = shapely.union_all([shape(f["geometry"]) for f in doc["features"] if f["properties"].get("name") == "Yuan"])
    all_lines = shapely.union_all([*ne_rivers.values(), yuan])
    for fid in sorted(i for i in REQUIRED_IDS if i.startswith("fw-")):
        pts = [p for p in centerline(fid) if p[0] <= EAST_EXEMPT_LON]
        assert pts
        assert max_distance_m(shapely.MultiPoint(pts), all_lines) <= 1000, fid


def test_catalogue_is_up_to_date_with_its_build_script(real_data: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "zones" / "tools" / "build_catalogue.py"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
