"""Where a CAP ``<area>`` falls in the county: geocodes by division code, polygons and circles by centroid.

- ``geocode``: any value (whatever its ``valueName``) that is the code of a known area, as 6, 9 or 12
  digits; a 12-digit statistical code padded with zeros (``370725000000``, ``370725001000``) names the
  county or the town. A province or prefecture code that contains the county (``370000``, ``370700``)
  names the whole county.
- ``polygon`` (at least four ``lat,lon`` pairs, the first and last equal) and ``circle`` (``lat,lon
  radius-km``; a shape with a point off the globe, or a radius that is negative or no number, reaches
  nothing): matched against the most specific points known (``area_centroids``). An area with a point is
  matched when the shape covers its point and the points of all its sub-areas: a town by its own point (and
  those of its villages, when known), the county only when the shape covers the county's point and every
  town's. So a shape over one town's point reaches that town, not the whole county, and the county's own
  point alone (its seat) does not stand for towns that have points of their own. An area with no point is
  reached only through a parent that is matched whole. The demo county ships the county's point and four
  towns' (``notifier/demo/data/changle-centroids.csv``, with their sources).

An area whose parent also matched is dropped: a town covers its villages, the county everything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping

from notifier.cap.document import CapArea
from notifier.domain.text import ascii_digits

EARTH_RADIUS_KM = 6371.0088
Point = tuple[float, float]  # latitude, longitude (WGS 84)


def normalise_code(value: str) -> str | None:
    """A division code of 6, 9 or 12 ASCII digits, trailing zero groups of a 12-digit code dropped."""
    code = value.strip()
    if not ascii_digits(code) or len(code) not in (6, 9, 12):
        return None
    if len(code) == 12 and code.endswith("000000"):
        return code[:6]
    if len(code) == 12 and code.endswith("000"):
        return code[:9]
    return code


def contains_county(code: str, county: str) -> bool:
    """Whether a 6-digit province or prefecture code (``370000``, ``370700``) contains the county."""
    if len(code) != 6 or code == county:
        return False
    if code.endswith("0000"):
        return county.startswith(code[:2])
    if code.endswith("00"):
        return county.startswith(code[:4])
    return False


def parse_point(pair: str) -> Point | None:
    """A ``lat,lon`` pair on the globe (WGS 84 degrees), or None: ``float`` also reads ``inf``, ``nan`` and
    ``1e400``, which no point is, and which make the distance's sine raise or every comparison false."""
    lat_text, _, lon_text = pair.partition(",")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        return None
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def parse_polygon(text: str) -> list[Point] | None:
    """The polygon's points, or None when it is not a list of ``lat,lon`` pairs on the globe (an empty one is
    None too)."""
    points = [parse_point(pair) for pair in text.split()]
    if any(point is None for point in points) or len(points) < 3:
        return None
    return [point for point in points if point is not None]


def parse_circle(text: str) -> tuple[Point, float] | None:
    """The centre and radius (km) of a ``lat,lon radius`` circle, or None when it is none on the globe."""
    parts = text.split()
    if len(parts) != 2:
        return None
    centre = parse_point(parts[0])
    try:
        radius = float(parts[1])
    except ValueError:
        return None
    return (centre, radius) if centre is not None and 0 <= radius < math.inf else None


def inside_polygon(point: Point, polygon: list[Point]) -> bool:
    """Ray casting in the lat/lon plane: fine for areas the size of a county."""
    lat, lon = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (lon1 > lon) != (lon2 > lon):
            crossing = lat1 + (lon - lon1) * (lat2 - lat1) / (lon2 - lon1)
            if lat < crossing:
                inside = not inside
    return inside


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def match_areas(
    areas: Iterable[CapArea], known: Iterable[str], centroids: Mapping[str, Point], county: str
) -> list[str]:
    """The codes of the county's areas the CAP areas name or cover, parents before children removed."""
    known_codes = set(known)
    found: set[str] = set()
    for area in areas:
        for _, value in area.geocodes:
            code = normalise_code(value)
            if code is None:
                continue
            if code in known_codes:
                found.add(code)
            elif contains_county(code, county):
                found.add(county)
        for text in area.polygons:
            polygon = parse_polygon(text)
            if polygon is not None:
                found.update(_covered(centroids, functools.partial(_in_polygon, polygon)))
        for text in area.circles:
            circle = parse_circle(text)
            if circle is not None:
                centre, radius = circle
                found.update(_covered(centroids, functools.partial(_in_circle, centre, radius)))
    return sorted(code for code in found if not any(code != other and code.startswith(other) for other in found))


def _in_polygon(polygon: list[Point], point: Point) -> bool:
    return inside_polygon(point, polygon)


def _in_circle(centre: Point, radius: float, point: Point) -> bool:
    return distance_km(point, centre) <= radius


def _covered(centroids: Mapping[str, Point], inside: Callable[[Point], bool]) -> set[str]:
    """The areas with a point whose point, and every point of their sub-areas, the shape covers."""
    within = {code: inside(point) for code, point in centroids.items()}
    return {code for code in within if all(ok for other, ok in within.items() if other.startswith(code))}
