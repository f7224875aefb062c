"""The faust-free part of a worker's subject stage: engines per partition, zones, state, encounter feed.

:class:`PartitionCore` is what the faust agent of :mod:`streams.faust_app` calls for
every record of ``geofence.positions``; it is kept apart from faust so that it can be
tested and benchmarked without a broker (``tests/test_faust_core.py``).

The encounter stage's input comes from the engine's own API (``Engine(...,
encounter_rows=True)`` and :attr:`EngineOutput.encounter_rows`); the engines of one
process share their fence index (``FenceIndex.for_zones``). ``docs/streams.md``,
"Engine hooks", lists what the engine could still expose.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.engine_api import EncounterRows, Engine, EngineOutput
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch
from geofence.rules.config import RulesConfig
from geofence.rules.encounter import EncounterParams
from streams import wire
from streams.runner import DefaultEngineFactory

__all__ = [
    "EngineFactory",
    "PartitionCore",
    "RulesEngineFactory",
    "Step",
    "feed_mask",
    "hold_s",
    "pack_state",
    "unpack_state",
    "wire_raw",
]

_U32 = struct.Struct("<I")


class EngineFactory(Protocol):
    """How a worker creates engines: fresh, or from a snapshot, both under a zone set.

    A factory may set ``external_encounters = True``: its engines run with the encounter
    rule off and the worker's encounter stage decides encounters instead.
    """

    def new(self, zones: ZoneSet) -> Engine:
        """A fresh engine deciding under ``zones``."""
        ...

    def restore(self, data: bytes, zones: ZoneSet) -> Engine:
        """An engine restored from :meth:`Engine.snapshot` bytes, then switched to ``zones``."""
        ...


class RulesEngineFactory(DefaultEngineFactory):
    """The real engine with the CLI's ``--rules``, ``--baseline`` and ``--plans`` (as ``geofence run``).

    With ``external_encounters`` (default) and the encounter rule enabled in the rules,
    the per-partition engines run with ``encounter`` switched off and hand out the rows
    their detectors saw (``encounter_rows``); the worker's encounter stage raises those
    alerts with the same thresholds (:attr:`encounter_params`), so pairs across partitions
    are found.
    """

    def __init__(
        self,
        rules: str | None = None,
        baseline: str | None = None,
        plans: str | None = None,
        *,
        external_encounters: bool = True,
    ) -> None:
        super().__init__(rules, baseline, plans)
        given: RulesConfig = self._options.get("config") or RulesConfig.default()
        self.external_encounters = external_encounters and given.enabled("encounter")
        self.encounter_params = given.encounter_params()
        if self.external_encounters:
            self._options["config"] = given.with_rule_off("encounter")
        self._options["encounter_rows"] = self.external_encounters


# -- engine hooks (docs/streams.md, "Engine hooks") ----------------------------------------------------


_Rows = tuple[npt.NDArray[Any], ...]


def _advance_watermark(engine: Engine, ts_s: float) -> None:
    """Raise the engine's event-time maximum to ``ts_s`` before ``finish()``.

    A partition's engine only sees its own subjects; the publisher's end-of-stream
    marker carries the largest event time of the whole input, so timers fire up to
    the same final watermark as in one process. Engines without the method end at
    their own partition's watermark.
    """
    advance = getattr(engine, "advance_watermark", None)
    if callable(advance):
        advance(ts_s)


def hold_s(params: EncounterParams | None = None) -> float:
    """How long after a vessel's last *slowish* row its rows still go to the encounter stage.

    A pair the detector holds ends at the first evaluation where both reports are
    at most ``max_lag_s`` old once either vessel is fast or moored, or
    ``max_stale_s`` after the older vessel's last report. Twice their sum covers
    every vessel that reports at least every ``max_lag_s`` (6 min; AIS requires
    30 s or less above 2 kn and 3 min when moored).
    """
    p = params or EncounterParams()
    return 2.0 * (p.max_stale_s + float(getattr(p, "max_lag_s", 0.0)))


def feed_mask(
    subject_id: npt.NDArray[Any],
    eff_s: npt.NDArray[np.float64],
    speed_kn: npt.NDArray[np.float64],
    mooring: npt.NDArray[np.bool_],
    last_slow: dict[str, float],
    hold: float,
    release_kn: float,
) -> npt.NDArray[np.bool_]:
    """Rows of the encounter-detector input the encounter stage needs; updates ``last_slow`` in place.

    A row is *slowish* when it is outside mooring zones and not faster than
    ``release_kn`` (NaN counts as slowish): only such rows can make a vessel a
    candidate or keep it in a pair. The detector holds a vessel only after a
    slowish row and until its pairs end, so a row can matter only if it is slowish
    or comes at most ``hold`` seconds (:func:`hold_s`) after the subject's last
    slowish row. This broad phase over-reports; under the reporting assumption of
    :func:`hold_s` it never misses. Rows must be in processing order;
    ``last_slow`` maps subjects to the effective time of their last slowish row.
    """
    n = int(subject_id.shape[0])
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    with np.errstate(invalid="ignore"):
        slow = ~mooring.astype(bool) & ~(speed_kn > release_kn)
    if not (slow.any() or last_slow):
        return mask  # the common case of a moving fleet: nothing to forward
    watch = set(last_slow) | set(subject_id[slow].tolist())
    sids = subject_id.tolist()
    effs = eff_s.tolist()
    slows = slow.tolist()
    for i in range(n):
        s = sids[i]
        if s not in watch:
            continue
        if slows[i]:
            last_slow[s] = effs[i]
            mask[i] = True
        else:
            t = last_slow.get(s)
            mask[i] = t is not None and effs[i] - t <= hold
    horizon = float(np.max(eff_s)) - hold
    for s in [s for s, t in last_slow.items() if t < horizon]:
        del last_slow[s]
    return mask


# ----------------------------------------------------------------------------------- subject stage


def pack_state(offset: int, last_slow: dict[str, float], snapshot: bytes) -> bytes:
    """Table value: a JSON head (source offset covered, encounter-feed memory) then the engine snapshot."""
    head = orjson.dumps({"v": 1, "offset": offset, "last_slow": dict(sorted(last_slow.items()))})
    return _U32.pack(len(head)) + head + snapshot


def unpack_state(value: bytes) -> tuple[int, dict[str, float], bytes]:
    """Inverse of :func:`pack_state`."""
    (n,) = _U32.unpack_from(value)
    head = orjson.loads(value[_U32.size : _U32.size + n])
    if head.get("v") != 1:
        raise wire.WireError(f"state table value version {head.get('v')!r} is not 1")
    last_slow = {str(k): float(v) for k, v in head["last_slow"].items()}
    return int(head["offset"]), last_slow, bytes(value[_U32.size + n :])


@dataclass(slots=True)
class Step:
    """What processing one positions record produced."""

    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    feed: bytes | None = None
    final: bool = False
    skipped: bool = False
    positions: int = 0


@dataclass(slots=True)
class _Slot:
    engine: Engine
    offset: int  # last source offset applied to the engine
    last_slow: dict[str, float] = field(default_factory=dict)
    dirty_since: float | None = None  # monotonic time of the first record not in the table


class PartitionCore:
    """The faust-free part of the subject stage: one engine per partition, zones, feed and state.

    Kept apart from faust so it can be tested and benchmarked without a broker.
    """

    def __init__(self, factory: EngineFactory, partitions: int, source: str = "geofence.positions") -> None:
        self.factory = factory
        self.partitions = partitions
        self.source = source
        self.external = bool(getattr(factory, "external_encounters", False))
        #: the encounter thresholds of the factory's rules (the stage and the feed filter use them)
        self.encounter_params: EncounterParams = getattr(factory, "encounter_params", None) or EncounterParams()
        self.release_kn = self.encounter_params.release_kn
        self.hold_s = hold_s(self.encounter_params)
        self.zones: ZoneSet | None = None
        self.slots: dict[int, _Slot] = {}
        self.positions = 0
        self.first_record_s: float | None = None

    def set_zones(self, zones: ZoneSet) -> None:
        """Hot reload: later decisions of every engine carry the new version."""
        self.zones = zones
        for slot in list(self.slots.values()):
            slot.engine.set_zones(zones)

    def drop(self, partitions: set[int]) -> None:
        """Forget engines of revoked partitions (their next owner restores them from the table)."""
        for p in partitions:
            self.slots.pop(p, None)

    def open(self, partition: int, stored: bytes | None) -> None:
        """Create the engine of ``partition``, restored from its table value when there is one."""
        self.slots[partition] = self.build_slot(stored)

    def build_slot(self, stored: bytes | None) -> _Slot:
        """An engine and its bookkeeping, restored from a table value when given (slow: run it off the loop)."""
        if self.zones is None:
            raise ConfigError("no zone set yet; publish one with `geofence zones publish` or pass --zones")
        if stored:
            offset, last_slow, snap = unpack_state(stored)
            engine = self.factory.restore(snap, self.zones)
        else:
            offset, last_slow, engine = -1, {}, self.factory.new(self.zones)
        return _Slot(engine, offset, last_slow)

    def handle(self, partition: int, offset: int, value: bytes) -> Step:
        """Process one record of ``partition`` (call :meth:`open` first)."""
        return self.handle_slot(self.slots[partition], partition, offset, value)

    def handle_slot(self, slot: _Slot, partition: int, offset: int, value: bytes) -> Step:
        """:meth:`handle` on a slot the caller holds (it may be revoked meanwhile; the result is then dropped)."""
        if offset <= slot.offset:
            return Step(skipped=True)  # already in the restored snapshot: a replay after a failure
        if self.first_record_s is None:
            self.first_record_s = time.monotonic()
        slot.offset = offset
        if slot.dirty_since is None:
            slot.dirty_since = time.monotonic()
        step = Step()
        try:
            item = wire.decode(value)
        except wire.WireError as exc:
            step.dead.append(
                DeadLetter(
                    f"kafka:{self.source}/{partition}", offset, "unparseable", str(exc), wire_raw(value), is_offset=True
                )
            )
            item = None
        out = EngineOutput()
        if isinstance(item, PositionBatch):
            step.positions = len(item)
            self.positions += len(item)
            out = slot.engine.process(item)
        elif isinstance(item, wire.EndOfStream):
            if item.final_ts_s is not None:
                _advance_watermark(slot.engine, item.final_ts_s)
            out = slot.engine.finish()
            step.final = True
        elif isinstance(item, list):
            slot.engine.add_statics(item)
        elif isinstance(item, wire.EncounterFeed):
            step.dead.append(
                DeadLetter(
                    f"kafka:{self.source}/{partition}",
                    offset,
                    "unparseable",
                    "an encounter-feed record on the positions topic",
                    "",
                    is_offset=True,
                )
            )
        step.alerts = out.alerts
        step.dead.extend(out.dead)
        if self.external:
            step.feed = self._feed(partition, offset, slot, out.encounter_rows, step.final)
        return step

    def _feed(self, partition: int, offset: int, slot: _Slot, rows: EncounterRows | None, final: bool) -> bytes:
        """The encounter-stage record of one input record: the rows of slow vessels (and of those still held)."""
        assert self.zones is not None
        empty = np.empty(0)
        sid: npt.NDArray[Any] = np.empty(0, dtype=object)
        cols: _Rows = (empty, empty, empty, empty, np.zeros(0, dtype=bool))
        if rows is not None:
            eff, spd, moor = rows.eff_s, rows.speed_kn, rows.mooring
            with np.errstate(invalid="ignore"):
                any_slow = bool((~moor & ~(spd > self.release_kn)).any())
            if any_slow or slot.last_slow:
                mask = feed_mask(rows.subject_id, eff, spd, moor, slot.last_slow, self.hold_s, self.release_kn)
                sid = rows.subject_id[mask]
                cols = (eff[mask], rows.lon_deg[mask], rows.lat_deg[mask], spd[mask], moor[mask])
        w = slot.engine.stats().watermark_s
        return wire.encode_feed(
            wire.EncounterFeed(
                partition=partition,
                offset=offset,
                partitions=self.partitions,
                watermark_s=w,
                zone_version=self.zones.version,
                final=final,
                rows=EncounterRows(sid, *cols),
            )
        )

    def due(self, partition: int, every_s: float) -> bool:
        """Whether the partition's state should be written now (coalescing interval reached)."""
        since = self.slots[partition].dirty_since
        return since is not None and time.monotonic() - since >= every_s

    def state_value(self, partition: int) -> bytes:
        """The table value of ``partition`` now, and mark it clean."""
        return self.state_of(self.slots[partition])

    def state_of(self, slot: _Slot) -> bytes:
        """The table value of a slot now, and mark it clean."""
        slot.dirty_since = None
        return pack_state(slot.offset, slot.last_slow, slot.engine.snapshot())


def wire_raw(value: bytes) -> str:
    """The first bytes of a bad record, for its dead letter."""
    return value[:512].decode("utf-8", errors="backslashreplace")
