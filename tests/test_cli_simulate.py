"""``geofence simulate`` through the console entry point: files, and ``--out -`` for a pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


def _simulate(tmp_path: Path, out: str) -> subprocess.CompletedProcess[bytes]:
    args = [sys.executable, "-m", "geofence_cli.main", "simulate", "--vessels", "3", "--hours", "0.5", "--seed", "4"]
    args += ["--format", "jsonl", "--out", out, "--labels", str(tmp_path / "labels.jsonl")]
    return subprocess.run(args, capture_output=True, cwd=tmp_path, check=False, timeout=120)


def test_out_dash_writes_the_feed_to_stdout_and_the_summary_to_stderr(tmp_path: Path) -> None:
    piped = _simulate(tmp_path, "-")
    assert piped.returncode == 0, piped.stderr.decode()
    assert not (tmp_path / "-").exists()  # no file literally named "-"
    filed = _simulate(tmp_path, str(tmp_path / "feed.jsonl"))
    assert filed.returncode == 0, filed.stderr.decode()
    assert piped.stdout == (tmp_path / "feed.jsonl").read_bytes()  # same seed, same bytes
    records = [orjson.loads(line) for line in piped.stdout.splitlines()]
    assert records and all("id" in r and "ts" in r for r in records)
    assert b"wrote" in piped.stderr
