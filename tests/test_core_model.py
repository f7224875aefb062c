"""Behaviour of the core contracts: alert ids, output order, zone-set versions, time formatting."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box

from geofence import (
    Alert,
    AlertType,
    DeadLetter,
    DecodeError,
    Fence,
    FenceParams,
    PositionBatch,
    Severity,
    Status,
    ZoneError,
    ZoneKind,
    ZoneSet,
    alert_id,
    iso_utc,
    parse_iso_utc,
    sort_alerts,
)
from geofence.fence import default_stop_allowed


def _fence(fid: str, x: float = 0.0, **params: object) -> Fence:
    return Fence(fid, fid.title(), ZoneKind.PORT, box(x, 0, x + 1, 1), FenceParams(**params))  # type: ignore[arg-type]


def test_alert_id_is_stable_sha256_prefix() -> None:
    a = alert_id(AlertType.AIS_GAP, "413000001", None, 1_700_000_000.0)
    b = alert_id(AlertType.AIS_GAP, "413000001", None, 1_700_000_000.0)
    assert a == b and len(a) == 16 and int(a, 16) >= 0
    assert alert_id(AlertType.AIS_GAP, "413000001", "z", 1_700_000_000.0) != a
    assert alert_id(AlertType.AIS_GAP, "413000001", None, 1_700_000_001.0) != a


def test_alert_id_is_the_same_in_a_fresh_interpreter() -> None:
    import subprocess
    import sys

    code = "from geofence import alert_id, AlertType; print(alert_id(AlertType.ENCOUNTER, 'x', 'z', 12.0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == alert_id(AlertType.ENCOUNTER, "x", "z", 12.0)


def _alert(ts: float, aid: str, status: Status) -> Alert:
    return Alert(aid, AlertType.DWELL_EXCEEDED, status, Severity.WARNING, "s", "vessel", "z", "v", ts, 1.0, 2.0)


def test_output_order_is_ts_then_id_then_status() -> None:
    alerts = [
        _alert(5, "b", Status.CLOSED),
        _alert(5, "b", Status.OPEN),
        _alert(5, "a", Status.CLOSED),
        _alert(1, "z", Status.UPDATE),
        _alert(5, "b", Status.UPDATE),
    ]
    got = [(a.ts_s, a.alert_id, a.status.value) for a in sort_alerts(alerts)]
    assert got == [(1, "z", "update"), (5, "a", "closed"), (5, "b", "open"), (5, "b", "update"), (5, "b", "closed")]


def test_alert_line_is_flat_json_with_iso_z_time() -> None:
    line = orjson.loads(_alert(1_700_000_000, "abc", Status.OPEN).to_json())
    assert line["ts"] == "2023-11-14T22:13:20Z"
    assert line["status"] == "open" and line["zone_id"] == "z"
    assert _alert(1_700_000_000, "abc", Status.OPEN).line_key == ("abc", "open", "2023-11-14T22:13:20Z")


def test_zone_set_version_ignores_order_and_changes_with_content() -> None:
    a, b = _fence("a"), _fence("b", 2.0)
    assert ZoneSet.of([a, b]).version == ZoneSet.of([b, a]).version
    assert ZoneSet.of([a, b]).version != ZoneSet.of([a, _fence("b", 3.0)]).version
    assert ZoneSet.of([a, b]).version != ZoneSet.of([a, _fence("b", 2.0, max_dwell_min=5.0)]).version
    assert len(ZoneSet.of([a]).version) == 12


def test_zone_set_rejects_duplicate_ids() -> None:
    with pytest.raises(ZoneError, match="dup: duplicate fence id"):
        ZoneSet.of([_fence("dup"), _fence("dup", 3.0)])


def test_stop_allowed_defaults_by_kind_and_fence_override() -> None:
    assert default_stop_allowed(ZoneKind.FAIRWAY) is False
    assert default_stop_allowed(ZoneKind.ANCHORAGE) is True
    assert default_stop_allowed(ZoneKind.SPEED_LIMIT) is None
    fw = Fence("f", "F", ZoneKind.FAIRWAY, box(0, 0, 1, 1), FenceParams(stop_allowed=True))
    assert fw.stop_allowed is True


def test_unknown_kind_error_lists_valid_kinds() -> None:
    with pytest.raises(ZoneError, match=r"unknown kind 'harbour'.*'port'"):
        ZoneKind.parse("harbour", "x1")


@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(min_value=0, max_value=999))
def test_iso_round_trip(seconds: int, ms: int) -> None:
    ts = seconds + ms / 1000
    assert math.isclose(parse_iso_utc(iso_utc(ts)), ts, abs_tol=5e-4)


def test_parse_iso_requires_a_zone() -> None:
    with pytest.raises(DecodeError, match="no time zone"):
        parse_iso_utc("2026-01-01T00:00:00")
    assert parse_iso_utc("2026-01-01T08:00:00+08:00") == parse_iso_utc("2026-01-01T00:00:00Z")


def test_position_batch_take_and_concat() -> None:
    b = PositionBatch.from_columns(subject_id=["a", "b", "c"], ts_s=[1, 2, 3], lon_deg=[1, 2, 3], lat_deg=[4, 5, 6])
    assert len(b) == 3 and np.isnan(b.sog_kn).all() and list(b.carrier_id) == ["", "", ""]
    both = PositionBatch.concat([b.take([2]), b.take(np.array([True, False, False]))])
    assert list(both.subject_id) == ["c", "a"] and list(both.ts_s) == [3.0, 1.0]


def test_dead_letter_escapes_invalid_utf8_and_truncates() -> None:
    from geofence.deadletter import raw_text

    assert raw_text(b"ab\xffc") == "ab\\xffc"
    assert len(raw_text("x" * 2000)) == 512
    d = DeadLetter("f.nmea", 3, "checksum", "expected 2A, got 2B", "!AIVDM")
    assert d.to_dict()["line"] == 3
    with pytest.raises(ValueError, match="unknown dead-letter reason"):
        DeadLetter("f", 1, "nonsense", "", "")
