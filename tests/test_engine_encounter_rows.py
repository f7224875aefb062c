"""``Engine(..., encounter_rows=True)``: the vessel rows the detectors saw, for an encounter stage outside.

The partitioned faust worker feeds them to its encounter stage (``streams.worker_core``); these
tests pin what the rows are: every released vessel row once, in processing order, with the speed
the detectors used and the mooring flag, whatever the micro-batch size, and nothing else changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from geofence.engine import Engine
from geofence.engine_api import EncounterRows
from tests.test_engine_support import M_PER_DEG, T0, batch, fence, run, track, zones

ZS = zones(
    fence("fw", "fairway", -0.05, -0.01, 0.2, 0.03),
    fence("berth", "berth", 0.10, 0.0, 0.12, 0.01),
)


def _rows() -> list[dict[str, Any]]:
    step = 6 * 1852 / 3600 * 30 / M_PER_DEG  # 6 kn, one report every 30 s
    a = track("413000001", T0, 30.0, [(0.0 + step * k, 0.005) for k in range(40)], sog=6.0)
    b = track("413000002", T0 + 7, 30.0, [(0.05, 0.006)] * 40)  # no SOG: the derived speed (0 kn)
    c = track("413000003", T0 + 11, 60.0, [(0.11, 0.005)] * 20, sog=0.1)  # lying at the berth
    return sorted(a + b + c, key=lambda r: r["ts"])


def _collect(eng: Engine, rows: list[dict[str, Any]], size: int) -> tuple[EncounterRows | None, list[bytes]]:
    parts: list[EncounterRows] = []
    lines: list[bytes] = []
    for k in range(0, len(rows), size):
        out = eng.process(batch(rows[k : k + size]))
        lines += [a.to_json() for a in out.alerts]
        if out.encounter_rows is not None:
            parts.append(out.encounter_rows)
    out = eng.finish()
    lines += [a.to_json() for a in out.alerts]
    if out.encounter_rows is not None:
        parts.append(out.encounter_rows)
    return (EncounterRows.concat(parts) if parts else None), lines


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_every_vessel_row_once_in_processing_order(size: int) -> None:
    rows = _rows()
    got, _ = _collect(Engine(ZS, encounter_rows=True), rows, size)
    assert got is not None and len(got) == len(rows)
    assert (np.diff(got.eff_s) >= 0).all()
    assert sorted(zip(got.subject_id.tolist(), got.eff_s.tolist(), strict=True)) == sorted(
        (r["sid"], r["ts"]) for r in rows
    )
    by_id = {s: np.flatnonzero(got.subject_id == s) for s in ("413000001", "413000002", "413000003")}
    assert np.allclose(got.speed_kn[by_id["413000001"]], 6.0)
    assert np.nanmax(got.speed_kn[by_id["413000002"]]) < 0.5  # derived from positions (no SOG reported)
    assert got.mooring[by_id["413000003"]].all() and not got.mooring[by_id["413000001"]].any()
    assert got.mooring.dtype == np.bool_ and all(type(s) is str for s in got.subject_id.tolist())


def test_rows_do_not_depend_on_the_batch_size_and_change_no_alert() -> None:
    rows = _rows()
    one, lines_one = _collect(Engine(ZS, encounter_rows=True), rows, 1)
    many, lines_many = _collect(Engine(ZS, encounter_rows=True), rows, 1000)
    assert one is not None and many is not None
    for name in ("subject_id", "eff_s", "lon_deg", "lat_deg", "speed_kn", "mooring"):
        assert np.array_equal(getattr(one, name), getattr(many, name), equal_nan=name == "speed_kn"), name
    assert lines_one == lines_many == run(Engine(ZS), rows)


def test_off_by_default() -> None:
    eng = Engine(ZS)
    assert eng.process(batch(_rows())).encounter_rows is None and eng.finish().encounter_rows is None
