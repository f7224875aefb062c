"""Kafka's default partitioner: murmur2 of the key bytes, positive, modulo the partition count.

This is the function the Java client, aiokafka's ``DefaultPartitioner`` and
therefore faust (whose producer is aiokafka) use for a keyed record. The
publisher computes it itself so that a packed batch holding many subjects
lands on exactly the partition faust would pick for each of those subjects'
keys, and so co-partitions with the worker's state table.
"""

from __future__ import annotations

from collections.abc import Iterable

from geofence.errors import ConfigError

__all__ = ["SubjectPartitioner", "murmur2", "partition_for_key", "partition_for_subject"]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Return Kafka's 32-bit murmur2 hash of ``data`` (as an unsigned int).

    Same constants and tail handling as ``org.apache.kafka.common.utils.Utils.murmur2``.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    tail = 4 * n4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """Return the partition Kafka's default partitioner picks for ``key`` among ``partitions``."""
    if partitions <= 0:
        raise ConfigError(f"partitions must be positive, got {partitions}; create the topic with >= 1 partition")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partition_for_subject(subject_id: str, partitions: int) -> int:
    """Partition of a subject key (UTF-8 bytes of the id, as faust's ``raw`` key serializer sends it)."""
    return partition_for_key(subject_id.encode("utf-8"), partitions)


class SubjectPartitioner:
    """Memoising subject → partition map for a fixed partition count (subjects repeat a lot)."""

    def __init__(self, partitions: int) -> None:
        if partitions <= 0:
            raise ConfigError(f"partitions must be positive, got {partitions}; give the topic's partition count")
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def __call__(self, subject_id: str) -> int:
        p = self._cache.get(subject_id)
        if p is None:
            p = partition_for_subject(subject_id, self.partitions)
            self._cache[subject_id] = p
        return p

    def many(self, subject_ids: Iterable[str]) -> list[int]:
        """Partitions of many subjects, in order."""
        return [self(s) for s in subject_ids]
