"""Zone files: the Yangtze fence catalogue, its loader and validator.

``zones`` reads GeoJSON zone files (any CRS pyproj knows, plus GCJ-02 and
BD-09), validates them and builds :class:`geofence.fence.ZoneSet` objects for the
core. It imports only :mod:`geofence`. See ``docs/zones.md``.
"""

from zones.catalogue import default_catalogue_path
from zones.loader import check_zones, fences_and_problems, load_zones, zones_from_geojson
from zones.validate import Problem

__all__ = [
    "Problem",
    "check_zones",
    "default_catalogue_path",
    "fences_and_problems",
    "load_zones",
    "zones_from_geojson",
]
