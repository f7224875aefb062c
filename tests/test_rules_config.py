"""Rules configuration: TOML loading, validation errors, precedence, switching rules off."""

from __future__ import annotations

import pytest

from geofence.engine import Engine
from geofence.errors import ConfigError
from geofence.fence import ZoneKind
from geofence.rules import RulesConfig
from tests.test_engine_support import T0, fence, run, track, types, zones


def test_defaults_and_kind_tables_from_toml() -> None:
    cfg = RulesConfig.from_toml(
        """
[defaults.ais_gap]
threshold_s = 1200
[defaults.ais_gap.by_ship_type]
"70-79" = 3600
"71" = 600
[kinds.anchorage]
max_dwell_min = 720
"""
    )
    assert cfg.for_ship_type("ais_gap", None) == 1200.0
    assert cfg.for_ship_type("ais_gap", 75) == 3600.0
    assert cfg.for_ship_type("ais_gap", 71) == 600.0  # narrowest range wins
    assert cfg.kinds[ZoneKind.ANCHORAGE]["max_dwell_min"] == 720.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[defaults.ais_gap]\nthreshold_s = 'long'\n", "defaults.ais_gap.threshold_s = 'long'"),
        ("[defaults.nope]\nx = 1\n", "unknown rule [defaults.nope]"),
        ("[defaults.overspeed]\nlimit = 3\n", "unknown key defaults.overspeed.limit"),
        ("[kinds.harbour]\nmax_dwell_min = 3\n", "unknown zone kind [kinds.harbour]"),
        ("[kinds.port]\nstop_allowed = 1\n", "kinds.port.stop_allowed = 1"),
        ("[defaults.ais_gap.by_ship_type]\nabc = 3\n", "by_ship_type key 'abc'"),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_bad_rules_name_key_value_and_expected_type(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        RulesConfig.from_toml(text)
    assert needle in str(info.value)


def test_precedence_fence_then_rules_file_then_builtin() -> None:
    cfg = RulesConfig.from_toml("[kinds.port]\nmax_dwell_min = 20\n")
    own = fence("p1", "port", 0.0, 0.0, 0.1, 0.1, max_dwell_min=40)
    kind = fence("p2", "port", 0.2, 0.0, 0.3, 0.1)
    assert cfg.fence_param(own, "max_dwell_min") == 40
    assert cfg.fence_param(kind, "max_dwell_min") == 20.0
    assert RulesConfig.default().fence_param(kind, "max_dwell_min") is None


def test_a_rule_can_be_switched_off() -> None:
    zs = zones(fence("p1", "port", 0.0, 0.0, 0.1, 0.1))
    rows = track("v1", T0, 60, [(0.05, 0.05)] * 3, sog=0.0)
    assert types(run(Engine(zs), rows)) == [("zone_enter", "event")]
    cfg = RulesConfig.from_toml("[defaults.zone_enter]\nenabled = false\n")
    assert run(Engine(zs, cfg), rows) == []


def test_negative_tolerance_is_rejected() -> None:
    with pytest.raises(ConfigError, match="tolerance_s"):
        Engine(zones(), tolerance_s=-1)


def test_detector_thresholds_come_from_the_rules_file_and_are_checked_together() -> None:
    from geofence.rules import approach, containers, encounter, route

    default = RulesConfig.default()
    assert default.encounter_params() == encounter.EncounterParams()
    assert default.separation_params() == containers.SeparationParams()
    assert default.get("approach_warning", "horizon_s") == approach.DEFAULT_HORIZON_S
    assert default.get("route_deviation", "open_m") == route.DEFAULT_OPEN_M
    cfg = RulesConfig.from_toml(
        "[defaults.encounter]\ndistance_m = 250\nmin_duration_s = 600\n"
        "[defaults.container_separation]\nseparation_threshold_m = 2000\n"
        "[defaults.approach_warning]\nhorizon_s = 1200\n"
    )
    assert cfg.encounter_params().distance_m == 250.0 and cfg.encounter_params().min_duration_s == 600.0
    assert cfg.separation_params().separation_threshold_m == 2000.0
    assert cfg.get("approach_warning", "horizon_s") == 1200.0
    with pytest.raises(ConfigError, match=r"rules: encounter: release_kn = 2\.0 is below slow_kn = 3\.0"):
        RulesConfig.from_toml("[defaults.encounter]\nslow_kn = 3.0\n")
    with pytest.raises(ConfigError, match=r"unknown key defaults\.encounter\.radius_m"):
        RulesConfig.from_toml("[defaults.encounter]\nradius_m = 3.0\n")


def _pair_lying_apart(gap_m: float, minutes: int = 40) -> list[dict[str, object]]:
    """Two vessels at 0.2 kn in a fairway, ``gap_m`` apart, reporting every 30 s."""
    from tests.test_engine_support import M_PER_DEG

    pts = [(0.05, 0.01)] * (minutes * 2)
    other = [(0.05 + gap_m / M_PER_DEG, 0.01)] * (minutes * 2)
    rows = track("413000001", T0, 30.0, pts, sog=0.2) + track("413000002", T0 + 5, 30.0, other, sog=0.2)
    return sorted(rows, key=lambda r: r["ts"])  # type: ignore[arg-type,return-value]


def test_the_encounter_distance_of_the_rules_file_decides() -> None:
    zs = zones(fence("fw", "fairway", -0.05, -0.01, 0.2, 0.03, stop_allowed=True))
    rows = _pair_lying_apart(150.0)
    assert ("encounter", "open") not in types(run(Engine(zs), rows))  # 150 m > the 100 m default
    wide = RulesConfig.from_toml("[defaults.encounter]\ndistance_m = 200\nmin_duration_s = 600\n")
    got = types(run(Engine(zs, wide), rows))
    assert got.count(("encounter", "open")) == 2  # one alert per vessel


def test_with_rule_off_switches_one_rule_and_keeps_the_rest() -> None:
    cfg = RulesConfig.from_toml("[defaults.encounter]\ndistance_m = 250\n[defaults.ais_gap]\nthreshold_s = 900\n")
    off = cfg.with_rule_off("encounter")
    assert cfg.enabled("encounter") and not off.enabled("encounter")
    assert off.encounter_params() == cfg.encounter_params() and off.get("ais_gap", "threshold_s") == 900.0
    with pytest.raises(ConfigError, match="unknown rule 'encounters'"):
        cfg.with_rule_off("encounters")
