"""The ``geofence`` console script: the outermost layer, allowed to import every package."""
