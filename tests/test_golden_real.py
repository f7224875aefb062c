"""Golden tests on real recordings: the engine's alert lines for cases checked by hand.

Each test decodes a real file from ``../shared/data/real`` (through the ``real_data`` fixture) with the
project's own decoders, sorts it by event time, runs :class:`geofence.engine.Engine` with the default rules
over fences built from the real port tables, and compares the alert lines of the types under test with
``tests/golden/<case>.jsonl``. The golden files hold only our own output (alert lines), never input data.
After a deliberate change of the engine's output, rewrite them with ``GEOFENCE_UPDATE_GOLDEN=1 pytest
tests/test_golden_real.py`` and review the diff line by line against the notes below.

Fences (never copied into the repo; built from the real tables at test time):

* ``wpi-<number>``: World Port Index points of ``ports/wpi_pub150_replay_regions.csv`` buffered 2.5 km,
  kind ``port`` (SOURCES.md: the GFW list has no cell at the Rotterdam berth; use WPI points, 2-3 km);
* ``gfw-<k>``: the GFW anchorage clusters of ``geo/gfw_anchorage_clusters_replay_regions_derived.geojson``
  (feature index ``k``), kind ``anchorage``.

What fired over every real file (``nmea/``, ``csv/``, ``tracks/``; the catalogue plus both fence sets;
counted once by hand, Dec 2026): the Suez CSV 437 zone_enter, 380 zone_exit, 451 zone_cross, 1,024 ais_gap
(median report interval 12 min, gaps of hours near the anchorages), 15 dwell_exceeded, 4 encounter; the 9-day
GFW CSV 751 position_jump (56 regression tracks, several with shared or spoofed MMSIs); the Danish, Norwegian,
gpsd and Merrimack NMEA logs only zone_enter/zone_exit (first sightings in the GFW clusters; the untimed logs
run on the synthetic 1-s clock), ``signalk_gofree-merrimac.log`` 10 encounter (boats moored together on the
Merrimack, outside any of our fences), ``pyais_nmea_data_sample.txt`` and ``simpleais_sample.ais`` 2
position_jump each; ``yangtze_subset_from_above_files.nmea`` one zone_enter (413774288 in the catalogue's
``fw-nanjing-shanghai`` fairway; the other Yangtze positions lie 0.1–3 km outside the illustrative
catalogue fences); nothing at all for the 1-minute global ``aisdb_test_data_20211101.nm4`` and the NOAA CSV
(one row per vessel).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
from shapely.geometry import shape

from geofence import geodesy
from geofence.alerts import Alert
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch
from geofence.timefmt import parse_iso_utc

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("GEOFENCE_UPDATE_GOLDEN") == "1"
TRACK_COLUMNS = {"id": "ssvid", "ts": "timestamp", "sog": "speed", "cog": "course", "receiver": "receiver"}
SUEZ_COLUMNS = {"id": "ID", "ts": "ais_pos_timestamp", "lon": "longitude", "lat": "latitude"}
WPI_RADIUS_M = 2500.0


# -- fences and runs -------------------------------------------------------------------------------------------


def real_fences(real: Path, region_prefix: str) -> ZoneSet:
    """WPI ports (2.5 km) and GFW anchorage clusters of one replay region (``suez`` or ``north_sea``)."""
    fences = []
    with (real / "ports/wpi_pub150_replay_regions.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["region"].startswith(region_prefix):
            pt = shapely.Point(float(row["longitude"]), float(row["latitude"]))
            fences.append(
                Fence(f"wpi-{row['wpi_number']}", row["main_port_name"], ZoneKind.PORT,
                      geodesy.buffer_m(pt, WPI_RADIUS_M), FenceParams())
            )
    doc = json.loads((real / "geo/gfw_anchorage_clusters_replay_regions_derived.geojson").read_text(encoding="utf-8"))
    for k, feat in enumerate(doc["features"]):
        if feat["properties"]["region"].startswith(region_prefix):
            fences.append(
                Fence(f"gfw-{k:03d}", feat["properties"]["label"], ZoneKind.ANCHORAGE, shape(feat["geometry"]),
                      FenceParams())
            )
    return ZoneSet.of(fences)


def decode(path: Path, columns: dict[str, str], time_format: str | None = None) -> tuple[PositionBatch, list[Any]]:
    """Decode a JSONL or CSV file with the project's decoders; positions sorted by event time (stable)."""
    from geofence.decode import CsvDecoder, JsonlDecoder

    dec: Any
    if path.suffix == ".jsonl":
        dec = JsonlDecoder(path.name, columns=columns)
    else:
        dec = CsvDecoder(path.name, columns=columns, time_format=time_format)
    res = [dec.feed(path.read_bytes().splitlines(), 1), dec.close()]
    batch = PositionBatch.concat([r.positions for r in res if len(r.positions)])
    statics = [s for r in res for s in r.statics]
    return batch.take(np.lexsort((np.arange(len(batch)), batch.ts_s))), statics


def run(zones: ZoneSet, batch: PositionBatch, statics: list[Any], chunk: int = 4000) -> list[Alert]:
    from geofence.engine import Engine

    eng = Engine(zones)
    eng.add_statics(statics)
    out: list[Alert] = []
    for k in range(0, len(batch), chunk):
        out += eng.process(batch.take(np.arange(k, min(k + chunk, len(batch))))).alerts
    return out + eng.finish().alerts


def lines(alerts: Iterable[Alert]) -> list[bytes]:
    return [a.to_json() for a in alerts]


def check_golden(case: str, got: list[bytes]) -> list[dict[str, Any]]:
    """Compare with (or, with GEOFENCE_UPDATE_GOLDEN=1, rewrite) ``tests/golden/<case>.jsonl``; return it parsed."""
    path = GOLDEN / f"{case}.jsonl"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"".join(x + b"\n" for x in got))
    want = path.read_bytes().splitlines()
    assert got == want, f"{case}: engine output differs from {path.name} (review, then GEOFENCE_UPDATE_GOLDEN=1)"
    return [orjson.loads(x) for x in want]


# -- CONTAINERSHIPS POLAR (209515000): port calls -----------------------------------------------------------------


def test_containerships_polar_port_calls(real_data: Path) -> None:
    """Every alert line of CONTAINERSHIPS POLAR, 1–9 Jan 2021, against the North Sea/Baltic fences.

    Checked by hand against the raw track (SOURCES.md: Rotterdam berth 1.5 d, Kiel Canal from Brunsbüttel
    08:38 to Kiel 17:29 on 01-03, St Petersburg/Bronka 15 h, Riga 15 h):

    * Rotterdam: first report 2021-01-01T00:05:31Z moored (status 5) at 4.409E 51.879N, 2.4 km from the WPI
      Schiedam point: a first sighting inside counts as ``zone_enter`` (wpi-31130); ``zone_exit`` at
      2021-01-02T12:50:07Z with ``dwell_s`` 132,276 (36.7 h), then the New Waterway ports it passes
      (Vlaardingen 31120, Maassluis 31100, Hoek van Holland 31080) enter/exit within 10-18 min each;
    * Elbe: Cuxhaven (30800) 06:20-06:40 on 01-03; Brunsbüttel canal terminals (30720) and Elbehafen
      (30710) entered 08:20 and 08:28, left 09:17-09:22, bracketing the 08:38 lock entry;
    * Kiel Canal: two GFW clusters (gfw-419, gfw-213, 4-7 min each), Rendsburg (30730) 14:37-14:59 and a
      cluster at Kiel-Holtenau (gfw-404) 16:26-16:30: the canal transit, no alert of warning level;
    * Bronka (29.6975E 59.9373N, 06:00-20:01 on 01-06) and Riga (24.0776E 57.0378N, 05:09-20:11 on 01-08)
      lie 4.5 km and 9.8 km from the nearest WPI points and in no GFW cluster: no stay alert, correctly;
      four ``zone_cross`` on the way in and out of St Petersburg (Kotlin clusters gfw-022 and the Kronshtadt
      WPI point, segments of 0.5-3.8 km between reports);
    * two ``ais_gap`` off Riga: silent from 03:49:21 to 04:21:34 (1,933 s) and from 21:34:21 to 22:07:15
      (1,974 s) on 01-08, over the 30-min threshold, within 5 km of the Gulf of Riga clusters; the raw file has
      exactly these two gaps there. Each opens at last report + 1,800 s, while the vessel is silent.
    """
    zones = real_fences(real_data, "north_sea")
    batch, statics = decode(real_data / "tracks/gfw_gpsdio-segment_regr_209515000.jsonl", TRACK_COLUMNS)
    assert len(batch) == 2354
    got = check_golden("polar_209515000", lines(run(zones, batch, statics)))
    calls = {(a["zone_id"], a["type"]): a for a in got if a["type"] in ("zone_enter", "zone_exit")}
    rotterdam = calls[("wpi-31130", "zone_exit")]
    assert rotterdam["ts"] == "2021-01-02T12:50:07Z" and rotterdam["details"]["dwell_s"] > 1.5 * 86400
    assert "2021-01-03T08:00" < calls[("wpi-30720", "zone_enter")]["ts"] < "2021-01-03T08:38"
    gaps = [a for a in got if a["type"] == "ais_gap" and a["status"] == "closed"]
    assert [a["details"]["gap_s"] for a in gaps] == [1933.0, 1974.0]
    assert not [a for a in got if a["severity"] != "info" and a["type"] != "ais_gap"]


# -- 412588888: one MMSI, two boats, two oceans -------------------------------------------------------------------

#: The four track switches between the Gulf of Guinea (9.2-9.7E) and the Zhejiang coast (120-122E), counted by
#: hand in the raw file: positions sorted by time, a switch wherever consecutive reports change region.
SWITCHES_412588888 = ["2021-01-07T18:28:29Z", "2021-01-08T05:05:27Z", "2021-01-08T08:32:48Z", "2021-01-09T05:36:09Z"]


@pytest.fixture(scope="module")
def jumps_412588888(real_data: Path) -> list[dict[str, Any]]:
    batch, statics = decode(real_data / "tracks/gfw_gpsdio-segment_regr_412588888.jsonl", TRACK_COLUMNS)
    assert len(batch) == 110
    alerts = run(ZoneSet.of([]), batch, statics)
    return [orjson.loads(x) for x in lines(a for a in alerts if a.type.value == "position_jump")]


def test_mmsi_collision_teleports_raise_position_jump(jumps_412588888: list[dict[str, Any]]) -> None:
    """Class-B MMSI 412588888 shared by boats off Cameroon/Equatorial Guinea and off Zhejiang (SOURCES.md).

    Each of the four switches (``SWITCHES_412588888``; 11,870-11,970 km apart) raises one ``position_jump``
    at the first report of the other boat, with ``from`` the last position of the first one. The golden file
    holds exactly these four lines.
    """
    verified = [a for a in jumps_412588888 if a["ts"] in SWITCHES_412588888]
    stored = check_golden("mmsi_412588888_switches", [orjson.dumps(a) for a in verified])
    assert [a["ts"] for a in stored] == SWITCHES_412588888
    assert all(a["details"]["distance_m"] > 11_000_000 for a in stored)


def test_mmsi_collision_raises_no_other_jump(jumps_412588888: list[dict[str, Any]]) -> None:
    """After the first switch (2021-01-07T18:28) the Zhejiang boat reports at 18:54, 19:39, 20:04, 20:48, 22:18,
    23:25 and 23:42, each within 25 m of the previous one while moored (and then at 7 kn): one boat, one place.

    Regression: the engine discarded an unconfirmed suspect after a fixed 15 min, so the report of 18:54 (26 min
    later) raised another jump, and so did each of the next six, all ``from`` the Gulf of Guinea position of
    2021-01-04T18:48. The confirmation window now scales with the subject's reporting interval (4 x the median
    interval of its last trusted reports, 15 min to 2 h: here 4 x 13 min), so 18:54 confirms the jump."""
    assert [a["ts"] for a in jumps_412588888] == SWITCHES_412588888


# -- CSCL SUMMER (477293900): trans-Pacific, antimeridian ------------------------------------------------------------


@pytest.fixture(scope="module")
def summer(real_data: Path) -> list[dict[str, Any]]:
    zones = real_fences(real_data, "north_sea")  # only to expose the antimeridian segment (see below)
    batch, statics = decode(real_data / "tracks/gfw_gpsdio-segment_regr_477293900.jsonl", TRACK_COLUMNS)
    assert len(batch) == 2759
    return [orjson.loads(x) for x in lines(run(zones, batch, statics))]


def test_cscl_summer_position_glitches(summer: list[dict[str, Any]]) -> None:
    """Two real position glitches in the Korea Strait on 2021-01-07, both reports with 3-decimal coordinates:

    * 21:46:47 at 128.308E 33.957N, 16 s after a report 3.1 km further along (the position of ~21:40):
      ``position_jump`` at 380 kn implied;
    * 22:06:37 at 128.212E 33.9093N is 8 kn from the report of 21:53:49 (the ship logs 17 kn), so it is
      accepted, and the good report of 22:08:10 is 4.2 km from it in 93 s: ``position_jump`` at 88 kn, then
      confirmed by the next report. The jump is real; it is attributed to the later of the two reports,
      which only the future could tell apart.
    """
    jumps = check_golden("cscl_summer_477293900_jumps", [orjson.dumps(a) for a in summer
                                                          if a["type"] == "position_jump"])
    assert [a["ts"] for a in jumps] == ["2021-01-07T21:46:47Z", "2021-01-07T22:08:10Z"]


def test_cscl_summer_antimeridian_crossing_crosses_no_fence(summer: list[dict[str, Any]]) -> None:
    """Regression: the move from -179.99E to 179.70E was built as a line across the whole globe and crossed the
    Stusvik WPI fence at 7E 58N; it is the 18.5 km hop over the antimeridian (split there) and crosses nothing."""
    assert not [a for a in summer if a["type"] == "zone_cross"]


# -- Suez, March 2021: anchorage dwell and ships lying together ----------------------------------------------------


@pytest.fixture(scope="module")
def suez(real_data: Path) -> tuple[list[dict[str, Any]], PositionBatch]:
    zones = real_fences(real_data, "suez")
    batch, statics = decode(real_data / "csv/movingpandas_evergiven_boat-positions.csv", SUEZ_COLUMNS,
                            "%d/%m/%Y %H:%M")
    assert len(batch) == 22_287
    return [orjson.loads(x) for x in lines(run(zones, batch, statics))], batch


def _last_report_before(batch: PositionBatch, subject: str, ts: str) -> float:
    t = batch.ts_s[(batch.subject_id == subject) & (batch.ts_s <= parse_iso_utc(ts))]
    return float(t.max())


def test_suez_anchorage_dwell_and_ships_together(suez: tuple[list[dict[str, Any]], PositionBatch]) -> None:
    """``dwell_exceeded`` (anchorage limit 48 h) and ``encounter`` lines, 20-24 March 2021.

    Checked by hand: ships in SUEZ SOUTH ANCHORAGE (gfw-006), SUEZ PORT (gfw-005), SUEZ (gfw-001) and PORT SAID
    (gfw-002) from the first minute of the file (a first sighting inside is an enter) pass 48 h at 00:00-00:22
    on 22 March (vessels 89, 189, 75, 132, 44, each with a report minutes before); vessel 89 leaves at
    07:27 that day (its first report outside the cluster: closed, dwell 199,500 s); vessel 62 sits where the
    SUEZ and SUEZ SOUTH ANCHORAGE clusters overlap and gets one alert per fence. Vessels 10 and 20 lie 55 m
    apart, slow, at 32.356E 31.215N in Port Said harbour, outside both Port Said fences (the WPI point is
    4.3 km away; the GFW cluster covers the outer anchorage), from 23:25 on 23 March: ``encounter`` for both,
    closed 07:43 and reopened 08:58 on 24 March (one of them moved off between).

    The golden file holds every line of these alerts (the filter of dwell ``open`` lines written more than the
    30-min gap threshold after the vessel's last report is kept as a guard; it removes nothing since the engine
    decides such deadlines at the vessel's next report, see :func:`test_suez_no_dwell_claim_for_a_silent_vessel`).
    Vessel 10 (silent 14:25 on 21 March to 03:00 on 22 March in the PORT SAID cluster) opens at its
    reappearance; vessel 44's update at 4 x 48 h is dated at its report of 00:42 on 24 March.
    """
    got, batch = suez
    stale = {a["alert_id"] for a in got if a["type"] == "dwell_exceeded" and a["status"] == "open"
             and parse_iso_utc(a["ts"]) - _last_report_before(batch, a["subject_id"], a["ts"]) > 1800}
    fresh = [a for a in got if a["type"] == "encounter" or (a["type"] == "dwell_exceeded" and a["alert_id"] not in
                                                            stale)]
    stored = check_golden("suez_dwell_encounter", [orjson.dumps(a) for a in fresh])
    opened = {(a["subject_id"], a["zone_id"]) for a in stored if (a["type"], a["status"]) == ("dwell_exceeded", "open")}
    assert {("89", "gfw-006"), ("189", "gfw-005"), ("62", "gfw-001"), ("62", "gfw-006")} <= opened
    pair = {a["subject_id"]: a["details"]["other_subject_id"] for a in stored if a["type"] == "encounter"}
    assert pair == {"10": "20", "20": "10"}


def test_suez_no_dwell_claim_for_a_silent_vessel(suez: tuple[list[dict[str, Any]], PositionBatch]) -> None:
    """A dwell line asserts presence; after more than the 30-min gap threshold of silence there is none.

    Regression: vessel 147 reported 5 times in SUEZ SOUTH ANCHORAGE between 00:00 and 01:23 on 20 March and never
    again; the engine opened its dwell alert at 00:00 on 22 March (46.6 h of silence) and updated it on 24 March,
    and vessels 10, 75, 44 and 62 got lines 9.8-31 h after their last report. A deadline that passes while the
    vessel is silent beyond its gap threshold is now decided at its next report: still inside, the line is
    dated at that report (vessel 10: open at 03:00 on 22 March; vessel 44: update at 00:42 on 24 March);
    outside, the exit closes the stay and no dwell is claimed (147, 75, 62: no line after their silence)."""
    got, batch = suez
    stale = [
        (a["subject_id"], a["ts"]) for a in got
        if a["type"] == "dwell_exceeded" and a["status"] != "closed"
        and parse_iso_utc(a["ts"]) - _last_report_before(batch, a["subject_id"], a["ts"]) > 1800
    ]
    assert not stale
