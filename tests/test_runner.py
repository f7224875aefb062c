"""The embedded runner: micro-batching, backpressure, checkpoints, stop/resume, stats and summary."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

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


async def test_stop_checkpoints_and_resume_continues_exactly(track: Path, tmp_path: Path) -> None:
    """A requested stop (what SIGTERM does) writes a final checkpoint; the resumed run completes the output
    with no line missing and none repeated, and writes the uninterrupted run's summary."""
    expected, _ = _reference(track)
    state = tmp_path / "state"
    out = tmp_path / "alerts.jsonl"

    class StoppingSink(JsonlSink):
        async def flush(self) -> None:
            await super().flush()
            self.n = getattr(self, "n", 0) + 1
            if self.n == 40:
                runner.request_stop()

    runner = Runner(
        [FileInput(track)],
        fake_decoder_factory,
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
    assert ckpt.inputs[0].lines == first.counts.input_lines < len(track.read_bytes().splitlines())
    n_first = len(read_triples(out))
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
    assert sorted(read_triples(out)) == expected
    assert second.finished
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    _, ref = await _run_file(track, ref_dir, batch_size=50)
    assert second.summary() == ref.summary()  # type: ignore[attr-defined]


async def test_periodic_checkpoints_are_consistent_cuts(track: Path, tmp_path: Path) -> None:
    """Every checkpoint names an offset whose alerts are all in the sink already (written only after flush)."""
    state = tmp_path / "state"
    out = tmp_path / "alerts.jsonl"
    seen: list[tuple[int, int]] = []

    class Watch(JsonlSink):
        async def flush(self) -> None:
            await super().flush()
            ck = load_checkpoint(state)
            if ck is not None:
                seen.append((ck.inputs[0].lines, len(read_triples(out))))

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
    assert len(seen) > 10
    # Replaying up to each checkpointed offset yields no more lines than the file held when it was current.
    lines = track.read_bytes().split(b"\n")[:-1]
    for offset, n_in_file in seen[:: max(1, len(seen) // 8)]:
        dec, eng = FakeJsonlDecoder("x"), FakeEngine()
        n_alerts = len(eng.process(dec.feed(lines[:offset], 1).positions).alerts)
        assert n_alerts <= n_in_file


async def test_resume_rebuilds_decoder_state_by_warm_up(track: Path, tmp_path: Path) -> None:
    """FakeJsonlDecoder numbers records; a resume that skipped its warm-up would dead-letter every position."""
    state = tmp_path / "state"
    lines = track.read_bytes().split(b"\n")[:-1]
    half = len(lines) // 2
    dec, eng = FakeJsonlDecoder(str(track)), FakeEngine()
    res = dec.feed(lines[:half], 1)
    eng.process(res.positions)
    ckpt = Checkpoint(1, eng.snapshot(), (InputOffset(str(track), half, None),), {"counts": res.counts.to_dict()})
    save_checkpoint(state, ckpt)
    result = await run(
        [FileInput(track)],
        fake_decoder_factory,
        FakeEngine.restore(ckpt.engine_state),
        [SlowSink(0)],
        state_dir=state,
        resume=load_checkpoint(state),
        batch_size=77,
        stats_every_s=0,
    )
    assert result.counts.dead_letter_reasons.get("bad_value", 0) == 0
    assert result.counts.input_lines == len(lines)


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
    ck = Checkpoint(3, b"\x00engine\xff", (InputOffset("a", 10, 123, False, b"dec"),), {"alert_lines": 5}, True)
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
