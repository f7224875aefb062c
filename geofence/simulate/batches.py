"""A simulation as the engine takes it: one columnar batch of vessel and container reports in time order.

Tests and benchmarks that drive the core directly (without encoding to JSONL or NMEA and decoding
again) need the same rows the decoders would produce; this is the one place that builds them.
"""

from __future__ import annotations

import numpy as np

from geofence.positions import PositionBatch, SubjectKind
from geofence.simulate.run import Simulation

__all__ = ["position_batch"]


def position_batch(sim: Simulation) -> PositionBatch:
    """Every vessel report and container e-seal report of ``sim``, merged by time (stable: vessels first on ties).

    Vessel rows carry SOG, COG and the receiving station (source ``"sim"``); container rows carry
    their declared carrier and customs ``release`` events with their zone (source ``"containers"``).
    """
    r = sim.reports
    vessels = PositionBatch.from_columns(
        subject_id=[str(m) for m in r.mmsi.tolist()],
        ts_s=r.ts.astype(np.float64),
        lon_deg=r.lon,
        lat_deg=r.lat,
        sog_kn=r.sog,
        cog_deg=r.cog,
        receiver=r.receiver,
        source=["sim"] * len(r),
    )
    c = sim.containers
    n = len(c["ts"])
    containers = PositionBatch.from_columns(
        subject_id=list(c["id"]),
        ts_s=np.asarray(c["ts"], dtype=np.float64),
        lon_deg=c["lon"],
        lat_deg=c["lat"],
        kind=np.full(n, SubjectKind.CONTAINER, dtype=np.uint8),
        carrier_id=[str(x) for x in c["carrier"]],
        event=[1 if e == "release" else 0 for e in c["event"]],
        event_zone=[z or "" for z in c["zone"]],
        source=["containers"] * n,
    )
    both = PositionBatch.concat([vessels, containers])
    return both.take(np.argsort(both.ts_s, kind="stable"))
