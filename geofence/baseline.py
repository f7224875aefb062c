"""Learned baselines: what "normal" dwell and speed look like per (zone, ship type).

``geofence learn`` collects closed visits (dwell) and underway speeds from
recordings and stores percentiles here. A rule value such as
``max_dwell_min = "p99"`` then means "dwell beyond the learned 99th percentile
for this zone and ship type", so warnings come from history rather than
guesses. Ship types are grouped into classes (AIS ship-type codes), with the
zone-wide ``all`` class as fallback when a class has too few visits.

Percentiles are empirical (numpy ``method="inverted_cdf"``): ``pNN`` is the
smallest learned value that at least NN % of the samples do not exceed, always
an observed dwell (rounded up to 0.001), never an interpolation. With fewer
than 100 visits ``p99`` is therefore the longest visit seen: a recording
replayed against a baseline learned from it flags nothing, and a dwell is
flagged only when it is longer than what history shows.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geofence.errors import ConfigError

__all__ = ["MIN_SAMPLES", "PERCENTILES", "Baseline", "parse_percentile", "ship_class"]

#: Percentiles stored for every (zone, class).
PERCENTILES: tuple[float, ...] = (50.0, 75.0, 90.0, 95.0, 99.0)
#: Fewer visits than this and the class falls back to the zone-wide ``all`` class; a zone with fewer
#: visits in all has no learned limit (a percentile of two visits is noise, not history).
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
    #: Provenance (inputs, zone version, sample counts): informational, never used for decisions.
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def learn(
        cls,
        visits: Iterable[tuple[str, int | None, float]],
        speeds: Iterable[tuple[str, int | None, float]] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> Baseline:
        """Learn from (zone_id, ship_type, dwell_s) visits and (zone_id, ship_type, speed_kn) samples."""
        return cls(
            dwell_min=_learn(visits, _seconds_to_minutes),
            speed_kn=_learn(speeds, _ceil3),
            meta=dict(meta or {}),
        )

    def dwell_limit_min(self, zone_id: str, ship_type: int | None, percentile: str) -> float | None:
        """The learned dwell limit in minutes; None when the zone has fewer than ``MIN_SAMPLES`` learned visits."""
        return _lookup(self.dwell_min, zone_id, ship_type, percentile)

    def speed_limit_kn(self, zone_id: str, ship_type: int | None, percentile: str) -> float | None:
        """The learned speed percentile in knots; None when the zone has fewer than ``MIN_SAMPLES`` samples."""
        return _lookup(self.speed_kn, zone_id, ship_type, percentile)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the baseline file)."""
        out: dict[str, Any] = {"format": "geofence-baseline/1", "dwell_min": self.dwell_min, "speed_kn": self.speed_kn}
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

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
            for zone_id, classes in table.items():
                if not isinstance(classes, Mapping) or not all(isinstance(r, Mapping) for r in classes.values()):
                    raise ConfigError(
                        f"baseline {key!r} zone {zone_id!r} must map ship classes to percentile objects, "
                        f"e.g. {{\"all\": {{\"p99\": 120.0, \"n\": 40}}}}"
                    )
        meta = data.get("meta", {})
        return cls(
            dwell_min=data.get("dwell_min", {}),
            speed_kn=data.get("speed_kn", {}),
            meta=meta if isinstance(meta, Mapping) else {},
        )


def _learn(
    samples: Iterable[tuple[str, int | None, float]], convert: Callable[[float], float]
) -> dict[str, dict[str, dict[str, float]]]:
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for zone_id, ship_type, value in samples:
        grouped[zone_id][ship_class(ship_type)].append(value)
        grouped[zone_id]["all"].append(value)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for zone_id in sorted(grouped):
        out[zone_id] = {}
        for klass in sorted(grouped[zone_id]):
            arr = np.asarray(grouped[zone_id][klass], dtype=np.float64)
            row = {_pct_key(p): convert(float(np.percentile(arr, p, method="inverted_cdf"))) for p in PERCENTILES}
            row["n"] = float(arr.size)
            out[zone_id][klass] = row
    return out


def _ceil3(value: float) -> float:
    """Round up to 0.001 (tolerating float noise: 2.0 stays 2.0)."""
    return math.ceil(value * 1000.0 - 1e-7) / 1000.0


def _seconds_to_minutes(dwell_s: float) -> float:
    """Minutes rounded up to 0.001 such that ``minutes * 60.0 >= dwell_s`` in float arithmetic.

    The engine turns the limit back into seconds (``minutes * 60``); a limit that came
    back even a rounding error under the visit it was learned from would flag that visit.
    """
    minutes = _ceil3(dwell_s / 60.0)
    while minutes * 60.0 < dwell_s:
        minutes = round(minutes + 0.001, 3)
    return minutes


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
    if row is None or row.get("n", 0) < MIN_SAMPLES:
        return None  # too little history for a percentile to mean anything: no learned limit
    key = _pct_key(pct)
    if key in row:
        return float(row[key])
    raise ConfigError(
        f"percentile {percentile!r} was not learned; available: {', '.join(k for k in row if k != 'n')}"
    )
