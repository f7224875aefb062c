"""An SQLite alert store: one row per alert line, safe under redelivery.

Schema (created on first use)::

    alerts(alert_id, type, status, severity, subject_id, subject_kind, zone_id,
           zone_version, ts TEXT ISO, ts_s REAL epoch, lon, lat, details TEXT JSON,
           UNIQUE(alert_id, status, ts))

Rows are inserted with ``INSERT OR IGNORE``, so a line delivered twice (after a
crash and restart) is stored once. Indexes serve queries by subject, zone, type
and time. The view ``open_alerts`` lists incidents whose last line (latest
``ts_s``, ties by status order open < update < event < closed) is ``open`` or
``update``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from geofence.alerts import Alert
from geofence.timefmt import iso_utc

__all__ = ["SCHEMA", "SqliteSink"]

_RANK = "CASE {t}.status WHEN 'open' THEN 0 WHEN 'update' THEN 1 WHEN 'event' THEN 2 ELSE 3 END"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS alerts (
    alert_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL,
    severity     TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    zone_id      TEXT,
    zone_version TEXT NOT NULL,
    ts           TEXT NOT NULL,
    ts_s         REAL NOT NULL,
    lon          REAL NOT NULL,
    lat          REAL NOT NULL,
    details      TEXT NOT NULL,
    UNIQUE (alert_id, status, ts)
);
CREATE INDEX IF NOT EXISTS alerts_subject ON alerts (subject_id, ts_s);
CREATE INDEX IF NOT EXISTS alerts_zone ON alerts (zone_id, ts_s);
CREATE INDEX IF NOT EXISTS alerts_type ON alerts (type, ts_s);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (ts_s);
CREATE INDEX IF NOT EXISTS alerts_incident ON alerts (alert_id, ts_s);
CREATE VIEW IF NOT EXISTS open_alerts AS
SELECT a.* FROM alerts AS a
WHERE a.status IN ('open', 'update')
  AND NOT EXISTS (
      SELECT 1 FROM alerts AS b
      WHERE b.alert_id = a.alert_id
        AND (b.ts_s > a.ts_s OR (b.ts_s = a.ts_s AND {_RANK.format(t="b")} > {_RANK.format(t="a")}))
  );
"""

_INSERT = (
    "INSERT OR IGNORE INTO alerts (alert_id, type, status, severity, subject_id, subject_kind, zone_id, "
    "zone_version, ts, ts_s, lon, lat, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row(a: Alert) -> tuple[Any, ...]:
    return (
        a.alert_id,
        a.type.value,
        a.status.value,
        a.severity.value,
        a.subject_id,
        a.subject_kind,
        a.zone_id,
        a.zone_version,
        iso_utc(a.ts_s),
        a.ts_s,
        round(a.lon_deg, 6),
        round(a.lat_deg, 6),
        orjson.dumps(dict(a.details), option=orjson.OPT_SERIALIZE_NUMPY).decode(),
    )


class SqliteSink:
    """Alert lines into an SQLite database (``sqlite:///path.db``); one transaction per batch.

    Parameters
    ----------
    path
        Database file; created with its schema when absent.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"sqlite:{self.path}"
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []

    async def start(self) -> None:
        """Open the database (WAL mode) and create the schema."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            db.commit()
            self._db = db

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Queue the batch's rows; committed by :meth:`flush`."""
        self._pending.extend(_row(a) for a in alerts)

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        if self._db is None:
            raise RuntimeError(f"sink {self.name} flushed before start(); call await sink.start() first")
        with self._db:
            self._db.executemany(_INSERT, rows)

    async def flush(self) -> None:
        """Insert the queued rows in one transaction (duplicates ignored) and commit."""
        if self._pending:
            rows, self._pending = self._pending, []
            await asyncio.to_thread(self._commit, rows)

    async def close(self) -> None:
        """Commit and close; idempotent."""
        if self._db is not None:
            await self.flush()
            self._db.close()
            self._db = None
