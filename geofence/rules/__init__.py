"""Rule configuration and rule helpers of the early-warning engine (see ``docs/rules.md``)."""

from geofence.rules.config import DEFAULTS, KIND_PARAMS, RulesConfig

__all__ = ["DEFAULTS", "KIND_PARAMS", "RulesConfig"]
