"""The alert contract: one flat JSON object per line.

An alert (an incident) is identified by :func:`alert_id`, a sha256 prefix over
a canonical string of type, subject, zone and start time, so a replay, a restart
or a redelivery gives the same id. A *line* is identified by the triple
(``alert_id``, ``status``, ``ts``); every comparison and dedupe uses triples.
The JSON Schema lives in ``geofence/schema/alert.schema.json``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import orjson

from geofence._engine_time import iso, rnd

__all__ = [
    "INSTANT_TYPES",
    "Alert",
    "AlertType",
    "Severity",
    "Status",
    "alert_id",
    "line_key",
    "sort_alerts",
]


class AlertType(enum.Enum):
    """Every alert type the engine raises."""

    ZONE_ENTER = "zone_enter"
    ZONE_EXIT = "zone_exit"
    ZONE_CROSS = "zone_cross"
    RESTRICTED_ENTRY = "restricted_entry"
    DWELL_EXCEEDED = "dwell_exceeded"
    UNEXPECTED_STOP = "unexpected_stop"
    ROUTE_DEVIATION = "route_deviation"
    AIS_GAP = "ais_gap"
    FEED_OUTAGE = "feed_outage"
    OVERSPEED = "overspeed"
    POSITION_JUMP = "position_jump"
    ENCOUNTER = "encounter"
    APPROACH_WARNING = "approach_warning"
    CONTAINER_SEPARATION = "container_separation"
    CONTAINER_ZONE_EXIT = "container_zone_exit"


#: Instantaneous alert types: their single line has status ``event``.
INSTANT_TYPES: frozenset[AlertType] = frozenset(
    {
        AlertType.ZONE_ENTER,
        AlertType.ZONE_EXIT,
        AlertType.ZONE_CROSS,
        AlertType.RESTRICTED_ENTRY,
        AlertType.POSITION_JUMP,
        AlertType.CONTAINER_ZONE_EXIT,
    }
)


class Status(enum.Enum):
    """Line status; the enum order is the output tie-break order."""

    OPEN = "open"
    UPDATE = "update"
    EVENT = "event"
    CLOSED = "closed"

    @property
    def rank(self) -> int:
        """Sort rank: open < update < event < closed."""
        return _STATUS_RANK[self]


_dumps = orjson.dumps

_STATUS_RANK = {Status.OPEN: 0, Status.UPDATE: 1, Status.EVENT: 2, Status.CLOSED: 3}


class Severity(enum.Enum):
    """Alert severity, ordered info < warning < critical."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Numeric rank for escalation checks."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def alert_id(type_: AlertType, subject_id: str, zone_id: str | None, start_ts_s: float) -> str:
    """Return the stable id of an incident.

    The first 16 hex digits of sha256 over ``type|subject|zone|start`` where
    start is the ISO UTC time; never Python's salted ``hash()``.

    >>> alert_id(AlertType.AIS_GAP, "413000001", None, 0.0)
    '...'  # doctest: +SKIP
    """
    canonical = f"{type_.value}|{subject_id}|{zone_id or ''}|{iso(start_ts_s)}"
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class Alert(msgspec.Struct, frozen=True, gc=False):
    """One alert line.

    ``ts_s`` is the event time at which ``status`` holds (UTC epoch seconds);
    ``details`` carries the rule's figures with units in their names.

    A frozen msgspec struct rather than a dataclass: the engine writes tens of thousands
    of lines a second, and a struct is built in C (five times cheaper than a frozen
    dataclass's ``__init__``) and is not tracked by the cyclic garbage collector (an
    alert line never refers back to itself, so it cannot be part of a cycle). Equality,
    immutability, positional and keyword construction are those of the dataclass it
    replaces.
    """

    alert_id: str
    type: AlertType
    status: Status
    severity: Severity
    subject_id: str
    subject_kind: str
    zone_id: str | None
    zone_version: str
    ts_s: float
    lon_deg: float
    lat_deg: float
    details: Mapping[str, Any] = msgspec.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the flat JSON-ready mapping of the alert contract."""
        return {
            "alert_id": self.alert_id,
            "type": self.type.value,
            "status": self.status.value,
            "severity": self.severity.value,
            "subject_id": self.subject_id,
            "subject_kind": self.subject_kind,
            "zone_id": self.zone_id,
            "zone_version": self.zone_version,
            "ts": iso(self.ts_s),
            "lon": round(self.lon_deg, 6),
            "lat": round(self.lat_deg, 6),
            "details": dict(self.details),
        }

    def to_json(self) -> bytes:
        """Serialise as one JSON line (no trailing newline), keys in contract order."""
        d = self.details
        return _dumps(
            {
                "alert_id": self.alert_id,
                "type": self.type._value_,
                "status": self.status._value_,
                "severity": self.severity._value_,
                "subject_id": self.subject_id,
                "subject_kind": self.subject_kind,
                "zone_id": self.zone_id,
                "zone_version": self.zone_version,
                "ts": iso(self.ts_s),
                "lon": rnd(self.lon_deg, 6) if type(self.lon_deg) is float else round(self.lon_deg, 6),
                "lat": rnd(self.lat_deg, 6) if type(self.lat_deg) is float else round(self.lat_deg, 6),
                "details": d if type(d) is dict else dict(d),
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )

    @property
    def sort_key(self) -> tuple[float, str, int]:
        """Output order: ts, then alert_id, then status (open < update < event < closed)."""
        return (self.ts_s, self.alert_id, self.status.rank)

    @property
    def line_key(self) -> tuple[str, str, str]:
        """The (alert_id, status, ts) triple that identifies this line."""
        return (self.alert_id, self.status.value, iso(self.ts_s))


def sort_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Return alerts in output order."""
    return sorted(alerts, key=lambda a: a.sort_key)


def line_key(line: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return the (alert_id, status, ts) triple of a decoded alert line."""
    return (str(line["alert_id"]), str(line["status"]), str(line["ts"]))
