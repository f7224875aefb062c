"""A peer on real data: the engine's ``unexpected_stop`` against movingpandas' ``TrajectoryStopDetector``.

Data: the real Suez CSV (``csv/movingpandas_evergiven_boat-positions.csv``: 256 vessels around the Ever Given
blockage, 20–24 March 2021, ``ID,ais_pos_timestamp,longitude,latitude``, minute resolution, no SOG), decoded
with :class:`geofence.decode.CsvDecoder` exactly as ``geofence run --columns ... --time-format '%d/%m/%Y %H:%M'``
would, sorted by time (the file is grouped by vessel; ``run`` sorts file inputs). All 256 vessels are used
(no subset: both detectors together take about 20 s here).

Fence: one ``fairway`` fence of our own (``stop_allowed`` false by kind), a corridor 800 m either side of
a centreline through the canal from Port Tewfik (29.965° N) to north of El Qantara (31.18° N), through the
Great Bitter Lake. The waypoints are the median longitude of the file's own positions per 0.04° latitude
band (checked against the map: Suez, Little/Great Bitter Lake, Ismailia, Ballah, Qantara), so the corridor
follows the dredged channel the ships used; the Suez Bay and Port Said anchorages are outside it.

Parameters: ``max_diameter`` / ``diameter_m`` = 500 m and ``min_duration`` / ``min_duration_s`` = 1 h for
both. Why not the engine defaults (250 m, 15 min): the file's median interval between a vessel's reports is
12 min (quartiles 6 and 20 min, gaps of hours), so 15 min would be one or two reports; a ship at anchor
swings within a circle of about chain length plus ship length (~250 m radius for the 300–400 m ships here).
Checked by hand: at 250 m / 30 min movingpandas splits stops at every swing and the engine misses some of
them (vessel 115: a 12-h report gap, then drift beyond the engine's 125 m anchor radius). ``cooldown_s`` = 0:
movingpandas merges nothing.

What "agree" means
------------------
Time is counted in *sampling steps*: positions in the vessel's own sorted list of report times. Both
detectors only see reports, so the true start lies between a detector's first stopped report and the
report before it, and the true end between the last stopped report and the next one; one step is the
resolution of both.

1. **Detection** (:func:`test_every_stop_is_found_by_both`): every movingpandas stop whose reports all lie
   inside the fence overlaps an engine stop of the same vessel, and every engine stop overlaps a
   movingpandas stop of the same vessel with at least one report inside the fence (a stop at the fence
   edge may open or not depending on where the engine's opening report lies; it must still be a real stop).
2. **Boundaries** (:func:`test_stop_boundaries_agree_within_one_sampling_step`): for every movingpandas
   stop inside the fence, exactly one engine stop overlaps it and no other movingpandas stop; its start is
   within one step of movingpandas' start; its close is within one step of movingpandas' last stopped report
   (the engine closes *at* the first report that leaves, movingpandas ends *at* the last that stays: one
   step by construction), or it is still open at the end of the input when movingpandas' stop runs to the
   vessel's last report. An engine stop is half-open at its close: movingpandas starts the next stop at the
   report that broke the previous one, so back-to-back stops share that report.

Duplicates: movingpandas keeps the first row of each (vessel, timestamp) and drops trajectories with one
report: 455 duplicate rows and 6 single-report vessels, 461 rows, all computed here from the data. We keep
every row. :func:`test_duplicate_rows_change_no_stop` runs the engine on all 22,287 positions and on exactly
the rows movingpandas kept, and requires identical stops: a duplicate row is the same minute and, for a
stopped vessel, the same place (median 1.5 m apart), so it can neither start nor break a stop.

History (``pytest -s`` prints the table). The boundaries used to disagree for 8 stops, for three engine
reasons: it anchored a stop without SOG at the first report whose derived speed was below ``resume_kn``
(one or two steps late); a stop broken by a slow report resumed at once even with ``cooldown_s = 0``
(a sliding anchor, so one engine stop spanned two movingpandas stops: vessels 43, 242); and it tested a
disc of D/2 around the first report instead of a diameter over all the stop's reports (vessels 115, 42).
The engine now resumes only within the cool-down and, without SOG, detects stops with movingpandas'
window and minimum-rotated-rectangle rule (``docs/rules.md``): all 13 stops inside the fence start at the
same report and close one report after movingpandas' end.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from geofence import geodesy
from geofence.fence import Fence, FenceParams, ZoneKind, ZoneSet
from geofence.positions import PositionBatch
from geofence.rules.config import RulesConfig
from geofence.timefmt import iso_utc, parse_iso_utc

SUEZ = "csv/movingpandas_evergiven_boat-positions.csv"
COLUMNS = {"id": "ID", "ts": "ais_pos_timestamp", "lon": "longitude", "lat": "latitude"}
TIME_FORMAT = "%d/%m/%Y %H:%M"
DIAMETER_M = 500.0
MIN_DURATION_S = 3600.0
HALF_WIDTH_M = 800.0
#: (lon, lat) centreline of the canal, south to north (see the module docstring).
CANAL = [
    (32.5670, 29.965), (32.5846, 29.98), (32.5808, 30.02), (32.5722, 30.06), (32.5708, 30.10),
    (32.5698, 30.14), (32.5688, 30.18), (32.5547, 30.22), (32.4978, 30.26), (32.4233, 30.30),
    (32.3934, 30.34), (32.3621, 30.38), (32.3592, 30.42), (32.3512, 30.46), (32.3458, 30.50),
    (32.3207, 30.54), (32.3126, 30.58), (32.3306, 30.62), (32.3417, 30.66), (32.3442, 30.70),
    (32.3341, 30.74), (32.3199, 30.78), (32.3176, 30.82), (32.3148, 30.90), (32.3107, 31.02),
    (32.3086, 31.10), (32.3204, 31.14), (32.3291, 31.18),
]  # fmt: skip

Interval = tuple[str, float, float | None]  # subject, start, end (None: open at the end of input)


def canal_zones() -> ZoneSet:
    poly = geodesy.buffer_m(shapely.LineString(CANAL), HALF_WIDTH_M)
    return ZoneSet.of([Fence("suez-canal", "Suez Canal fairway", ZoneKind.FAIRWAY, poly, FenceParams())])


def rules() -> RulesConfig:
    return RulesConfig.from_toml(
        "[defaults.unexpected_stop]\n"
        f"diameter_m = {DIAMETER_M}\nmin_duration_s = {MIN_DURATION_S}\ncooldown_s = 0\n"
    )


def decode_suez(path: Path) -> PositionBatch:
    from geofence.decode import CsvDecoder

    dec = CsvDecoder("suez", columns=COLUMNS, time_format=TIME_FORMAT)
    res = dec.feed(path.read_bytes().splitlines(), 1)
    batch = PositionBatch.concat([res.positions, dec.close().positions])
    return batch.take(np.lexsort((np.arange(len(batch)), batch.ts_s)))  # time order, stable


def engine_stops(zones: ZoneSet, batch: PositionBatch) -> list[Interval]:
    """Run the engine in 5,000-row batches; return its unexpected_stop intervals (start = details.started)."""
    from geofence.engine import Engine

    eng = Engine(zones, rules())
    alerts = []
    for k in range(0, len(batch), 5000):
        alerts += eng.process(batch.take(np.arange(k, min(k + 5000, len(batch))))).alerts
    alerts += eng.finish().alerts
    stops: dict[str, list[Any]] = {}
    for a in alerts:
        if a.type.value != "unexpected_stop":
            continue
        if a.status.value == "open":
            stops[a.alert_id] = [a.subject_id, parse_iso_utc(a.to_dict()["details"]["started"]), None]
        elif a.status.value == "closed":
            stops[a.alert_id][2] = a.ts_s
    return sorted((s, t0, t1) for s, t0, t1 in stops.values())


@pytest.fixture(scope="module")
def peer(real_data: Path) -> dict[str, Any]:
    gpd = pytest.importorskip("geopandas")
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # movingpandas warns about optional dependencies it does not need here
        mpd = pytest.importorskip("movingpandas")
    zones = canal_zones()
    batch = decode_suez(real_data / SUEZ)
    ids = batch.subject_id.astype(str)
    frame = pd.DataFrame({"id": ids, "t": pd.to_datetime(batch.ts_s, unit="s"), "row": np.arange(len(batch))})
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(batch.lon_deg, batch.lat_deg), crs="EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecations inside movingpandas 0.23 (sort_index(inplace=True))
        tc = mpd.TrajectoryCollection(gdf.set_index("t"), traj_id_col="id")
        ranges = mpd.TrajectoryStopDetector(tc).get_stop_time_ranges(
            max_diameter=DIAMETER_M, min_duration=timedelta(seconds=MIN_DURATION_S)
        )
    kept_rows = np.sort(np.concatenate([tr.df["row"].to_numpy() for tr in tc.trajectories]))
    poly = zones.fences[0].geometry
    by_id = {tr.id: tr for tr in tc.trajectories}
    mp = []
    for rg in ranges:
        seg = by_id[rg.traj_id].df.loc[rg.t_0 : rg.t_n]
        inside = shapely.contains_xy(poly, seg.geometry.x.to_numpy(), seg.geometry.y.to_numpy())
        mp.append((str(rg.traj_id), rg.t_0.timestamp(), rg.t_n.timestamp(), bool(inside.all()), bool(inside.any())))
    times = {s: np.unique(batch.ts_s[ids == s]) for s in np.unique(ids).tolist()}
    return {
        "batch": batch,
        "zones": zones,
        "kept_rows": kept_rows,
        "engine": engine_stops(zones, batch),
        "engine_kept": engine_stops(zones, batch.take(kept_rows)),
        "mp": sorted(mp),
        "times": times,
    }


def _overlap(a0: float, a1: float | None, b0: float, b1: float) -> bool:
    """Whether engine stop [a0, a1) meets movingpandas stop [b0, b1].

    Half-open at the engine's close: it is the first report that no longer fits, and movingpandas starts
    its next stop at that very report (it restarts the window there), so back-to-back stops share it.
    """
    return a0 <= b1 and (a1 is None or a1 > b0)


def _steps(times: np.ndarray, t: float) -> int:
    return int(np.searchsorted(times, t))


def _pairs(peer: dict[str, Any]) -> Iterator[tuple[Any, list[Interval]]]:
    for m in peer["mp"]:
        yield m, [e for e in peer["engine"] if e[0] == m[0] and _overlap(e[1], e[2], m[1], m[2])]


def test_duplicate_rows_change_no_stop(peer: dict[str, Any]) -> None:
    batch = peer["batch"]
    assert len(batch) == 22_287
    ids = batch.subject_id.astype(str)
    key = np.char.add(np.char.add(ids.astype("U"), "@"), batch.ts_s.astype(np.int64).astype("U"))
    duplicates = len(key) - len(np.unique(key))
    _, counts = np.unique(ids, return_counts=True)
    single = int((counts == 1).sum())
    dropped = len(batch) - len(peer["kept_rows"])
    assert duplicates > 0 and dropped == duplicates + single  # what movingpandas silently drops
    assert peer["engine"] == peer["engine_kept"]
    assert peer["engine"], "the blockage left ships stopped in the canal: the engine must report stops"


def test_every_stop_is_found_by_both(peer: dict[str, Any]) -> None:
    _print_table(peer)
    inside = [m for m in peer["mp"] if m[3]]
    assert len(inside) >= 5
    missed = [m for m, eng in _pairs(peer) if m[3] and not eng]
    assert not missed, f"movingpandas stops inside the fence that the engine does not report: {missed}"
    touching = [m for m in peer["mp"] if m[4]]
    extra = [e for e in peer["engine"] if not any(m[0] == e[0] and _overlap(e[1], e[2], m[1], m[2]) for m in touching)]
    assert not extra, f"engine stops that movingpandas does not see: {extra}"


def test_stop_boundaries_agree_within_one_sampling_step(peer: dict[str, Any]) -> None:
    bad = [m for m, eng in _pairs(peer) if m[3] and not _agrees(peer, m, eng)]
    assert not bad, f"{len(bad)} movingpandas stops without a one-step match: {bad}"


def _agrees(peer: dict[str, Any], m: Any, eng: list[Interval]) -> bool:
    if len(eng) != 1:
        return False
    e = eng[0]
    others = [x for x in peer["mp"] if x is not m and x[0] == e[0] and _overlap(e[1], e[2], x[1], x[2])]
    if others:
        return False
    times = peer["times"][m[0]]
    if abs(_steps(times, e[1]) - _steps(times, m[1])) > 1:
        return False
    if e[2] is None:
        return bool(m[2] == times[-1])
    return 0 <= _steps(times, e[2]) - _steps(times, m[2]) <= 1


def _print_table(peer: dict[str, Any]) -> None:
    def hm(t: float | None) -> str:
        return "open" if t is None else iso_utc(t)[8:16].replace("T", " ")

    print(f"\nmovingpandas stops touching the fence vs engine stops, D {DIAMETER_M:.0f} m, T {MIN_DURATION_S:.0f} s")
    for m, eng in _pairs(peer):
        if not m[4]:
            continue
        times = peer["times"][m[0]]
        where = "inside" if m[3] else "edge"
        if not eng:
            print(f"  {m[0]:>4s} {where:6s} mp {hm(m[1])} .. {hm(m[2])}   engine: none")
        for e in eng:
            ds = _steps(times, e[1]) - _steps(times, m[1])
            de = "open" if e[2] is None else f"{_steps(times, e[2]) - _steps(times, m[2]):+d}"
            ok = "ok" if m[3] and _agrees(peer, m, eng) else ("--" if m[3] else "  ")
            print(
                f"  {m[0]:>4s} {where:6s} mp {hm(m[1])} .. {hm(m[2])}   engine {hm(e[1])} .. {hm(e[2])}"
                f"   start {ds:+d} end {de} steps  {ok}"
            )
