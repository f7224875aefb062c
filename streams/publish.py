"""The gateway behind ``geofence publish``: decode inputs, produce packed position batches to Kafka.

Each decoded micro-batch is split by partition with Kafka's default partitioner
over each row's routing key (:mod:`streams.partition`: the function faust's
aiokafka producer applies to a key), and every partition's rows go out as one
packed record (:mod:`streams.wire`) with that partition set explicitly. The
routing key (:class:`SubjectRouter`) is the subject id, except for a container
that declares a carrier: it rides on its carrier's key, so the engine that judges
``container_separation`` sees the container and the carrier's track. A container
row with a blank carrier follows the carrier last declared for it (release
events are blank in the simulator), so a container's rows stay on one partition
until it declares another carrier (a transshipment; docs/streams.md says what
that changes). A subject's positions therefore reach one partition, in input order.

Inputs are processed in the order of the embedded runner: file inputs merged in
event time with static reports placed where they take effect
(:func:`ordered_segments`, :mod:`streams.order`). After the last batch the
publisher sends an end-of-stream marker to every partition (the worker's cue to
call ``finish()``), carrying the largest event time it published, so every
partition's engine ends at the same watermark.
Decoder dead letters go to the dead-letter topic, one JSON object per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import numpy.typing as npt

from geofence.deadletter import DeadLetter
from geofence.decode.accounting import Counts, DecodeResult
from geofence.errors import ConfigError
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport, SubjectKind
from streams import wire
from streams.faust_app import TopicNames, bootstrap_servers, ensure_topic
from streams.partition import SubjectPartitioner
from streams.runner import DecoderFactory

__all__ = [
    "PublishConfig",
    "PublishStats",
    "Publisher",
    "Routed",
    "SubjectRouter",
    "decoded_inputs",
    "ordered_segments",
    "publish_inputs",
    "publish_zones",
    "split_by_partition",
]

_HEAD_BYTES = 65536


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """Where and how to publish.

    Attributes
    ----------
    partitions
        Partition count used only when the positions topic does not exist yet.
    max_batch_positions
        Largest packed record, in positions (a partition's rows of one micro-batch are chunked).
    batch_lines
        Input lines per decoded micro-batch (4096, as ``geofence run``).
    rate_positions_s
        Pace publishing to this many positions per second of wall time (None: as fast as possible).
    end_of_stream
        Send the end-of-stream marker to every partition after the last input.
    """

    broker: str
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8
    max_batch_positions: int = 4096
    batch_lines: int = 4096
    rate_positions_s: float | None = None
    end_of_stream: bool = True
    publisher_id: str = ""

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ConfigError(f"partitions = {self.partitions} must be >= 1")
        if self.max_batch_positions < 1 or self.batch_lines < 1:
            raise ConfigError("max_batch_positions and batch_lines must be >= 1")
        if self.rate_positions_s is not None and not self.rate_positions_s > 0:
            raise ConfigError(f"rate {self.rate_positions_s} must be a positive number of positions per second")


@dataclass(slots=True)
class PublishStats:
    """What a publisher sent, and the decoders' accounting."""

    positions: int = 0
    records: int = 0
    statics: int = 0
    dead: int = 0
    max_ts_s: float | None = None
    counts: Counts = field(default_factory=Counts)


_CONTAINER = int(SubjectKind.CONTAINER)


class SubjectRouter:
    """The routing key of every row: its subject id, or for a container its declared carrier's id.

    ``container_separation`` compares a container with its declared carrier's track,
    and an engine only sees its own partition, so a container report with a
    carrier is keyed by the carrier. A container report with a blank carrier (a
    release event, a tracker that lost the pairing) is keyed by the carrier last
    declared for that container through this router, or by its own id when none
    was: keying it by its own id would put its release in another partition's
    ledger than its zone exits. The memory of declared carriers lives in the
    router, so one router must see a publisher's rows in input order.

    Parameters
    ----------
    partitioner
        Kafka's default partitioner for the positions topic's partition count.
    """

    def __init__(self, partitioner: SubjectPartitioner) -> None:
        self.partitioner = partitioner
        self._carrier: dict[str, str] = {}  # container id -> carrier it last declared

    @property
    def partitions(self) -> int:
        """Partition count of the positions topic."""
        return self.partitioner.partitions

    def key_of(self, subject_id: str) -> str:
        """Routing key of a subject now (static reports; a container's blank-carrier rows)."""
        return self._carrier.get(subject_id, subject_id)

    def __call__(self, subject_id: str) -> int:
        """Partition of a subject now (of :meth:`key_of`)."""
        return self.partitioner(self.key_of(subject_id))

    def keys(self, batch: PositionBatch) -> npt.NDArray[np.object_]:
        """Routing key of every row, remembering the carriers the batch's container rows declare (in row order)."""
        keys = np.asarray(batch.subject_id, dtype=object).copy()
        for i in np.flatnonzero(np.asarray(batch.kind) == _CONTAINER).tolist():
            sid = str(keys[i])
            carrier = str(batch.carrier_id[i] or "")
            if carrier:
                self._carrier[sid] = carrier
                keys[i] = carrier
            else:
                keys[i] = self._carrier.get(sid, sid)
        return keys


class Routed(NamedTuple):
    """One packed record to send: its partition, its record key (a routing key of its rows) and its rows."""

    partition: int
    key: str
    batch: PositionBatch


def split_by_partition(
    batch: PositionBatch, router: SubjectRouter | SubjectPartitioner, max_positions: int
) -> list[Routed]:
    """Split a batch by the partition of each row's routing key (rows keep their order), in chunks of ``max_positions``.

    Pass the publisher's :class:`SubjectRouter` so that blank-carrier container rows
    follow the carrier declared in earlier batches; a bare partitioner gets a fresh
    router (memory within this batch only). Each record's key is the routing key of
    its first row, so Kafka's partitioner maps the key to the record's partition.
    """
    if not len(batch):
        return []
    if isinstance(router, SubjectPartitioner):
        router = SubjectRouter(router)
    uniq, inv = np.unique(router.keys(batch), return_inverse=True)
    part = router.partitioner
    per_key = np.fromiter((part(str(k)) for k in uniq.tolist()), dtype=np.int64, count=len(uniq))
    inv = inv.reshape(-1)
    parts = per_key[inv]
    order = np.argsort(parts, kind="stable")
    bounds = np.flatnonzero(np.diff(parts[order])) + 1
    out: list[Routed] = []
    for rows in np.split(order, bounds):
        p = int(parts[rows[0]])
        for i in range(0, len(rows), max_positions):
            chunk = rows[i : i + max_positions]
            out.append(Routed(p, str(uniq[inv[chunk[0]]]), batch.take(chunk)))
    return out


class Publisher:
    """Async context manager producing packed batches, statics, dead letters and end-of-stream markers."""

    def __init__(self, cfg: PublishConfig, *, producer: Any = None) -> None:
        self.cfg = cfg
        self.stats = PublishStats()
        self._producer = producer
        self._owned = producer is None
        self._router: SubjectRouter | None = None
        self._pending: list[asyncio.Future[Any]] = []
        self.publisher_id = cfg.publisher_id or f"{os.uname().nodename}:{os.getpid()}"

    @property
    def router(self) -> SubjectRouter:
        """The router of the positions topic (known after :meth:`start`; remembers containers' carriers)."""
        if self._router is None:
            raise RuntimeError("Publisher not started; use `async with Publisher(cfg) as pub:`")
        return self._router

    @property
    def partitioner(self) -> SubjectPartitioner:
        """The partitioner of the positions topic (known after :meth:`start`)."""
        return self.router.partitioner

    async def start(self) -> Publisher:
        """Connect, create the positions and dead-letter topics if needed, and learn the partition count."""
        topics = self.cfg.topics
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            bootstrap = bootstrap_servers(self.cfg.broker)
            await ensure_topic(bootstrap, topics.positions, self.cfg.partitions)
            await ensure_topic(bootstrap, topics.deadletter, 1)
            self._producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                linger_ms=2,
                max_batch_size=1024 * 1024,
                max_request_size=64 * 1024 * 1024,
            )
        await self._producer.start()
        parts: set[int] | None = None
        for _ in range(100):
            parts = await self._producer.partitions_for(topics.positions)
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise ConfigError(f"topic {topics.positions!r} has no partitions on {self.cfg.broker}")
        if self._router is None or self._router.partitions != len(parts):
            self._router = SubjectRouter(SubjectPartitioner(len(parts)))
        return self

    async def _send(self, topic: str, value: bytes, key: bytes | None, partition: int | None = None) -> None:
        fut = await self._producer.send(topic, value=value, key=key, partition=partition)
        self._pending.append(fut)
        if len(self._pending) >= 256:
            await self.flush()

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged by the broker."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def send_positions(self, batch: PositionBatch) -> None:
        """Publish a decoded batch, one packed record per partition (and chunk)."""
        for p, key, sub in split_by_partition(batch, self.router, self.cfg.max_batch_positions):
            await self._send(self.cfg.topics.positions, wire.encode_positions(sub), key.encode("utf-8"), p)
            self.stats.records += 1
        if len(batch):
            self.stats.positions += len(batch)
            mx = float(np.max(batch.ts_s))
            self.stats.max_ts_s = mx if self.stats.max_ts_s is None else max(self.stats.max_ts_s, mx)

    async def send_statics(self, reports: Sequence[StaticReport]) -> None:
        """Publish static reports to their subjects' partitions, before the positions that follow them."""
        router = self.router
        by_part: dict[int, list[StaticReport]] = {}
        for r in reports:
            by_part.setdefault(router(r.subject_id), []).append(r)
        for p, rs in sorted(by_part.items()):
            key = router.key_of(rs[0].subject_id).encode("utf-8")
            await self._send(self.cfg.topics.positions, wire.encode_statics(rs), key, p)
        self.stats.statics += len(reports)

    async def send_dead(self, dead: Iterable[DeadLetter]) -> None:
        """Publish dead letters, one per record, keyed by source."""
        for d in dead:
            await self._send(self.cfg.topics.deadletter, wire.encode_deadletter(d), d.source.encode("utf-8"))
            self.stats.dead += 1

    async def end_of_stream(self) -> None:
        """Send the end-of-stream marker to every partition, then flush."""
        await self.flush()
        for p in range(self.partitioner.partitions):
            marker = wire.EndOfStream(p, self.stats.max_ts_s, self.publisher_id)
            await self._send(self.cfg.topics.positions, wire.encode_end_of_stream(marker), b"", p)
        await self.flush()

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            try:
                await self.flush()
            finally:
                await self._producer.stop()
                if self._owned:
                    self._producer = None

    async def __aenter__(self) -> Publisher:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


async def _file_chunks(path: Path, lines_per_chunk: int) -> AsyncIterator[list[bytes]]:
    with _open(path) as fh:
        pending: list[bytes] = []
        while True:
            chunk = fh.readlines(1 << 20)
            if not chunk:
                break
            pending.extend(chunk)
            while len(pending) >= lines_per_chunk:
                batch, pending = pending[:lines_per_chunk], pending[lines_per_chunk:]
                yield [x.rstrip(b"\r\n") for x in batch]
                await asyncio.sleep(0)
        if pending:
            yield [x.rstrip(b"\r\n") for x in pending]


async def _stdin_chunks(lines_per_chunk: int) -> AsyncIterator[list[bytes]]:
    """Lines of standard input as they arrive, at most ``lines_per_chunk`` per chunk (a live source)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    try:
        rest = b""
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            parts = (rest + data).split(b"\n")
            rest = parts.pop()
            for i in range(0, len(parts), lines_per_chunk):
                yield [x.rstrip(b"\r") for x in parts[i : i + lines_per_chunk]]
        if rest:
            yield [rest.rstrip(b"\r")]
    finally:
        transport.close()


async def decoded_inputs(
    inputs: Sequence[str], decoder_factory: DecoderFactory, lines_per_chunk: int = 4096
) -> AsyncIterator[DecodeResult]:
    """Decode inputs in order (files, plain or gzip, or ``-`` for stdin): one result per chunk, then close.

    Chunks are cut exactly as ``geofence run`` cuts a file (``lines_per_chunk`` lines),
    so the decoders see the same calls.
    """
    for spec in inputs:
        if spec == "-":
            dec = None
            line = 1
            async for lines in _stdin_chunks(lines_per_chunk):
                if dec is None:
                    dec = decoder_factory("-", b"\n".join(lines[:2000])[:_HEAD_BYTES], True)
                yield dec.feed(lines, line, time.time())
                line += len(lines)
            if dec is not None:
                yield dec.close()
            continue
        path = Path(spec)
        with _open(path) as fh:
            head = fh.read(_HEAD_BYTES)
        dec = decoder_factory(str(path), head, False)
        line = 1
        async for lines in _file_chunks(path, lines_per_chunk):
            yield dec.feed(lines, line, None)
            line += len(lines)
        yield dec.close()


async def ordered_segments(
    inputs: Sequence[str],
    decoder_factory: DecoderFactory,
    lines_per_chunk: int = 4096,
    counts: Counts | None = None,
    dead: list[DeadLetter] | None = None,
) -> AsyncIterator[tuple[list[StaticReport], PositionBatch]]:
    """``(static reports, positions)`` of the inputs in the order ``geofence run`` processes them.

    File inputs are decoded first (pass 1) into a :class:`streams.order.RecordSorter` and
    then merged in event-time order (pass 2), static reports placed where they take
    effect, exactly as the embedded runner does: a file grouped by vessel must not push
    a partition's watermark to its end. Standard input (``-``, which must then be the
    only input) is live: each decoder call's static reports, then its positions.
    Decoder accounting is added to ``counts`` and dead letters appended to ``dead``.
    """
    if "-" in inputs:
        if len(inputs) > 1:
            raise ConfigError("'-' (stdin) is a live input; publish it alone, files in another run")
        async for res in decoded_inputs(inputs, decoder_factory, lines_per_chunk):
            if counts is not None:
                counts.merge(res.counts)
            if dead is not None:
                dead.extend(res.dead)
            yield list(res.statics), res.positions
        return
    from streams.order import RecordSorter

    sorter = RecordSorter()
    try:
        for idx, spec in enumerate(inputs):
            async for res in decoded_inputs([spec], decoder_factory, lines_per_chunk):
                if counts is not None:
                    counts.merge(res.counts)
                if dead is not None:
                    dead.extend(res.dead)
                await asyncio.to_thread(sorter.add, idx, res.positions, res.statics)
        merged = await asyncio.to_thread(sorter.merge, lines_per_chunk)
        while True:
            chunk = await asyncio.to_thread(next, merged, None)
            if chunk is None:
                break
            for statics, positions in chunk.segments():
                yield statics, positions
    finally:
        await asyncio.to_thread(sorter.close)


async def publish_inputs(cfg: PublishConfig, inputs: Sequence[str], decoder_factory: DecoderFactory) -> PublishStats:
    """Decode ``inputs`` and publish everything (paced to ``cfg.rate_positions_s`` when set)."""
    for spec in inputs:
        if spec != "-" and not Path(spec).is_file():
            raise ConfigError(f"input {spec!r} is not a file; give a readable path or '-' for stdin")
    async with Publisher(cfg) as pub:
        started = time.monotonic()
        dead: list[DeadLetter] = []
        async for statics, positions in ordered_segments(
            inputs, decoder_factory, cfg.batch_lines, pub.stats.counts, dead
        ):
            if dead:
                await pub.send_dead(dead)
                dead.clear()
            if statics:
                await pub.send_statics(statics)
            if len(positions):
                await pub.send_positions(positions)
            if cfg.rate_positions_s:
                ahead_s = pub.stats.positions / cfg.rate_positions_s - (time.monotonic() - started)
                if ahead_s > 0:
                    await pub.flush()
                    await asyncio.sleep(ahead_s)
        await pub.send_dead(dead)
        if cfg.end_of_stream:
            await pub.end_of_stream()
        await pub.flush()
        return pub.stats


async def publish_zones(broker: str, zones: ZoneSet, topic: str = TopicNames().zones) -> None:
    """Publish a whole zone set to the compacted zones topic (every worker hot-reloads it)."""
    from aiokafka import AIOKafkaProducer

    bootstrap = bootstrap_servers(broker)
    await ensure_topic(bootstrap, topic, 1, compacted=True)
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=64 * 1024 * 1024)
    await prod.start()
    try:
        await prod.send_and_wait(topic, value=wire.encode_zoneset(zones), key=wire.ZONESET_KEY, partition=0)
    finally:
        with contextlib.suppress(Exception):
            await prod.stop()
