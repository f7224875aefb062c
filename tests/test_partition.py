"""The gateway's partitioner is Kafka's default partitioner, as aiokafka (hence faust) applies it to a key.

The gateway packs many subjects into one record and sets the partition itself, so
it must pick exactly the partition faust's producer would pick for each subject's
key; otherwise a subject's positions and its state-table partition would part.
"""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.partition import SubjectPartitioner, partition_for_key, partition_for_subject
from streams.partition import murmur2 as our_murmur2

SEED = 20260601
PARTITION_COUNTS = (1, 2, 3, 4, 7, 8, 12, 16, 32, 100)


def _keys() -> list[bytes]:
    """MMSIs, container ids, feed ids of every length mod 4, and random bytes (seeded)."""
    rng = random.Random(SEED)
    print(f"random seed {SEED}")
    keys = [str(m).encode() for m in range(412_000_000, 412_000_000 + 3000, 7)]
    keys += [f"{rng.choice(['OOLU', 'TGHU', 'MSCU'])}{rng.randrange(10**7):07d}".encode() for _ in range(500)]
    keys += [b"", b"a", b"ab", b"abc", b"abcd", "长江".encode(), "船舶-413101221".encode()]
    keys += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for _ in range(2000)]
    return keys


KEYS = _keys()


def test_murmur2_equals_aiokafka_on_many_keys() -> None:
    mismatches = [k for k in KEYS if our_murmur2(k) & 0xFFFFFFFF != murmur2(k) & 0xFFFFFFFF]
    assert mismatches == []


@pytest.mark.parametrize("partitions", PARTITION_COUNTS)
def test_partition_equals_aiokafka_default_partitioner(partitions: int) -> None:
    all_partitions = list(range(partitions))
    theirs = [DefaultPartitioner()(k, all_partitions, all_partitions) for k in KEYS]
    ours = [partition_for_key(k, partitions) for k in KEYS]
    assert ours == theirs


@settings(max_examples=400, deadline=None)
@given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=256))
def test_partition_equals_aiokafka_property(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(key, all_partitions, all_partitions)


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=24))
def test_subject_partition_is_that_of_its_utf8_key(subject: str) -> None:
    key = subject.encode("utf-8")
    assert partition_for_subject(subject, 8) == DefaultPartitioner()(key, list(range(8)), list(range(8)))


def test_subject_partitioner_memoises_the_same_answers() -> None:
    part = SubjectPartitioner(6)
    subjects = [str(412_100_000 + i) for i in range(200)] * 2
    assert part.many(subjects) == [partition_for_subject(s, 6) for s in subjects]


@pytest.mark.parametrize("bad", [0, -3])
def test_partition_count_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        partition_for_key(b"x", bad)
    with pytest.raises(ValueError, match="partitions must be positive"):
        SubjectPartitioner(bad)
