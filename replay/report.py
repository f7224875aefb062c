"""The analyst's report: one self-contained, offline HTML file.

Leaflet's JavaScript and CSS are inlined from the pinned PyPI package
``xstatic-leaflet``; there are no tiles, fonts or CDN links, so the file opens
on an air-gapped analyst machine and makes no network request. Tracks are
simplified for display (Douglas-Peucker with an adaptive tolerance), so the
page stays usable with 100k positions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import shapely
from shapely.geometry import mapping

from geofence.fence import ZoneSet

__all__ = ["MAX_DISPLAY_VERTICES", "Track", "build_report", "simplify_track"]

#: Upper bound on track vertices drawn in the page; tracks are simplified until they fit.
MAX_DISPLAY_VERTICES = 60_000

_F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Track:
    """One subject's accepted positions in time order (UTC epoch s, lon/lat degrees)."""

    subject_id: str
    ts_s: _F64
    lon_deg: _F64
    lat_deg: _F64


def _leaflet_assets() -> tuple[str, str]:
    import xstatic.pkg.leaflet as xleaflet  # the pinned registry package carrying Leaflet

    base = Path(xleaflet.BASE_DIR)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)
    # Image references would make the browser fetch files beside the report; we draw only vectors.
    css = re.sub(r"url\((?!#)[^)]*\)", "none", css)
    return js, css


def simplify_track(track: Track, tolerance_deg: float) -> Track:
    """Return the track reduced to the vertices Douglas-Peucker keeps at ``tolerance_deg``.

    Kept vertices keep their timestamps, so the time slider still works on the
    simplified line.
    """
    n = len(track.ts_s)
    if n <= 2 or tolerance_deg <= 0:
        return track
    line = shapely.linestrings(np.column_stack([track.lon_deg, track.lat_deg]))
    kept = shapely.get_coordinates(shapely.simplify(line, tolerance_deg, preserve_topology=False))
    # Simplification keeps a subsequence of the vertices: walk both in order to recover indices.
    idx = np.empty(len(kept), dtype=np.int64)
    j = 0
    for k, (x, y) in enumerate(kept):
        while j < n - 1 and not (track.lon_deg[j] == x and track.lat_deg[j] == y):
            j += 1
        idx[k] = j
        j = min(j + 1, n - 1)
    idx = np.unique(idx)
    return Track(track.subject_id, track.ts_s[idx], track.lon_deg[idx], track.lat_deg[idx])


def _fit_tracks(tracks: Sequence[Track], budget: int) -> list[Track]:
    total = sum(len(t.ts_s) for t in tracks)
    tolerance = 0.0
    out = list(tracks)
    while total > budget:
        tolerance = 1e-4 if tolerance == 0 else tolerance * 2
        out = [simplify_track(t, tolerance) for t in tracks]
        total = sum(len(t.ts_s) for t in out)
    return out


def _fence_features(zones: ZoneSet) -> list[dict[str, Any]]:
    features = []
    for fence in zones.fences:
        geom = shapely.simplify(fence.geometry, 2e-4, preserve_topology=True)
        features.append(
            {
                "type": "Feature",
                "properties": {"id": fence.id, "name": fence.name, "kind": fence.kind.value},
                "geometry": mapping(geom),
            }
        )
    return features


def _round(values: _F64, digits: int) -> list[float]:
    return [float(v) for v in np.round(values, digits)]


def build_report(
    zones: ZoneSet,
    tracks: Sequence[Track],
    alert_lines: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    *,
    title: str = "geofence replay report",
) -> str:
    """Return the report as one HTML string.

    Parameters
    ----------
    zones
        The fences to draw, coloured by kind.
    tracks
        Every subject's positions; simplified here to at most :data:`MAX_DISPLAY_VERTICES`.
    alert_lines
        Decoded alert lines; ``open`` and ``event`` lines become markers (one each).
    summary
        The replay summary; its counts and alerts by type are shown in the side panel.
    """
    js, css = _leaflet_assets()
    here = resources.files("replay") / "assets"
    own_js = (here / "report.js").read_text(encoding="utf-8")
    own_css = (here / "report.css").read_text(encoding="utf-8")

    markers = [dict(a) for a in alert_lines if a.get("status") in ("open", "event")]
    for m in markers:
        m["ts_s"] = _ts_s(str(m["ts"]))
    shown_tracks = _fit_tracks(tracks, MAX_DISPLAY_VERTICES)
    times = [t.ts_s for t in tracks if len(t.ts_s)] + [np.array([m["ts_s"] for m in markers])]
    all_t = np.concatenate(times) if times else np.zeros(0)
    t_range = [float(all_t.min()), float(all_t.max())] if all_t.size else [0.0, 1.0]
    by_type: dict[str, int] = {}
    for m in markers:
        by_type[str(m["type"])] = by_type.get(str(m["type"]), 0) + 1
    fences = _fence_features(zones)
    bbox = _bbox(zones, shown_tracks)
    data = {
        "fences": {"type": "FeatureCollection", "features": fences},
        "tracks": [
            {"id": t.subject_id, "t": _round(t.ts_s, 0), "lon": _round(t.lon_deg, 5), "lat": _round(t.lat_deg, 5)}
            for t in shown_tracks
        ],
        "alerts": markers,
        "alerts_by_type": dict(sorted(by_type.items())),
        "subjects_with_alerts": sorted({str(m["subject_id"]) for m in markers}),
        "time_range": t_range,
        "bbox": bbox,
    }
    payload = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode("utf-8").replace("</", "<\\/")
    counts = summary.get("counts", {})
    rows = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in counts.items() if not isinstance(v, dict)
    )
    return _TEMPLATE.format(
        title=_esc(title),
        leaflet_css=css,
        own_css=own_css,
        leaflet_js=js,
        own_js=own_js,
        data=payload,
        counts_rows=rows,
        n_markers=len(markers),
        zone_version=_esc(zones.version),
    )


def _bbox(zones: ZoneSet, tracks: Sequence[Track]) -> list[float] | None:
    xs: list[float] = []
    ys: list[float] = []
    for t in tracks:
        if len(t.lon_deg):
            xs += [float(t.lon_deg.min()), float(t.lon_deg.max())]
            ys += [float(t.lat_deg.min()), float(t.lat_deg.max())]
    if not xs:
        for f in zones.fences:
            x0, y0, x1, y1 = f.geometry.bounds
            xs += [x0, x1]
            ys += [y0, y1]
    if not xs or not all(math.isfinite(v) for v in xs + ys):
        return None
    return [min(xs), min(ys), max(xs), max(ys)]


def _ts_s(iso: str) -> float:
    from geofence.timefmt import parse_iso_utc

    return parse_iso_utc(iso)


def _esc(value: object) -> str:
    return (
        str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{leaflet_css}</style>
<style>{own_css}</style>
</head>
<body>
<aside id="side">
  <h1>{title}</h1>
  <p class="muted">zone version {zone_version} &middot; {n_markers} alert markers (open and event lines)</p>
  <h2>Time</h2>
  <input type="range" id="time" aria-label="time slider">
  <div id="time-label"></div>
  <h2>Alert types</h2>
  <div id="types"></div>
  <h2>Subject</h2>
  <input id="subject" list="subjects" placeholder="all subjects">
  <datalist id="subjects"></datalist>
  <p>showing <span id="shown">0</span> markers</p>
  <h2>Warnings and critical</h2>
  <ul id="alert-list"></ul>
  <h2>Counts</h2>
  <table>{counts_rows}</table>
  <h2>Fence kinds</h2>
  <div id="legend">
    <span class="k port">port</span> <span class="k berth">berth</span> <span class="k anchorage">anchorage</span>
    <span class="k fairway">fairway</span> <span class="k restricted">restricted</span>
    <span class="k customs">customs</span> <span class="k speed_limit">speed_limit</span>
    <span class="k lock">lock</span>
  </div>
</aside>
<div id="map"></div>
<script>{leaflet_js}</script>
<script>window.GEOFENCE_DATA = {data};</script>
<script>{own_js}</script>
</body>
</html>
"""
