"""Fences and zone sets: the immutable inputs of the fence path.

A :class:`Fence` is one electronic fence (a WGS84 polygon or multipolygon in
(lon, lat) order) with its kind and optional rule parameters. A :class:`ZoneSet`
is the set of fences the engine decides under; its :attr:`ZoneSet.version` is a
content hash, so the same fences give the same version whatever file order or
formatting they came from, and every alert can name the version it was decided
under.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import shapely
from shapely.geometry.base import BaseGeometry

from geofence.errors import ZoneError

__all__ = [
    "RULE_PARAMS",
    "Fence",
    "FenceParams",
    "ZoneKind",
    "ZoneSet",
    "default_stop_allowed",
]


class ZoneKind(enum.Enum):
    """The kinds of electronic fence the supervision centre draws."""

    PORT = "port"
    BERTH = "berth"
    ANCHORAGE = "anchorage"
    FAIRWAY = "fairway"
    RESTRICTED = "restricted"
    CUSTOMS = "customs"
    SPEED_LIMIT = "speed_limit"
    LOCK = "lock"

    @classmethod
    def parse(cls, value: object, zone_id: str | None = None) -> ZoneKind:
        """Return the kind named by ``value`` or raise :class:`ZoneError` listing the valid ones."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(k.value) for k in cls)
            raise ZoneError(f"unknown kind {value!r}, must be one of {valid}", zone_id) from None


#: Rule parameters a fence may carry as GeoJSON properties, with their accepted types.
RULE_PARAMS: Mapping[str, str] = {
    "max_dwell_min": "number or learned percentile such as 'p99'",
    "stop_allowed": "boolean",
    "speed_limit_kn": "number",
    "hysteresis_m": "number",
    "min_inside_s": "number",
    "exit_requires_release": "boolean",
    "severity": "one of 'info', 'warning', 'critical'",
}

_STOP_ALLOWED_BY_KIND: Mapping[ZoneKind, bool | None] = {
    ZoneKind.FAIRWAY: False,
    ZoneKind.RESTRICTED: False,
    ZoneKind.PORT: True,
    ZoneKind.BERTH: True,
    ZoneKind.ANCHORAGE: True,
    ZoneKind.LOCK: True,
    ZoneKind.CUSTOMS: True,
    ZoneKind.SPEED_LIMIT: None,
}


def default_stop_allowed(kind: ZoneKind) -> bool | None:
    """Return whether stopping is allowed by default in a fence of ``kind`` (None: no opinion)."""
    return _STOP_ALLOWED_BY_KIND[kind]


@dataclass(frozen=True, slots=True)
class FenceParams:
    """Optional per-fence rule parameters; ``None`` means "not set on the fence".

    Precedence (rules issue): a fence's property, then the rules file, then the
    built-in default. ``max_dwell_min`` may be a number of minutes or a learned
    baseline percentile string such as ``"p99"``.
    """

    max_dwell_min: float | str | None = None
    stop_allowed: bool | None = None
    speed_limit_kn: float | None = None
    hysteresis_m: float | None = None
    min_inside_s: float | None = None
    exit_requires_release: bool | None = None
    severity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters that are set, for canonical JSON and alert details."""
        return {k: getattr(self, k) for k in RULE_PARAMS if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class Fence:
    """One electronic fence in WGS84 (lon, lat).

    Attributes
    ----------
    id
        Unique id within a zone set.
    name
        Human-readable name.
    kind
        The :class:`ZoneKind`.
    geometry
        A valid shapely Polygon or MultiPolygon in (lon, lat) degrees.
    params
        Rule parameters set on the fence.
    metadata
        Every other GeoJSON property, kept verbatim.
    """

    id: str
    name: str
    kind: ZoneKind
    geometry: BaseGeometry
    params: FenceParams = field(default_factory=FenceParams)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stop_allowed(self) -> bool | None:
        """The fence's own ``stop_allowed``, else the default of its kind."""
        if self.params.stop_allowed is not None:
            return self.params.stop_allowed
        return default_stop_allowed(self.kind)

    def canonical(self) -> dict[str, Any]:
        """Return a JSON-ready canonical form used for the zone-set version."""
        geom = shapely.normalize(self.geometry)
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "params": self.params.as_dict(),
            "metadata": dict(sorted(self.metadata.items())),
            "geometry": shapely.to_wkb(geom, hex=True, output_dimension=2),
        }


@dataclass(frozen=True, slots=True)
class ZoneSet:
    """An immutable set of fences and its content version.

    The version is the first 12 hex digits of sha256 over the canonical JSON of
    all fences sorted by id, so file order and formatting do not change it.
    """

    fences: tuple[Fence, ...]
    version: str

    @classmethod
    def of(cls, fences: Iterable[Fence]) -> ZoneSet:
        """Build a zone set, rejecting duplicate ids."""
        ordered = tuple(sorted(fences, key=lambda f: f.id))
        for a, b in itertools.pairwise(ordered):
            if a.id == b.id:
                raise ZoneError("duplicate fence id; ids must be unique across all loaded files", a.id)
        payload = orjson.dumps([f.canonical() for f in ordered], option=orjson.OPT_SORT_KEYS)
        return cls(fences=ordered, version=hashlib.sha256(payload).hexdigest()[:12])

    def __len__(self) -> int:
        return len(self.fences)

    def by_id(self) -> dict[str, Fence]:
        """Return a mapping from fence id to fence."""
        return {f.id: f for f in self.fences}
