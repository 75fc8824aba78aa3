"""Named SQL blocks: every statement a store runs lives in ``sql/<dialect>_*queries.sql``.

The SQLite blocks are the reference. PostgreSQL runs each SQLite block as it is (its ``:name`` parameters
translated) unless a ``sql/postgres_*queries.sql`` file defines a block of the same name, which then replaces
it; a PostgreSQL block with no SQLite block of that name is an error. tests/test_dialects.py prepares every
query on a migrated PostgreSQL database, so a SQLite block that does not run there fails until its
PostgreSQL block is written (docs/storage.md).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib.resources import files

_BLOCK = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    parts = _BLOCK.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"query {name} is defined twice")
        blocks[name] = body.strip().rstrip(";")
    return blocks


BASE_DIALECT = "sqlite"
# each block of another dialect names the SQLite block it was written for by this fingerprint, so that a change
# to the SQLite block fails tests/test_dialects.py until its twin is looked at again
WRITTEN_FOR = re.compile(r"^--\s*written for sqlite ([0-9a-f]{12})\s*$", re.MULTILINE)


def fingerprint(sql: str) -> str:
    """A short hash of a query block's text as loaded."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()[:12]



@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Every named query of a dialect: its own blocks over the SQLite ones (see the module docstring)."""
    if dialect == BASE_DIALECT:
        return dialect_blocks(dialect)
    merged = dict(load_queries(BASE_DIALECT))
    for name, sql in dialect_blocks(dialect).items():
        if name not in merged:
            raise ValueError(f"{dialect} query {name} replaces no {BASE_DIALECT} query of that name")
        merged[name] = sql
    return merged


@cache
def dialect_blocks(dialect: str) -> dict[str, str]:
    """The blocks of every ``sql/<dialect>_*queries.sql`` file; a name defined twice is an error."""
    merged: dict[str, str] = {}
    folder = files("notifier.store").joinpath("sql")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(f"{dialect}_") and entry.name.endswith("queries.sql"):
            for name, sql in parse_blocks(entry.read_text(encoding="utf-8")).items():
                if name in merged:
                    raise ValueError(f"query {name} is defined twice ({entry.name})")
                merged[name] = sql
    return merged


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration of a dialect, in order."""
    found = []
    for entry in files("notifier.store").joinpath("sql").iterdir():
        match = re.fullmatch(rf"{dialect}_([0-9]{{3}})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)
