"""The HTML report: offline, no console errors, no request outside the file, markers as many as lines.

Headless Debian Chromium (``tests/browser.py``; skipped locally without it, a failure under CI=true)
opens a synthetic report with 120k positions, the report of a simulated replay and the report of a
real recording (Suez); screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import orjson
from shapely.geometry import box

from geofence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.timefmt import parse_iso_utc
from replay.report import MAX_DISPLAY_VERTICES, Track, build_report, simplify_track
from tests.browser import chromium_path, open_report
from tests.test_replay_support import flat_baseline, run_cli, simulated
from zones import load_zones

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _zones() -> ZoneSet:
    return ZoneSet.of(
        [
            Fence("port-a", "Port A", ZoneKind.PORT, box(106.5, 29.5, 106.6, 29.6), FenceParams()),
            Fence("rw-b", "Restricted B", ZoneKind.RESTRICTED, box(106.7, 29.5, 106.75, 29.55), FenceParams()),
        ]
    )


def _alerts() -> list[dict[str, object]]:
    base = {"severity": "warning", "subject_kind": "vessel", "zone_version": "x", "details": {"note": "</script>"}}
    return [
        {**base, "alert_id": "a1", "type": "zone_enter", "status": "event", "subject_id": "1", "zone_id": "port-a",
         "ts": "2026-06-01T00:10:00Z", "lon": 106.55, "lat": 29.55},
        {**base, "alert_id": "a2", "type": "ais_gap", "status": "open", "subject_id": "2", "zone_id": None,
         "ts": "2026-06-01T00:20:00Z", "lon": 106.65, "lat": 29.52},
        {**base, "alert_id": "a2", "type": "ais_gap", "status": "closed", "subject_id": "2", "zone_id": None,
         "ts": "2026-06-01T00:40:00Z", "lon": 106.66, "lat": 29.52},
    ]


def _tracks(n: int) -> list[Track]:
    t0 = 1_780_272_000.0
    ts = t0 + np.arange(n) * 10.0
    lon = 106.5 + np.linspace(0, 0.3, n) + 0.001 * np.sin(np.arange(n))
    lat = 29.5 + np.linspace(0, 0.1, n)
    return [Track("1", ts, lon, lat), Track("2", ts, lon + 0.01, lat)]


def test_simplify_keeps_endpoints_and_timestamps() -> None:
    t = _tracks(1000)[0]
    s = simplify_track(t, 1e-3)
    assert 2 <= len(s.ts_s) < 1000
    assert s.ts_s[0] == t.ts_s[0] and s.ts_s[-1] == t.ts_s[-1]
    assert np.all(np.diff(s.ts_s) > 0)
    assert set(s.ts_s).issubset(set(t.ts_s))


def test_report_is_self_contained() -> None:
    html = build_report(_zones(), _tracks(100), _alerts(), {"counts": {"positions": 200}})
    import re

    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", html), "external resource reference"
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html), "CSS loads a remote resource"
    assert "</script>\"" not in html  # embedded data cannot close the script element
    assert "L.map" in html and "GEOFENCE_DATA" in html


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    tracks = _tracks(60_000)  # 120k positions: simplified for display
    path.write_text(build_report(_zones(), tracks, _alerts(), {"counts": {"positions": 120_000}}), encoding="utf-8")
    assert len(path.read_bytes()) < 8_000_000
    result = open_report(path, ARTEFACTS / "synthetic_report.png")
    assert result.console_errors == []
    assert result.outside_requests == []
    assert result.markers == 2  # one open + one event line
    assert result.fences == 2 and result.tracks == 2
    assert result.screenshot_distinct_colours > 20
    assert MAX_DISPLAY_VERTICES >= 10_000


def _check_page(report: Path, alerts_file: Path, screenshot: Path, n_fences: int) -> None:
    """The acceptance checks of a replay's report, read from the page."""
    lines = [orjson.loads(x) for x in alerts_file.read_bytes().splitlines()]
    markers = [a for a in lines if a["status"] in ("open", "event")]
    by_subject = Counter(str(a["subject_id"]) for a in markers)
    subject = min(by_subject, key=lambda s: (-by_subject[s], s)) if by_subject else None
    result = open_report(report, screenshot, subject=subject)
    assert result.console_errors == []
    assert result.outside_requests == []
    assert result.markers == len(markers) > 0
    assert result.fences == n_fences
    assert result.tracks > 0 and result.track_points > result.tracks
    assert result.screenshot is not None and result.screenshot.stat().st_size > 10_000
    assert result.screenshot_distinct_colours > 50  # not blank
    # The controls: a type switched off, one subject, the slider at the start.
    first_type = min(a["type"] for a in markers)
    assert result.filtered[f"type_off:{first_type}"] == len(markers) - sum(a["type"] == first_type for a in markers)
    if subject is not None:
        assert result.filtered[f"subject:{subject}"] == by_subject[subject]
    t_start = min(parse_iso_utc(a["ts"]) for a in markers)
    assert result.filtered["time_start"] <= sum(parse_iso_utc(a["ts"]) <= t_start + 1 for a in markers)
    assert result.filtered["restored"] == len(markers)


def test_replay_report_of_simulated_traffic_in_headless_chromium(tmp_path: Path) -> None:
    chromium_path()  # skip (or fail in CI) before the replay when there is no browser
    sim = simulated(60, 3.0, 5)
    baseline = flat_baseline(tmp_path / "baseline.json")
    out = tmp_path / "out"
    assert run_cli(["replay", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                    "--out", str(out), "--quiet"]) == 0
    _check_page(out / "report.html", out / "alerts.jsonl", ARTEFACTS / "replay_report_simulated.png",
                len(load_zones([sim.zones]).fences))


def test_replay_report_of_a_real_recording_in_headless_chromium(real_data: Path, tmp_path: Path) -> None:
    from tests.test_replay_real import SUEZ, SUEZ_COLUMNS, _need_decoders, _region_zones

    chromium_path()
    _need_decoders()
    zones = _region_zones(real_data, "suez_canal", tmp_path / "suez.geojson")
    out = tmp_path / "out"
    assert run_cli(["replay", str(real_data / "csv" / SUEZ), "--zones", str(zones), "--columns", SUEZ_COLUMNS,
                    "--time-format", "%d/%m/%Y %H:%M", "--out", str(out), "--quiet"]) == 0
    _check_page(out / "report.html", out / "alerts.jsonl", ARTEFACTS / "replay_report_suez.png",
                len(load_zones([zones]).fences))
