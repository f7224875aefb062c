"""The event-time sort of file inputs: a stable external merge sort in bounded memory (streams/order.py)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.errors import ConfigError
from geofence.positions import PositionBatch, StaticReport
from streams.order import ROW_BYTES, STATIC_STEP_S, MergedChunk, RecordSorter, static_effect_key

# One decoder call: (times of its positions, times of its static reports; None = no time of their own).
Call = tuple[list[int], list[int | None]]

calls_st = st.lists(
    st.tuples(
        st.lists(st.integers(0, 300), max_size=60),
        st.lists(st.one_of(st.none(), st.integers(0, 300)), max_size=3),
    ),
    max_size=8,
)


def _feed(sorter: RecordSorter, inputs: list[list[Call]]) -> list[tuple[float, int, int, str]]:
    """Add every call; return the expected stable order as (key, input, n, label)."""
    expect: list[tuple[float, int, int, str]] = []
    for src, calls in enumerate(inputs):
        n = 0
        last: float | None = None
        for c, (pos_ts, stat_ts) in enumerate(calls):
            statics = []
            for k, t in enumerate(stat_ts):
                label = f"S{src}.{c}.{k}"
                statics.append(StaticReport(label, None if t is None else float(t)))
                ts = float(t) if t is not None else last
                key = -math.inf if ts is None else static_effect_key(ts)
                expect.append((key, src, n, label))
                n += 1
                if t is not None:
                    last = float(t)
            labels = [f"P{src}.{c}.{i}" for i in range(len(pos_ts))]
            for t, label in zip(pos_ts, labels, strict=True):
                expect.append((float(t), src, n, label))
                n += 1
            if pos_ts:
                last = float(pos_ts[-1])
            batch = PositionBatch.from_columns(
                subject_id=labels,
                ts_s=[float(t) for t in pos_ts],
                lon_deg=[114.0] * len(pos_ts),
                lat_deg=[30.0] * len(pos_ts),
                source=[f"in{src}"] * len(pos_ts),
                line=list(range(1, len(pos_ts) + 1)),
            )
            sorter.add(src, batch, statics)
    expect.sort(key=lambda e: (e[0], e[1], e[2]))
    return expect


def _labels(chunks: list[MergedChunk]) -> list[str]:
    out: list[str] = []
    for ch in chunks:
        for statics, part in ch.segments():
            out.extend(r.subject_id for r in statics)
            out.extend(str(x) for x in part.subject_id)
    return out


@settings(max_examples=150, deadline=None)
@given(
    inputs=st.lists(calls_st, min_size=1, max_size=3),
    budget_rows=st.sampled_from([1, 7, 50, 10**6]),
    chunk=st.integers(1, 97),
)
def test_merge_is_a_stable_sort_by_time_whatever_the_memory_and_chunk_size(
    inputs: list[list[Call]], budget_rows: int, chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spill = tmp_path_factory.mktemp("spill")
    sorter = RecordSorter(budget_rows * ROW_BYTES, spill)
    expect = _feed(sorter, inputs)
    chunks = list(sorter.merge(chunk))
    sorter.close()
    assert _labels(chunks) == [e[3] for e in expect]
    # One grid, whatever the memory (regression: each merge round of spilled runs began a new chunk, so the
    # engine's batches, and with them a batch-dependent engine's alert lines, changed with --sort-memory-mb).
    n = len(expect)
    assert [ch.elements for ch in chunks] == [min(chunk, n - a) for a in range(0, n, chunk)]
    per: dict[int, int] = {}
    for ch in chunks:
        for k, v in ch.per_input().items():
            per[k] = per.get(k, 0) + v
    assert per == {src: sorter.records(src) for src in range(len(inputs)) if sorter.records(src)}
    for src in range(len(inputs)):  # reordered <=> the input's own position times were not non-decreasing
        keys = [e[0] for e in sorted((e for e in expect if e[1] == src and e[3][0] == "P"), key=lambda e: e[2])]
        assert sorter.reordered(src) == any(b < a for a, b in itertools.pairwise(keys))
    assert list(spill.iterdir()) == []


@settings(max_examples=60, deadline=None)
@given(inputs=st.lists(calls_st, min_size=1, max_size=2), skip=st.integers(0, 400), chunk=st.integers(1, 50))
def test_skip_resumes_the_merged_stream_exactly(
    inputs: list[list[Call]], skip: int, chunk: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spill = tmp_path_factory.mktemp("spill")
    full = RecordSorter(5 * ROW_BYTES, spill)
    expect = _feed(full, inputs)
    full.close()
    resumed = RecordSorter(5 * ROW_BYTES, spill)
    _feed(resumed, inputs)
    chunks = list(resumed.merge(chunk, skip=skip))
    resumed.close()
    assert _labels(chunks) == [e[3] for e in expect][skip:]
    left = max(0, len(expect) - skip)  # the grid starts at the resume point
    assert [ch.elements for ch in chunks] == [min(chunk, left - a) for a in range(0, left, chunk)]


def test_a_tiny_budget_spills_many_runs_and_keeps_every_column(tmp_path: Path) -> None:
    """Records cross the disk intact: numbers, strings, line numbers and static reports."""
    rng = np.random.default_rng(7)
    print("seed=7")
    n = 5000
    ts = rng.integers(0, 500, n).astype(np.float64)
    batch = PositionBatch.from_columns(
        subject_id=[f"4130{i % 97:05d}" for i in range(n)],
        ts_s=ts,
        lon_deg=rng.uniform(100, 120, n),
        lat_deg=rng.uniform(25, 35, n),
        sog_kn=np.where(rng.random(n) < 0.3, np.nan, rng.uniform(0, 20, n)),
        cog_deg=rng.uniform(0, 360, n),
        heading_deg=np.full(n, np.nan),
        kind=rng.integers(0, 2, n),
        carrier_id=["" if i % 3 else "MSCU1234565" for i in range(n)],
        event=np.zeros(n),
        event_zone=["" for _ in range(n)],
        receiver=[f"rx{i % 5}" for i in range(n)],
        source=["feed.csv"] * n,
        line=np.arange(1, n + 1),
    )
    statics = [StaticReport(f"4130{k:05d}", float(k * 5), name=f"SHIP {k}", ship_type=70) for k in range(40)]
    sorter = RecordSorter(100 * ROW_BYTES, tmp_path)
    for lo in range(0, n, 250):  # 250-row decoder calls; the budget of 100 rows spills after every call
        sorter.add(0, batch.take(np.arange(lo, min(n, lo + 250))), statics if lo == 0 else [])
    assert sorter.runs == n // 250
    assert len(list(tmp_path.iterdir())) == 1  # one private spill directory
    chunks = list(sorter.merge(333))
    sorter.close()
    # Regression: every merge round of the spilled runs began a new chunk, so the engine's batches changed with
    # the sort memory and the runs (a grouped file and its time-ordered twin gave different batches).
    total = n + len(statics)
    assert [c.elements for c in chunks] == [min(333, total - a) for a in range(0, total, 333)]
    merged = PositionBatch.concat([c.positions for c in chunks])
    order = np.argsort(ts, kind="stable")
    for name in ("ts_s", "lon_deg", "lat_deg", "cog_deg", "kind", "line"):
        assert np.array_equal(getattr(merged, name), getattr(batch, name)[order]), name
    assert np.array_equal(np.isnan(merged.sog_kn), np.isnan(batch.sog_kn[order]))
    for name in ("subject_id", "carrier_id", "receiver", "source"):
        assert list(getattr(merged, name)) == list(getattr(batch, name)[order]), name
    got_statics = [r for c in chunks for _, _, r in c.statics]
    assert got_statics == statics  # in time order, all fields kept
    assert sorter.reordered(0)
    assert not any(tmp_path.iterdir())


def test_static_reports_take_effect_at_the_next_whole_step_of_event_time() -> None:
    """Before every position at or after the next multiple of STATIC_STEP_S, after every earlier one."""
    step = STATIC_STEP_S
    for t in (0.0, 1.0, step - 1.0, step, 1.7e9 + 12.5):
        edge = (math.floor(t / step) + 1) * step
        key = static_effect_key(t)
        assert t <= key < edge and math.nextafter(key, math.inf) == edge
    sorter = RecordSorter()
    ts = [100.0, 119.0, 120.0, 121.0, 185.0]
    sorter.add(0, PositionBatch.from_columns(subject_id=list("abcde"), ts_s=ts, lon_deg=[0.0] * 5, lat_deg=[0.0] * 5),
               [StaticReport("S", 101.0)])  # fmt: skip
    assert _labels(list(sorter.merge(100))) == ["a", "b", "S", "c", "d", "e"]
    sorter.close()


def test_an_input_already_in_order_keeps_line_order_and_writes_nothing(tmp_path: Path) -> None:
    sorter = RecordSorter(spill_dir=tmp_path)
    ts = [1.0, 1.0, 2.0, 5.0, 5.0, 9.0]
    b = PositionBatch.from_columns(subject_id=list("abcdef"), ts_s=ts, lon_deg=[0.0] * 6, lat_deg=[0.0] * 6)
    sorter.add(0, b.take(np.arange(3)))
    sorter.add(0, b.take(np.arange(3, 6)))
    chunks = list(sorter.merge(4))
    sorter.close()
    assert not sorter.reordered(0)
    assert _labels(chunks) == list("abcdef")
    assert sorter.runs == 0 and not any(tmp_path.iterdir())


def test_bad_use_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be > 0"):
        RecordSorter(0)
    sorter = RecordSorter(spill_dir=tmp_path)
    gen = sorter.merge(10)
    with pytest.raises(RuntimeError, match="after merge"):
        sorter.add(0, PositionBatch.empty())
    with pytest.raises(RuntimeError, match="twice"):
        sorter.merge(10)
    assert list(gen) == []
    sorter.close()
