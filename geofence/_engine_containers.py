"""Container rules in the engine: ``container_separation`` and ``container_zone_exit``.

The pure detectors live in :mod:`geofence.rules.containers`; this module is their glue:

* **Side columns.** A container record may carry a declared carrier and an event
  (``release`` with an optional zone). The reorder buffer keeps only the columns
  every rule needs, so :meth:`ContainerRules.accept` keeps these few values aside,
  keyed by the record's global sequence number, and the per-record pass picks them
  up (containers always take the exact per-record path).
* **Releases and exits** are handled in processing order on the per-record path:
  a release record is recorded in the :class:`~geofence.rules.containers.ReleaseLedger`
  before its position is applied, and every container ``zone_exit`` from a fence
  whose exit requires a release (fence property, rules file ``[kinds.<kind>]``,
  default true for kind ``customs``) consumes one; without a valid release it is a
  ``container_zone_exit`` event (critical), at the exit's time and position.
* **Separation** runs after each chunk on the chunk's rows in processing order
  (effective times): container rows with their carrier, and the rows of the vessels
  that are (or are just being) declared carriers. A container report at ``t`` is
  judged once every record with effective time ``<= t + max_gap_s`` is processed,
  i.e. strictly before the watermark, so the decision does not depend on where the
  micro-batches end; until then ``t`` holds back the release horizon (``retro``),
  because its line is dated ``t``. The lines quote the container's report, not the
  live evidence ring (which by then holds later reports).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from geofence._engine_core import Core
from geofence._engine_time import iso, rnd
from geofence.alerts import AlertType
from geofence.fence import ZoneSet
from geofence.positions import EventKind, PositionBatch, SubjectKind
from geofence.rules.containers import ReleaseLedger, SeparationDetector, SeparationTransition

__all__ = ["ContainerRules"]

_CONTAINER = int(SubjectKind.CONTAINER)
_RELEASE = int(EventKind.RELEASE)
_RETRO_KEY = "sep"


class ContainerRules:
    """State and lifecycle glue of the two container rules (see the module docstring)."""

    def __init__(self, core: Core) -> None:
        self.c = core
        self.sep = SeparationDetector(core.config.separation_params())
        self.ledger = ReleaseLedger.for_zones(core.zones)
        # record sequence number -> (carrier id, event, event zone) of container records not processed yet
        self.aux: dict[int, tuple[str, int, str]] = {}
        self.row_carrier: dict[int, str] = {}  # chunk row -> declared carrier (this chunk's container rows)

    # ------------------------------------------------------------------ input
    def accept(self, batch: PositionBatch, keep: npt.NDArray[np.int64], seq0: int) -> None:
        """Keep the carrier and event of the accepted container rows ``keep`` (batch rows; seq = seq0 + row)."""
        cont = keep[batch.kind[keep] == _CONTAINER]
        if cont.size == 0:
            return
        car = batch.carrier_id[cont].tolist()
        ev = batch.event[cont].tolist()
        zone = batch.event_zone[cont].tolist()
        for k, r in enumerate(cont.tolist()):
            cid = str(car[k] or "")
            if cid or ev[k]:
                self.aux[seq0 + r] = (cid, int(ev[k]), str(zone[k] or ""))

    def set_zones(self, zones: ZoneSet) -> None:
        """Zone reload: zone-less releases now apply to the new set's customs zones."""
        self.ledger.set_zones(zones)

    # ------------------------------------------------------------------ per-record path
    def before_record(self, row: int, seq: int, sid: str, e: float) -> None:
        """A container record about to be processed: note its carrier, record its release."""
        aux = self.aux.pop(seq, None)
        if aux is None:
            return
        carrier, event, zone = aux
        if carrier:
            self.row_carrier[row] = carrier
        if event == _RELEASE and self.c.on["container_zone_exit"]:
            self.ledger.record_release(sid, zone, e)

    def zone_exit(self, s: int, f: int, e: float, lon: float, lat: float, ts: float) -> None:
        """A container left fence ``f``: an exit that needs a release and has none is a ``container_zone_exit``."""
        c = self.c
        tb = c.tables
        if not c.on["container_zone_exit"] or not tb.exit_requires_release[f]:
            return
        sid = c.sid(s)
        fid = tb.ids[f]
        if self.ledger.consume_exit(sid, fid, e):
            return
        pending = sum(len(v) for v in self.ledger.pending(sid).values())
        figures = {"zone_kind": tb.kinds[f].value, "released": False, "pending_releases": pending}
        c.life.event(
            AlertType.CONTAINER_ZONE_EXIT,
            "critical",
            sid,
            "container",
            fid,
            tb.version,
            e,
            lon,
            lat,
            c.details(s, figures, ts, e),
        )

    # ------------------------------------------------------------------ after each chunk
    def flush(self, recs: Any, w: float, final: bool) -> None:
        """Feed the chunk's rows (``recs`` or None) to the separation detector and emit its transitions."""
        c = self.c
        if not c.on["container_separation"]:
            self.row_carrier = {}
            return
        if recs is not None and len(recs):
            self._ingest(recs)
        self.row_carrier = {}
        if final:
            trans = self.sep.finish()
        elif math.isfinite(w):
            trans = self.sep.advance(w, strict=True)
        else:
            trans = []
        self._emit(trans)
        pend = self.sep.pending_from()
        if pend is None:
            c.retro.pop(_RETRO_KEY, None)
        else:
            c.retro[_RETRO_KEY] = pend

    def _ingest(self, recs: Any) -> None:
        rows_c = sorted(self.row_carrier)
        watched = self.sep.tracks.watched_ids()
        carriers = set(watched) | {self.row_carrier[r] for r in rows_c}
        if not rows_c and not carriers:
            return
        slots = [s for cid in carriers if (s := self.c.ids.get(cid)) is not None]
        ves = recs.kind == 0
        if slots:
            ves &= np.isin(recs.slot, np.asarray(slots, dtype=np.int64))
        else:
            ves[:] = False
        rows = np.flatnonzero(ves)
        if rows_c:
            rows = np.union1d(rows, np.asarray(rows_c, dtype=np.int64))
        if rows.size == 0:
            return
        is_c = recs.kind[rows] == _CONTAINER
        car = np.empty(rows.size, dtype=object)
        car[:] = ""
        for k, r in enumerate(rows.tolist()):
            if is_c[k]:
                car[k] = self.row_carrier.get(r, "")
        self.sep.ingest(recs.sid[rows], recs.eff[rows], recs.lon[rows], recs.lat[rows], is_c, car)

    def _emit(self, trans: list[SeparationTransition]) -> None:
        c = self.c
        life = c.life
        version = c.tables.version
        for t in trans:
            oa = life.get(AlertType.CONTAINER_SEPARATION, t.container_id)
            figures: dict[str, Any] = {
                "separation_m": None if t.separation_m != t.separation_m else rnd(t.separation_m, 1),
                "carrier_id": t.carrier_id,
                "carrier_lon": None if t.carrier_lon != t.carrier_lon else rnd(t.carrier_lon, 6),
                "carrier_lat": None if t.carrier_lat != t.carrier_lat else rnd(t.carrier_lat, 6),
                "started": iso(t.started_ts_s),
                "track": [[rnd(t.lon, 6), rnd(t.lat, 6), iso(t.ts_s)]],
            }
            if t.kind == "open":
                if oa is None:
                    life.open_(
                        AlertType.CONTAINER_SEPARATION,
                        "warning",
                        t.container_id,
                        "container",
                        None,
                        version,
                        t.started_ts_s,
                        t.ts_s,
                        t.lon,
                        t.lat,
                        figures,
                    )
            elif oa is not None:
                figures["duration_s"] = rnd(t.ts_s - oa.start_ts, 3)
                life.close(oa, t.ts_s, t.lon, t.lat, figures)

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: the detectors and the side columns of records not processed yet."""
        return {
            "separation": _plain(self.sep.snapshot()),
            "ledger": _plain(self.ledger.snapshot()),
            "aux": [[k, *v] for k, v in sorted(self.aux.items())],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`snapshot`."""
        self.sep.restore(state["separation"])
        self.ledger.restore(state["ledger"])
        self.aux = {int(k): (str(cid), int(ev), str(z)) for k, cid, ev, z in state["aux"]}


def _plain(value: Any) -> Any:
    """numpy arrays and scalars to JSON-ready lists and numbers (NaN becomes None)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and value != value:
        return None
    return value
