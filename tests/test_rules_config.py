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
