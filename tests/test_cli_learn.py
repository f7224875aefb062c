"""``geofence learn``: a baseline learned from normal traffic flags the injected long dwells and not the normal ones.

One seeded 16 h simulation with the simulator's injected anomalies, among them
vessels anchoring 2–3 × the anchorage's limit. The normal traffic is that
recording without the vessels the labels name as anomalous, plus two more
normal days (other seeds, no anomalies); the baseline is learned from these
three recordings with ``geofence learn``. Every ``max_dwell_min`` in the zone file used for learning
and detection is ``"p99"`` (ports and berths as in the catalogue, the anchorages
too), so every dwell limit comes from the baseline. Replaying the whole
recording must flag each injected long dwell and no normal vessel.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from geofence.baseline import Baseline
from geofence.timefmt import parse_iso_utc
from tests.test_replay_support import SimFiles, alert_lines, run_cli, run_geofence_run, simulated
from zones import default_catalogue_path, load_zones

VESSELS, HOURS, SEED = 60, 16.0, 8
#: Seeds of the extra normal days learned from.
EXTRA = (101, 102)


@pytest.fixture(scope="module")
def zones_p99(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = orjson.loads(Path(default_catalogue_path()).read_bytes())
    for feature in doc["features"]:
        if feature["properties"].get("max_dwell_min") is not None:
            feature["properties"]["max_dwell_min"] = "p99"
    path = tmp_path_factory.mktemp("zones") / "zones_p99.geojson"
    path.write_bytes(orjson.dumps(doc))
    return path


@pytest.fixture(scope="module")
def today() -> SimFiles:
    return simulated(VESSELS, HOURS, SEED, downsample_s=60.0)


def _anomalous(sim: SimFiles) -> set[str]:
    return {r["subject_id"] for r in sim.label_rows if r["types"]}


def _without(sim: SimFiles, subjects: set[str], path: Path) -> Path:
    """The recording without the lines (reports and statics) of ``subjects``."""
    kept = [x for x in sim.feed.read_bytes().splitlines() if str(orjson.loads(x)["id"]) not in subjects]
    path.write_bytes(b"\n".join(kept) + b"\n")
    return path


def _subjects(path: Path) -> set[str]:
    return {str(orjson.loads(x)["id"]) for x in path.read_bytes().splitlines()}


@pytest.fixture(scope="module")
def history(today: SimFiles, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Today's normal traffic plus two more normal days (more visits per anchorage to learn from)."""
    normal_today = _without(today, _anomalous(today), tmp_path_factory.mktemp("history") / "normal.jsonl")
    return [normal_today, *(simulated(VESSELS, HOURS, seed, downsample_s=60.0, anomalies=0).feed for seed in EXTRA)]


@pytest.fixture(scope="module")
def learned(history: list[Path], zones_p99: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learn") / "baseline.json"
    assert run_cli(["learn", *map(str, history), "--zones", str(zones_p99), "--out", str(out), "--quiet"]) == 0
    return out


def test_normal_recording_keeps_exactly_the_normal_vessels(today: SimFiles, history: list[Path]) -> None:
    normal = _subjects(history[0])
    assert normal == _subjects(today.feed) - _anomalous(today) and len(normal) > VESSELS // 2


def test_learned_baseline_flags_injected_long_dwells_and_not_normal_ones(
    today: SimFiles, zones_p99: Path, learned: Path, tmp_path: Path
) -> None:
    injected = [r for r in today.label_rows if r.get("anomaly") == "dwell_exceeded"]
    assert injected, "the simulation must inject long anchorage dwells (needs >= 14.5 h)"
    anomalous = _anomalous(today)
    out = tmp_path / "today"
    assert run_cli(["replay", str(today.feed), "--zones", str(zones_p99), "--baseline", str(learned),
                    "--plans", str(today.plans), "--out", str(out), "--quiet", "--no-report"]) == 0
    dwell = [a for a in alert_lines(out / "alerts.jsonl") if a["type"] == "dwell_exceeded" and a["status"] == "open"]
    flagged = {(a["subject_id"], a["zone_id"]) for a in dwell}
    assert {(r["subject_id"], r["zone_id"]) for r in injected} <= flagged
    assert {s for s, _ in flagged} <= anomalous, "a normal vessel's dwell was flagged"

    # The limit each alert used is the learned percentile of its zone and ship class (or the zone's "all").
    baseline = Baseline.from_dict(orjson.loads(learned.read_bytes()))
    for a in dwell:
        ship_type = a["details"].get("vessel", {}).get("ship_type")
        expected = baseline.dwell_limit_min(a["zone_id"], ship_type, "p99")
        assert expected is not None and a["details"]["max_dwell_s"] == pytest.approx(expected * 60.0)


def test_p99_from_the_rules_file_with_geofence_run(
    today: SimFiles, zones_p99: Path, learned: Path, tmp_path: Path
) -> None:
    """``[kinds.anchorage] max_dwell_min = "p99"`` in a rules file, read by ``geofence run --baseline``."""
    doc = orjson.loads(zones_p99.read_bytes())
    for feature in doc["features"]:
        if feature["properties"]["kind"] == "anchorage":
            del feature["properties"]["max_dwell_min"]  # a fence's own value would take precedence
    zones = tmp_path / "zones.geojson"
    zones.write_bytes(orjson.dumps(doc))
    rules = tmp_path / "rules.toml"
    rules.write_text('[kinds.anchorage]\nmax_dwell_min = "p99"\n')
    alerts = tmp_path / "alerts.jsonl"
    assert run_geofence_run(["--input", str(today.feed), "--zones", str(zones), "--rules", str(rules),
                             "--baseline", str(learned), "--plans", str(today.plans), "--alerts", str(alerts),
                             "--stats-every-s", "0"]) == 0
    flagged = {(a["subject_id"], a["zone_id"]) for a in alert_lines(alerts)
               if a["type"] == "dwell_exceeded" and a["status"] == "open"}
    injected = {(r["subject_id"], r["zone_id"]) for r in today.label_rows if r.get("anomaly") == "dwell_exceeded"}
    assert injected and injected <= flagged
    assert {s for s, _ in flagged} <= _anomalous(today)


def test_learned_file_has_percentiles_per_zone_and_class(zones_p99: Path, learned: Path) -> None:
    data = orjson.loads(learned.read_bytes())
    assert data["format"] == "geofence-baseline/1"
    assert data["meta"]["zone_version"] == load_zones([zones_p99]).version
    # Every learned zone has the zone-wide class, and its count is the sum of the ship classes'.
    for zone_id, classes in data["dwell_min"].items():
        assert set(classes["all"]) == {"p50", "p75", "p90", "p95", "p99", "n"}
        assert classes["all"]["n"] == sum(row["n"] for k, row in classes.items() if k != "all"), zone_id
        assert classes["all"]["p50"] <= classes["all"]["p99"]
    # Anchorage dwells: the learned maximum stays within the simulator's normal range (20-60 % of 720 min).
    anchorages = {f.id for f in load_zones([default_catalogue_path()]).fences if f.kind.value == "anchorage"}
    learned_anch = {z: c for z, c in data["dwell_min"].items() if z in anchorages}
    assert learned_anch
    assert all(c["all"]["p99"] <= 0.6 * 720 + 5 for c in learned_anch.values())
    # Speeds are underway samples only (>= 1 kn), in knots, per zone.
    assert data["speed_kn"] and all(c["all"]["p50"] >= 1.0 for c in data["speed_kn"].values())


def test_learned_visits_cover_the_labelled_stays(today: SimFiles, learned: Path) -> None:
    """Every labelled anchorage stay of a normal vessel that ends in the window is learned (transits add more)."""
    data = orjson.loads(learned.read_bytes())
    anchorages = {f.id for f in load_zones([default_catalogue_path()]).fences if f.kind.value == "anchorage"}
    by_zone: dict[str, int] = defaultdict(int)
    days = [(today, _anomalous(today))] + [(simulated(VESSELS, HOURS, s, 60.0, anomalies=0), set()) for s in EXTRA]
    for sim, anomalous in days:
        window_end_s = parse_iso_utc(min(r["start"] for r in sim.label_rows)) + HOURS * 3600.0
        for r in sim.label_rows:
            # A visit cut by the window's end is still open in the engine (censored, not learned); a stay
            # shorter than the anchorages' min_inside_s (300 s) is not a visit to the engine.
            if (not r["types"] and r["subject_id"] not in anomalous and r["visit_zone"] in anchorages
                    and parse_iso_utc(r["end"]) < window_end_s - 600 and r["dwell_s"] >= 600):
                by_zone[r["visit_zone"]] += 1
    got = {z: int(c["all"]["n"]) for z, c in data["dwell_min"].items() if z in anchorages}
    assert by_zone and all(got.get(z, 0) >= n for z, n in by_zone.items()), (got, dict(by_zone))
