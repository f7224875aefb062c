"""The embedded runner: micro-batching, backpressure, checkpoints, stop/resume, stats and summary."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.alerts import Alert
from geofence.decode.accounting import DecodeResult
from geofence.errors import ConfigError
from streams.batcher import micro_batches
from streams.checkpoint import Checkpoint, InputOffset, load_checkpoint, save_checkpoint
from streams.runner import FileInput, LiveInput, Runner, StrictStop, run
from streams.sinks import DeadLetterJsonlSink, JsonlSink
from streams.summary import write_summary
from tests.fakes import FakeEngine, FakeJsonlDecoder, fake_decoder_factory, read_triples, write_track_jsonl


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "track.jsonl"
    write_track_jsonl(path, subjects=30, steps=150, seed=7)
    return path


def _reference(path: Path) -> tuple[list[tuple[str, str, str]], int]:
    """Alert triples and dead-letter count of one whole-file pass, without the runner."""
    dec = FakeJsonlDecoder(str(path))
    eng = FakeEngine()
    res = dec.feed([ln for ln in path.read_bytes().split(b"\n")[:-1]], 1)
    out = eng.process(res.positions)
    alerts = [*out.alerts, *eng.finish().alerts]
    return sorted(a.line_key for a in alerts), len(res.dead) + len(out.dead)


async def _run_file(path: Path, tmp: Path, **kw: object) -> tuple[list[tuple[str, str, str]], object]:
    out = tmp / "alerts.jsonl"
    result = await run(
        [FileInput(path)],
        fake_decoder_factory,
        kw.pop("engine", FakeEngine()),  # type: ignore[arg-type]
        [JsonlSink(out)],
        DeadLetterJsonlSink(tmp / "dead.jsonl"),
        stats_every_s=0,
        **kw,  # type: ignore[arg-type]
    )
    return sorted(read_triples(out)), result


@pytest.mark.parametrize("batch_size", [1, 13, 500, 100_000])
async def test_runner_output_equals_a_direct_pass_whatever_the_batch_size(
    track: Path, tmp_path: Path, batch_size: int
) -> None:
    expected, n_dead = _reference(track)
    got, result = await _run_file(track, tmp_path, batch_size=batch_size)
    assert got == expected
    assert len((tmp_path / "dead.jsonl").read_bytes().splitlines()) == n_dead
    assert result.counts.balanced()  # type: ignore[attr-defined]
    assert result.counts.input_lines == len(track.read_bytes().splitlines())  # type: ignore[attr-defined]
    assert result.finished  # type: ignore[attr-defined]


async def test_summary_holds_no_wall_clock_figures_and_is_deterministic(track: Path, tmp_path: Path) -> None:
    blobs = []
    for k in range(2):
        d = tmp_path / str(k)
        d.mkdir()
        _, result = await _run_file(track, d, batch_size=64 * (k + 1))
        write_summary(d / "s.json", result.summary(zone_version="v"))  # type: ignore[attr-defined]
        blobs.append((d / "s.json").read_bytes())
    assert blobs[0] == blobs[1]
    summary = orjson.loads(blobs[0])
    text = blobs[0].decode()
    for wall in ("elapsed", "per_s", "lag"):
        assert wall not in text
    assert summary["counts"]["dead_letter"] == sum(summary["dead_letter_reasons"].values())
    assert summary["watermark_delay_s"] == 0.0
    assert summary["open_alerts"] >= 1


class SlowSink:
    """A sink that takes ``delay_s`` per batch and records how far the sources had read meanwhile."""

    def __init__(self, delay_s: float) -> None:
        self.name = "slow"
        self.delay_s = delay_s
        self.alerts: list[Alert] = []
        self.writes = 0

    async def start(self) -> None:
        pass

    async def write(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)

    async def flush(self) -> None:
        self.writes += 1
        await asyncio.sleep(self.delay_s)

    async def close(self) -> None:
        pass


async def test_slow_sink_pauses_the_source_instead_of_growing_memory(track: Path) -> None:
    sink = SlowSink(0.01)
    runner = Runner(
        [FileInput(track)], fake_decoder_factory, FakeEngine(), [sink], batch_size=20, queue_batches=2, stats_every_s=0
    )
    result = await runner.run()
    total = result.counts.input_lines
    bound = (2 * 2 + 3) * 20  # two queues of 2 batches, plus one batch in each stage
    assert total > 10 * bound
    assert result.max_lines_in_flight <= bound
    assert runner.source_blocked_s > 0.5  # the source spent its time waiting, not reading ahead
    assert sorted(a.line_key for a in sink.alerts) == _reference(track)[0]


async def test_micro_batches_are_bounded_by_size_and_by_delay() -> None:
    async def trickle() -> AsyncIterator[list[int]]:
        yield [1, 2, 3]
        await asyncio.sleep(0.4)
        yield list(range(10))

    t0 = time.monotonic()
    seen: list[tuple[list[int], float]] = []
    async for b in micro_batches(trickle(), max_lines=4, max_delay_s=0.05):
        seen.append((b, time.monotonic() - t0))
    assert [b for b, _ in seen] == [[1, 2, 3], [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert seen[0][1] < 0.3  # emitted after ~50 ms, not after the source's next chunk at 0.4 s


async def test_micro_batches_reraise_a_source_error() -> None:
    async def broken() -> AsyncIterator[list[int]]:
        yield [1]
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        async for _ in micro_batches(broken(), max_lines=10, max_delay_s=0.05):
            pass


async def test_live_input_gives_the_same_alerts_as_the_file(track: Path, tmp_path: Path) -> None:
    lines = track.read_bytes().split(b"\n")[:-1]

    async def chunks() -> AsyncIterator[list[bytes]]:
        for i in range(0, len(lines), 333):
            yield lines[i : i + 333]
            await asyncio.sleep(0)

    sink = SlowSink(0)
    await run([LiveInput("live", chunks)], fake_decoder_factory, FakeEngine(), [sink], batch_size=256, stats_every_s=0)
    assert sorted(a.line_key for a in sink.alerts) == _reference(track)[0]


def _n_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


@pytest.mark.parametrize("phase", ["decode", "merge"])
async def test_stop_checkpoints_and_resume_continues_exactly(track: Path, tmp_path: Path, phase: str) -> None:
    """A requested stop (what SIGTERM does) writes a final checkpoint, in pass 1 (decoding the file) or in
    pass 2 (the event-time merge through the engine); the resumed run completes the output with no line
    missing and none repeated, and writes the uninterrupted run's summary."""
    expected, _ = _reference(track)
    state = tmp_path / "state"
    out = tmp_path / "alerts.jsonl"
    pass1_batches = -(-_n_lines(track) // 50)

    class StoppingSink(JsonlSink):  # pass 2: stop after the 10th batch with alert lines
        async def flush(self) -> None:
            await super().flush()
            self.n = getattr(self, "n", 0) + 1
            if phase == "merge" and self.n == 10:
                runner.request_stop()

    def decoders(name: str, head: bytes, live: bool) -> FakeJsonlDecoder:
        class Stopping(FakeJsonlDecoder):  # pass 1: stop half-way through decoding the file
            def feed(self, lines: Sequence[bytes], first_line: int, arrival_ts_s: float | None = None) -> DecodeResult:
                self.calls = getattr(self, "calls", 0) + 1
                if phase == "decode" and self.calls == pass1_batches // 2:
                    runner.request_stop()
                return super().feed(lines, first_line, arrival_ts_s)

        return Stopping(name)

    runner = Runner(
        [FileInput(track)],
        decoders,
        FakeEngine(),
        [StoppingSink(out)],
        batch_size=50,
        state_dir=state,
        stats_every_s=0,
        checkpoint_every_s=3600,
    )
    first = await runner.run()
    assert not first.finished
    ckpt = load_checkpoint(state)
    assert ckpt is not None and not ckpt.finished
    n_first = len(read_triples(out))
    if phase == "decode":
        assert ckpt.inputs[0].lines == first.counts.input_lines < _n_lines(track)
        assert ckpt.inputs[0].records == 0 and n_first == 0  # the engine has seen nothing yet
    else:
        assert ckpt.inputs[0].lines == _n_lines(track) and ckpt.inputs[0].closed
        assert 0 < ckpt.inputs[0].records < first.counts.positions
        assert 0 < n_first < len(expected)
    second = await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine.restore(ckpt.engine_state),
        [JsonlSink(out)],
        state_dir=state,
        resume=ckpt,
        batch_size=50,
        stats_every_s=0,
    )
    got = read_triples(out)
    assert sorted(got) == expected  # a clean stop re-emits nothing
    assert second.finished
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    _, ref = await _run_file(track, ref_dir, batch_size=50)
    assert second.summary() == ref.summary()  # type: ignore[attr-defined]


async def test_periodic_checkpoints_are_consistent_cuts(track: Path, tmp_path: Path) -> None:
    """Every checkpoint names a point whose alerts are all in the sink already (written only after flush)."""
    state = tmp_path / "state"
    out = tmp_path / "alerts.jsonl"
    seen: list[tuple[int, int]] = []

    class Watch(JsonlSink):
        async def flush(self) -> None:
            await super().flush()
            ck = load_checkpoint(state)
            if ck is not None:
                seen.append((ck.inputs[0].records, len(read_triples(out))))

    await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine(),
        [Watch(out)],
        state_dir=state,
        batch_size=100,
        checkpoint_every_s=0,
        stats_every_s=0,
    )
    merging = [x for x in seen if x[0] > 0]
    assert len(merging) > 10
    # The track is in time order, so the first `records` merged records are its first positions.
    positions = FakeJsonlDecoder("x").feed(track.read_bytes().split(b"\n")[:-1], 1).positions
    for records, n_in_file in merging[:: max(1, len(merging) // 8)]:
        n_alerts = len(FakeEngine().process(positions.take(np.arange(records))).alerts)
        assert n_alerts <= n_in_file


async def test_resume_in_the_decode_pass_rebuilds_decoder_state(track: Path, tmp_path: Path) -> None:
    """FakeJsonlDecoder numbers records; a resume that did not decode the file from its start again would
    dead-letter every position. Decode results already delivered are not delivered twice."""
    state = tmp_path / "state"
    lines = track.read_bytes().split(b"\n")[:-1]
    half = len(lines) // 2
    res = FakeJsonlDecoder(str(track)).feed(lines[:half], 1)
    ckpt = Checkpoint(1, FakeEngine().snapshot(), (InputOffset(str(track), half),), {"counts": res.counts.to_dict()})
    save_checkpoint(state, ckpt)
    result = await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine.restore(ckpt.engine_state),
        [SlowSink(0)],
        DeadLetterJsonlSink(tmp_path / "dead.jsonl"),
        state_dir=state,
        resume=load_checkpoint(state),
        batch_size=77,  # another batch size than the (imagined) first run: the resume point splits a batch
        stats_every_s=0,
    )
    assert result.counts.dead_letter_reasons.get("bad_value", 0) == 0
    assert result.counts.input_lines == len(lines) and result.counts.balanced()
    _, n_dead = _reference(track)
    assert len((tmp_path / "dead.jsonl").read_bytes().splitlines()) == n_dead - len(res.dead)


async def test_resume_with_other_inputs_is_refused(track: Path, tmp_path: Path) -> None:
    ckpt = Checkpoint(1, FakeEngine().snapshot(), (InputOffset("elsewhere.jsonl", 3),))
    with pytest.raises(ConfigError, match="same --input"):
        Runner([FileInput(track)], fake_decoder_factory, FakeEngine(), [], resume=ckpt)


async def test_strict_stops_at_the_first_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "1", "ts": 1, "lon": 1, "lat": 1}\nnot json\n{"id": "1", "ts": 2, "lon": 1, "lat": 1}\n')
    with pytest.raises(StrictStop, match="line 2: unparseable"):
        await run([FileInput(path)], fake_decoder_factory, FakeEngine(), [], strict=True, stats_every_s=0)


async def test_gzip_input_resumes_by_line_count(track: Path, tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(track.read_bytes()))
    got, _ = await _run_file(gz, tmp_path, batch_size=300)
    assert got == _reference(track)[0]


async def test_stats_line_has_every_field(track: Path) -> None:
    buf = io.StringIO()
    await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine(),
        [SlowSink(0.01)],
        batch_size=50,
        stats_every_s=0.1,
        stats_stream=buf,
    )
    lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("geofence-stats")]
    assert lines
    fields = dict(kv.split("=", 1) for kv in lines[-1].split()[1:])
    for key in (
        "positions_per_s",
        "lag_s",
        "watermark_delay_s",
        "dead_letter_per_s",
        "dead_letter_pct",
        "open_alerts",
        "queue_in",
        "queue_out",
    ):
        assert key in fields
    assert float(fields["lag_s"]) > 0  # generated times are in the past
    assert float(fields["watermark_delay_s"]) == 0.0


def test_checkpoint_roundtrip_and_corruption_is_refused(tmp_path: Path) -> None:
    ck = Checkpoint(3, b"\x00engine\xff", (InputOffset("a", 10, True, True, 77, True),), {"alert_lines": 5}, True)
    save_checkpoint(tmp_path, ck)
    assert load_checkpoint(tmp_path) == ck
    p = tmp_path / "checkpoint.bin"
    p.write_bytes(p.read_bytes()[:-2])
    with pytest.raises(ConfigError, match="sha256"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "none") is None


def test_decode_result_shape_used_by_the_runner() -> None:
    """The fake decoder returns the real DecodeResult (so the runner is tested against the real type)."""
    assert isinstance(FakeJsonlDecoder("x").feed([b""], 1), DecodeResult)


def _cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-m", "tests.fakes", "--stats-every-s", "0", *args],
        input=stdin,
        capture_output=True,
        cwd=repo,
        timeout=60,
    )


def test_cli_reads_stdin_and_writes_stdout_by_default(track: Path) -> None:
    done = _cli([], stdin=track.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    got = sorted((o["alert_id"], o["status"], o["ts"]) for o in map(orjson.loads, done.stdout.splitlines()))
    assert got == _reference(track)[0]


def test_cli_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"garbage\n")
    strict = _cli(["--input", str(bad), "--strict"])
    assert strict.returncode == 1 and b"line 1: unparseable" in strict.stderr
    missing = _cli(["--input", str(tmp_path / "nope.jsonl")])
    assert missing.returncode == 2 and b"nope.jsonl" in missing.stderr
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "checkpoint.bin").write_bytes(b"junk")
    corrupt = _cli(["--input", str(bad), "--state", str(tmp_path / "state")])
    assert corrupt.returncode == 2 and b"not a geofence checkpoint" in corrupt.stderr


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.lists(st.integers(), max_size=30), max_size=20),
    max_lines=st.integers(min_value=1, max_value=17),
)
async def test_micro_batches_keep_every_item_in_order_within_the_size_bound(
    chunks: list[list[int]], max_lines: int
) -> None:
    async def source() -> AsyncIterator[list[int]]:
        for c in chunks:
            yield c

    batches = [b async for b in micro_batches(source(), max_lines=max_lines, max_delay_s=0.05)]
    assert [x for b in batches for x in b] == [x for c in chunks for x in c]
    assert all(0 < len(b) <= max_lines for b in batches)


async def test_resuming_a_finished_state_is_a_no_op(track: Path, tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "a.jsonl"
    first = await run(
        [FileInput(track)], fake_decoder_factory, FakeEngine(), [JsonlSink(out)], state_dir=state, stats_every_s=0
    )
    before = out.read_bytes()
    ckpt = load_checkpoint(state)
    assert ckpt is not None and ckpt.finished
    again = await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine.restore(ckpt.engine_state),
        [JsonlSink(out)],
        state_dir=state,
        resume=ckpt,
        stats_every_s=0,
    )
    assert out.read_bytes() == before
    assert again.summary() == first.summary()


# -- file order ----------------------------------------------------------------------------------


def _without_seq(lines: list[bytes]) -> list[bytes]:
    """Track lines without the ``seq`` field (so that regrouped files pass FakeJsonlDecoder's check)."""
    out = []
    for ln in lines:
        try:
            obj = orjson.loads(ln)
        except orjson.JSONDecodeError:
            out.append(ln)
            continue
        obj.pop("seq", None)
        out.append(orjson.dumps(obj))
    return out


def _grouped(lines: list[bytes]) -> list[bytes]:
    """The same lines grouped by subject, like the Suez CSV (garbage lines stay where they sort)."""
    def subject(ln: bytes) -> str:
        try:
            return str(orjson.loads(ln)["id"])
        except (orjson.JSONDecodeError, KeyError):
            return ""

    return sorted(lines, key=subject)  # stable: each subject's lines keep their order


@pytest.fixture(scope="module")
def ordered_and_grouped(track: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("order")
    lines = _without_seq(track.read_bytes().split(b"\n")[:-1])
    ordered, grouped = d / "ordered.jsonl", d / "grouped.jsonl"
    ordered.write_bytes(b"\n".join(lines) + b"\n")
    grouped.write_bytes(b"\n".join(_grouped(lines)) + b"\n")
    return ordered, grouped


async def test_a_file_grouped_by_subject_is_processed_in_event_time_order(
    ordered_and_grouped: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.fakes.LATE_S", 60.0)  # the real engine's default reorder tolerance
    ordered, grouped = ordered_and_grouped
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want, ref = await _run_file(ordered, tmp_path / "a", batch_size=100)
    got, res = await _run_file(grouped, tmp_path / "b", batch_size=100)
    assert got == want
    # In line order the first subject would carry the event time to the end and make the others late.
    direct = FakeEngine()
    direct.process(FakeJsonlDecoder("g").feed(grouped.read_bytes().split(b"\n")[:-1], 1).positions)
    assert direct.late > 1000
    assert res.counts.dead_letter_reasons.get("late", 0) == 0  # type: ignore[attr-defined]
    summary, ref_summary = res.summary(), ref.summary()  # type: ignore[attr-defined]
    assert summary["sorted_inputs"] == [str(grouped)] and ref_summary["sorted_inputs"] == []
    assert any("not in event-time order" in n for n in summary["notes"]) and ref_summary["notes"] == []
    assert summary["counts"] == ref_summary["counts"] and summary["accounting_balanced"]
    # Dead letters (here: the garbage lines) are reported exactly, with their own line numbers.
    dead = [orjson.loads(x) for x in (tmp_path / "b" / "dead.jsonl").read_bytes().splitlines()]
    grouped_lines = grouped.read_bytes().split(b"\n")
    assert dead and all(grouped_lines[d["line"] - 1].decode() == d["raw"] for d in dead)
    assert len(dead) == summary["counts"]["dead_letter"]


@pytest.mark.parametrize("budget_rows", [37, 400])
async def test_a_tiny_sort_memory_spills_runs_and_changes_nothing(
    ordered_and_grouped: tuple[Path, Path], tmp_path: Path, budget_rows: int
) -> None:
    from streams.order import ROW_BYTES

    ordered, grouped = ordered_and_grouped
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want, ref = await _run_file(ordered, tmp_path / "a", batch_size=64)
    spill = tmp_path / "spill"
    got, res = await _run_file(
        grouped, tmp_path / "b", batch_size=64, sort_memory_bytes=budget_rows * ROW_BYTES, sort_dir=spill
    )
    # A run is spilled once a decoded batch (64 lines) takes the buffer past the budget.
    assert res.spill_runs >= res.counts.positions // (budget_rows + 64) > 3  # type: ignore[attr-defined]
    assert got == want
    summary, ref_summary = res.summary(), ref.summary()  # type: ignore[attr-defined]
    for key in ("inputs", "sorted_inputs", "notes"):
        summary.pop(key), ref_summary.pop(key)
    assert summary == ref_summary
    assert list(spill.iterdir()) == []  # spill files are removed at the end


async def test_several_file_inputs_are_merged_into_one_event_time_order(
    ordered_and_grouped: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two halves of a feed (by subject) give the whole feed's alerts; read side by side they would not."""
    ordered, _ = ordered_and_grouped
    lines = ordered.read_bytes().split(b"\n")[:-1]
    parts = [tmp_path / "even.jsonl", tmp_path / "odd.jsonl"]

    def half(i: int, ln: bytes) -> int:
        try:
            return int(orjson.loads(ln)["id"]) % 2
        except (orjson.JSONDecodeError, KeyError):
            return i % 2  # garbage lines go to either half

    for k, p in enumerate(parts):
        p.write_bytes(b"\n".join(ln for i, ln in enumerate(lines) if half(i, ln) == k) + b"\n")
    sink = SlowSink(0)
    res = await run(
        [FileInput(p) for p in parts], fake_decoder_factory, FakeEngine(), [sink], batch_size=50, stats_every_s=0
    )
    (tmp_path / "ref").mkdir()
    want, _ = await _run_file(ordered, tmp_path / "ref", batch_size=50)
    assert sorted(a.line_key for a in sink.alerts) == want
    assert res.sorted_inputs == [] and res.file_inputs == [str(p) for p in parts]
    assert any("merged by event time" in n for n in res.notes())


# -- live sources that commit (Kafka) ------------------------------------------------------------------


class CommittingSource:
    """A live input with the Kafka source's ``commit_lines`` hook; records what the runner declared durable."""

    def __init__(self, lines: list[bytes], chunk: int = 100) -> None:
        self.lines = lines
        self.chunk = chunk
        self.commits: list[int] = []

    async def _gen(self) -> AsyncIterator[list[bytes]]:
        for i in range(0, len(self.lines), self.chunk):
            yield self.lines[i : i + self.chunk]
            await asyncio.sleep(0.001)

    def __aiter__(self) -> AsyncIterator[list[bytes]]:
        return self._gen()

    async def commit_lines(self, n: int) -> None:
        self.commits.append(n)


@pytest.mark.parametrize("with_state", [False, True])
async def test_live_offsets_are_committed_only_once_durable(
    track: Path, tmp_path: Path, with_state: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --state: after the sinks flushed a batch; with --state: when a checkpoint covering it is written."""
    import streams.runner

    lines = track.read_bytes().split(b"\n")[:-1]
    source = CommittingSource(lines)
    state = tmp_path / "state" if with_state else None
    checkpoints: list[int] = []
    save = streams.runner.save_checkpoint

    def recording_save(directory: Path, ckpt: Checkpoint) -> Path:
        assert not source.commits or source.commits[-1] <= max(checkpoints)  # no commit ahead of a checkpoint
        path = save(directory, ckpt)
        checkpoints.append(ckpt.inputs[0].lines)
        return path

    monkeypatch.setattr(streams.runner, "save_checkpoint", recording_save)

    class Watch(JsonlSink):
        async def flush(self) -> None:
            await super().flush()
            # Nothing is ever committed beyond what the sink has made durable.
            assert not source.commits or source.commits[-1] <= flushed_through()

    def flushed_through() -> int:
        return runner.lines_delivered

    runner = Runner(
        [LiveInput("kafka://test/t", lambda: source)],
        fake_decoder_factory,
        FakeEngine(),
        [Watch(tmp_path / "a.jsonl")],
        batch_size=64,
        state_dir=state,
        checkpoint_every_s=0,
        stats_every_s=0,
    )
    result = await runner.run()
    assert result.finished and source.commits
    assert source.commits == sorted(source.commits) and source.commits[-1] == len(lines)
    if with_state:
        assert len(checkpoints) > 5 and set(source.commits) <= set(checkpoints)


async def test_micro_batches_lose_no_chunk_when_the_deadline_fires_as_it_arrives() -> None:
    """Regression: with wait_for, a chunk dequeued at the moment the 50 ms deadline fired was cancelled away
    (a TCP feed lost 215 of 11,603 lines). Chunks trickle in around the deadline while the consumer now and
    then blocks the loop, which makes the deadline and the arrival coincide."""
    import random

    seed = 20260601
    print(f"seed={seed}")
    rng = random.Random(seed)
    n_chunks = 400

    async def trickle() -> AsyncIterator[list[int]]:
        for k in range(n_chunks):
            yield [k]
            await asyncio.sleep(rng.choice((0.0, 0.0005, 0.001, 0.002)))

    got: list[int] = []
    async for batch in micro_batches(trickle(), max_lines=7, max_delay_s=0.001):
        got.extend(batch)
        if rng.random() < 0.3:
            time.sleep(0.002)  # a busy event loop
    assert got == list(range(n_chunks))


async def test_file_and_live_inputs_together(track: Path, tmp_path: Path) -> None:
    """The merged file records and a live feed share the pipeline; every line of both is accounted for."""
    lines = track.read_bytes().split(b"\n")[:-1]

    async def chunks() -> AsyncIterator[list[bytes]]:
        for i in range(0, len(lines), 500):
            yield lines[i : i + 500]
            await asyncio.sleep(0.005)

    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(track.read_bytes())
    sink = SlowSink(0)

    def decoders(name: str, head: bytes, live: bool) -> FakeJsonlDecoder:
        return FakeJsonlDecoder(name)

    result = await run(
        [FileInput(copy), LiveInput("live", chunks)], decoders, FakeEngine(), [sink], batch_size=128, stats_every_s=0
    )
    assert result.finished and result.counts.balanced()
    assert result.counts.input_lines == 2 * len(lines)
    assert result.file_inputs == [str(copy)] and result.notes() == []
