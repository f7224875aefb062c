"""The gateway: decode inputs and produce packed position batches to Kafka (``geofence publish``).

Each decoded micro-batch is split by partition with Kafka's default partitioner
over the subject key (:mod:`streams.partition`, the function faust's aiokafka
producer applies to a subject key), and every partition's rows go out as one
packed record (:mod:`streams.wire`) with that partition set explicitly and a
representative subject of the batch as key. A subject's positions therefore
always reach the same partition, in input order. After the last batch the
publisher sends an end-of-stream marker to every partition (the worker's cue
to call ``finish()``), carrying the largest event time it published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from geofence.deadletter import DeadLetter
from geofence.fence import ZoneSet
from geofence.positions import PositionBatch, StaticReport
from streams import wire
from streams.faust_app import TopicNames, _bootstrap, _ensure_topic
from streams.partition import SubjectPartitioner

__all__ = ["PublishConfig", "PublishStats", "Publisher", "decoded_inputs", "publish_files", "publish_zones"]


@dataclass(slots=True)
class PublishConfig:
    """Where and how to publish."""

    broker: str
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 8  # used only when the positions topic does not exist yet
    max_batch_positions: int = 4096
    publisher_id: str = ""


@dataclass(slots=True)
class PublishStats:
    """What a publisher sent."""

    positions: int = 0
    records: int = 0
    statics: int = 0
    dead: int = 0
    max_ts_s: float | None = None


class Publisher:
    """Async context manager producing packed batches, statics, dead letters and end-of-stream markers."""

    def __init__(self, cfg: PublishConfig) -> None:
        self.cfg = cfg
        self.stats = PublishStats()
        self._producer: Any = None
        self._partitioner: SubjectPartitioner | None = None
        self._pending: list[asyncio.Future[Any]] = []
        self.publisher_id = cfg.publisher_id or f"{os.uname().nodename}:{os.getpid()}"

    @property
    def partitions(self) -> int:
        """Partition count of the positions topic (known after start)."""
        if self._partitioner is None:
            raise RuntimeError("Publisher not started; use `async with Publisher(cfg) as pub:`")
        return self._partitioner.partitions

    async def start(self) -> Publisher:
        """Connect, create the positions topic if needed, and learn its partition count."""
        from aiokafka import AIOKafkaProducer

        bootstrap = _bootstrap(self.cfg.broker)
        await _ensure_topic(bootstrap, self.cfg.topics.positions, self.cfg.partitions)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1024 * 1024,
            max_request_size=16 * 1024 * 1024,
        )
        await self._producer.start()
        parts: set[int] | None = None
        for _ in range(50):
            parts = await self._producer.partitions_for(self.cfg.topics.positions)
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {self.cfg.topics.positions!r} has no partitions on {self.cfg.broker}")
        self._partitioner = SubjectPartitioner(len(parts))
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

    def split(self, batch: PositionBatch) -> list[tuple[int, PositionBatch]]:
        """Split a batch by partition (rows keep their order), in chunks of at most ``max_batch_positions``."""
        if not len(batch):
            return []
        part = self._partitioner
        assert part is not None
        cache = part._cache
        parts = np.fromiter(
            (cache[s] if s in cache else part(s) for s in batch.subject_id), dtype=np.int32, count=len(batch)
        )
        order = np.argsort(parts, kind="stable")
        sorted_parts = parts[order]
        bounds = np.flatnonzero(np.diff(sorted_parts)) + 1
        out: list[tuple[int, PositionBatch]] = []
        step = self.cfg.max_batch_positions
        for rows in np.split(order, bounds):
            p = int(parts[rows[0]])
            for i in range(0, len(rows), step):
                out.append((p, batch.take(rows[i : i + step])))
        return out

    async def send_positions(self, batch: PositionBatch) -> None:
        """Publish a decoded batch, one packed record per partition (and chunk)."""
        for p, sub in self.split(batch):
            await self._send(self.cfg.topics.positions, wire.encode_positions(sub),
                             str(sub.subject_id[0]).encode("utf-8"), p)
            self.stats.records += 1
        if len(batch):
            self.stats.positions += len(batch)
            mx = float(np.max(batch.ts_s))
            self.stats.max_ts_s = mx if self.stats.max_ts_s is None else max(self.stats.max_ts_s, mx)

    async def send_statics(self, reports: Sequence[StaticReport]) -> None:
        """Publish static reports to their subjects' partitions."""
        assert self._partitioner is not None
        by_part: dict[int, list[StaticReport]] = {}
        for r in reports:
            by_part.setdefault(self._partitioner(r.subject_id), []).append(r)
        for p, rs in sorted(by_part.items()):
            await self._send(self.cfg.topics.positions, wire.encode_statics(rs), rs[0].subject_id.encode("utf-8"), p)
        self.stats.statics += len(reports)

    async def send_dead(self, dead: Iterable[DeadLetter]) -> None:
        """Publish decoder dead letters, one per record, keyed by source."""
        for d in dead:
            await self._send(self.cfg.topics.deadletter, wire.encode_deadletter(d), d.source.encode("utf-8"))
            self.stats.dead += 1

    async def end_of_stream(self) -> None:
        """Send the end-of-stream marker to every partition, then flush."""
        await self.flush()
        for p in range(self.partitions):
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
                self._producer = None

    async def __aenter__(self) -> Publisher:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _decoder(fmt: str, source: str) -> Any:
    import geofence.decode as dec

    names = {"nmea": "NmeaDecoder", "jsonl": "JsonlDecoder", "csv": "CsvDecoder"}
    if fmt not in names:
        raise ValueError(f"unknown input format {fmt!r}; use one of {', '.join(names)} or 'auto'")
    cls = getattr(dec, names[fmt], None)
    if cls is None:
        raise ValueError(f"no decoder for format {fmt!r} in geofence.decode (expected {names[fmt]})")
    return cls(source)


async def decoded_inputs(paths: Sequence[str], fmt: str = "auto", chunk_lines: int = 8192) -> AsyncIterator[Any]:
    """Decode files in order, yielding one ``DecodeResult`` per chunk of lines (then the decoder's close)."""
    from geofence.decode import detect_format

    for path in paths:
        with open(path, "rb") as fh:
            head = fh.read(65536)
            fh.seek(0)
            dec = _decoder(detect_format(head) if fmt == "auto" else fmt, str(path))
            first = 1
            while True:
                lines = fh.readlines(chunk_lines * 128)
                if not lines:
                    break
                yield dec.feed([ln.rstrip(b"\r\n") for ln in lines], first, None)
                first += len(lines)
                await asyncio.sleep(0)
            close = getattr(dec, "close", None)
            if close is not None:
                yield close()


async def publish_files(cfg: PublishConfig, paths: Sequence[str], fmt: str = "auto", eos: bool = True,
                        rate_positions_s: float | None = None) -> PublishStats:
    """Decode ``paths`` and publish everything; optionally pace to ``rate_positions_s`` (wall clock)."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"input {p!r} does not exist")
    async with Publisher(cfg) as pub:
        started = time.monotonic()
        async for res in decoded_inputs(paths, fmt):
            await pub.send_statics(res.statics) if res.statics else None
            await pub.send_positions(res.positions)
            await pub.send_dead(res.dead)
            if rate_positions_s:
                ahead_s = pub.stats.positions / rate_positions_s - (time.monotonic() - started)
                if ahead_s > 0:
                    await asyncio.sleep(ahead_s)
        if eos:
            await pub.end_of_stream()
        await pub.flush()
        return pub.stats


async def publish_zones(broker: str, zones: ZoneSet, topic: str = TopicNames().zones) -> None:
    """Publish a whole zone set to the compacted zones topic (every worker hot-reloads it)."""
    from aiokafka import AIOKafkaProducer

    bootstrap = _bootstrap(broker)
    await _ensure_topic(bootstrap, topic, 1, compacted=True)
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=64 * 1024 * 1024)
    await prod.start()
    try:
        await prod.send_and_wait(topic, value=wire.encode_zoneset(zones), key=wire.ZONESET_KEY, partition=0)
    finally:
        with contextlib.suppress(Exception):
            await prod.stop()
