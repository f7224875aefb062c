"""Zone loader and validator: every defect type is reported with its feature id."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.errors import ZoneError
from geofence.fence import ZoneKind, ZoneSet
from zones import Problem, check_zones, default_catalogue_path, load_zones, zones_from_geojson

SQUARE = [[106.70, 29.60], [106.71, 29.60], [106.71, 29.61], [106.70, 29.61], [106.70, 29.60]]


def feature(
    fid: str = "z1", kind: str | None = "port", ring: list[list[float]] | None = None, **props: Any
) -> dict[str, Any]:
    """A valid Polygon feature; keyword arguments become (or override) properties."""
    coords = ring if ring is not None else SQUARE
    properties: dict[str, Any] = {"id": fid, "name": f"zone {fid}", "kind": kind, **props}
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [coords]}}


def shifted(dx: float) -> list[list[float]]:
    return [[x + dx, y] for x, y in SQUARE]


def collection(*features: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", **members, "features": list(features)}


def write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def only_problem(problems: list[Problem], zone_id: str | None) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    assert problems[0].zone_id == zone_id
    return problems[0]


# --- one fixture per defect ----------------------------------------------------------------------

BOWTIE = [[106.70, 29.60], [106.71, 29.61], [106.71, 29.60], [106.70, 29.61], [106.70, 29.60]]
UNCLOSED = [*SQUARE[:-1], [106.7, 29.6001]]

DEFECTS: dict[str, tuple[dict[str, Any], str]] = {
    "self_intersection": (feature("bad-bowtie", ring=BOWTIE), "Self-intersection"),
    "unclosed_ring": (feature("bad-unclosed", ring=UNCLOSED), "unclosed ring"),
    "lon_out_of_range": (feature("bad-lon", ring=[[x + 100, y] for x, y in SQUARE]), "out of range"),
    "lat_out_of_range": (feature("bad-lat", ring=[[x, y + 70] for x, y in SQUARE]), "out of range"),
    "nan_coordinate": (feature("bad-nan", ring=[[math.nan, 29.6], *SQUARE[1:-1], [math.nan, 29.6]]), "out of range"),
    "unknown_kind": (feature("bad-kind", kind="harbour"), "unknown kind 'harbour'"),
    "number_param_wrong_type": (feature("bad-speed", kind="speed_limit", speed_limit_kn="fast"), "speed_limit_kn"),
    "bool_is_not_a_number": (feature("bad-hyst", hysteresis_m=True), "hysteresis_m"),
    "negative_number": (feature("bad-neg", min_inside_s=-5), "min_inside_s"),
    "bool_param_wrong_type": (feature("bad-stop", stop_allowed="no"), "stop_allowed"),
    "release_wrong_type": (feature("bad-release", kind="customs", exit_requires_release=1), "exit_requires_release"),
    "severity_unknown": (feature("bad-sev", severity="fatal"), "severity"),
    "dwell_bad_percentile": (feature("bad-dwell", max_dwell_min="p999"), "max_dwell_min"),
    "dwell_wrong_type": (feature("bad-dwell2", max_dwell_min=[720]), "max_dwell_min"),
    "missing_name": (feature("bad-name", name=None), "'name' missing"),
    "missing_kind": (feature("bad-nokind", kind=None), "'kind' missing"),
    "point_geometry": (
        {**feature("bad-point"), "geometry": {"type": "Point", "coordinates": [106.7, 29.6]}},
        "Polygon or MultiPolygon",
    ),
    "linestring_geometry": (
        {**feature("bad-line"), "geometry": {"type": "LineString", "coordinates": SQUARE}},
        "Polygon or MultiPolygon",
    ),
    "too_few_positions": (feature("bad-short", ring=[SQUARE[0], SQUARE[1], SQUARE[0]]), "at least 4 positions"),
    "malformed_position": (feature("bad-pos", ring=[[106.7], *SQUARE[1:]]), "number pairs"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_defect_fixture_fails_naming_the_feature(tmp_path: Path, defect: str) -> None:
    bad, expected = DEFECTS[defect]
    path = write(tmp_path, f"{defect}.geojson", collection(feature("good-1"), bad))
    problem = only_problem(check_zones([path]), bad["properties"]["id"])
    assert expected in problem.message
    assert problem.file == str(path)
    assert str(problem).startswith(f"{path}: {bad['properties']['id']}: ")
    with pytest.raises(ZoneError, match=bad["properties"]["id"]):
        load_zones([path])


def test_missing_id_is_named_by_feature_index(tmp_path: Path) -> None:
    path = write(tmp_path, "noid.geojson", collection(feature("ok"), feature(id=None)))
    problem = only_problem(check_zones([path]), "#1")
    assert "'id' missing" in problem.message


def test_multipolygon_with_a_self_intersecting_part(tmp_path: Path) -> None:
    bad = feature("bad-multi")
    bad["geometry"] = {"type": "MultiPolygon", "coordinates": [[shifted(0.05)], [BOWTIE]]}
    problem = only_problem(check_zones([write(tmp_path, "m.geojson", collection(bad))]), "bad-multi")
    assert "Self-intersection" in problem.message


def test_unclosed_ring_is_caught_even_though_shapely_would_close_it(tmp_path: Path) -> None:
    hole = [[106.702, 29.602], [106.704, 29.602], [106.704, 29.604], [106.702, 29.604]]  # not closed
    bad = feature("bad-hole")
    bad["geometry"]["coordinates"].append(hole)
    problem = only_problem(check_zones([write(tmp_path, "h.geojson", collection(bad))]), "bad-hole")
    assert "ring 1" in problem.message and "unclosed" in problem.message


def test_all_problems_are_collected_not_just_the_first(tmp_path: Path) -> None:
    bads = [DEFECTS[name][0] for name in ("self_intersection", "unknown_kind", "lat_out_of_range")]
    two = feature("bad-two", kind="pier", severity="loud")
    path = write(tmp_path, "many.geojson", collection(feature("ok"), *bads, two))
    problems = check_zones([path])
    ids = [p.zone_id for p in problems]
    assert sorted({str(i) for i in ids}) == sorted([b["properties"]["id"] for b in bads] + ["bad-two"])
    assert ids.count("bad-two") == 2


def test_duplicate_id_within_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.geojson", collection(feature("twice"), feature("twice", ring=shifted(0.1))))
    assert "duplicate id" in only_problem(check_zones([path]), "twice").message


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.geojson", collection(feature("shared"), feature("a-only", ring=shifted(0.2))))
    b = write(tmp_path, "b.geojson", collection(feature("shared", ring=shifted(0.1))))
    problem = only_problem(check_zones([a, b]), "shared")
    assert problem.file == str(b) and str(a) in problem.message
    assert check_zones([a]) == [] and check_zones([b]) == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("[1, 2", "invalid JSON"),
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "'features' must be a list"),
        (collection(feature(), crs="EPSG:999999"), "unknown CRS"),
        (collection(feature(), crs={"type": "link"}), "unsupported 'crs'"),
    ],
)
def test_file_level_problems(tmp_path: Path, doc: object, expected: str) -> None:
    path = tmp_path / "f.geojson"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    assert expected in only_problem(check_zones([path]), None).message


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    assert "cannot read" in only_problem(check_zones([tmp_path / "nope.geojson"]), None).message


# --- what a valid file becomes -------------------------------------------------------------------


def test_fence_fields_params_and_metadata() -> None:
    doc = collection(
        feature("anc", kind="anchorage", max_dwell_min=720, hysteresis_m=100, river="yangtze", name_zh="锚地"),
        feature("cus", kind="customs", ring=shifted(0.1), exit_requires_release=True, severity="warning"),
        feature("brt", kind="berth", ring=shifted(0.2), max_dwell_min="p99.5", stop_allowed=False),
    )
    zs = zones_from_geojson(doc, "mem")
    by_id = zs.by_id()
    assert by_id["anc"].kind is ZoneKind.ANCHORAGE
    assert by_id["anc"].params.max_dwell_min == 720.0 and by_id["anc"].params.hysteresis_m == 100.0
    assert dict(by_id["anc"].metadata) == {"river": "yangtze", "name_zh": "锚地"}
    assert by_id["cus"].params.exit_requires_release is True and by_id["cus"].params.severity == "warning"
    assert by_id["brt"].params.max_dwell_min == "p99.5" and by_id["brt"].stop_allowed is False
    assert by_id["anc"].geometry.equals(zs.by_id()["anc"].geometry)
    assert by_id["anc"].geometry.bounds == pytest.approx((106.70, 29.60, 106.71, 29.61))


def test_zones_from_geojson_raises_zone_error_listing_problems() -> None:
    doc = collection(feature("x", kind="dock"), feature("y", ring=BOWTIE))
    with pytest.raises(ZoneError) as info:
        zones_from_geojson(doc, "kafka:zones")
    text = str(info.value)
    assert "kafka:zones: x: unknown kind" in text and "kafka:zones: y:" in text


def test_empty_collection_cannot_be_loaded(tmp_path: Path) -> None:
    with pytest.raises(ZoneError, match="no fences"):
        load_zones([write(tmp_path, "empty.geojson", collection())])


def test_default_catalogue_path_is_the_shipped_file() -> None:
    path = default_catalogue_path()
    assert path.name == "yangtze.geojson" and path.is_file()
    assert isinstance(load_zones(path), ZoneSet)


# --- version: content hash, independent of file order and formatting ------------------------------

VERSION_FEATURES = [
    feature("a", max_dwell_min=60),
    feature("b", kind="restricted", ring=shifted(0.1), severity="critical"),
    feature("c", kind="speed_limit", ring=shifted(0.2), speed_limit_kn=8),
    feature("d", kind="fairway", ring=shifted(0.3), centerline=[[106.9, 29.6], [107.0, 29.6]], width_m=400),
]


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(len(VERSION_FEATURES))), indent=st.sampled_from([None, 0, 2, 4]))
def test_version_ignores_feature_order_and_formatting(order: list[int], indent: int | None) -> None:
    reference = zones_from_geojson(collection(*VERSION_FEATURES)).version
    text = json.dumps(collection(*(VERSION_FEATURES[i] for i in order)), indent=indent, sort_keys=indent == 2)
    assert zones_from_geojson(json.loads(text)).version == reference


def test_version_ignores_ring_start_and_file_split(tmp_path: Path) -> None:
    reference = zones_from_geojson(collection(*VERSION_FEATURES)).version
    rotated = copy.deepcopy(VERSION_FEATURES)
    ring = rotated[0]["geometry"]["coordinates"][0]
    rotated[0]["geometry"]["coordinates"][0] = ring[2:-1] + ring[:3]
    a = write(tmp_path, "a.geojson", collection(*rotated[:2]))
    b = write(tmp_path, "b.geojson", collection(*rotated[2:]))
    assert load_zones([b, a]).version == reference


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f["properties"].update(name="renamed"),
        lambda f: f["properties"].update(max_dwell_min=61),
        lambda f: f["properties"].update(river="xiang"),
        lambda f: f["geometry"]["coordinates"][0].__setitem__(1, [106.7101, 29.60]),
    ],
)
def test_version_changes_with_content(change: Any) -> None:
    reference = zones_from_geojson(collection(*VERSION_FEATURES)).version
    changed = copy.deepcopy(VERSION_FEATURES)
    change(changed[0])
    assert zones_from_geojson(collection(*changed)).version != reference


def test_duplicate_id_across_files_is_reported_even_when_the_copy_is_invalid(tmp_path: Path) -> None:
    a = write(tmp_path, "a.geojson", collection(feature("shared")))
    b = write(tmp_path, "b.geojson", collection(feature("shared", kind="wharf", ring=shifted(0.1))))
    messages = sorted(p.message for p in check_zones([a, b]))
    assert len(messages) == 2 and messages[0].startswith("duplicate id") and "unknown kind" in messages[1]
