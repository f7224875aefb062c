"""Build ``zones/yangtze.geojson``, the illustrative Yangtze fence catalogue.

Run from the repository root (needs ``../shared/data/real`` beside the repo)::

    .venv/bin/python zones/tools/build_catalogue.py            # writes zones/yangtze.geojson
    .venv/bin/python zones/tools/build_catalogue.py --check    # exit 1 if the committed file differs

How it works
------------
* River centre lines come from Natural Earth 10m (public domain), via
  ``geo/yangtze_basin_ne10m.geojson``: the Yangtze main stem ("Chang Jiang",
  "Yangtze"), the Jialing, the Xiang and the Yuan's East-Dongting lake channel
  (the water route from the Xiang mouth to Chenglingji). NE's Yangtze ends at
  Zhenjiang (119.6E); east of that the line to Waigaoqiao is drawn by hand
  (``_ESTUARY``). At the Three Gorges Dam the route is drawn through the
  north-bank ship lock (``_TGD_LOCK_PATH``) instead of across the dam.
* Fairway centre lines are cut from those lines between named nodes, simplified
  to 200 m in a local azimuthal equidistant projection and buffered by
  ``width_m / 2`` there. Junction nodes are kept as exact shared vertices.
* Port, berth, anchorage, customs, lock and speed-limit fences are bands that
  follow the river: a stretch of ``length_m`` of the centre line around an
  anchor point (a real coordinate where one is known, see ``basis``), shifted
  sideways towards the anchor (at most 800 m unless the anchor must lie inside)
  and buffered to ``width_m``. NE lines are accurate to 1–2 km only, so all of
  this is illustrative, not surveyed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import LineString, MultiLineString, Point, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring, unary_union

REPO = Path(__file__).resolve().parents[2]
NE_FILE = REPO.parent / "shared" / "data" / "real" / "geo" / "yangtze_basin_ne10m.geojson"
OUT_FILE = REPO / "zones" / "yangtze.geojson"
SIMPLIFY_M = 200.0
DECIMALS = 6
MAX_SHIFT_M = 800.0
DENSIFY_DEG = 0.01
DENSIFY_M = 1000.0
LonLat = tuple[float, float]

DISCLAIMER = (
    "ILLUSTRATIVE, NOT SURVEYED. Fence outlines are derived from Natural Earth 10m river centre lines "
    "(accurate to roughly 1-2 km) and public place coordinates (UN/LOCODE, World Port Index, Global Fishing "
    "Watch anchorages); east of 119.6E the river line is drawn by hand. Do not use for navigation or "
    "enforcement; replace with official fences from the port authority before operational use."
)

# East of Zhenjiang (NE ends at 119.606E) to Waigaoqiao and a little beyond, drawn by hand
# along the main navigation channel (Jiangyin bridge, Nantong, Sutong bridge, Taicang, Wusongkou).
_ESTUARY: list[LonLat] = [
    (119.70, 32.255), (119.80, 32.290), (119.88, 32.285), (119.94, 32.230), (119.99, 32.130),
    (120.06, 32.020), (120.15, 31.960), (120.27, 31.945), (120.40, 31.960), (120.52, 31.990),
    (120.65, 32.010), (120.76, 32.005), (120.85, 31.965), (120.92, 31.880), (120.99, 31.790),
    (121.08, 31.715), (121.18, 31.645), (121.28, 31.570), (121.37, 31.500), (121.45, 31.440),
    (121.52, 31.400), (121.57, 31.380), (121.615, 31.368), (121.65, 31.360), (121.72, 31.340),
]
WAIGAOQIAO_NODE: LonLat = (121.615, 31.368)

# Three Gorges Dam: the route leaves the NE line at 110.9658E and rejoins at 111.0513E via the
# five-step ship lock on the north bank (illustrative positions).
_TGD_LEAVE = (110.9658, 30.8742)
_TGD_REJOIN = (111.0513, 30.8323)
_TGD_LOCK_PATH: list[LonLat] = [
    (110.9850, 30.8540), (110.9980, 30.8470), (111.0100, 30.8410), (111.0200, 30.8360),
    (111.0300, 30.8300), (111.0420, 30.8280),
]
_CHENGLINGJI: LonLat = (113.1276, 29.4628)  # where the NE "Chang Jiang" line becomes "Yangtze"
_TGD_DAM_AXIS: list[LonLat] = [(111.0010, 30.8220), (111.0090, 30.8330)]


# --- geometry helpers -----------------------------------------------------------------------------


class Local:
    """A local azimuthal equidistant projection (metres) around a point, both directions."""

    def __init__(self, lon: float, lat: float) -> None:
        crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m +no_defs")
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def to_m(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: np.column_stack(self._fwd.transform(xy[:, 0], xy[:, 1])))

    def to_ll(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: np.column_stack(self._inv.transform(xy[:, 0], xy[:, 1])))


def _chain(parts: Sequence[LineString], start: LonLat) -> LineString:
    """Join line parts into one line starting at ``start``, greedily, reversing parts as needed."""
    todo = list(parts)
    coords: list[LonLat] = []
    cursor = Point(start)
    while todo:
        best = min(todo, key=lambda p: min(cursor.distance(Point(p.coords[0])), cursor.distance(Point(p.coords[-1]))))
        todo.remove(best)
        pts = list(best.coords)
        if cursor.distance(Point(pts[-1])) < cursor.distance(Point(pts[0])):
            pts.reverse()
        if coords and pts[0] == coords[-1]:
            pts = pts[1:]
        coords.extend((float(x), float(y)) for x, y, *_ in pts)
        cursor = Point(coords[-1])
    return LineString(coords)


def _parts(geom: BaseGeometry) -> list[LineString]:
    return list(geom.geoms) if isinstance(geom, MultiLineString) else [geom]


def load_rivers(path: Path = NE_FILE) -> dict[str, LineString]:
    """Return the navigable route lines (lon, lat), upstream → downstream: main, jialing, xiang."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    by_name: dict[tuple[str, str], list[LineString]] = {}
    for feat in doc["features"]:
        props = feat["properties"]
        if props.get("layer") != "river_centerline" or not props.get("name"):
            continue
        geom = shapely.geometry.shape(feat["geometry"])
        by_name.setdefault((props["name"], props["featurecla"]), []).extend(_parts(geom))
    main_parts = [
        p for p in by_name[("Chang Jiang", "River")] + by_name[("Yangtze", "River")] if p.length > 0.05
    ]
    main = _chain(main_parts, (103.85, 28.67))
    coords = list(main.coords)
    # Three Gorges: swap the NE segment across the dam for the ship-lock path.
    i_leave = min(range(len(coords)), key=lambda i: Point(coords[i]).distance(Point(_TGD_LEAVE)))
    i_rejoin = min(range(len(coords)), key=lambda i: Point(coords[i]).distance(Point(_TGD_REJOIN)))
    coords = coords[: i_leave + 1] + _TGD_LOCK_PATH + coords[i_rejoin:]
    main = LineString(coords + _ESTUARY)
    jialing = by_name[("Jialing", "River")][0]
    xiang = by_name[("Xiang", "River")][0]
    yuan_lake = [p for p in by_name[("Yuan", "Lake Centerline")] if Point(xiang.coords[-1]).distance(p) < 1e-6]
    yuan_mouth = [p for p in by_name[("Yuan", "River")] if Point(p.coords[-1]).distance(Point(_CHENGLINGJI)) < 1e-3]
    xiang_route = _chain([xiang, *yuan_lake, *yuan_mouth], xiang.coords[0])
    return {"yangtze": main, "jialing": jialing, "xiang": xiang_route}


def _round(geom: BaseGeometry) -> BaseGeometry:
    return shapely.set_precision(geom, 10.0**-DECIMALS)


def _coords_list(line: LineString) -> list[list[float]]:
    return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in line.coords]


def _chainage(line: LineString, pt: LonLat) -> float:
    return float(line.project(Point(pt)))


# --- fairways -------------------------------------------------------------------------------------


@dataclass
class FairwaySpec:
    id: str
    name: str
    name_zh: str
    river: str
    start: LonLat
    end: LonLat
    width_m: float
    from_node: str
    to_node: str
    nodes: dict[str, LonLat] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def build_fairway(line: LineString, spec: FairwaySpec, node_points: dict[str, LonLat]) -> dict[str, Any]:
    """Cut, simplify and buffer a fairway; returns the GeoJSON feature."""
    cut_at = sorted({_chainage(line, spec.start), _chainage(line, spec.end)} | {
        _chainage(line, p) for p in spec.nodes.values()
    })
    whole = substring(line, cut_at[0], cut_at[-1])
    local = Local(*whole.interpolate(0.5, normalized=True).coords[0])
    coords: list[tuple[float, float]] = []
    for a, b in itertools.pairwise(cut_at):
        piece_m = local.to_m(substring(line, a, b)).simplify(SIMPLIFY_M, preserve_topology=False)
        piece = local.to_ll(piece_m)
        pts = [(round(x, DECIMALS), round(y, DECIMALS)) for x, y in piece.coords]
        coords.extend(pts[1:] if coords else pts)
    # Fairways meet at exactly shared vertices: reuse a node another fairway already fixed.
    coords[0] = node_points.setdefault(spec.from_node, coords[0])
    coords[-1] = node_points.setdefault(spec.to_node, coords[-1])
    centre = LineString(coords)
    for name, pt in spec.nodes.items():
        snapped = min(coords, key=lambda c: Point(c).distance(Point(pt)))
        node_points.setdefault(name, snapped)
    # Densify so that straight lon/lat edges stay within metres of the metric buffer far from the centre.
    centre_m = local.to_m(centre.segmentize(DENSIFY_DEG))
    polygon = local.to_ll(centre_m.buffer(spec.width_m / 2, quad_segs=8).segmentize(DENSIFY_M))
    props = {
        "id": spec.id,
        "name": spec.name,
        "name_zh": spec.name_zh,
        "kind": "fairway",
        "river": spec.river,
        "width_m": spec.width_m,
        "from_node": spec.from_node,
        "to_node": spec.to_node,
        "junctions": {n: list(node_points[n]) for n in spec.nodes},
        "centerline": _coords_list(centre),
        **spec.extra,
    }
    return {"type": "Feature", "properties": props, "geometry": mapping(_round(polygon))}


# --- bank bands -----------------------------------------------------------------------------------


def band(
    line: LineString,
    anchor: LonLat,
    length_m: float,
    width_m: float,
    *,
    shift_m: float | None = None,
    max_shift_m: float = MAX_SHIFT_M,
    extra_shift_m: float = 0.0,
    ahead_m: float = 0.0,
) -> BaseGeometry:
    """A band of the river around ``anchor``: ``length_m`` along the centre line, ``width_m`` across.

    The band is shifted sideways by the anchor's signed offset from the centre line
    (positive = left bank looking downstream), clipped to ``max_shift_m``, plus
    ``extra_shift_m``; ``ahead_m`` moves its middle downstream of the anchor.
    """
    local = Local(*anchor)
    line_m = local.to_m(line)
    a_m = Point(0.0, 0.0)
    s0 = line_m.project(a_m) + ahead_m
    near = line_m.interpolate(s0)
    if shift_m is None:
        ahead = line_m.interpolate(min(s0 + 5.0, line_m.length))
        behind = line_m.interpolate(max(s0 - 5.0, 0.0))
        tx, ty = ahead.x - behind.x, ahead.y - behind.y
        cross = tx * (a_m.y - near.y) - ty * (a_m.x - near.x)
        offset = math.copysign(a_m.distance(near), cross)
        shift_m = max(-max_shift_m, min(max_shift_m, offset))
    shift_m += extra_shift_m
    piece = substring(line_m, s0 - length_m / 2, s0 + length_m / 2)
    shifted = piece if abs(shift_m) < 1.0 else piece.offset_curve(shift_m, quad_segs=4, join_style="round")
    if not isinstance(shifted, LineString):  # a tight bend can split the offset curve; keep the longest part
        shifted = max(_parts(shifted), key=lambda p: p.length)
    poly = shifted.buffer(width_m / 2, quad_segs=4, cap_style="flat", join_style="round")
    return local.to_ll(poly)


@dataclass
class FenceSpec:
    id: str
    name: str
    name_zh: str
    kind: str
    river: str
    anchor: LonLat
    length_m: float
    width_m: float
    basis: str
    params: dict[str, Any] = field(default_factory=dict)
    shift_m: float | None = None
    max_shift_m: float = MAX_SHIFT_M
    extra_shift_m: float = 0.0
    ahead_m: float = 0.0
    geometry: Callable[[dict[str, LineString]], BaseGeometry] | None = None


def build_fence(rivers: dict[str, LineString], spec: FenceSpec) -> dict[str, Any]:
    if spec.geometry is not None:
        geom = spec.geometry(rivers)
    else:
        geom = band(
            rivers[spec.river], spec.anchor, spec.length_m, spec.width_m, shift_m=spec.shift_m,
            max_shift_m=spec.max_shift_m, extra_shift_m=spec.extra_shift_m, ahead_m=spec.ahead_m,
        )
    props = {
        "id": spec.id,
        "name": spec.name,
        "name_zh": spec.name_zh,
        "kind": spec.kind,
        "river": spec.river,
        **spec.params,
        "basis": spec.basis,
    }
    return {"type": "Feature", "properties": props, "geometry": mapping(_round(geom))}


def _buffer_ll(geom_ll: BaseGeometry, radius_m: float, cap: str = "round") -> BaseGeometry:
    c = geom_ll.centroid
    local = Local(c.x, c.y)
    return local.to_ll(local.to_m(geom_ll).buffer(radius_m, quad_segs=6, cap_style=cap))


def _chaotianmen(rivers: dict[str, LineString]) -> BaseGeometry:
    junction = rivers["jialing"].coords[-1]
    main = band(rivers["yangtze"], junction, 2400, 800, shift_m=0.0)
    jialing = band(rivers["jialing"], junction, 3000, 500, shift_m=0.0, ahead_m=-1500)
    return unary_union([main, jialing])


def _tgd_dam(rivers: dict[str, LineString]) -> BaseGeometry:
    return _buffer_ll(LineString(_TGD_DAM_AXIS), 200.0, cap="flat")


def _tgd_lock(rivers: dict[str, LineString]) -> BaseGeometry:
    return _buffer_ll(LineString(_TGD_LOCK_PATH), 150.0, cap="flat")


def _speed_between(a: LonLat, b: LonLat, width_m: float) -> Callable[[dict[str, LineString]], BaseGeometry]:
    def make(rivers: dict[str, LineString]) -> BaseGeometry:
        line = rivers["yangtze"]
        piece = substring(line, _chainage(line, a), _chainage(line, b))
        return _buffer_ll(piece, width_m / 2, cap="flat")

    return make


# --- the catalogue --------------------------------------------------------------------------------

# Route nodes (snapped onto the lines): where fairways meet.
CHONGQING_UP = (106.470, 29.400)      # upstream of Jiulongpo: start of the Chongqing-Yichang fairway
YICHANG_NODE = (111.300, 30.690)
WUHAN_NODE = (114.300, 30.590)
NANJING_NODE = (118.760, 32.100)
LIZE = (106.266, 30.316)
CHANGSHA_UP = (112.950, 28.150)
GUOYUAN_VESSEL = (106.739, 29.601)    # real AIS 413788094 moored here; must fall inside cq-guoyuan-port

PORT = {"hysteresis_m": 50, "min_inside_s": 60, "max_dwell_min": "p99"}
BERTH = {"hysteresis_m": 20, "min_inside_s": 60, "max_dwell_min": "p99"}
ANCHORAGE = {"max_dwell_min": 720, "hysteresis_m": 100, "min_inside_s": 300}
RESTRICTED = {"severity": "critical", "stop_allowed": False, "min_inside_s": 0}
CUSTOMS = {"exit_requires_release": True, "severity": "warning", "hysteresis_m": 50}
LOCK = {"max_dwell_min": 360, "hysteresis_m": 30}


def _speed(kn: float) -> dict[str, Any]:
    return {"speed_limit_kn": kn, "severity": "warning", "min_inside_s": 30}


def fairway_specs() -> list[FairwaySpec]:
    return [
        FairwaySpec("fw-jialing-lize-cq", "Jialing fairway, Lize hub - Chaotianmen", "嘉陵江航道 利泽-朝天门",
                    "jialing", LIZE, (106.5868, 29.5856), 200, "lize", "chaotianmen"),
        FairwaySpec("fw-cq-yichang", "Yangtze fairway, Chongqing - Yichang (Three Gorges)", "长江航道 重庆-宜昌",
                    "yangtze", CHONGQING_UP, YICHANG_NODE, 400, "chongqing-jiulongpo", "yichang",
                    nodes={"chaotianmen": (106.5868, 29.5856)}),
        FairwaySpec("fw-yichang-wuhan", "Yangtze fairway, Yichang - Wuhan", "长江航道 宜昌-武汉",
                    "yangtze", YICHANG_NODE, WUHAN_NODE, 500, "yichang", "wuhan",
                    nodes={"chenglingji": (113.1276, 29.4628)}),
        FairwaySpec("fw-wuhan-nanjing", "Yangtze fairway, Wuhan - Nanjing", "长江航道 武汉-南京",
                    "yangtze", WUHAN_NODE, NANJING_NODE, 600, "wuhan", "nanjing"),
        FairwaySpec("fw-nanjing-shanghai", "Yangtze fairway, Nanjing - Shanghai Waigaoqiao", "长江航道 南京-上海外高桥",
                    "yangtze", NANJING_NODE, WAIGAOQIAO_NODE, 1000, "nanjing", "waigaoqiao",
                    extra={"hand_drawn_east_of_lon": 119.606}),
        FairwaySpec("fw-xiang-chenglingji-changsha", "Xiang fairway, Changsha - Chenglingji (via East Dongting)",
                    "湘江航道 长沙-城陵矶", "xiang", CHANGSHA_UP, (113.1276, 29.4628), 250, "changsha", "chenglingji",
                    extra={"note": "runs through East Dongting Lake along the NE Yuan lake centre line"}),
    ]


def fence_specs() -> list[FenceSpec]:
    y, j, x = "yangtze", "jialing", "xiang"
    return [
        # Chongqing
        FenceSpec("cq-jiulongpo-port", "Chongqing Jiulongpo port area", "重庆九龙坡港区", "port", y,
                  (106.515, 29.497), 2000, 300, "place name; anchor near Huangjueping, approximate", dict(PORT)),
        FenceSpec("cq-chaotianmen-restricted", "Chaotianmen confluence control water", "朝天门两江交汇管制水域",
                  "restricted", y, (106.5868, 29.5856), 0, 0, "Jialing-Yangtze confluence of the NE lines",
                  {**RESTRICTED, "transit_allowed": True}, geometry=_chaotianmen),
        FenceSpec("cq-cuntan-port", "Chongqing Cuntan port area", "重庆寸滩港区", "port", y, (106.617, 29.617),
                  2500, 400, "UN/LOCODE CNCTN 29.617N 106.617E", dict(PORT)),
        FenceSpec("cq-cuntan-berth-1", "Cuntan container berth 1", "寸滩集装箱1号泊位", "berth", y,
                  (106.617, 29.617), 300, 100, "inside cq-cuntan-port, illustrative", dict(BERTH)),
        FenceSpec("cq-lianglu-cuntan-bonded", "Lianglu-Cuntan bonded port area (Cuntan water zone)",
                  "两路寸滩保税港区(寸滩水港)", "customs", y, (106.617, 29.617), 4000, 1400,
                  "Cuntan part only; the Lianglu airport part lies inland and is omitted", dict(CUSTOMS),
                  extra_shift_m=0.0),
        FenceSpec("cq-tangjiatuo-anchorage", "Tangjiatuo anchorage", "唐家沱锚地", "anchorage", y,
                  (106.650, 29.600), 2000, 450, "place name; NE line skips the Tangjiatuo bend", dict(ANCHORAGE)),
        FenceSpec("cq-guoyuan-port", "Chongqing Guoyuan port area", "重庆果园港区", "port", y, GUOYUAN_VESSEL,
                  3000, 600, "GFW anchorage cluster CHN-278 (106.739E 29.594N) and AIS 413788094 moored at "
                  "106.739E 29.601N", dict(PORT), max_shift_m=3000),
        FenceSpec("cq-guoyuan-berth-1", "Guoyuan berth 1", "果园港1号泊位", "berth", y, GUOYUAN_VESSEL, 350, 150,
                  "around AIS 413788094 moored at 106.739E 29.601N", dict(BERTH), max_shift_m=3000),
        FenceSpec("cq-main-speed", "Chongqing main-city reach speed limit", "重庆主城江段限速区", "speed_limit", y,
                  (0, 0), 0, 0, "Jiulongpo to below Guoyuan", _speed(8),
                  geometry=_speed_between((106.500, 29.470), (106.790, 29.612), 1400)),
        FenceSpec("cq-lize-hub", "Jialing Lize navigation hub (ship lock)", "嘉陵江利泽航运枢纽", "lock", j, LIZE,
                  1500, 400, "Wusheng county, approximate position on the NE Jialing line", dict(LOCK)),
        FenceSpec("wz-wanzhou-port", "Wanzhou port area", "万州港区", "port", y, (108.400, 30.815), 2500, 400,
                  "GFW WPI WANXIAN 30.817N 108.433E; UN/LOCODE CNWZH", dict(PORT)),
        # Three Gorges and Yichang
        FenceSpec("tgd-maoping-anchorage", "Maoping anchorage above the Three Gorges Dam", "茅坪锚地", "anchorage",
                  y, (110.935, 30.878), 2500, 500, "place name; upstream of the dam, south bank", dict(ANCHORAGE),
                  shift_m=-500),
        FenceSpec("tgd-approach-speed", "Three Gorges ship-lock approach speed limit", "三峡船闸引航道限速区",
                  "speed_limit", y, (0, 0), 0, 0, "upstream approach to the lock", _speed(6),
                  geometry=_speed_between((110.930, 30.880), (110.985, 30.854), 900)),
        FenceSpec("tgd-shiplock-approach", "Three Gorges five-step ship lock and approaches", "三峡五级船闸及引航道",
                  "lock", y, _TGD_LOCK_PATH[2], 0, 0, "north bank, positions approximate", dict(LOCK),
                  geometry=_tgd_lock),
        FenceSpec("tgd-dam-restricted", "Three Gorges Dam restricted area", "三峡大坝禁航区", "restricted", y,
                  _TGD_DAM_AXIS[0], 0, 0, "dam axis near 30.823N 111.003E, approximate", dict(RESTRICTED),
                  geometry=_tgd_dam),
        FenceSpec("yc-gezhouba-lock", "Gezhouba ship locks", "葛洲坝船闸", "lock", y, (111.272, 30.740), 1000, 300,
                  "Gezhouba dam, Yichang, approximate", dict(LOCK)),
        FenceSpec("yc-yichang-port", "Yichang port area", "宜昌港区", "port", y, (111.285, 30.700), 3000, 400,
                  "UN/LOCODE CNYIC 30.700N 111.283E", dict(PORT)),
        # Yueyang and Changsha
        FenceSpec("yy-chenglingji-port", "Yueyang Chenglingji port area", "岳阳城陵矶港区", "port", y,
                  (113.150, 29.445), 2500, 400, "UN/LOCODE CNCLJ 29.433N 113.150E", dict(PORT), ahead_m=1500),
        FenceSpec("yy-yueyang-anchorage", "Yueyang anchorage", "岳阳锚地", "anchorage", y, (113.192, 29.505),
                  2000, 500, "GFW anchorage label YUEYANG (mean 113.192E 29.505N)", dict(ANCHORAGE)),
        FenceSpec("cs-xianing-port", "Changsha Xianing port area", "长沙霞凝港区", "port", x, (112.925, 28.325),
                  2000, 250, "place name, north Changsha on the Xiang; approximate", dict(PORT)),
        # Wuhan
        FenceSpec("wh-bridge-speed", "Wuhan Yangtze River Bridge speed limit", "武汉长江大桥限速区", "speed_limit", y,
                  (114.2897, 30.5505), 4000, 1600, "bridge at 30.551N 114.290E", _speed(6), shift_m=0.0),
        FenceSpec("wh-yangluo-port", "Wuhan Yangluo port area", "武汉阳逻港区", "port", y, (114.555, 30.655), 3000, 400,
                  "place name, Xinzhou district north bank; approximate", dict(PORT)),
        FenceSpec("wh-yangluo-berth-1", "Yangluo container berth 1", "阳逻集装箱1号泊位", "berth", y,
                  (114.555, 30.655), 350, 100, "inside wh-yangluo-port, illustrative", dict(BERTH)),
        FenceSpec("wh-yangluo-anchorage", "Yangluo anchorage", "阳逻锚地", "anchorage", y, (114.555, 30.655), 2000,
                  500, "downstream of Yangluo port, illustrative", dict(ANCHORAGE), ahead_m=4000, shift_m=-300),
        # Nanjing
        FenceSpec("nj-bridge-speed", "Nanjing Yangtze River Bridge speed limit", "南京长江大桥限速区", "speed_limit", y,
                  (118.735, 32.112), 4000, 1600, "bridge near 32.112N 118.735E", _speed(8), shift_m=0.0),
        FenceSpec("nj-anchorage", "Nanjing anchorage", "南京锚地", "anchorage", y, (118.680, 32.030), 3000, 600,
                  "GFW anchorage label NANJING; approximate", dict(ANCHORAGE)),
        FenceSpec("nj-longtan-port", "Nanjing Longtan port area", "南京龙潭港区", "port", y, (118.990, 32.170), 3500,
                  400, "place name, Qixia district; approximate", dict(PORT)),
        FenceSpec("nj-longtan-berth-1", "Longtan container berth 1", "龙潭集装箱1号泊位", "berth", y,
                  (118.990, 32.170), 350, 100, "inside nj-longtan-port, illustrative", dict(BERTH)),
        # Shanghai (east of 119.6E: hand-drawn river line)
        FenceSpec("sh-wusong-speed", "Wusongkou speed limit", "吴淞口限速区", "speed_limit", y, (121.505, 31.405),
                  5000, 2000, "Wusongkou, approximate", _speed(10), shift_m=0.0),
        FenceSpec("sh-waigaoqiao-port", "Shanghai Waigaoqiao port area", "上海外高桥港区", "port", y,
                  (121.588, 31.360), 4000, 600, "UN/LOCODE CNWGQ 31.363N 121.588E (third-party geocode)", dict(PORT)),
        FenceSpec("sh-waigaoqiao-berth-1", "Waigaoqiao container berth 1", "外高桥集装箱1号泊位", "berth", y,
                  (121.588, 31.360), 350, 120, "inside sh-waigaoqiao-port, illustrative", dict(BERTH)),
        FenceSpec("sh-waigaoqiao-bonded", "Waigaoqiao free-trade / bonded zone", "外高桥保税区", "customs", y,
                  (121.588, 31.360), 4000, 1500, "land behind the port, approximate", dict(CUSTOMS),
                  extra_shift_m=-1050),
    ]


def build() -> dict[str, Any]:
    rivers = load_rivers()
    nodes: dict[str, LonLat] = {}
    # Main-stem fairways first, so tributaries end exactly on the junction vertices they register.
    specs = sorted(fairway_specs(), key=lambda s: s.river != "yangtze")
    features = [build_fairway(rivers[s.river], s, nodes) for s in specs]
    features += [build_fence(rivers, s) for s in fence_specs()]
    shapes = {f["properties"]["id"]: shapely.geometry.shape(f["geometry"]) for f in features}
    for fid, geom in shapes.items():
        if not geom.is_valid:
            raise SystemExit(f"{fid}: invalid after rounding: {shapely.is_valid_reason(geom)}")
    if shapes["tgd-dam-restricted"].intersects(shapes["fw-cq-yichang"]):
        raise SystemExit("tgd-dam-restricted overlaps the fairway; move the lock path or the dam axis")
    return {
        "type": "FeatureCollection",
        "name": "yangtze_fences",
        "disclaimer": DISCLAIMER,
        "generated_by": "zones/tools/build_catalogue.py",
        "sources": [
            "Natural Earth 10m rivers_lake_centerlines v4.0 (public domain), simplified to 200 m",
            "UN/LOCODE, World Port Index, Global Fishing Watch anchorages (anchor points only)",
        ],
        "nodes": {k: list(v) for k, v in sorted(nodes.items())},
        "features": features,
    }


def _dump(doc: dict[str, Any]) -> str:
    feats = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in doc["features"])
    head = {k: v for k, v in doc.items() if k != "features"}
    head_txt = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    return f'{head_txt},\n "features": [\n{feats}\n ]\n}}\n'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file on disk differs from a rebuild")
    args = parser.parse_args(argv)
    text = _dump(build())
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} differs from a rebuild; rerun without --check")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
