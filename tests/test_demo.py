"""``geofence demo`` (``make demo``) end to end on a small fleet: every stage runs and the report path is printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(660)  # the subprocess's own 600 s limit comes first, with its output
def test_demo_runs_every_stage_and_ends_with_the_report_path(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "geofence_cli.main",
            "demo",
            "--vessels",
            "24",
            "--hours",
            "2",
            "--history-hours",
            "6",
            "--speed",
            "max",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    # On failure: which stage (the tail of stdout) and why (stderr: a traceback, or the first differing line).
    assert proc.returncode == 0, (
        f"exit code {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-2500:]}\n--- stderr\n{proc.stderr[-4000:]}"
    )
    lines = proc.stdout.strip().splitlines()
    report = Path(lines[-1])
    assert report == (out / "replay" / "report.html").resolve() and report.is_file()
    for stage in ("[1/4] history", "[2/4] today", "[3/4] live", "[4/4] replay"):
        assert any(stage in line for line in lines), stage
    assert any("identical to the live run's, byte for byte" in line for line in lines)
    for name in (
        "history.jsonl",
        "baseline.json",
        "traffic.jsonl",
        "traffic_labels.jsonl",
        "traffic_plans.jsonl",
        "alerts.jsonl",
        "dead_letter.jsonl",
        "replay/summary.json",
        "replay/alerts_over_time.png",
    ):
        assert (out / name).is_file(), name
    alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    serious = [a for a in alerts if a["severity"] != "info"]
    assert serious, "the injected anomalies raise warnings"
    # The live console shows the serious lines (time, STATUS, severity, type, subject), not the zone events.
    shown = [line for line in lines if line.startswith("20") and "  " in line]
    assert len(shown) == len(serious)
    assert not any(" zone_enter " in line for line in shown)
    assert orjson.loads((out / "baseline.json").read_bytes())["format"] == "geofence-baseline/1"


def test_a_replay_that_differs_from_the_live_run_is_explained_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (CI: exit 3 after the report path, no reason given): the first differing line goes to stderr."""
    from geofence_cli.cmd_demo import EXIT_MISMATCH, _explain_mismatch

    live = b'{"alert_id":"a","ts":"1"}\n{"alert_id":"b","ts":"2"}\n{"alert_id":"c","ts":"3"}\n'
    replay = b'{"alert_id":"a","ts":"1"}\n{"alert_id":"b","ts":"9"}\n'
    _explain_mismatch(live, replay, 4096, 20000)
    err = capsys.readouterr().err
    assert "3 live lines in batches of 4096" in err and "2 replay lines in batches of 20000" in err
    assert 'line 2:\n  live:   {"alert_id":"b","ts":"2"}\n  replay: {"alert_id":"b","ts":"9"}' in err
    assert EXIT_MISMATCH == 3 and "Exit code 3" in err
    _explain_mismatch(live, live[: live.rindex(b"{")], 1, 1)  # one run ends early
    assert "line 3:" in (err := capsys.readouterr().err) and "replay: (no more lines)" in err
