"""Alert lines to a Kafka topic (``kafka://host:port/topic``) with aiokafka.

One record per alert line: key = ``subject_id`` (UTF-8), value = the alert JSON
line. ``acks=all``; :meth:`KafkaSink.flush` waits until every record of the
batch is acknowledged, so the runner's checkpoint follows delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from geofence.alerts import Alert

__all__ = ["KafkaSink"]


class KafkaSink:
    """Produce alert lines to ``topic`` on ``bootstrap``.

    Parameters
    ----------
    bootstrap
        ``host:port`` of a broker.
    topic
        Topic name.
    producer
        An already built producer with aiokafka's ``start/send/stop`` API (tests).
    """

    def __init__(self, bootstrap: str, topic: str, *, producer: Any = None) -> None:
        if not topic:
            raise ValueError(f"kafka sink for {bootstrap!r} has no topic; use kafka://host:port/topic")
        self.bootstrap = bootstrap
        self.topic = topic
        self.name = f"kafka://{bootstrap}/{topic}"
        self._producer = producer
        self._owned = producer is None
        self._inflight: list[asyncio.Future[Any]] = []
        self._started = False

    async def start(self) -> None:
        """Create and start the producer."""
        if self._started:
            return
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await self._producer.start()
        self._started = True

    async def write(self, alerts: Sequence[Alert]) -> None:
        """Enqueue one record per line (key = subject id)."""
        if self._producer is None:
            raise RuntimeError(f"sink {self.name} written before start(); call await sink.start() first")
        for a in alerts:
            fut = await self._producer.send(self.topic, value=a.to_json(), key=a.subject_id.encode("utf-8"))
            self._inflight.append(fut)

    async def flush(self) -> None:
        """Wait for every enqueued record's acknowledgement; raises if one failed."""
        if self._inflight:
            pending, self._inflight = self._inflight, []
            await asyncio.gather(*pending)

    async def close(self) -> None:
        """Flush and stop the producer; idempotent."""
        if self._started and self._producer is not None:
            try:
                await self.flush()
            finally:
                await self._producer.stop()
                self._started = False
