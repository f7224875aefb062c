"""The faust-streaming worker behind ``geofence worker``: packed position batches in, alert lines out.

Two stages run in every worker process (``docs/streams.md`` has the full story):

1. **Subject stage** (agent on ``geofence.positions``, N partitions). Records are
   packed batches (:mod:`streams.wire`) of one partition, partitioned as faust
   partitions the routing key (the subject id; a container rides on its declared
   carrier's key, :class:`streams.publish.SubjectRouter`, so the engine that judges
   ``container_separation`` has both). A worker keeps one engine per assigned partition
   (:class:`streams.worker_core.PartitionCore`) and runs the vectorised core once per
   record. State: the table ``geofence-state`` keyed ``p<N>``, whose value is that
   partition's engine snapshot plus the source offset it covers; it lives in
   changelog partition N, so whichever worker is assigned N recovers it. Writes are
   coalesced (at most one per partition every ``snapshot_every_s``, and at every end
   of stream). Offsets are committed as records are processed, so after a failure the
   next owner restores the state and *replays* from the offset it covers
   (``replay_gap`` in :func:`build_app`): nothing is skipped, and a replay re-emits
   identical alert lines (at-least-once).
2. **Encounter stage** (agent on ``geofence.encounter-feed``, one partition,
   :class:`streams.encounter_stage.EncounterStage`): encounters between vessels of
   different partitions, exactly as one engine finds them.

Alert lines, dead letters and feed records go out through a plain aiokafka
producer, pipelined, and are all acknowledged before a state is written. Zones:
every worker reads the whole compacted zones topic with a group-less consumer
before processing, and hot-reloads its engines on every new version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from geofence.alerts import Alert
from geofence.deadletter import DeadLetter
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from streams import wire
from streams.encounter_stage import EncounterStage
from streams.worker_core import EngineFactory, PartitionCore

__all__ = [
    "TopicNames",
    "WorkerConfig",
    "bootstrap_servers",
    "build_app",
    "ensure_topic",
    "run_worker",
]

log = logging.getLogger("geofence.worker")


# ----------------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Topic names (each can be renamed on the command line)."""

    positions: str = "geofence.positions"
    alerts: str = "geofence.alerts"
    deadletter: str = "geofence.deadletter"
    zones: str = "geofence.zones"
    encounter_feed: str = "geofence.encounter-feed"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs. Defaults suit production Kafka; tests shorten the timeouts.

    Attributes
    ----------
    broker
        ``kafka://host:port`` (comma-separated for several bootstrap servers).
    app_id
        faust application id = consumer group; workers with the same id share the partitions.
    partitions
        Partitions of the positions topic and the state table (must match the publisher's).
    store
        faust table store: ``memory://`` (default, recovered from the changelog) or ``rocksdb://``.
    data_dir
        faust data directory (RocksDB files); a fresh temporary directory when None.
    snapshot_every_s
        Coalescing interval of the state-table writes per partition.
    standby_replicas
        faust standby copies of each table partition (faster takeover after a failure). Default 0:
        with faust-streaming 0.15.3 a surviving worker never fetched the partitions whose tables it
        held as standby after a takeover (docs/streams.md).
    tansu_compat
        Work around two Tansu behaviours (tests, benchmarks): its ListOffsets under-reports after a
        multi-record batch (so changelogs are written one record per produce batch), and it holds
        every fetch for the full wait (so the consumer waits 10 ms, not faust's 1.5 s).
    web_port
        Port of faust's web server on 127.0.0.1; None disables it.
    """

    broker: str
    app_id: str = "geofence"
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    store: str = "memory://"
    data_dir: str | None = None
    snapshot_every_s: float = 5.0
    standby_replicas: int = 0
    session_timeout_s: float = 30.0
    heartbeat_interval_s: float = 3.0
    rebalance_timeout_s: float = 30.0
    tansu_compat: bool = False
    web_port: int | None = None
    loglevel: str = "WARNING"
    stats: bool = True

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ConfigError(f"partitions = {self.partitions} must be >= 1")
        if not (self.snapshot_every_s >= 0):
            raise ConfigError(f"snapshot_every_s = {self.snapshot_every_s} must be >= 0 (0: every record)")
        if not (0 < self.heartbeat_interval_s < self.session_timeout_s):
            raise ConfigError(
                f"heartbeat interval {self.heartbeat_interval_s} s must be > 0 and below the session timeout "
                f"{self.session_timeout_s} s"
            )
        if self.store not in ("memory://", "rocksdb://"):
            raise ConfigError(f"store {self.store!r} is not 'memory://' or 'rocksdb://'")


def bootstrap_servers(broker: str) -> str:
    """``kafka://h1:p1,h2:p2`` → ``h1:p1,h2:p2`` (aiokafka's ``bootstrap_servers``)."""
    servers = []
    for part in broker.split(","):
        part = part.strip()
        if "://" in part:
            scheme, part = part.split("://", 1)
            if scheme not in ("kafka", "tcp"):
                raise ConfigError(f"broker {broker!r}: scheme {scheme!r} is not kafka://")
        part = part.rstrip("/")
        if not part:
            raise ConfigError(f"broker {broker!r} names no host:port; e.g. kafka://127.0.0.1:9092")
        servers.append(part)
    return ",".join(servers)


async def ensure_topic(bootstrap: str, name: str, partitions: int, compacted: bool = False) -> None:
    """Create topic ``name`` when it does not exist (idempotent; an existing topic is left as it is)."""
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


class _Output:
    """A plain aiokafka producer for alert lines, dead letters and feed records (not faust's: see docs)."""

    def __init__(self, bootstrap: str, topics: TopicNames) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._pending: list[Any] = []

    async def _get(self) -> Any:
        async with self._lock:
            if self._producer is None:
                from aiokafka import AIOKafkaProducer

                prod = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    linger_ms=2,
                    max_request_size=64 * 1024 * 1024,
                    max_batch_size=1024 * 1024,
                )
                await prod.start()
                self._producer = prod
        return self._producer

    async def send(
        self, alerts: list[Alert], dead: list[DeadLetter], feed: bytes | None = None, feed_key: bytes = b""
    ) -> None:
        """Hand records to the producer; :meth:`drain` waits until the broker acknowledged them.

        Sends are pipelined across source records: the worker drains before it writes a
        state (whose offset then covers only delivered lines) and at the end of a stream.
        A record processed but not yet covered by a state is replayed after a failure, so
        its lines are re-sent rather than lost.
        """
        if not alerts and not dead and feed is None:
            return
        prod = await self._get()
        for a in alerts:
            self._pending.append(
                await prod.send(self.topics.alerts, key=a.subject_id.encode("utf-8"), value=a.to_json())
            )
        for d in dead:
            self._pending.append(
                await prod.send(self.topics.deadletter, key=d.source.encode("utf-8"), value=wire.encode_deadletter(d))
            )
        if feed is not None:
            self._pending.append(await prod.send(self.topics.encounter_feed, key=feed_key, value=feed, partition=0))
        if len(self._pending) >= 10_000:
            await self.drain()

    async def drain(self) -> None:
        """Wait until everything sent so far is acknowledged (raises when a send failed)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def stop(self) -> None:
        """Flush and close the producer."""
        prod, self._producer = self._producer, None
        if prod is not None:
            try:
                await self.drain()
            finally:
                await prod.stop()


def _say(text: str) -> None:
    print(f"geofence worker: {text}", file=sys.stderr, flush=True)


def build_app(cfg: WorkerConfig, factory: EngineFactory, fallback_zones: Callable[[], ZoneSet] | None = None) -> Any:
    """Build the faust app for ``cfg``.

    ``fallback_zones`` gives the zone set used when the zones topic is empty at start
    (``--zones``, or the built-in catalogue); a zones record always wins, and every
    later record is hot-reloaded.
    """
    os.environ.setdefault("LOGGER_LEVEL", cfg.loglevel)
    import faust
    from aiokafka import AIOKafkaConsumer, TopicPartition

    if cfg.tansu_compat:
        _short_fetch_wait(10)

    web: dict[str, Any] = {"web_enabled": False}
    if cfg.web_port is not None:
        web = {"web_enabled": True, "web_bind": "127.0.0.1", "web_host": "127.0.0.1", "web_port": cfg.web_port}
    app = faust.App(
        cfg.app_id,
        broker=cfg.broker,
        store=cfg.store,
        datadir=cfg.data_dir or tempfile.mkdtemp(prefix=f"geofence-faust-{cfg.app_id}-"),
        topic_partitions=cfg.partitions,
        processing_guarantee="at_least_once",  # Tansu has no InitProducerId: exactly_once crashes at start
        # faust's own producer writes only the table changelogs. Tansu's ListOffsets "latest" under-reports after
        # a multi-record batch, which stops changelog recovery early; one record per batch avoids it (tests only).
        producer_max_batch_size=1 if cfg.tansu_compat else 1024 * 1024,
        producer_max_request_size=128 * 1024 * 1024,
        consumer_max_fetch_size=64 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=cfg.session_timeout_s,
        broker_heartbeat_interval=cfg.heartbeat_interval_s,
        broker_rebalance_timeout=cfg.rebalance_timeout_s,
        table_standby_replicas=cfg.standby_replicas,
        stream_wait_empty=False,
        **web,
    )
    topics = cfg.topics

    def raw() -> Any:  # one Schema object per topic: faust updates a schema in place
        return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    def fatal(agent: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Stop the worker when an agent fails (faust would restart the agent and skip the failed record)."""

        async def run(stream: Any) -> None:
            try:
                await agent(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _say(f"stopping: {agent.__name__} failed with {type(exc).__name__}: {exc}")
                await app.crash(exc)  # the next owner replays from the partition's last state
                raise

        run.__name__ = agent.__name__
        run.__qualname__ = agent.__qualname__
        return run

    positions = app.topic(topics.positions, partitions=cfg.partitions, schema=raw(), internal=True)
    state = app.Table("geofence-state", key_type=bytes, value_type=bytes, partitions=cfg.partitions)
    core = PartitionCore(factory, cfg.partitions, topics.positions)
    stage: dict[str, EncounterStage] = {}
    zones_ready = asyncio.Event()
    bootstrap = bootstrap_servers(cfg.broker)
    out = _Output(bootstrap, topics)
    engines = asyncio.Lock()  # engine work runs in a thread; one call at a time (zone reloads included)
    spent = {"records": 0.0, "core_s": 0.0, "send_s": 0.0, "state_s": 0.0}  # for the stats line
    generation = [0]  # bumped on every revocation

    async def write_state(table: Any, key: bytes, value: bytes, partition: int) -> None:
        """Write a table value and wait until the broker has its changelog record.

        ``table[key] = value`` would only queue the changelog record in faust's producer
        buffer; the store is updated and the record sent directly so that a state is known
        to be durable when this returns (the next owner of the partition recovers it).
        """
        table.data[key] = value
        delivered = await table.changelog_topic.send(key=key, value=value, partition=partition, force=True)
        await delivered

    seeks: dict[tuple[str, int], list[float]] = {}  # (topic, partition) -> [offset wanted, first seek, last seek]

    async def replay_gap(msg: Any, want: int) -> bool:
        """Make the records after a restored state come again; True means: drop ``msg``.

        Offsets are committed as records are processed, but state is written only every
        ``snapshot_every_s``: after a failure the next owner restores a state covering offsets
        up to ``want - 1`` while the committed offset may be further on. Offsets in these
        topics are contiguous, so a record after ``want`` means records are missing: seek back
        to ``want`` (again every second: faust's own seek to the committed offsets may come
        after ours during a rebalance) and drop what arrives until ``want`` does. If it never
        comes (deleted by retention), accept the gap after 60 s.
        """
        key = (msg.topic, msg.partition)
        if msg.offset <= want:
            if seeks.pop(key, None) is not None:
                pending_tps.pop(key, None)
            return False
        now = time.monotonic()
        sought = seeks.get(key)
        if sought is None or sought[0] != want:
            sought = seeks[key] = [float(want), now, 0.0]
            _say(
                f"{msg.topic}[{msg.partition}]: state covers offsets below {want}, record {msg.offset} came; "
                f"replaying from {want}"
            )
        if now - sought[1] > 60.0:
            _say(f"{msg.topic}[{msg.partition}]: records {want}..{msg.offset - 1} never came; continuing")
            seeks.pop(key, None)
            pending_tps.pop(key, None)
            return False
        if now - sought[2] >= 1.0:
            sought[2] = now
            await seek(msg.tp, want)
        pending_tps[key] = msg.tp
        return True

    pending_tps: dict[tuple[str, int], Any] = {}

    async def seek(tp: Any, offset: int) -> None:
        """Seek ``tp`` unless it was revoked meanwhile (aiokafka raises IllegalStateError; the next owner replays)."""
        from aiokafka.errors import IllegalStateError

        if tp not in app.consumer.assignment():
            return
        with contextlib.suppress(IllegalStateError):
            await app.consumer.seek(tp, offset)

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust.App.timer is untyped
    async def reseek() -> None:
        """Repeat the seeks of ``replay_gap`` until their record arrives (the last records may all be dropped)."""
        now = time.monotonic()
        for key, sought in list(seeks.items()):
            tp = pending_tps.get(key)
            if tp is not None and now - sought[2] >= 1.0:
                sought[2] = now
                await seek(tp, int(sought[0]))

    @app.agent(positions)
    @fatal
    async def process(stream: Any) -> None:
        async for event in stream.events():
            if not zones_ready.is_set():
                await zones_ready.wait()
            msg = event.message
            p = msg.partition
            key = f"p{p}".encode()
            slot = core.slots.get(p)
            if slot is None:
                stored = state.get(key)
                gen = generation[0]
                async with engines:  # also keeps a zone reload from missing the new engine
                    slot = await asyncio.to_thread(core.build_slot, stored)
                    if generation[0] != gen:
                        continue  # revoked while restoring: the next owner replays it from its state
                    core.slots[p] = slot
                if stored:
                    _say(f"partition {p}: state restored at offset {slot.offset}")
            if await replay_gap(msg, slot.offset + 1):
                continue
            t0 = time.perf_counter()
            async with engines:
                step = await asyncio.to_thread(core.handle_slot, slot, p, msg.offset, event.value)
            t1 = time.perf_counter()
            await out.send(step.alerts, step.dead, step.feed, key)
            t2 = time.perf_counter()
            spent["core_s"] += t1 - t0
            spent["send_s"] += t2 - t1
            spent["records"] += 1
            if core.slots.get(p) is not slot:
                continue  # revoked meanwhile: the next owner replays it from its last state
            if step.final or core.due(p, cfg.snapshot_every_s):
                async with engines:
                    value = await asyncio.to_thread(core.state_of, slot)
                await out.drain()  # the state's offset must cover delivered lines only
                if core.slots.get(p) is not slot:
                    continue
                await write_state(state, key, value, p)
                spent["state_s"] += time.perf_counter() - t2
                log.info("partition %d: state written at offset %d", p, slot.offset)
            if step.final and cfg.stats:
                started = core.first_record_s
                line = {
                    "end_of_stream": p,
                    "positions": core.positions,
                    "elapsed_s": round(time.monotonic() - started, 6) if started is not None else 0.0,
                    **{k: round(v, 6) for k, v in spent.items()},
                }
                _say("stats " + orjson.dumps(line).decode())

    if core.external:
        feed_topic = app.topic(topics.encounter_feed, partitions=1, schema=raw(), internal=True)
        enc_state = app.Table("geofence-encounters", key_type=bytes, value_type=bytes, partitions=1)

        @app.agent(feed_topic)
        @fatal
        async def encounters(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                st = stage.get("s")
                if st is None:
                    stored = enc_state.get(b"stage")
                    params = core.encounter_params
                    st = stage["s"] = EncounterStage(params) if not stored else EncounterStage.restore(stored, params)
                    if stored:
                        _say(f"encounter stage: state restored at offset {st.offset}")
                if await replay_gap(msg, st.offset + 1):
                    continue
                try:
                    feed = wire.decode(event.value)
                except wire.WireError as exc:
                    log.error("ignoring a bad encounter-feed record at offset %d: %s", msg.offset, exc)
                    feed = None
                lines = st.handle(msg.offset, feed) if isinstance(feed, wire.EncounterFeed) else []
                await out.send(lines, [])
                if stage.get("s") is not st:
                    continue  # revoked meanwhile: the next owner replays from the last state
                done = isinstance(feed, wire.EncounterFeed) and feed.final and not st.final
                since = st.dirty_since
                if done or (since is not None and time.monotonic() - since >= cfg.snapshot_every_s):
                    value = await asyncio.to_thread(st.snapshot)
                    await out.drain()
                    if stage.get("s") is not st:
                        continue
                    await write_state(enc_state, b"stage", value, 0)
                    if done and cfg.stats:
                        _say(f"encounter stage: end of stream, state written at offset {st.offset}")

    @app.task  # type: ignore[untyped-decorator]  # faust.App.task is untyped
    async def follow_zones() -> None:
        await ensure_topic(bootstrap, topics.zones, 1, compacted=True)
        await ensure_topic(bootstrap, topics.alerts, cfg.partitions)
        await ensure_topic(bootstrap, topics.deadletter, 1)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=64 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tp = TopicPartition(topics.zones, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            caught_up = end == 0
            waiting = False
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                latest = None
                for records in batches.values():
                    for rec in records:
                        if rec.value:
                            latest = rec
                if latest is not None:
                    try:
                        zones = wire.decode_zoneset(latest.value)
                    except wire.WireError as exc:  # a bad record must not stop the worker
                        _say(f"ignoring zones record at offset {latest.offset}: {exc}")
                    else:
                        if core.zones is None or zones.version != core.zones.version:
                            async with engines:  # rebuilding fence indexes takes seconds: off the loop
                                await asyncio.to_thread(core.set_zones, zones)
                            _say(f"zones version {zones.version} ({len(zones)} fences) from {topics.zones}")
                if not caught_up and await consumer.position(tp) >= end:
                    caught_up = True
                if caught_up and not zones_ready.is_set():
                    if core.zones is None:
                        if fallback_zones is None:
                            if not waiting:
                                _say(f"waiting for a zone set on {topics.zones} (geofence zones publish FILE...)")
                                waiting = True
                            continue
                        fb = await asyncio.to_thread(fallback_zones)
                        core.set_zones(fb)
                        _say(f"zones version {fb.version} ({len(fb)} fences) from --zones (topic empty)")
                    zones_ready.set()
        finally:
            await consumer.stop()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types receivers loosely
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == topics.positions}
        generation[0] += 1
        for tp in revoked:  # the next owner restores and replays these partitions itself
            seeks.pop((tp.topic, tp.partition), None)
            pending_tps.pop((tp.topic, tp.partition), None)
        core.drop(gone)
        if any(tp.topic == topics.encounter_feed for tp in revoked):
            stage.clear()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == topics.positions)
        feed = any(tp.topic == topics.encounter_feed for tp in assigned)
        _say(f"assigned positions partitions {mine}" + (" and the encounter stage" if feed else ""))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        await out.stop()

    app.geofence_core = core  # type: ignore[attr-defined]  # for tests and benchmarks
    return app


def _short_fetch_wait(max_wait_ms: int) -> None:
    """Tansu shim: make faust's consumer ask for fetches that return after ``max_wait_ms``.

    faust-streaming 0.15.3 hard-codes ``fetch_max_wait_ms=1500``. Kafka answers a fetch as
    soon as one byte is there, so that is only an idle poll; Tansu holds every fetch for the
    full wait even when records are waiting, which adds up to 1.5 s to every record's
    latency. Only installed with ``tansu_compat``.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_cls: Any = driver.AIOKafkaConsumerThread
    if getattr(thread_cls, "_geofence_short_wait", None) is not None:
        return
    original = thread_cls._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    thread_cls._create_worker_consumer = create
    thread_cls._geofence_short_wait = max_wait_ms


def run_worker(cfg: WorkerConfig, factory: EngineFactory, fallback_zones: Callable[[], ZoneSet] | None = None) -> int:
    """Run a worker until SIGINT/SIGTERM; return the exit code."""
    os.environ.setdefault("LOGGER_LEVEL", cfg.loglevel)
    import faust

    app = build_app(cfg, factory, fallback_zones)
    worker = faust.Worker(app, loglevel=cfg.loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None  # it writes terminal escapes to stdout even when stdout is not a terminal
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 3
    return 0
