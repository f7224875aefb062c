"""``geofence learn``: what "normal" dwell and speed look like per (zone, ship class), from recordings.

The recordings are replayed through the same runner path as ``geofence run``,
so a visit is measured exactly as the ``dwell_exceeded`` rule measures it: from
the engine's ``zone_enter`` (hysteresis and ``min_inside_s`` included) to its
``zone_exit``. Visits still open when the recording ends are censored and left
out, and so are containers (the dwell rule is for vessels). The ship type is
the vessel's last AIS static report (types 5/24, or JSONL static lines); vessels
never identified fall in the ``unknown`` class. Speed samples are the positions
inside each zone at or above ``min_speed_kn`` (reported SOG, else implied by
the previous report), so moored vessels do not drown the underway speeds.

Each input file is an independent recording with its own engine and event
time, so recordings of different days pool; ``--together`` replays the inputs
as one run instead (concurrent feeds of one period, as ``geofence run`` does).

While learning, percentile limits (``max_dwell_min = "p99"``) have no baseline
yet: an empty one is passed, which leaves those dwell rules without a limit.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson

from geofence.baseline import Baseline
from geofence.fence import ZoneSet
from replay.driver import ReplayRun, run_replay
from replay.options import runner_namespace
from replay.stats import points_in_fences, speeds_kn, visits_from_alerts

__all__ = ["DEFAULT_MIN_SPEED_KN", "baseline_from_replays", "learn"]

#: Speed samples below this are moored/anchored and left out of the speed baseline.
DEFAULT_MIN_SPEED_KN = 1.0


def _samples(
    run: ReplayRun, min_speed_kn: float
) -> tuple[list[tuple[str, int | None, float]], list[tuple[str, int | None, float]]]:
    """(zone, ship type, dwell_s) closed vessel visits and (zone, ship type, speed_kn) underway samples of a replay."""
    rec = run.recording
    if rec is None:
        raise ValueError("learning needs a recorded replay (run_replay(..., record=True))")
    types = rec.ship_types
    vessel_lines = [a for a in run.alert_lines if a.get("subject_kind") == "vessel"]
    visits: list[tuple[str, int | None, float]] = []
    for zone_id, zone_visits in sorted(visits_from_alerts(vessel_lines).items()):
        for subject, enter_s, exit_s in zone_visits:
            if exit_s is not None:
                visits.append((zone_id, types.get(subject), exit_s - enter_s))
    speeds: list[tuple[str, int | None, float]] = []
    vessel = rec.vessel_mask()
    if vessel.any():
        ids = rec.subject_id[vessel]
        order, speed = speeds_kn(ids, rec.ts_s[vessel], rec.lon_deg[vessel], rec.lat_deg[vessel], rec.sog_kn[vessel])
        lon, lat, ids_o = rec.lon_deg[vessel][order], rec.lat_deg[vessel][order], ids[order]
        moving = np.flatnonzero(np.isfinite(speed) & (speed >= min_speed_kn))
        inside = points_in_fences(run.zones, lon[moving], lat[moving])
        for fence, points in zip(run.zones.fences, inside, strict=True):
            for p in points.tolist():
                row = int(moving[p])
                speeds.append((fence.id, types.get(str(ids_o[row])), float(speed[row])))
    return visits, speeds


def baseline_from_replays(runs: Sequence[ReplayRun], *, min_speed_kn: float = DEFAULT_MIN_SPEED_KN) -> Baseline:
    """Pool the visits and speed samples of recorded replays into one baseline (see the module docstring)."""
    if not runs:
        raise ValueError("nothing to learn from: no replays")
    visits: list[tuple[str, int | None, float]] = []
    speeds: list[tuple[str, int | None, float]] = []
    for run in runs:
        v, s = _samples(run, min_speed_kn)
        visits += v
        speeds += s
    info = {
        "zone_version": runs[0].zones.version,
        "inputs": [name for run in runs for name in run.result.inputs],
        "visits": len(visits),
        "speed_samples": len(speeds),
        "min_speed_kn": min_speed_kn,
    }
    return Baseline.learn(visits, speeds, meta=info)


def learn(
    inputs: Sequence[str | Path],
    zones: ZoneSet,
    *,
    options: argparse.Namespace | None = None,
    min_speed_kn: float = DEFAULT_MIN_SPEED_KN,
    progress: bool | None = False,
    together: bool = False,
) -> tuple[Baseline, list[ReplayRun]]:
    """Replay ``inputs`` (no output files) and learn a :class:`~geofence.baseline.Baseline` from them.

    Each input is an independent recording (its own engine, its own event time), so
    recordings of different days can be pooled; ``together=True`` replays them as one
    run instead, as ``geofence run`` treats several concurrent feeds of the same period.
    """
    opts = options if options is not None else runner_namespace()
    groups: list[list[str | Path]] = [list(inputs)] if together else [[i] for i in inputs]
    runs: list[ReplayRun] = []
    with tempfile.TemporaryDirectory(prefix="geofence-learn-") as tmp:
        empty = Path(tmp) / "empty_baseline.json"
        empty.write_bytes(orjson.dumps(Baseline().to_dict()))
        original = opts.baseline
        opts.baseline = str(empty)  # percentile limits: no baseline yet, so no limit while learning
        try:
            for group in groups:
                runs.append(run_replay(group, zones, None, options=opts, progress=progress))
        finally:
            opts.baseline = original
    return baseline_from_replays(runs, min_speed_kn=min_speed_kn), runs
