"""Acceptance: kill -9 mid-run, restart with the same --state; nothing lost, duplicates identical.

Two set-ups. ``python -m tests.fakes`` is ``streams.runner.run_cli`` with the fake decoder
and the fake or the real engine; ``FAKE_DELAY_S`` makes each batch slow enough to kill the
process in either pass. ``geofence run`` itself (console script, real NMEA decoder and
engine on simulated traffic) is killed wherever it is when the checkpoints show progress.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from geofence.errors import ConfigError
from streams.checkpoint import load_checkpoint
from tests.fakes import BOX_GEOJSON, read_triples, sim_world, write_track_jsonl

REPO = Path(__file__).resolve().parent.parent


def _cmd(inp: Path, out: Path, state: Path | None, summary: Path, dead: Path) -> list[str]:
    zones = inp.parent / "box.geojson"
    zones.write_bytes(orjson.dumps(BOX_GEOJSON))
    cmd = [
        sys.executable,
        "-m",
        "tests.fakes",
        "--zones",
        str(zones),
        "--input",
        str(inp),
        "--alerts",
        str(out),
        "--alerts",
        f"sqlite:///{out.with_suffix('.db')}",
        "--dead-letter",
        str(dead),
        "--summary",
        str(summary),
        "--batch-size",
        "100",
        "--checkpoint-every-s",
        "0.1",
        "--stats-every-s",
        "0",
    ]
    return cmd + (["--state", str(state)] if state is not None else [])


def _env(delay_s: float, engine: str) -> dict[str, str]:
    return {**os.environ, "FAKE_DELAY_S": str(delay_s), "FAKE_ENGINE": engine, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path, Path]:
    """Engine name, input, and the uninterrupted run's alert file and summary (fake decoder and engine;
    the real ones are killed through ``geofence run`` below)."""
    d = tmp_path_factory.mktemp("ref")
    inp = d / "in.jsonl"
    write_track_jsonl(inp, subjects=40, steps=200, seed=3)
    out, summary = d / "alerts.jsonl", d / "summary.json"
    cmd = _cmd(inp, out, None, summary, d / "dead.jsonl")
    subprocess.run(cmd, env=_env(0, "fake"), check=True, cwd=REPO, timeout=60)
    return "fake", inp, out, summary


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """SIGKILL once ``ready()``; False if the process ended first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise AssertionError("the runner made no progress in 30 s")


def _lines(path: Path) -> int:
    """Complete lines in a file being appended to (a torn last line is not counted)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _in_decode_pass(state: Path) -> bool:
    """A checkpoint exists from pass 1: decode results delivered, no record through the engine yet."""
    try:
        ck = load_checkpoint(state)
    except ConfigError:
        return False
    return ck is not None and ck.inputs[0].lines > 0 and ck.inputs[0].records == 0


@pytest.mark.slow
def test_kill_9_and_restart_loses_no_alert_line(workload: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
    """One crash while the file is decoded (pass 1), one while its records go through the engine (pass 2)."""
    engine, inp, ref_out, ref_summary = workload
    expected = read_triples(ref_out)
    seed = random.randrange(10**6)
    print(f"seed={seed}")
    rng = random.Random(seed)
    state, out, summary, dead = tmp_path / "state", tmp_path / "alerts.jsonl", tmp_path / "s.json", tmp_path / "d.jsonl"
    kills = 0
    for crash in ("decode", "merge"):
        proc = subprocess.Popen(
            _cmd(inp, out, state, summary, dead),
            env=_env(0.01, engine),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if crash == "decode":
            kills += _kill_when(proc, lambda: _in_decode_pass(state))
        else:
            n = _lines(out) + rng.randrange(5, len(expected) // 4)
            kills += _kill_when(proc, lambda n=n: (state / "checkpoint.bin").exists() and _lines(out) > n)
    assert kills == 2, "the runner finished before it could be killed; make FAKE_DELAY_S larger"
    done = subprocess.run(
        _cmd(inp, out, state, summary, dead), env=_env(0, engine), cwd=REPO, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    got = read_triples(out)
    assert set(got) == set(expected), "alert lines lost or invented across the crash"
    assert Counter(expected).most_common(1)[0][1] == 1
    # Duplicates are re-emissions of identical lines.
    by_triple: dict[tuple[str, str, str], bytes] = {}
    for line in out.read_bytes().splitlines():
        obj = orjson.loads(line)
        key = (obj["alert_id"], obj["status"], obj["ts"])
        assert by_triple.setdefault(key, line) == line
    # The summary of the resumed run equals the uninterrupted one byte for byte (apart from input names).
    assert orjson.loads(summary.read_bytes())["counts"] == orjson.loads(ref_summary.read_bytes())["counts"]
    a, b = orjson.loads(summary.read_bytes()), orjson.loads(ref_summary.read_bytes())
    a.pop("inputs"), b.pop("inputs")
    assert a == b
    # The SQLite store deduplicated the redelivered lines.
    import sqlite3

    with sqlite3.connect(out.with_suffix(".db")) as db:
        rows = db.execute("SELECT alert_id, status, ts FROM alerts").fetchall()
    assert sorted(rows) == sorted(expected)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_flushes_checkpoints_and_exits_cleanly(
    workload: tuple[str, Path, Path, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    engine, inp, ref_out, _ = workload
    expected = read_triples(ref_out)
    state, out, summary, dead = tmp_path / "state", tmp_path / "alerts.jsonl", tmp_path / "s.json", tmp_path / "d.jsonl"
    proc = subprocess.Popen(
        _cmd(inp, out, state, summary, dead),
        env=_env(0.01, engine),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not (out.exists() and len(out.read_bytes().splitlines()) > 20):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    first = read_triples(out)
    assert 0 < len(first) < len(expected)
    assert orjson.loads(summary.read_bytes())["finished"] is False
    subprocess.run(
        _cmd(inp, out, state, summary, dead), env=_env(0, engine), cwd=REPO, check=True, timeout=60, capture_output=True
    )
    got = read_triples(out)
    assert sorted(got) == sorted(expected)  # a clean stop re-emits nothing: no duplicates at all


# -- the same through the console script, real decoder and engine ----------------------------------------

GEOFENCE = Path(sys.executable).parent / "geofence"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path, Path]:
    """Simulated NMEA and zones, and an uninterrupted ``geofence run``'s alerts and summary."""
    d = tmp_path_factory.mktemp("sim")
    world = sim_world(d)
    out, summary = d / "ref.jsonl", d / "ref.json"
    subprocess.run(
        [str(GEOFENCE), "run", "--zones", str(world["zones"]), "--input", str(world["nmea"]), "--alerts", str(out),
         "--summary", str(summary), "--stats-every-s", "0"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return world, out, summary


@pytest.mark.slow
def test_geofence_run_killed_9_then_restarted_gives_the_uninterrupted_alert_lines(
    sim: tuple[dict[str, Path], Path, Path], tmp_path: Path
) -> None:
    """Issue 5 acceptance: the union of alert lines, deduplicated by triple, equals an uninterrupted run's."""
    world, ref_out, ref_summary = sim
    expected = read_triples(ref_out)
    assert len(expected) > 30 and any(t[1] == "closed" for t in expected)
    seed = random.randrange(10**6)
    print(f"seed={seed}")
    rng = random.Random(seed)
    state, out, summary = tmp_path / "state", tmp_path / "a.jsonl", tmp_path / "s.json"
    cmd = [
        str(GEOFENCE), "run", "--zones", str(world["zones"]), "--input", str(world["nmea"]),
        "--alerts", str(out), "--alerts", f"sqlite:///{tmp_path / 'a.db'}", "--summary", str(summary),
        "--state", str(state), "--batch-size", "32", "--checkpoint-every-s", "0", "--stats-every-s", "0",
    ]  # fmt: skip
    kills = []
    for crash in ("decode", "merge"):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        step = rng.randrange(1, 60) * 32

        def progressed(crash: str = crash, step: int = step) -> bool:
            try:
                ck = load_checkpoint(state)
            except ConfigError:
                return False
            if ck is None:
                return False
            off = ck.inputs[0]
            return off.records == 0 and off.lines >= step if crash == "decode" else off.records >= step

        if _kill_when(proc, progressed):
            kills.append(crash)
    assert kills, "geofence run finished before it could be killed"
    print(f"killed in {kills}")
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    got = read_triples(out)
    assert set(got) == set(expected)
    by_triple: dict[tuple[str, str, str], bytes] = {}
    for line in out.read_bytes().splitlines():
        obj = orjson.loads(line)
        assert by_triple.setdefault((obj["alert_id"], obj["status"], obj["ts"]), line) == line
    import sqlite3

    with sqlite3.connect(tmp_path / "a.db") as db:
        assert sorted(db.execute("SELECT alert_id, status, ts FROM alerts").fetchall()) == sorted(expected)
    a, b = orjson.loads(summary.read_bytes()), orjson.loads(ref_summary.read_bytes())
    a.pop("inputs"), b.pop("inputs")
    assert a == b
