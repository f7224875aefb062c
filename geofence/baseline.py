"""Learned baselines: what "normal" dwell and speed look like per (zone, ship type).

``geofence learn`` collects closed visits (dwell) and underway speeds from
recordings and stores percentiles here. A rule value such as
``max_dwell_min = "p99"`` then means "dwell beyond the learned 99th percentile
for this zone and ship type", so warnings come from history rather than
guesses. Ship types are grouped into classes (AIS ship-type codes), with the
zone-wide ``all`` class as fallback when a class has too few visits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geofence.errors import ConfigError

__all__ = ["MIN_SAMPLES", "PERCENTILES", "Baseline", "parse_percentile", "ship_class"]

#: Percentiles stored for every (zone, class).
PERCENTILES: tuple[float, ...] = (50.0, 75.0, 90.0, 95.0, 99.0)
#: Fewer visits than this and the class falls back to the zone-wide ``all`` class.
MIN_SAMPLES = 5

_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def parse_percentile(text: str) -> float:
    """Return 99.0 for ``"p99"``; raise :class:`ConfigError` for anything else."""
    m = _PCT.match(text.strip())
    if not m:
        raise ConfigError(f"{text!r} is not a learned-baseline percentile; write it like 'p95' or 'p99'")
    return float(m.group(1))


def ship_class(ship_type: int | None) -> str:
    """Group an AIS ship-type code into a class: cargo, tanker, passenger, tug, other or unknown."""
    if ship_type is None or ship_type <= 0:
        return "unknown"
    if 70 <= ship_type <= 79:
        return "cargo"
    if 80 <= ship_type <= 89:
        return "tanker"
    if 60 <= ship_type <= 69:
        return "passenger"
    if ship_type in (31, 32, 52):
        return "tug"
    return "other"


def _pct_key(p: float) -> str:
    return f"p{p:g}"


@dataclass(frozen=True, slots=True)
class Baseline:
    """Dwell (minutes) and speed (knots) percentiles per zone and ship class.

    ``dwell_min[zone_id][class][f"p{pct}"]`` and ``speed_kn[zone_id][class][...]``,
    each class also carrying its sample count ``n``.
    """

    dwell_min: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    speed_kn: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    @classmethod
    def learn(
        cls,
        visits: Iterable[tuple[str, int | None, float]],
        speeds: Iterable[tuple[str, int | None, float]] = (),
    ) -> Baseline:
        """Learn from (zone_id, ship_type, dwell_s) visits and (zone_id, ship_type, speed_kn) samples."""
        return cls(dwell_min=_learn((z, t, d / 60.0) for z, t, d in visits), speed_kn=_learn(speeds))

    def dwell_limit_min(self, zone_id: str, ship_type: int | None, percentile: str) -> float | None:
        """The learned dwell limit in minutes, or None when the zone was never learned."""
        return _lookup(self.dwell_min, zone_id, ship_type, percentile)

    def speed_limit_kn(self, zone_id: str, ship_type: int | None, percentile: str) -> float | None:
        """The learned speed percentile in knots, or None when the zone was never learned."""
        return _lookup(self.speed_kn, zone_id, ship_type, percentile)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the baseline file)."""
        return {"format": "geofence-baseline/1", "dwell_min": self.dwell_min, "speed_kn": self.speed_kn}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        """Read a baseline file's content, validating its shape with clear errors."""
        if data.get("format") != "geofence-baseline/1":
            raise ConfigError(
                f"baseline format {data.get('format')!r} is not 'geofence-baseline/1'; re-run geofence learn"
            )
        for key in ("dwell_min", "speed_kn"):
            table = data.get(key, {})
            if not isinstance(table, Mapping):
                raise ConfigError(f"baseline {key!r} must be an object of zone -> class -> percentiles")
        return cls(dwell_min=data.get("dwell_min", {}), speed_kn=data.get("speed_kn", {}))


def _learn(samples: Iterable[tuple[str, int | None, float]]) -> dict[str, dict[str, dict[str, float]]]:
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for zone_id, ship_type, value in samples:
        grouped[zone_id][ship_class(ship_type)].append(value)
        grouped[zone_id]["all"].append(value)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for zone_id in sorted(grouped):
        out[zone_id] = {}
        for klass in sorted(grouped[zone_id]):
            arr = np.asarray(grouped[zone_id][klass], dtype=np.float64)
            row = {_pct_key(p): round(float(np.percentile(arr, p)), 3) for p in PERCENTILES}
            row["n"] = float(arr.size)
            out[zone_id][klass] = row
    return out


def _lookup(
    table: Mapping[str, Mapping[str, Mapping[str, float]]], zone_id: str, ship_type: int | None, percentile: str
) -> float | None:
    pct = parse_percentile(percentile)
    zone = table.get(zone_id)
    if not zone:
        return None
    row = zone.get(ship_class(ship_type))
    if row is None or row.get("n", 0) < MIN_SAMPLES:
        row = zone.get("all")
    if row is None:
        return None
    key = _pct_key(pct)
    if key in row:
        return float(row[key])
    raise ConfigError(
        f"percentile {percentile!r} was not learned; available: {', '.join(k for k in row if k != 'n')}"
    )
