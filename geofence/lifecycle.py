"""Alert lifecycle: open/update/closed lines for durational alerts, event lines, and ordered release.

Every alert line is created with an event time; lines are buffered and released
only when no later processing can produce a line that sorts before them (their
``ts`` is below the release horizon, see :class:`Lifecycle.release`). That is what
makes the concatenated output of all calls identical whatever the micro-batch
size.

A durational alert can be *closing*: its condition ended at ``end_ts`` but the
closed line is withheld for the rule's cool-down; if the condition returns in
that window the alert simply stays open (the same incident), otherwise the
closed line is written with ``ts = end_ts``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geofence._engine_time import iso
from geofence.alerts import Alert, AlertType, Severity, Status

__all__ = ["Lifecycle", "OpenAlert", "alert_from_json", "alert_to_json", "fast_alert_id", "new_alert"]

_TYPE = {t.value: t for t in AlertType}
_SEV = {s.value: s for s in Severity}
_RANK = {"open": 0, "update": 1, "event": 2, "closed": 3}  # keyed by value: Enum.__hash__ is Python code


_sha256 = hashlib.sha256


def fast_alert_id(type_value: str, subject_id: str, zone_id: str | None, start_ts_s: float) -> str:
    """:func:`geofence.alerts.alert_id` with the memoised ISO formatter (same canonical string, same id)."""
    return _sha256(f"{type_value}|{subject_id}|{zone_id or ''}|{iso(start_ts_s)}".encode()).hexdigest()[:16]


#: An :class:`Alert` from its fields in order (the engine's many call sites; the struct is built in C).
new_alert = Alert


def _sort(alerts: list[Alert]) -> list[Alert]:
    rank = _RANK
    alerts.sort(key=lambda a: (a.ts_s, a.alert_id, rank[a.status._value_]))
    return alerts


def alert_to_json(a: Alert) -> list[Any]:
    """A lossless JSON-ready list of an alert line (snapshot of the release buffer)."""
    return [
        a.alert_id,
        a.type.value,
        a.status.value,
        a.severity.value,
        a.subject_id,
        a.subject_kind,
        a.zone_id,
        a.zone_version,
        a.ts_s,
        a.lon_deg,
        a.lat_deg,
        dict(a.details),
    ]


def alert_from_json(v: list[Any]) -> Alert:
    """Inverse of :func:`alert_to_json`."""
    return Alert(v[0], AlertType(v[1]), Status(v[2]), Severity(v[3]), v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])


@dataclass(slots=True)
class OpenAlert:
    """The state of one open durational alert."""

    alert_id: str
    type: str
    subject_id: str
    subject_kind: str
    zone_id: str | None
    zone_version: str
    severity: str
    start_ts: float
    last_ts: float
    lon: float
    lat: float
    details: dict[str, Any] = field(default_factory=dict)
    closing_ts: float | None = None
    step: int = 0
    key_zone: str = ""

    def to_json(self) -> list[Any]:
        """A JSON-ready list (snapshot)."""
        return [
            self.alert_id,
            self.type,
            self.subject_id,
            self.subject_kind,
            self.zone_id,
            self.zone_version,
            self.severity,
            self.start_ts,
            self.last_ts,
            self.lon,
            self.lat,
            self.details,
            self.closing_ts,
            self.step,
            self.key_zone,
        ]

    @classmethod
    def from_json(cls, v: list[Any]) -> OpenAlert:
        """Inverse of :meth:`to_json`."""
        return cls(*v)

    def line(self, status: Status, ts_s: float, lon: float, lat: float, details: Mapping[str, Any]) -> Alert:
        """An alert line of this incident."""
        return new_alert(
            self.alert_id,
            _TYPE[self.type],
            status,
            _SEV[self.severity],
            self.subject_id,
            self.subject_kind,
            self.zone_id,
            self.zone_version,
            ts_s,
            lon,
            lat,
            details,
        )


class Lifecycle:
    """Open alerts keyed by ``(type, subject_id, zone_id or "")`` and the buffer of unreleased lines."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str, str], OpenAlert] = {}
        self.buffer: list[Alert] = []
        self.horizon_s: float = float("-inf")

    # --- lines -----------------------------------------------------------------------------------
    def event(
        self,
        type_: AlertType,
        severity: str,
        subject_id: str,
        subject_kind: str,
        zone_id: str | None,
        zone_version: str,
        ts_s: float,
        lon: float,
        lat: float,
        details: Mapping[str, Any],
    ) -> None:
        """Emit an instantaneous ``event`` line."""
        self.buffer.append(
            new_alert(
                fast_alert_id(type_.value, subject_id, zone_id, ts_s),
                type_,
                Status.EVENT,
                _SEV[severity],
                subject_id,
                subject_kind,
                zone_id,
                zone_version,
                ts_s,
                lon,
                lat,
                details,
            )
        )

    def get(self, type_: AlertType, subject_id: str, key_zone: str = "") -> OpenAlert | None:
        """The open alert for a key (``key_zone`` "" for per-subject rules), or None."""
        return self.open.get((type_.value, subject_id, key_zone))

    def open_(
        self,
        type_: AlertType,
        severity: str,
        subject_id: str,
        subject_kind: str,
        zone_id: str | None,
        zone_version: str,
        start_ts: float,
        ts_s: float,
        lon: float,
        lat: float,
        details: Mapping[str, Any],
        key_zone: str | None = None,
    ) -> OpenAlert:
        """Open a durational alert whose condition began at ``start_ts``; the open line has ``ts_s``."""
        oa = OpenAlert(
            alert_id=fast_alert_id(type_.value, subject_id, zone_id, start_ts),
            type=type_.value,
            subject_id=subject_id,
            subject_kind=subject_kind,
            zone_id=zone_id,
            zone_version=zone_version,
            severity=severity,
            start_ts=start_ts,
            last_ts=ts_s,
            lon=lon,
            lat=lat,
        )
        oa.details = dict(details)
        oa.key_zone = (zone_id or "") if key_zone is None else key_zone
        self.open[(type_.value, subject_id, oa.key_zone)] = oa
        self.buffer.append(oa.line(Status.OPEN, ts_s, lon, lat, details))
        return oa

    def update(self, oa: OpenAlert, ts_s: float, lon: float, lat: float, details: Mapping[str, Any]) -> None:
        """Emit an ``update`` line (severity escalated or the key figure crossed a step)."""
        oa.last_ts = ts_s
        oa.step += 1
        oa.lon, oa.lat, oa.details = lon, lat, dict(details)
        self.buffer.append(oa.line(Status.UPDATE, ts_s, lon, lat, details))

    def close(self, oa: OpenAlert, ts_s: float, lon: float, lat: float, details: Mapping[str, Any]) -> None:
        """Emit the ``closed`` line and forget the alert."""
        self.open.pop((oa.type, oa.subject_id, oa.key_zone), None)
        self.buffer.append(oa.line(Status.CLOSED, ts_s, lon, lat, details))

    # --- release ---------------------------------------------------------------------------------
    def release(self, horizon_s: float, final: bool = False) -> list[Alert]:
        """Return, in output order, every buffered line with ``ts < horizon_s`` (all when ``final``)."""
        self.horizon_s = max(self.horizon_s, horizon_s)
        if final:
            out, self.buffer = self.buffer, []
            return _sort(out)
        if not self.buffer:
            return []
        h = self.horizon_s
        ready = [a for a in self.buffer if a.ts_s < h]
        if len(ready) == len(self.buffer):
            self.buffer = []
        elif ready:
            self.buffer = [a for a in self.buffer if a.ts_s >= h]
        return _sort(ready)

    def open_alert_lines(self) -> list[Alert]:
        """The last line of every alert still open, in output order."""
        out: list[Alert] = []
        for oa in self.open.values():
            out.append(oa.line(Status.UPDATE if oa.step else Status.OPEN, oa.last_ts, oa.lon, oa.lat, oa.details))
        return _sort(out)
