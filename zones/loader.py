"""Load zone files into a :class:`geofence.fence.ZoneSet`, or list their problems.

Three entry points:

* :func:`check_zones` reads files and returns every :class:`~zones.validate.Problem`
  (``geofence zones check`` prints them);
* :func:`load_zones` reads files and returns a ``ZoneSet`` or raises
  :class:`geofence.errors.ZoneError` listing all problems;
* :func:`zones_from_geojson` does the same for a document already in memory
  (e.g. a zone set published as JSON over Kafka).

Ids must be unique across all files loaded together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from geofence.errors import ZoneError
from geofence.fence import Fence, ZoneSet
from zones.validate import Problem, feature_ids, parse_document

__all__ = ["Problem", "check_zones", "fences_and_problems", "load_zones", "zones_from_geojson"]

PathLike = str | os.PathLike[str]


def _read(path: PathLike) -> tuple[object | None, Problem | None]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, Problem(None, source, f"cannot read file: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return None, Problem(None, source, f"not UTF-8 text: {exc}")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, Problem(None, source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def fences_and_problems(documents: Iterable[tuple[object, str]]) -> tuple[list[Fence], list[Problem]]:
    """Validate documents ``(obj, source)`` together: fences of valid features and all problems.

    Besides each document's own checks this reports ids repeated across documents,
    also for features that are invalid for other reasons.
    """
    fences: list[Fence] = []
    problems: list[Problem] = []
    first_source: dict[str, str] = {}
    for obj, source in documents:
        doc_fences, doc_problems = parse_document(obj, source)
        problems.extend(doc_problems)
        repeated = set()
        for fid in dict.fromkeys(feature_ids(obj)):
            if fid in first_source:
                repeated.add(fid)
                problems.append(Problem(fid, source, f"duplicate id, already defined in {first_source[fid]}"))
            else:
                first_source[fid] = source
        fences.extend(f for f in doc_fences if f.id not in repeated)
    return fences, problems


def _documents(paths: Sequence[PathLike], problems: list[Problem]) -> list[tuple[object, str]]:
    docs: list[tuple[object, str]] = []
    for path in paths:
        obj, problem = _read(path)
        if problem is not None:
            problems.append(problem)
        else:
            docs.append((obj, str(path)))
    return docs


def check_zones(paths: Sequence[PathLike] | PathLike) -> list[Problem]:
    """Return every problem in the zone files ``paths`` (an empty list when all are valid)."""
    problems: list[Problem] = []
    docs = _documents(_as_list(paths), problems)
    _, found = fences_and_problems(docs)
    return problems + found


def load_zones(paths: Sequence[PathLike] | PathLike) -> ZoneSet:
    """Load zone files into one :class:`ZoneSet`.

    Raises
    ------
    ZoneError
        When any file has a problem; the message lists all of them, one per line.
    """
    problems: list[Problem] = []
    docs = _documents(_as_list(paths), problems)
    fences, found = fences_and_problems(docs)
    return _zone_set(fences, problems + found)


def zones_from_geojson(obj: object, source: str = "<memory>") -> ZoneSet:
    """Build a :class:`ZoneSet` from a decoded GeoJSON FeatureCollection.

    Raises
    ------
    ZoneError
        When the document has a problem; the message lists all of them.
    """
    fences, problems = fences_and_problems([(obj, source)])
    return _zone_set(fences, problems)


def _zone_set(fences: list[Fence], problems: list[Problem]) -> ZoneSet:
    if problems:
        lines = "\n".join(str(p) for p in problems)
        raise ZoneError(f"{len(problems)} problem(s) in zone files; run 'geofence zones check' for details:\n{lines}")
    if not fences:
        raise ZoneError("no fences loaded; give at least one zone file with features")
    return ZoneSet.of(fences)


def _as_list(paths: Sequence[PathLike] | PathLike) -> list[PathLike]:
    if isinstance(paths, str | os.PathLike):
        return [paths]
    return list(paths)
