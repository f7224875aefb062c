"""Learned baselines: percentiles per (zone, ship class) with a zone-wide fallback."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.baseline import MIN_SAMPLES, Baseline, parse_percentile, ship_class
from geofence.errors import ConfigError


def test_learn_and_lookup_with_class_fallback() -> None:
    visits = [("anch", 70, 60.0 * m) for m in range(1, 101)] + [("anch", 80, 600.0), ("anch", 80, 1200.0)]
    b = Baseline.learn(visits)
    cargo_p99 = b.dwell_limit_min("anch", 71, "p99")
    assert cargo_p99 is not None and 98.0 < cargo_p99 <= 100.0
    # only two tanker visits: falls back to the zone-wide class, which includes them
    assert b.dwell_limit_min("anch", 80, "p50") == pytest.approx(b.dwell_min["anch"]["all"]["p50"])
    assert b.dwell_limit_min("elsewhere", 70, "p99") is None


def test_round_trip_and_validation() -> None:
    b = Baseline.learn([("z", 70, 120.0)] * 10, speeds=[("z", 70, 8.0)] * 10)
    again = Baseline.from_dict(b.to_dict())
    assert again.dwell_limit_min("z", 70, "p95") == pytest.approx(2.0)
    assert again.speed_limit_kn("z", 70, "p50") == pytest.approx(8.0)
    with pytest.raises(ConfigError, match="geofence-baseline/1"):
        Baseline.from_dict({"format": "other"})
    with pytest.raises(ConfigError, match="was not learned"):
        b.dwell_limit_min("z", 70, "p42")


def test_percentile_parsing_and_classes() -> None:
    assert parse_percentile("p99") == 99.0 and parse_percentile("p99.5") == 99.5
    with pytest.raises(ConfigError, match="write it like 'p95'"):
        parse_percentile("99%")
    classes = [ship_class(t) for t in (None, 70, 85, 60, 52, 30)]
    assert classes == ["unknown", "cargo", "tanker", "passenger", "tug", "other"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=5e5, allow_nan=False).map(lambda x: round(x, 1)),
                min_size=MIN_SAMPLES, max_size=99))
def test_no_learned_visit_exceeds_its_own_p99_limit(dwells_s: list[float]) -> None:
    """With fewer than 100 visits p99 is the longest one, rounded up: replaying history flags nothing."""
    b = Baseline.learn([("z", None, d) for d in dwells_s])
    limit_min = b.dwell_limit_min("z", None, "p99")
    assert limit_min is not None
    assert limit_min * 60.0 >= max(dwells_s)  # the engine's timer is at enter + limit_min * 60
    assert limit_min * 60.0 - max(dwells_s) < 0.061  # rounded up by at most 0.001 min
    row = b.dwell_min["z"]["all"]
    assert row["p50"] <= row["p75"] <= row["p90"] <= row["p95"] <= row["p99"]


def test_percentiles_are_observed_values_not_interpolations() -> None:
    dwells_min = [10.0, 20.0, 30.0, 40.0, 1000.0]
    b = Baseline.learn([("z", 70, m * 60.0) for m in dwells_min])
    assert b.dwell_min["z"]["all"]["p50"] == 30.0
    assert b.dwell_min["z"]["all"]["p75"] == 40.0
    assert b.dwell_min["z"]["all"]["p99"] == 1000.0


def test_too_little_history_gives_no_limit() -> None:
    b = Baseline.learn([("z", 70, 600.0)] * (MIN_SAMPLES - 1))
    assert b.dwell_limit_min("z", 70, "p99") is None
