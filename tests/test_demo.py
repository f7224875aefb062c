"""``geofence demo`` (``make demo``) end to end on a small fleet: every stage runs and the report path is printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_every_stage_and_ends_with_the_report_path(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "geofence_cli.main", "demo", "--vessels", "24", "--hours", "2",
         "--history-hours", "6", "--speed", "max", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    report = Path(lines[-1])
    assert report == (out / "replay" / "report.html").resolve() and report.is_file()
    for stage in ("[1/4] history", "[2/4] today", "[3/4] live", "[4/4] replay"):
        assert any(stage in line for line in lines), stage
    assert any("identical to the live run's, byte for byte" in line for line in lines)
    for name in ("history.jsonl", "baseline.json", "traffic.jsonl", "traffic_labels.jsonl", "traffic_plans.jsonl",
                 "alerts.jsonl", "dead_letter.jsonl", "replay/summary.json", "replay/alerts_over_time.png"):
        assert (out / name).is_file(), name
    alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    serious = [a for a in alerts if a["severity"] != "info"]
    assert serious, "the injected anomalies raise warnings"
    # The live console shows the serious lines (time, STATUS, severity, type, subject), not the zone events.
    shown = [line for line in lines if line.startswith("20") and "  " in line]
    assert len(shown) == len(serious)
    assert not any(" zone_enter " in line for line in shown)
    assert orjson.loads((out / "baseline.json").read_bytes())["format"] == "geofence-baseline/1"
