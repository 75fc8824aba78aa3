"""Synthetic residents, written straight into SQLite (or PostgreSQL) for benchmarks and large tests.

Numbers and names are generated (``+86139`` followed by the id), never real people's data.
Residents are spread over ``towns`` towns of one county, with two villages each; every resident
follows the ``air-quality`` topic, every fifth is in the ``dibao`` group, and the channel mix cycles
through phone only, phone and e-mail, and WeChat then phone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

COUNTY = "370725"
CHUNK = 20_000


def town_code(index: int) -> str:
    return f"{COUNTY}{index + 1:03d}"


def village_code(town: str, index: int) -> str:
    return f"{town}{index + 1:03d}"


def seed_catalog(conn: sqlite3.Connection, towns: int) -> None:
    rows: list[tuple[str, str, str, str | None]] = [(COUNTY, "县", "county", None)]
    for t in range(towns):
        town = town_code(t)
        rows.append((town, f"镇{t + 1}", "town", COUNTY))
        rows += [(village_code(town, v), f"村{t + 1}-{v + 1}", "village", town) for v in range(2)]
    conn.executemany("INSERT OR IGNORE INTO areas (code, name, level, parent) VALUES (?, ?, ?, ?)", rows)
    conn.execute("INSERT OR IGNORE INTO topics (code, name) VALUES ('air-quality', '空气质量')")
    conn.execute("INSERT OR IGNORE INTO resident_groups (code, name) VALUES ('dibao', '低保户')")
    conn.execute("INSERT OR IGNORE INTO departments (code, name) VALUES ('environment', '生态环境分局')")
    conn.commit()


def _resident(i: int, towns: int, stamp: str) -> tuple[object, ...]:
    mix = i % 3
    channels = [["sms"], ["sms", "email"], ["wechat", "sms"]][mix]
    town = town_code(i % towns)
    return (
        i,
        f"居民{i}",
        f"+86139{i:08d}",
        f"r{i}@example.org" if mix == 1 else None,
        f"openid{i:010d}" if mix == 2 else None,
        village_code(town, (i // towns) % 2),
        json.dumps(channels),
        "synthetic",
        stamp,
        stamp,
        stamp,
    )


def _rows(first: int, count: int, towns: int) -> Iterator[tuple[object, ...]]:
    stamp = datetime.now(UTC).isoformat()
    for i in range(first, first + count):
        yield _resident(i, towns, stamp)


def populate(path: str, count: int, *, towns: int = 10, first_id: int = 1) -> None:
    """Insert ``count`` residents (ids from ``first_id``) with topic and group memberships."""
    conn = sqlite3.connect(path)
    try:
        seed_catalog(conn, towns)
        topic = conn.execute("SELECT id FROM topics WHERE code = 'air-quality'").fetchone()[0]
        group = conn.execute("SELECT id FROM resident_groups WHERE code = 'dibao'").fetchone()[0]
        for start in range(first_id, first_id + count, CHUNK):
            size = min(CHUNK, first_id + count - start)
            conn.executemany(
                "INSERT INTO subscribers (id, name, phone, email, wechat_openid, area_code, channels, consent_source,"
                " consent_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _rows(start, size, towns),
            )
            conn.executemany(
                "INSERT INTO subscriber_topics (subscriber_id, topic_id) VALUES (?, ?)",
                ((i, topic) for i in range(start, start + size)),
            )
            conn.executemany(
                "INSERT INTO subscriber_groups (subscriber_id, group_id) VALUES (?, ?)",
                ((i, group) for i in range(start, start + size) if i % 5 == 0),
            )
            conn.commit()
    finally:
        conn.close()


async def populate_postgres(dsn: str, count: int, *, towns: int = 10, first_id: int = 1) -> None:
    """``populate`` on a migrated PostgreSQL database, with COPY (asyncpg): the same residents and memberships."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        areas: list[tuple[str, str, str, str | None]] = [(COUNTY, "县", "county", None)]
        for t in range(towns):
            town = town_code(t)
            areas.append((town, f"镇{t + 1}", "town", COUNTY))
            areas += [(village_code(town, v), f"村{t + 1}-{v + 1}", "village", town) for v in range(2)]
        await conn.executemany(
            "INSERT INTO areas (code, name, level, parent) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", areas
        )
        await conn.execute("INSERT INTO topics (code, name) VALUES ('air-quality', '空气质量') ON CONFLICT DO NOTHING")
        await conn.execute("INSERT INTO resident_groups (code, name) VALUES ('dibao', '低保户') ON CONFLICT DO NOTHING")
        await conn.execute(
            "INSERT INTO departments (code, name) VALUES ('environment', '生态环境分局') ON CONFLICT DO NOTHING"
        )
        topic = await conn.fetchval("SELECT id FROM topics WHERE code = 'air-quality'")
        group = await conn.fetchval("SELECT id FROM resident_groups WHERE code = 'dibao'")
        columns = [
            "id", "name", "phone", "email", "wechat_openid", "area_code", "channels", "consent_source",
            "consent_at", "created_at", "updated_at",
        ]  # fmt: skip
        for start in range(first_id, first_id + count, CHUNK):
            size = min(CHUNK, first_id + count - start)
            async with conn.transaction():
                await conn.copy_records_to_table("subscribers", columns=columns, records=_rows(start, size, towns))
                await conn.copy_records_to_table(
                    "subscriber_topics", columns=["subscriber_id", "topic_id"],
                    records=((i, topic) for i in range(start, start + size)),
                )  # fmt: skip
                await conn.copy_records_to_table(
                    "subscriber_groups", columns=["subscriber_id", "group_id"],
                    records=((i, group) for i in range(start, start + size) if i % 5 == 0),
                )  # fmt: skip
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('subscribers', 'id'), (SELECT MAX(id) FROM subscribers))"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def populate_url(url: str, count: int) -> None:
    """``populate`` for the database a ``[database] url`` names: SQLite directly, PostgreSQL with COPY
    (``bench.workers.populate_postgres``); the database is migrated already."""
    import asyncio

    if url.startswith("sqlite:///"):
        await asyncio.to_thread(populate, url.removeprefix("sqlite:///"), count)
        return
    from bench.workers import populate_postgres

    await populate_postgres(url, count)
