"""``geofence replay``: the same alerts as ``geofence run``, the same bytes on every run, pacing, progress, summary."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
import shapely

from geofence.errors import ConfigError
from geofence.timefmt import parse_iso_utc
from replay.driver import run_replay
from replay.options import runner_namespace
from replay.pacing import Pacer, parse_speed
from tests.test_replay_support import (
    SimFiles,
    alert_lines,
    flat_baseline,
    run_cli,
    run_geofence_run,
    simulated,
    triples,
)
from zones import load_zones

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sim() -> SimFiles:
    return simulated(60, 3.0, 5)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return flat_baseline(tmp_path_factory.mktemp("bl") / "baseline.json")


@pytest.fixture(scope="module")
def replayed(sim: SimFiles, baseline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "r1"
    code = run_cli(["replay", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                    "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_two_replays_write_identical_alerts_and_summary_bytes(
    sim: SimFiles, baseline: Path, replayed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r2"
    assert run_cli(["replay", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                    "--out", str(out), "--quiet"]) == 0
    for name in ("alerts.jsonl", "summary.json", "dead_letter.jsonl", "report.html"):
        assert (out / name).read_bytes() == (replayed / name).read_bytes(), name
    assert len(alert_lines(out / "alerts.jsonl")) > 100
    # Another micro-batch size: the same alert lines (the triples; see docs/replay.md on static data in details).
    assert run_cli(["replay", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                    "--out", str(tmp_path / "r3"), "--quiet", "--no-report", "--batch-size", "999"]) == 0
    assert triples(tmp_path / "r3" / "alerts.jsonl") == triples(replayed / "alerts.jsonl")
    # Replaying into the same directory again replaces the outputs instead of appending to them.
    assert run_cli(["replay", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                    "--out", str(out), "--quiet", "--no-report"]) == 0
    assert (out / "alerts.jsonl").read_bytes() == (replayed / "alerts.jsonl").read_bytes()


def test_replay_alert_lines_equal_geofence_run(sim: SimFiles, baseline: Path, replayed: Path, tmp_path: Path) -> None:
    alerts, summary = tmp_path / "run_alerts.jsonl", tmp_path / "run_summary.json"
    code = run_geofence_run(["--input", str(sim.feed), "--plans", str(sim.plans), "--baseline", str(baseline),
                             "--alerts", str(alerts), "--summary", str(summary), "--stats-every-s", "0"])
    assert code == 0
    ours = triples(replayed / "alerts.jsonl")
    assert ours == triples(alerts)  # same triples, same order
    assert Counter(a["type"] for a in alert_lines(alerts))["zone_enter"] > 0
    # The run's summary is the replay summary's base, field for field.
    run_summary = orjson.loads(summary.read_bytes())
    replay_summary = orjson.loads((replayed / "summary.json").read_bytes())
    assert {k: replay_summary[k] for k in run_summary} == run_summary


def test_summary_content_matches_the_alerts_and_the_input(sim: SimFiles, replayed: Path) -> None:
    summary = orjson.loads((replayed / "summary.json").read_bytes())
    lines = alert_lines(replayed / "alerts.jsonl")
    assert not [k for k in _keys(summary) if re.search(r"elapsed|_per_s$|^lag|wall", k)]
    assert summary["accounting_balanced"] is True
    assert summary["counts"]["input_lines"] == len(sim.feed.read_bytes().splitlines())
    incidents: dict[str, str] = {}
    for a in lines:
        incidents.setdefault(a["alert_id"], a["type"])
    assert summary["alerts_by_type"] == dict(sorted(Counter(incidents.values()).items()))
    enters = Counter(a["zone_id"] for a in lines if a["type"] == "zone_enter")
    per_zone = summary["per_zone"]
    assert {z: v["visits"] for z, v in per_zone.items() if v["visits"]} == dict(enters)
    exits = Counter(a["zone_id"] for a in lines if a["type"] == "zone_exit")
    assert all(per_zone[z]["visits"] - per_zone[z]["open_visits"] == exits.get(z, 0) for z in per_zone)
    per_subject = summary["per_subject"]
    assert sum(v["positions"] for v in per_subject.values()) == summary["counts"]["positions"]
    opened = Counter(a["subject_id"] for a in lines if a["status"] in ("open", "event"))
    assert {s: v["alerts"] for s, v in per_subject.items() if v["alerts"]} == dict(opened)
    moving = [v for v in per_subject.values() if v["distance_m"] > 1000]
    assert len(moving) > len(per_subject) // 2  # a 3 h simulation: most vessels sail kilometres


def _keys(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return [str(k) for k in obj] + [k for v in obj.values() for k in _keys(v)]
    return [k for v in obj for k in _keys(v)] if isinstance(obj, list) else []


def test_unique_subjects_per_zone_equal_a_brute_force_shapely_count(sim: SimFiles, replayed: Path) -> None:
    summary = orjson.loads((replayed / "summary.json").read_bytes())
    rows = [orjson.loads(x) for x in sim.feed.read_bytes().splitlines()]
    reports = [r for r in rows if r.get("type") != "static"]
    assert len(reports) == summary["counts"]["positions"]
    ids = np.array([str(r["id"]) for r in reports])
    lon = np.array([r["lon"] for r in reports], dtype=float)
    lat = np.array([r["lat"] for r in reports], dtype=float)
    for fence in load_zones([sim.zones]).fences:
        inside = shapely.intersects_xy(fence.geometry, lon, lat)
        assert summary["per_zone"][fence.id]["unique_subjects"] == len(set(ids[inside].tolist())), fence.id


def test_paced_replay_takes_event_time_over_speed_and_gives_the_same_alerts(
    sim: SimFiles, baseline: Path, tmp_path: Path
) -> None:
    # The first 40 minutes of the recording, replayed as fast as possible and at 800x (3 s of wall time).
    lines = sim.feed.read_bytes().splitlines()
    t0 = parse_iso_utc(orjson.loads(lines[0])["ts"])
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(x + b"\n" for x in lines if parse_iso_utc(orjson.loads(x)["ts"]) < t0 + 2400))
    opts = runner_namespace(baseline=str(baseline), plans=str(sim.plans))
    zones = load_zones([sim.zones])
    fast = run_replay([part], zones, tmp_path / "max", options=opts)
    paced = run_replay([part], zones, tmp_path / "paced", options=opts, speed=800.0)
    for name in ("alerts.jsonl", "summary.json"):
        assert (tmp_path / "paced" / name).read_bytes() == (tmp_path / "max" / name).read_bytes()
    assert fast.alerts and fast.elapsed_s < 2.5  # the pace, not the engine, sets the duration below
    assert paced.elapsed_s >= 0.95 * 2400 / 800 and paced.slept_s > 0


def test_pacer_holds_each_batch_until_its_newest_event_is_due() -> None:
    from geofence.positions import PositionBatch

    def batch(ts: list[float]) -> PositionBatch:
        n = len(ts)
        return PositionBatch.from_columns(subject_id=["a"] * n, ts_s=ts, lon_deg=[0.0] * n, lat_deg=[0.0] * n)

    pacer = Pacer(100.0)  # 100 event seconds per wall second
    t0 = time.monotonic()
    pacer.wait_for(batch([0.0, 10.0]))  # due 0.1 s after the start
    t_first = time.monotonic() - t0
    pacer.wait_for(batch([5.0]))  # behind the clock: the clock never goes backwards, no wait
    t_behind = time.monotonic() - t0
    pacer.wait_for(batch([100.0]))  # due 1 s after the start
    t_last = time.monotonic() - t0
    assert 0.08 <= t_first < 0.5 and t_behind - t_first < 0.05 and t_last >= 0.98
    assert pacer.slept_s >= 0.9
    pacer.cancel()
    t1 = time.monotonic()
    pacer.wait_for(batch([10_000.0]))  # due 100 s later, but cancelled: no more waiting
    assert time.monotonic() - t1 < 0.5


@pytest.mark.parametrize(("text", "expected"), [("max", None), ("MAX", None), ("60", 60.0), ("2.5x", 2.5)])
def test_parse_speed(text: str, expected: float | None) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["-1", "0", "fast", "nan"])
def test_parse_speed_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match="--speed"):
        parse_speed(text)


def test_progress_bar_only_when_asked_or_on_a_terminal(sim: SimFiles, baseline: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "geofence_cli.main", "replay", str(sim.feed), "--baseline", str(baseline),
            "--no-report", "--plans", str(sim.plans)]
    piped = subprocess.run([*base, "--out", str(tmp_path / "a")], capture_output=True, text=True, cwd=REPO,
                           check=True)
    assert "lines/s" not in piped.stderr and "\r" not in piped.stderr
    assert "positions/s" in piped.stderr  # the closing timing line still goes to stderr
    forced = subprocess.run([*base, "--out", str(tmp_path / "b"), "--progress"], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert "lines/s" in forced.stderr and "100%" in forced.stderr


def test_bad_options_exit_2_with_a_reason(sim: SimFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["replay", str(sim.feed), "--out", str(tmp_path), "--speed", "soon"]) == 2
    assert "--speed" in capsys.readouterr().err
    assert run_cli(["replay", str(tmp_path / "missing.nmea"), "--out", str(tmp_path)]) == 2
    assert "not a readable file" in capsys.readouterr().err
    # A rules file that does not parse names itself.
    bad_rules = tmp_path / "bad.toml"
    bad_rules.write_text("[defaults.dwell_exceeded\n")
    assert run_cli(["replay", str(sim.feed), "--out", str(tmp_path / "c"), "--rules", str(bad_rules)]) == 2
    assert "bad.toml" in capsys.readouterr().err


def test_catalogue_percentiles_without_a_baseline_fall_back_to_numbers(sim: SimFiles, tmp_path: Path) -> None:
    """The catalogue's ports say max_dwell_min = "p99": without --baseline the replay runs on the numeric defaults."""
    assert run_cli(["replay", str(sim.feed), "--out", str(tmp_path)]) == 0
    sources = {
        orjson.loads(line)["details"].get("threshold_source")
        for line in (tmp_path / "alerts.jsonl").read_text().splitlines()
        if orjson.loads(line)["type"] == "dwell_exceeded"
    }
    assert not any(s and s.startswith("baseline") for s in sources)


def test_replay_refuses_live_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="live source"):
        run_replay(["udp://127.0.0.1:9"], load_zones([REPO / "zones" / "yangtze.geojson"]), tmp_path)
