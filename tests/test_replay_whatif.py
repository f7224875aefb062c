"""What-if: halving the anchorage dwell limit adds ``dwell_exceeded`` for exactly the visits between the limits.

The simulator's labels record every berth/anchorage visit with its dwell
(``types: []``, ``visit_zone``, ``dwell_s``: first to last report inside). The
engine measures a visit from its ``zone_enter`` (100 m inside, the anchorages'
hysteresis) to its ``zone_exit``, which differs from the label by at most a
reporting interval (180 s at anchor); the test first checks that no visit lies
that close to either limit, so "exactly" is well defined for this seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.test_replay_support import SimFiles, flat_baseline, run_cli, simulated
from zones import default_catalogue_path, load_zones

#: Anchorage visits closer than this to a limit are ambiguous (engine hysteresis + report interval).
MARGIN_S = 300.0


@pytest.fixture(scope="module")
def sim() -> SimFiles:
    return simulated(100, 12.0, 3, downsample_s=60.0)


@pytest.fixture(scope="module")
def whatif(sim: SimFiles, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float], str]:
    tmp = tmp_path_factory.mktemp("whatif")
    doc = orjson.loads(Path(default_catalogue_path()).read_bytes())
    old_limits: dict[str, float] = {}
    for feature in doc["features"]:
        props = feature["properties"]
        if props["kind"] == "anchorage":
            old_limits[props["id"]] = float(props["max_dwell_min"])
            props["max_dwell_min"] = props["max_dwell_min"] / 2
    zones_b = tmp / "zones_halved.geojson"
    zones_b.write_bytes(orjson.dumps(doc))
    baseline = flat_baseline(tmp / "baseline.json")
    out = tmp / "out"
    code = run_cli(["replay", str(sim.feed), "--baseline", str(baseline), "--plans", str(sim.plans), "--out", str(out),
                    "--compare-zones", str(default_catalogue_path()), str(zones_b), "--no-report", "--quiet"])
    assert code == 0
    return out, old_limits, str(zones_b)


def _visits(sim: SimFiles, old_limits: dict[str, float]) -> list[dict[str, Any]]:
    return [r for r in sim.label_rows if not r["types"] and r.get("visit_zone") in old_limits]


def test_halving_the_anchorage_limit_adds_exactly_the_visits_between_the_limits(
    sim: SimFiles, whatif: tuple[Path, dict[str, float], str]
) -> None:
    out, old_limits, _ = whatif
    visits = _visits(sim, old_limits)
    limits = [(v, old_limits[v["visit_zone"]] * 60.0, old_limits[v["visit_zone"]] * 30.0) for v in visits]
    ambiguous = [v for v, old, new in limits if min(abs(v["dwell_s"] - old), abs(v["dwell_s"] - new)) < MARGIN_S]
    assert not ambiguous, f"pick another seed: visits within {MARGIN_S} s of a limit: {ambiguous}"
    between = {(v["subject_id"], v["visit_zone"]) for v, old, new in limits if new < v["dwell_s"] <= old}
    above = {(v["subject_id"], v["visit_zone"]) for v, old, _ in limits if v["dwell_s"] > old}
    below = {(v["subject_id"], v["visit_zone"]) for v, _, new in limits if v["dwell_s"] <= new}
    assert between and below, "the seed must give visits on both sides of the new limit"

    result = orjson.loads((out / "compare.json").read_bytes())
    added = {(i["subject_id"], i["zone_id"]) for i in result["added"]}
    assert {i["type"] for i in result["added"]} == {"dwell_exceeded"}
    assert added == between
    assert result["removed"] == []
    # Visits beyond the old limit alerted in both runs, earlier under the halved limit: changed, not added.
    changed = {(c["b"]["subject_id"], c["b"]["zone_id"]) for c in result["changed"]}
    assert {c["b"]["type"] for c in result["changed"]} <= {"dwell_exceeded"}
    assert changed == above
    assert result["counts"]["unchanged"] > 0


def test_whatif_writes_both_replays_and_a_readable_table(whatif: tuple[Path, dict[str, float], str]) -> None:
    out, _, zones_b = whatif
    result = orjson.loads((out / "compare.json").read_bytes())
    assert result["b"]["label"] == zones_b
    assert result["a"]["zone_version"] == load_zones([default_catalogue_path()]).version
    assert result["b"]["zone_version"] == load_zones([zones_b]).version
    for side in ("a", "b"):
        assert (out / side / "alerts.jsonl").stat().st_size > 0
        assert orjson.loads((out / side / "summary.json").read_bytes())["accounting_balanced"]
    table = (out / "compare.txt").read_text()
    first, counts, header, *rows = table.splitlines()
    assert first.startswith("what-if: ") and zones_b in first
    assert counts == (f"added {result['counts']['added']}, removed {result['counts']['removed']}, "
                      f"changed {result['counts']['changed']}, unchanged {result['counts']['unchanged']}")
    assert header.split()[:3] == ["change", "type", "subject"]
    assert sum(r.startswith("added") for r in rows) == result["counts"]["added"]


def test_compare_rules_files(tmp_path: Path) -> None:
    """--compare RULES_A RULES_B: switching a rule off removes exactly its incidents."""
    sim = simulated(60, 3.0, 5)  # a short recording with injected overspeed (shared with test_replay.py)
    baseline = flat_baseline(tmp_path / "baseline.json")
    rules_a, rules_b = tmp_path / "a.toml", tmp_path / "b.toml"
    rules_a.write_text("")
    rules_b.write_text("[defaults.overspeed]\nenabled = false\n")
    out = tmp_path / "out"
    assert run_cli(["replay", str(sim.feed), "--baseline", str(baseline), "--out", str(out), "--no-report",
                    "--quiet", "--compare", str(rules_a), str(rules_b)]) == 0
    result = orjson.loads((out / "compare.json").read_bytes())
    a_lines = [orjson.loads(x) for x in (out / "a" / "alerts.jsonl").read_bytes().splitlines()]
    overspeed = {x["alert_id"] for x in a_lines if x["type"] == "overspeed"}
    assert overspeed, "the simulation injects overspeed"
    assert {i["alert_id"] for i in result["removed"]} == overspeed
    assert result["added"] == [] and result["changed"] == []
