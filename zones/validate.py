"""Validate one GeoJSON zone document and turn its features into fences.

Every defect is collected as a :class:`Problem` naming the feature id, so a
``zones check`` run reports all of them at once instead of stopping at the
first. Checks run on the raw JSON where shapely would hide the defect (it
silently closes an unclosed ring), and on WGS84 coordinates after the CRS
conversion for range checks. See ``docs/zones.md`` for the schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geofence.errors import ZoneError
from geofence.fence import RULE_PARAMS, Fence, FenceParams, ZoneKind
from zones.crs import XYFunc, crs_name, to_wgs84_func

__all__ = ["PERCENTILE_RE", "SEVERITIES", "Problem", "feature_ids", "parse_document"]

#: A learned-baseline percentile for ``max_dwell_min``, e.g. ``"p99"`` or ``"p99.5"``.
PERCENTILE_RE = re.compile(r"^p\d{1,2}(\.\d+)?$")
SEVERITIES = ("info", "warning", "critical")
_REQUIRED = ("id", "name", "kind")
_NUMBER_PARAMS = ("speed_limit_kn", "hysteresis_m", "min_inside_s")
_BOOL_PARAMS = ("stop_allowed", "exit_requires_release")


@dataclass(frozen=True, slots=True)
class Problem:
    """One defect found in a zone file.

    Attributes
    ----------
    zone_id
        Id of the offending feature, ``None`` for file-level problems (or ``"#<n>"``
        when the feature has no usable id: the 0-based index in ``features``).
    file
        The file path or source label the feature came from.
    message
        What is wrong and how to fix it.
    """

    zone_id: str | None
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.zone_id}: {self.message}" if self.zone_id else f"{self.file}: {self.message}"


def parse_document(obj: object, source: str) -> tuple[list[Fence], list[Problem]]:
    """Validate a GeoJSON FeatureCollection and build the fences of its valid features.

    Duplicate ids are reported within the document; across documents the caller
    (:mod:`zones.loader`) checks them.

    Parameters
    ----------
    obj
        The decoded JSON document.
    source
        File path or label used in problems.

    Returns
    -------
    fences, problems
        Fences of the features without problems, and every problem found.
    """
    problems: list[Problem] = []
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection":
        return [], [Problem(None, source, "not a GeoJSON FeatureCollection (need {'type': 'FeatureCollection', ...})")]
    features = obj.get("features")
    if not isinstance(features, list):
        return [], [Problem(None, source, "'features' must be a list of GeoJSON Feature objects")]
    try:
        convert = to_wgs84_func(crs_name(obj.get("crs")))
    except ZoneError as exc:
        return [], [Problem(None, source, str(exc))]
    fences: list[Fence] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        fence, found = _parse_feature(feature, index, source, convert)
        problems.extend(found)
        fid = fence.id if fence is not None else _feature_id(feature)
        if fid is not None:
            if fid in seen:
                problems.append(
                    Problem(fid, source, f"duplicate id (features #{seen[fid]} and #{index}); ids must be unique")
                )
                continue
            seen[fid] = index
        if fence is not None:
            fences.append(fence)
    return fences, problems


def feature_ids(obj: object) -> list[str]:
    """Return the ids of the features of a document that have one, valid or not, in file order."""
    if not isinstance(obj, dict) or not isinstance(obj.get("features"), list):
        return []
    return [fid for fid in map(_feature_id, obj["features"]) if fid is not None]


def _feature_id(feature: object) -> str | None:
    if isinstance(feature, dict) and isinstance(feature.get("properties"), dict):
        fid = feature["properties"].get("id")
        if isinstance(fid, str) and fid:
            return fid
    return None


def _parse_feature(
    feature: object, index: int, source: str, convert: XYFunc | None
) -> tuple[Fence | None, list[Problem]]:
    label = _feature_id(feature) or f"#{index}"
    problems: list[str] = []
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, [Problem(label, source, "not a GeoJSON Feature (need {'type': 'Feature', ...})")]
    props = feature.get("properties")
    if not isinstance(props, dict):
        return None, [Problem(label, source, "'properties' must be an object with id, name and kind")]
    for key in _REQUIRED:
        value = props.get(key)
        if not isinstance(value, str) or not value.strip():
            what = "missing" if value is None else f"must be a non-empty string, got {value!r}"
            problems.append(f"property '{key}' {what}")
    kind: ZoneKind | None = None
    if isinstance(props.get("kind"), str) and props["kind"].strip():
        try:
            kind = ZoneKind.parse(props["kind"])
        except ZoneError as exc:
            problems.append(str(exc))
    problems.extend(_check_params(props))
    geometry = _build_geometry(feature.get("geometry"), convert, problems)
    metadata = {k: v for k, v in props.items() if k not in _REQUIRED and k not in RULE_PARAMS}
    if convert is not None and "centerline" in metadata:
        metadata["centerline"] = _convert_line(metadata["centerline"], convert, problems)
    if problems or geometry is None or kind is None:
        return None, [Problem(label, source, p) for p in problems]
    params = FenceParams(**{k: _param_value(k, props[k]) for k in RULE_PARAMS if props.get(k) is not None})
    fence = Fence(id=props["id"], name=props["name"], kind=kind, geometry=geometry, params=params, metadata=metadata)
    return fence, []


def _param_value(key: str, value: Any) -> Any:
    if key in _NUMBER_PARAMS or (key == "max_dwell_min" and not isinstance(value, str)):
        return float(value)
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_params(props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in _NUMBER_PARAMS:
        value = props.get(key)
        if value is not None and not (_is_number(value) and value >= 0):
            found.append(f"rule '{key}' must be a number >= 0, got {value!r}")
    for key in _BOOL_PARAMS:
        value = props.get(key)
        if value is not None and not isinstance(value, bool):
            found.append(f"rule '{key}' must be true or false, got {value!r}")
    dwell = props.get("max_dwell_min")
    if dwell is not None:
        ok = (_is_number(dwell) and dwell >= 0) or (isinstance(dwell, str) and PERCENTILE_RE.match(dwell))
        if not ok:
            found.append(f"rule 'max_dwell_min' must be minutes >= 0 or a percentile such as 'p99', got {dwell!r}")
    severity = props.get("severity")
    if severity is not None and severity not in SEVERITIES:
        found.append(f"rule 'severity' must be one of {', '.join(map(repr, SEVERITIES))}, got {severity!r}")
    return found


def _build_geometry(geom: object, convert: XYFunc | None, problems: list[str]) -> BaseGeometry | None:
    if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
        got = geom.get("type") if isinstance(geom, dict) else geom
        problems.append(f"geometry must be a Polygon or MultiPolygon, got {got!r}")
        return None
    coords = geom.get("coordinates")
    polys_raw = [coords] if geom["type"] == "Polygon" else coords
    if not isinstance(polys_raw, list) or not polys_raw:
        problems.append(f"{geom['type']} has no coordinates")
        return None
    n_before = len(problems)
    polygons: list[Polygon] = []
    for p_index, rings in enumerate(polys_raw):
        where = f"polygon {p_index} " if geom["type"] == "MultiPolygon" else ""
        if not isinstance(rings, list) or not rings:
            problems.append(f"{where}has no rings; a polygon is a list of linear rings")
            continue
        arrays = [_ring_array(ring, f"{where}ring {r_index}", problems) for r_index, ring in enumerate(rings)]
        if any(a is None for a in arrays):
            continue
        converted = [_to_wgs84(a, convert, f"{where}ring {i}", problems) for i, a in enumerate(arrays) if a is not None]
        if any(c is None for c in converted):
            continue
        shell, *holes = [c for c in converted if c is not None]
        polygons.append(Polygon(shell, holes))
    if len(problems) > n_before:
        return None
    result: BaseGeometry = polygons[0] if geom["type"] == "Polygon" else MultiPolygon(polygons)
    if not result.is_valid:
        problems.append(f"invalid geometry: {explain_validity(result)} (fix self-intersections, overlapping parts)")
        return None
    if result.is_empty or shapely.area(result) == 0:
        problems.append("geometry has zero area")
        return None
    return result


def _ring_array(ring: object, where: str, problems: list[str]) -> np.ndarray | None:
    if not isinstance(ring, list) or not all(
        isinstance(p, list) and len(p) in (2, 3) and all(_is_number(v) or _is_nan(v) for v in p) for p in ring
    ):
        problems.append(f"{where}: coordinates must be a list of [x, y] number pairs")
        return None
    if len(ring) < 4:
        problems.append(f"{where}: a linear ring needs at least 4 positions, got {len(ring)}")
        return None
    if ring[0][:2] != ring[-1][:2]:
        problems.append(
            f"{where}: unclosed ring, first position {ring[0][:2]} != last {ring[-1][:2]}; repeat the first position"
        )
        return None
    return np.array([p[:2] for p in ring], dtype=np.float64)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _to_wgs84(xy: np.ndarray, convert: XYFunc | None, where: str, problems: list[str]) -> np.ndarray | None:
    lon, lat = (xy[:, 0], xy[:, 1]) if convert is None else convert(xy[:, 0], xy[:, 1])
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problems.append(
            f"{where}: coordinate out of range at position {i}: lon {float(lon[i])}, lat {float(lat[i])} in WGS84 "
            f"(from {xy[i].tolist()}); need lon in [-180, 180], lat in [-90, 90], x = lon first; "
            f"{int(bad.sum())} bad positions"
        )
        return None
    return np.column_stack([lon, lat])


def _convert_line(line: object, convert: XYFunc, problems: list[str]) -> object:
    """Convert a fairway ``centerline`` property ([[x, y], ...]) to WGS84 like the geometry."""
    if not isinstance(line, Sequence) or not all(isinstance(p, Sequence) and len(p) >= 2 for p in line):
        problems.append("property 'centerline' must be a list of [x, y] positions")
        return line
    xy = np.array([[p[0], p[1]] for p in line], dtype=np.float64)
    lon, lat = convert(xy[:, 0], xy[:, 1])
    return [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
