"""The faust-streaming worker: packed position batches in, alert lines out, state in a faust Table.

Design (docs/streams.md has the full story):

* ``geofence.positions`` records are packed batches (:mod:`streams.wire`) for
  one partition, partitioned as faust partitions the subject key. A worker
  keeps one engine per assigned partition and runs the vectorised core once
  per record.
* State: a Table keyed by partition (``"p<N>"``) whose value is the engine
  snapshot of that partition's subjects plus the source offset it covers,
  rewritten once per record (``snapshot_every``). faust writes a table change
  to the changelog partition of the current event, so the state of partition N
  lives in changelog partition N and is recovered by whichever worker is
  assigned N. Records at or below the snapshot offset are skipped after a
  restore, so a replay after a crash never feeds the engine twice.
* Output: alert lines and dead letters go out through a plain aiokafka
  producer and are acknowledged by the broker *before* the record is done,
  hence before faust can commit its offset: at-least-once, and a duplicate
  is always an identical line (the engine is deterministic).
* Zones: every worker reads the whole compacted zones topic itself with a
  group-less consumer and hot-reloads every engine through ``set_zones``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from geofence.engine_api import Engine, EngineOutput
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch
from streams import wire

__all__ = [
    "EngineFactory",
    "PartitionCore",
    "TopicNames",
    "WorkerConfig",
    "build_app",
    "load_engine_factory",
    "pack_state",
    "run_worker",
    "unpack_state",
]

log = logging.getLogger("geofence.worker")
_STATE = struct.Struct("<q")


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Topic names (each can be renamed on the command line)."""

    positions: str = "geofence.positions"
    alerts: str = "geofence.alerts"
    deadletter: str = "geofence.deadletter"
    zones: str = "geofence.zones"


@dataclass(slots=True)
class WorkerConfig:
    """Everything a worker needs; defaults suit production Kafka, tests shorten the timeouts."""

    broker: str
    app_id: str = "geofence-worker"
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    store: str = "memory://"
    data_dir: str | None = None
    snapshot_every: int = 1
    standby_replicas: int = 1
    session_timeout_s: float = 30.0
    heartbeat_interval_s: float = 3.0
    rebalance_timeout_s: float = 30.0
    web_port: int | None = None  # None: faust's web server disabled
    loglevel: str = "WARNING"
    stats: bool = False  # one JSON line per end-of-stream marker on stderr (benchmarks)


class EngineFactory(Protocol):
    """How a worker creates engines: fresh, or from a snapshot, both under a zone set."""

    def new(self, zones: ZoneSet) -> Engine:
        """A fresh engine deciding under ``zones``."""
        ...

    def restore(self, data: bytes, zones: ZoneSet) -> Engine:
        """An engine restored from :meth:`Engine.snapshot` bytes, then switched to ``zones``."""
        ...


class _DefaultFactory:
    """The real rules engine ``geofence.engine.Engine``."""

    def new(self, zones: ZoneSet) -> Engine:
        from geofence.engine import Engine as RealEngine  # type: ignore[import-not-found,unused-ignore]

        engine: Engine = RealEngine(zones)
        return engine

    def restore(self, data: bytes, zones: ZoneSet) -> Engine:
        from geofence.engine import Engine as RealEngine  # type: ignore[import-not-found,unused-ignore]

        engine: Engine = RealEngine.restore(data, zones=zones)
        return engine


def load_engine_factory(spec: str | None) -> EngineFactory:
    """Return the factory named ``module:attribute`` (an object with ``new``/``restore``), or the default."""
    if not spec:
        return _DefaultFactory()
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"engine factory {spec!r} must look like 'package.module:attribute'")
    factory: EngineFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def pack_state(offset: int, snapshot: bytes) -> bytes:
    """Table value: the last source offset the snapshot covers (i64) then the engine snapshot."""
    return _STATE.pack(offset) + snapshot


def unpack_state(value: bytes) -> tuple[int, bytes]:
    """Inverse of :func:`pack_state`."""
    (offset,) = _STATE.unpack_from(value)
    return int(offset), bytes(value[_STATE.size :])


@dataclass
class _Slot:
    engine: Engine
    offset: int
    pending: int = 0  # records processed since the last snapshot


class PartitionCore:
    """The faust-free part of a worker: engines per partition, zones, snapshot bookkeeping.

    Kept apart from faust so it can be tested and benchmarked without a broker.
    """

    def __init__(self, factory: EngineFactory, snapshot_every: int = 1) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        self.factory = factory
        self.snapshot_every = snapshot_every
        self.zones: ZoneSet | None = None
        self.slots: dict[int, _Slot] = {}
        self.positions = 0
        self.first_record_wall_s: float | None = None

    def set_zones(self, zones: ZoneSet) -> None:
        """Hot reload: later decisions of every engine carry the new version."""
        self.zones = zones
        for slot in self.slots.values():
            slot.engine.set_zones(zones)

    def drop(self, partitions: set[int]) -> None:
        """Forget engines of revoked partitions (their new owner restores them from the table)."""
        for p in partitions:
            self.slots.pop(p, None)

    def slot(self, partition: int, stored: bytes | None) -> _Slot:
        """The engine of ``partition``, restored from its table value on first use."""
        slot = self.slots.get(partition)
        if slot is None:
            if self.zones is None:
                raise RuntimeError("no zone set yet; publish one with `geofence zones publish` or pass --zones")
            if stored:
                offset, snap = unpack_state(stored)
                slot = _Slot(self.factory.restore(snap, self.zones), offset)
            else:
                slot = _Slot(self.factory.new(self.zones), -1)
            self.slots[partition] = slot
        return slot

    def handle(
        self, partition: int, offset: int, value: bytes, stored: bytes | None
    ) -> tuple[EngineOutput, bytes | None, bool]:
        """Process one record.

        Returns the engine output, the new table value when a snapshot is due (else None), and
        whether the record was an end-of-stream marker.
        """
        slot = self.slot(partition, stored)
        if offset <= slot.offset:
            return EngineOutput(), None, False  # already in the restored snapshot: replay after a crash
        if slot.offset >= 0 and offset > slot.offset + 1 and slot.pending == 0 and self.snapshot_every > 1:
            log.warning("partition %d: state snapshot covers offset %d, resuming at %d", partition, slot.offset, offset)
        if self.first_record_wall_s is None:
            self.first_record_wall_s = time.monotonic()
        item = wire.decode(value)
        out = EngineOutput()
        final = False
        if isinstance(item, PositionBatch):
            self.positions += len(item)
            out = slot.engine.process(item)
        elif isinstance(item, wire.EndOfStream):
            out = slot.engine.finish()
            final = True
        else:
            slot.engine.add_statics(item)
        slot.offset = offset
        slot.pending += 1
        if final or slot.pending >= self.snapshot_every:
            slot.pending = 0
            return out, pack_state(offset, slot.engine.snapshot()), final
        return out, None, final


def _bootstrap(broker: str) -> str:
    servers = []
    for part in broker.split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        servers.append(part.rstrip("/"))
    return ",".join(servers)


def build_app(cfg: WorkerConfig, factory: EngineFactory, initial_zones: ZoneSet | None = None) -> Any:
    """Build the faust app for ``cfg`` (import faust lazily: it is heavy and logs at DEBUG otherwise)."""
    os.environ.setdefault("LOGGER_LEVEL", cfg.loglevel)
    import faust
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    web: dict[str, Any] = {"web_enabled": False}
    if cfg.web_port is not None:
        web = {"web_enabled": True, "web_bind": "127.0.0.1", "web_port": cfg.web_port, "web_host": "127.0.0.1"}
    app = faust.App(
        cfg.app_id,
        broker=cfg.broker,
        store=cfg.store,
        datadir=cfg.data_dir or f"/tmp/geofence-faust-{cfg.app_id}",
        topic_partitions=cfg.partitions,
        processing_guarantee="at_least_once",  # Tansu has no InitProducerId: exactly_once crashes at start
        # Tansu workaround: ListOffsets "latest" under-reports after a multi-record batch, so changelog
        # recovery would stop early. Only the changelog goes through faust's producer (alerts use our own),
        # so one record per produce batch costs one request per processed packed batch.
        producer_max_batch_size=1,
        producer_max_request_size=64 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=cfg.session_timeout_s,
        broker_heartbeat_interval=cfg.heartbeat_interval_s,
        broker_rebalance_timeout=cfg.rebalance_timeout_s,
        table_standby_replicas=cfg.standby_replicas,
        stream_wait_empty=False,
        **web,
    )
    topics = cfg.topics
    positions = app.topic(
        topics.positions, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
        partitions=cfg.partitions,
    )
    state = app.Table(
        "geofence-state", default=None, key_type=str, value_type=bytes, key_serializer="raw",
        value_serializer="raw", partitions=cfg.partitions,
    )
    core = PartitionCore(factory, cfg.snapshot_every)
    if initial_zones is not None:
        core.set_zones(initial_zones)
    zones_ready = asyncio.Event()
    if initial_zones is not None:
        zones_ready.set()
    bootstrap = _bootstrap(cfg.broker)
    out: dict[str, Any] = {}

    async def producer() -> Any:
        prod = out.get("producer")
        if prod is None:
            prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1,
                                    max_request_size=16 * 1024 * 1024)
            await prod.start()
            out["producer"] = prod
        return prod

    async def emit(result: EngineOutput) -> None:
        if not result.alerts and not result.dead:
            return
        prod = await producer()
        futs = [await prod.send(topics.alerts, key=a.subject_id.encode("utf-8"), value=a.to_json())
                for a in result.alerts]
        futs += [await prod.send(topics.deadletter, key=d.source.encode("utf-8"), value=wire.encode_deadletter(d))
                 for d in result.dead]
        await asyncio.gather(*futs)  # acknowledged before this record is acked: at-least-once

    @app.agent(positions)
    async def process(stream: Any) -> None:
        async for event in stream.events():
            if not zones_ready.is_set():
                log.warning("waiting for a zone set on topic %s", topics.zones)
                await zones_ready.wait()
            msg = event.message
            key = f"p{msg.partition}"
            result, new_state, final = core.handle(msg.partition, msg.offset, event.value, state.get(key))
            await emit(result)
            if new_state is not None:
                state[key] = new_state
            if final and cfg.stats:
                _print_stats(core, msg.partition)

    @app.task  # type: ignore[untyped-decorator]  # faust.App.task is untyped
    async def follow_zones() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None,
                                    max_partition_fetch_bytes=64 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        try:
            parts: set[int] | None = None
            while not parts:
                parts = consumer.partitions_for_topic(topics.zones)
                if not parts:
                    await _ensure_topic(bootstrap, topics.zones, 1, compacted=True)
                    await consumer._client.force_metadata_update()
                    parts = consumer.partitions_for_topic(topics.zones)
                    if not parts:
                        await asyncio.sleep(0.5)
            tps = [TopicPartition(topics.zones, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                latest = None
                for records in batches.values():
                    for rec in records:
                        if rec.value:
                            latest = rec.value
                if latest is not None:
                    try:
                        zones = wire.decode_zoneset(latest)
                    except Exception as exc:  # a bad record must not kill the worker
                        log.error("ignoring zones record: %s", exc)
                    else:
                        if core.zones is None or zones.version != core.zones.version:
                            core.set_zones(zones)
                            print(f"geofence worker: zones version {zones.version} ({len(zones)} fences)",
                                  file=sys.stderr, flush=True)
                        zones_ready.set()
        finally:
            await consumer.stop()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types receivers as sync
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        core.drop({tp.partition for tp in revoked if tp.topic == topics.positions})

    app.geofence_core = core  # type: ignore[attr-defined]  # for tests and benchmarks
    app.geofence_out = out  # type: ignore[attr-defined]
    return app


def _print_stats(core: PartitionCore, partition: int) -> None:
    import orjson

    started = core.first_record_wall_s
    elapsed = time.monotonic() - started if started is not None else 0.0
    line = {"end_of_stream": partition, "positions": core.positions, "elapsed_s": round(elapsed, 6)}
    print("geofence worker stats " + orjson.dumps(line).decode(), file=sys.stderr, flush=True)


async def _ensure_topic(bootstrap: str, name: str, partitions: int, compacted: bool = False) -> None:
    """Create ``name`` when it does not exist (idempotent)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"} if compacted else {}
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    finally:
        await admin.close()


def run_worker(cfg: WorkerConfig, factory: EngineFactory, initial_zones: ZoneSet | None = None) -> int:
    """Run a worker until SIGINT/SIGTERM; return the exit code."""
    os.environ.setdefault("LOGGER_LEVEL", cfg.loglevel)
    import faust

    app = build_app(cfg, factory, initial_zones)
    worker = faust.Worker(app, loglevel=cfg.loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0

