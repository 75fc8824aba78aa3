"""Load the Changle County demo into a store: areas, topics, groups, departments and residents.

Idempotent: areas, topics, groups and departments are upserted; residents carry an external_id
(``demo-000123``) and those already stored are skipped, so a second run creates nothing. Residents go
through the bulk importer (``subscribers.importer``), which writes 500 rows per transaction.
"""

from __future__ import annotations

import csv
import logging
import time
import tomllib
from dataclasses import dataclass
from importlib.resources import as_file, files
from typing import Any

from notifier.store import Store
from subscribers.importer import import_file

logger = logging.getLogger(__name__)

ACTOR = "demo"


@dataclass(frozen=True)
class DemoSummary:
    areas: int
    departments: int
    topics: int
    groups: int
    residents_created: int
    residents_existing: int
    residents_failed: int
    seconds: float


def read_catalog() -> dict[str, Any]:
    """The parsed ``data/catalog.toml``: lists of topics, groups and departments."""
    text = files("notifier.demo").joinpath("data", "catalog.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def read_areas() -> list[tuple[str, str]]:
    """(code, name) of the county, its towns and villages; the county's parent lies outside the tree."""
    text = files("notifier.demo").joinpath("data", "changle-divisions.csv").read_text(encoding="utf-8")
    return [(row["code"], row["name"]) for row in csv.DictReader(text.splitlines())]


def read_centroids() -> list[tuple[str, float, float, str]]:
    """(code, latitude, longitude, source) of the areas whose point is known (the county's)."""
    text = files("notifier.demo").joinpath("data", "changle-centroids.csv").read_text(encoding="utf-8")
    return [
        (row["code"], float(row["latitude"]), float(row["longitude"]), row["source"])
        for row in csv.DictReader(text.splitlines())
    ]


async def load_demo(store: Store) -> DemoSummary:
    """Load (or top up) the demo data; return what is there and how many residents were new."""
    started = time.perf_counter()
    catalog = read_catalog()
    areas = read_areas()
    await store.upsert_areas(areas)
    await store.upsert_area_centroids(read_centroids())
    async with store.db.transaction():
        for topic in catalog["topics"]:
            await store.upsert_topic(topic["code"], topic["name"], topic["description"])
        for group in catalog["groups"]:
            await store.upsert_group(group["code"], group["name"], group["description"])
        for department in catalog["departments"]:
            await store.upsert_department(
                department["code"], department["name"], department["topics"], department.get("groups", [])
            )
    with as_file(files("notifier.demo").joinpath("data", "residents.csv")) as path:
        result = await import_file(store, path, actor=ACTOR, report_path=None, existing="skip")
    if result.failed:
        first = result.errors[0] if result.errors else None
        logger.warning("%d demo residents were refused, first: %s", result.failed, first)
    summary = DemoSummary(
        areas=len(areas),
        departments=len(catalog["departments"]),
        topics=len(catalog["topics"]),
        groups=len(catalog["groups"]),
        residents_created=result.imported,
        residents_existing=result.existing,
        residents_failed=result.failed,
        seconds=time.perf_counter() - started,
    )
    logger.info("demo data loaded: %s", summary)
    return summary
