"""Rule configuration: built-in defaults, the rules TOML and per-fence overrides.

Precedence for every parameter (rules issue): a fence's own property
(:class:`~geofence.fence.FenceParams` or, for parameters the fence model does not
name, its metadata), then the rules file's ``[kinds.<kind>]`` table, then its
``[defaults.<rule>]`` table, then the built-in default below. The anchor each
default was adapted from is documented in ``docs/rules.md``.

The core never reads files: :meth:`RulesConfig.from_toml` takes the text the
adapter has already read, :meth:`RulesConfig.from_mapping` an already-parsed
mapping.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from geofence.errors import ConfigError
from geofence.fence import Fence, ZoneKind
from geofence.rules import approach as _approach
from geofence.rules import containers as _containers
from geofence.rules import encounter as _encounter
from geofence.rules import route as _route

__all__ = ["DEFAULTS", "KIND_DEFAULTS", "KIND_PARAMS", "RulesConfig"]

_NUM = "number"
_BOOL = "boolean"
_OPT_NUM = "number or null"

#: Built-in defaults per rule: parameter -> (value, expected type name).
DEFAULTS: dict[str, dict[str, tuple[Any, str]]] = {
    "engine": {"tolerance_s": (60.0, _NUM)},
    "zone_enter": {"enabled": (True, _BOOL), "hysteresis_m": (25.0, _NUM), "min_inside_s": (0.0, _NUM)},
    "zone_exit": {"enabled": (True, _BOOL)},
    "zone_cross": {"enabled": (True, _BOOL)},
    "restricted_entry": {"enabled": (True, _BOOL)},
    "dwell_exceeded": {"enabled": (True, _BOOL), "max_dwell_min": (None, "number, percentile such as 'p99' or null")},
    "unexpected_stop": {
        "enabled": (True, _BOOL),
        "stop_kn": (0.5, _NUM),
        "resume_kn": (1.0, _NUM),
        "diameter_m": (250.0, _NUM),
        "min_duration_s": (900.0, _NUM),
        "outside_zones": (False, _BOOL),
        "cooldown_s": (600.0, _NUM),
    },
    "overspeed": {
        "enabled": (True, _BOOL),
        "speed_limit_kn": (None, _OPT_NUM),
        "min_duration_s": (120.0, _NUM),
        "critical_factor": (1.5, _NUM),
        "cooldown_s": (300.0, _NUM),
    },
    "position_jump": {
        "enabled": (True, _BOOL),
        "max_speed_kn": (50.0, _NUM),
        "min_distance_m": (500.0, _NUM),
        "cooldown_s": (600.0, _NUM),
    },
    "ais_gap": {"enabled": (True, _BOOL), "threshold_s": (1800.0, _NUM), "near_m": (5000.0, _NUM)},
    "feed_outage": {
        "enabled": (True, _BOOL),
        "rate_factor": (10.0, _NUM),
        "min_silence_s": (300.0, _NUM),
        "min_reports": (20.0, _NUM),
        "min_subjects": (2.0, _NUM),
    },
    "speed": {"window_s": (60.0, _NUM)},
    "encounter": {
        "enabled": (True, _BOOL),
        "distance_m": (_encounter.DEFAULT_DISTANCE_M, _NUM),
        "slow_kn": (_encounter.DEFAULT_SLOW_KN, _NUM),
        "min_duration_s": (_encounter.DEFAULT_MIN_DURATION_S, _NUM),
        "release_kn": (_encounter.DEFAULT_RELEASE_KN, _NUM),
        "max_stale_s": (_encounter.DEFAULT_MAX_STALE_S, _NUM),
        "max_lag_s": (_encounter.DEFAULT_MAX_LAG_S, _NUM),
    },
    "approach_warning": {
        "enabled": (True, _BOOL),
        "horizon_s": (_approach.DEFAULT_HORIZON_S, _NUM),
        "min_speed_kn": (_approach.DEFAULT_MIN_SPEED_KN, _NUM),
    },
    "route_deviation": {
        "enabled": (True, _BOOL),
        "open_m": (_route.DEFAULT_OPEN_M, _NUM),
        "close_m": (_route.DEFAULT_CLOSE_M, _NUM),
        "min_duration_s": (_route.DEFAULT_MIN_DURATION_S, _NUM),
    },
    "container_separation": {
        "enabled": (True, _BOOL),
        "separation_threshold_m": (_containers.DEFAULT_SEPARATION_M, _NUM),
        "min_duration_s": (_containers.DEFAULT_MIN_DURATION_S, _NUM),
    },
    "container_zone_exit": {"enabled": (True, _BOOL)},
}

#: Rules whose threshold may differ by AIS ship type (``[defaults.<rule>.by_ship_type]``).
_BY_SHIP_TYPE: dict[str, str] = {"ais_gap": "threshold_s", "position_jump": "max_speed_kn"}

#: Parameters a ``[kinds.<kind>]`` table (or a fence property) may set, with expected types.
KIND_PARAMS: dict[str, str] = {
    "max_dwell_min": "number or percentile such as 'p99'",
    "stop_allowed": _BOOL,
    "speed_limit_kn": _NUM,
    "hysteresis_m": _NUM,
    "min_inside_s": _NUM,
    "exit_requires_release": _BOOL,
    "severity": "one of 'info', 'warning', 'critical'",
    "gap_threshold_s": _NUM,
}

#: Built-in per-kind values (below the rules file in precedence).
KIND_DEFAULTS: dict[ZoneKind, dict[str, Any]] = {
    ZoneKind.ANCHORAGE: {"max_dwell_min": 2880.0},
    ZoneKind.BERTH: {"max_dwell_min": 4320.0},
}


def _check(key: str, value: Any, expected: str) -> Any:
    """Validate one value against an expected type name; return it normalised."""
    ok: bool
    if expected == _BOOL:
        ok = isinstance(value, bool)
    elif expected == _NUM:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        value = float(value) if ok else value
    elif expected == _OPT_NUM:
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)
        value = float(value) if ok and value is not None else value
    elif expected.startswith("number or percentile") or expected.startswith("number, percentile"):
        if isinstance(value, str):
            ok = _is_percentile(value)
        else:
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0)
            value = float(value) if ok and value is not None else value
    elif expected.startswith("one of"):
        ok = value in ("info", "warning", "critical")
    else:  # pragma: no cover - table is static
        ok = True
    if not ok:
        raise ConfigError(f"rules: {key} = {value!r} is invalid; expected {expected}")
    return value


def _is_percentile(text: str) -> bool:
    if not (text.startswith("p") and len(text) > 1):
        return False
    try:
        return 0.0 < float(text[1:]) <= 100.0
    except ValueError:
        return False


def _parse_ship_type_key(rule: str, key: str) -> tuple[int, int]:
    """Parse ``"70"`` or ``"70-79"`` into an inclusive range of AIS ship-type codes."""
    parts = key.split("-")
    try:
        lo = int(parts[0])
        hi = int(parts[1]) if len(parts) == 2 else lo
    except (ValueError, IndexError):
        raise ConfigError(
            f"rules: defaults.{rule}.by_ship_type key {key!r} is invalid; expected an AIS ship type code "
            'such as "70" or a range such as "70-79"'
        ) from None
    if len(parts) > 2 or not 0 <= lo <= hi <= 255:
        raise ConfigError(f"rules: defaults.{rule}.by_ship_type key {key!r} must be a code or range within 0-255")
    return lo, hi


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """Validated rule parameters.

    Attributes
    ----------
    defaults
        ``rule -> parameter -> value`` (built-in defaults overlaid with the file's ``[defaults.<rule>]``).
    kinds
        ``kind -> parameter -> value`` from ``[kinds.<kind>]`` over :data:`KIND_DEFAULTS`.
    by_ship_type
        ``rule -> [(lo, hi, value)]`` AIS ship-type ranges for the rules in ``_BY_SHIP_TYPE``.
    file_keys
        Dotted names (``defaults.<rule>.<key>``, ``kinds.<kind>.<key>``) the rules file set, so that
        :meth:`param_sources` can say where a value came from.
    """

    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[ZoneKind, dict[str, Any]] = field(default_factory=dict)
    by_ship_type: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)
    file_keys: frozenset[str] = frozenset()

    @classmethod
    def default(cls) -> RulesConfig:
        """The built-in configuration."""
        return cls.from_mapping({})

    @classmethod
    def from_toml(cls, text: str) -> RulesConfig:
        """Parse and validate rules TOML text (already read by the adapter)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"rules: not valid TOML ({exc}); see docs/rules.md for the format") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RulesConfig:
        """Validate a parsed rules mapping (``defaults`` and ``kinds`` tables)."""
        for top in data:
            if top not in ("defaults", "kinds"):
                raise ConfigError(
                    f"rules: unknown top-level table [{top}]; expected [defaults.<rule>] or [kinds.<kind>]"
                )
        defaults = {rule: {k: v for k, (v, _t) in params.items()} for rule, params in DEFAULTS.items()}
        by_ship: dict[str, list[tuple[int, int, float]]] = {r: [] for r in _BY_SHIP_TYPE}
        from_file: set[str] = set()
        file_defaults = data.get("defaults", {})
        if not isinstance(file_defaults, Mapping):
            raise ConfigError("rules: [defaults] must be a table of rule tables")
        for rule, table in file_defaults.items():
            if rule not in DEFAULTS:
                raise ConfigError(f"rules: unknown rule [defaults.{rule}]; known rules: {', '.join(sorted(DEFAULTS))}")
            if not isinstance(table, Mapping):
                raise ConfigError(f"rules: [defaults.{rule}] must be a table, got {table!r}")
            for key, value in table.items():
                if key == "by_ship_type" and rule in _BY_SHIP_TYPE:
                    if not isinstance(value, Mapping):
                        raise ConfigError(f"rules: defaults.{rule}.by_ship_type must be a table, got {value!r}")
                    for st_key, st_value in value.items():
                        lo, hi = _parse_ship_type_key(rule, str(st_key))
                        v = _check(f"defaults.{rule}.by_ship_type.{st_key}", st_value, _NUM)
                        by_ship[rule].append((lo, hi, v))
                    continue
                if key not in DEFAULTS[rule]:
                    known = ", ".join(sorted(DEFAULTS[rule]))
                    raise ConfigError(f"rules: unknown key defaults.{rule}.{key}; known keys: {known}")
                defaults[rule][key] = _check(f"defaults.{rule}.{key}", value, DEFAULTS[rule][key][1])
                from_file.add(f"defaults.{rule}.{key}")
        kinds: dict[ZoneKind, dict[str, Any]] = {k: dict(v) for k, v in copy.deepcopy(KIND_DEFAULTS).items()}
        file_kinds = data.get("kinds", {})
        if not isinstance(file_kinds, Mapping):
            raise ConfigError("rules: [kinds] must be a table of kind tables")
        for kind_name, table in file_kinds.items():
            try:
                kind = ZoneKind(kind_name)
            except ValueError:
                valid = ", ".join(k.value for k in ZoneKind)
                raise ConfigError(f"rules: unknown zone kind [kinds.{kind_name}]; expected one of {valid}") from None
            if not isinstance(table, Mapping):
                raise ConfigError(f"rules: [kinds.{kind_name}] must be a table, got {table!r}")
            for key, value in table.items():
                if key not in KIND_PARAMS:
                    raise ConfigError(
                        f"rules: unknown key kinds.{kind_name}.{key}; known keys: {', '.join(sorted(KIND_PARAMS))}"
                    )
                kinds.setdefault(kind, {})[key] = _check(f"kinds.{kind_name}.{key}", value, KIND_PARAMS[key])
                from_file.add(f"kinds.{kind.value}.{key}")
        out = cls(defaults=defaults, kinds=kinds, by_ship_type=by_ship, file_keys=frozenset(from_file))
        try:  # thresholds that must agree with each other (e.g. encounter release_kn >= slow_kn)
            out.encounter_params()
            out.separation_params()
        except ConfigError as exc:
            raise ConfigError(f"rules: {exc}") from None
        return out

    def with_rule_off(self, rule: str) -> RulesConfig:
        """This configuration with ``rule`` switched off (``encounter`` when a stage outside the engine runs it)."""
        if rule not in self.defaults:
            raise ConfigError(f"rules: unknown rule {rule!r}; known rules: {', '.join(sorted(self.defaults))}")
        defaults = {**self.defaults, rule: {**self.defaults[rule], "enabled": False}}
        return dataclasses.replace(self, defaults=defaults)

    def encounter_params(self) -> _encounter.EncounterParams:
        """The ``encounter`` thresholds of this configuration (validated together: ``release_kn >= slow_kn``)."""
        d = self.defaults["encounter"]
        return _encounter.EncounterParams(
            distance_m=d["distance_m"],
            slow_kn=d["slow_kn"],
            min_duration_s=d["min_duration_s"],
            release_kn=d["release_kn"],
            max_stale_s=d["max_stale_s"],
            max_lag_s=d["max_lag_s"],
        )

    def separation_params(self) -> _containers.SeparationParams:
        """The ``container_separation`` thresholds of this configuration."""
        d = self.defaults["container_separation"]
        return _containers.SeparationParams(
            separation_threshold_m=d["separation_threshold_m"], min_duration_s=d["min_duration_s"]
        )

    def enabled(self, rule: str) -> bool:
        """Whether ``rule`` is switched on."""
        return bool(self.defaults[rule].get("enabled", True))

    def get(self, rule: str, key: str) -> Any:
        """A rule-level parameter (file default over built-in)."""
        return self.defaults[rule][key]

    def for_ship_type(self, rule: str, ship_type: int | None) -> float:
        """The rule's threshold for an AIS ship type: the narrowest matching range, else the default."""
        key = _BY_SHIP_TYPE[rule]
        best: tuple[int, float] | None = None
        if ship_type is not None:
            for lo, hi, value in self.by_ship_type.get(rule, []):
                if lo <= ship_type <= hi and (best is None or hi - lo < best[0]):
                    best = (hi - lo, value)
        return float(self.defaults[rule][key]) if best is None else best[1]

    def fence_param(self, fence: Fence, key: str, rule_default: Any = None) -> Any:
        """Resolve a per-fence parameter: fence property, then ``[kinds]``, then ``rule_default``."""
        value = self._own_param(fence, key)
        if value is None:
            value = self.kinds.get(fence.kind, {}).get(key)
        return rule_default if value is None else value

    def param_sources(self, fence: Fence, key: str, rule: str) -> list[tuple[Any, str]]:
        """Every value set for a fence parameter, in precedence order, with where it comes from.

        The sources are ``"fence"`` (its property), ``"rules file"`` (``[kinds.<kind>]``, then
        ``[defaults.<rule>]``) and ``"default"`` (the built-in per-kind value, then the rule's
        built-in default); unset (None) levels are left out. The first entry is what
        :meth:`fence_param` returns; the later ones are the fall-backs, used for example when
        ``max_dwell_min = "p99"`` has no learned baseline.
        """
        out: list[tuple[Any, str]] = []
        own = self._own_param(fence, key)
        if own is not None:
            out.append((own, "fence"))
        kind_val = self.kinds.get(fence.kind, {}).get(key)
        if f"kinds.{fence.kind.value}.{key}" in self.file_keys and kind_val is not None:
            out.append((kind_val, "rules file"))
        builtin_kind = KIND_DEFAULTS.get(fence.kind, {}).get(key)
        if builtin_kind is not None:
            out.append((builtin_kind, "default"))
        if rule in self.defaults and key in self.defaults[rule]:
            rule_val = self.defaults[rule][key]
            if f"defaults.{rule}.{key}" in self.file_keys and rule_val is not None:
                out.append((rule_val, "rules file"))
            builtin = DEFAULTS[rule][key][0]
            if builtin is not None:
                out.append((builtin, "default"))
        return out

    @staticmethod
    def _own_param(fence: Fence, key: str) -> Any:
        """The fence's own value of a parameter (FenceParams field, else validated metadata), or None."""
        value = getattr(fence.params, key, None) if key in fence.params.__slots__ else None
        if value is None:
            value = fence.metadata.get(key)
            if value is not None:
                value = _check(f"fence {fence.id} property {key}", value, KIND_PARAMS.get(key, _NUM))
        return value
