"""Acceptance: kill -9 mid-run, restart with the same --state; nothing lost, duplicates identical.

The runner process is ``python -m tests.fakes`` (``streams.runner.run_cli`` with the
fake decoder and the fake or the real engine; the same code path as ``geofence run``).
``FAKE_DELAY_S`` makes each batch slow enough to kill the process in the middle of the input.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.fakes import BOX_GEOJSON, read_triples, write_track_jsonl

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


def _have_real_engine() -> bool:
    try:
        import geofence.engine  # noqa: F401
    except ImportError:
        return False
    return True


ENGINES = ["fake", pytest.param("real", marks=pytest.mark.skipif(not _have_real_engine(), reason="no geofence.engine"))]


@pytest.fixture(scope="module", params=ENGINES)
def workload(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path, Path]:
    """Engine name, input, and the uninterrupted run's alert file and summary."""
    d = tmp_path_factory.mktemp("ref")
    inp = d / "in.jsonl"
    write_track_jsonl(inp, subjects=40, steps=200, seed=3)
    out, summary = d / "alerts.jsonl", d / "summary.json"
    subprocess.run(
        _cmd(inp, out, None, summary, d / "dead.jsonl"), env=_env(0, request.param), check=True, cwd=REPO, timeout=60
    )
    return request.param, inp, out, summary


def _kill_when_progressing(proc: subprocess.Popen[bytes], state: Path, out: Path, after_lines: int) -> bool:
    """SIGKILL once a checkpoint exists and the alert file has grown past ``after_lines``; False if it ended."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if (state / "checkpoint.bin").exists() and out.exists() and len(out.read_bytes().splitlines()) > after_lines:
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    raise AssertionError("the runner made no progress in 30 s")


@pytest.mark.slow
def test_kill_9_and_restart_loses_no_alert_line(workload: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
    engine, inp, ref_out, ref_summary = workload
    expected = read_triples(ref_out)
    seed = random.randrange(10**6)
    print(f"seed={seed}")
    rng = random.Random(seed)
    state, out, summary, dead = tmp_path / "state", tmp_path / "alerts.jsonl", tmp_path / "s.json", tmp_path / "d.jsonl"
    kills = 0
    for _ in range(2):  # two crashes at different points, then a clean finish
        proc = subprocess.Popen(
            _cmd(inp, out, state, summary, dead),
            env=_env(0.01, engine),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        n = len(read_triples(out)) if out.exists() else 0
        kills += _kill_when_progressing(proc, state, out, n + rng.randrange(5, len(expected) // 4))
    assert kills >= 1, "the runner finished before it could be killed; make FAKE_ENGINE_DELAY_S larger"
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


def test_sigterm_flushes_checkpoints_and_exits_cleanly(workload: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
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
    proc.send_signal(signal.SIGTERM)
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
