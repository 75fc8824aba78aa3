"""The narrow interface repositories run their named queries through.

A Database executes named blocks from its dialect's query file. Writes happen inside
``transaction()``; a read outside one may use a separate connection and so never waits for a writer.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

Row = dict[str, Any]


class Database(abc.ABC):
    dialect: str
    # whether INSERT and UPDATE may stand inside a statement's WITH clause (PostgreSQL; not SQLite): the fan-out
    # then writes a chunk in one statement instead of staging it in temporary tables first
    writes_in_with: bool = False
    # whether write transactions run side by side (PostgreSQL), so that two of them can each read before the
    # other commits; SQLite lets one writer in at a time, and locks that only order writers are not needed there
    writers_side_by_side: bool = False
    # whether claim_deliveries returns each claimed row's notice columns itself (PostgreSQL joins the notice in the
    # claiming UPDATE). SQLite's RETURNING reads no other table but through a subquery per column and row (four
    # per delivery, 14 % of the claim and record's instructions), so there the store reads the batch's notices
    # once, in the claim's transaction
    claim_reads_notices: bool = False
    # residents per fan-out transaction when [engine] fanout_batch_size is unset: SQLite's one writer waits for
    # each chunk's transaction, so its chunks stay short
    fanout_chunk: int = 2000

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied (empty when up to date)."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One atomic unit of work; nested use joins the outer transaction."""

    @abc.abstractmethod
    async def fetch_all(self, query: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...

    @abc.abstractmethod
    async def fetch_one(self, query: str, params: Mapping[str, Any] | None = None) -> Row | None: ...

    @abc.abstractmethod
    async def execute(self, query: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a named write; return the number of rows changed."""

    @abc.abstractmethod
    async def execute_many(self, query: str, rows: Iterable[Mapping[str, Any]]) -> None: ...

    @abc.abstractmethod
    def stream(
        self, query: str, params: Mapping[str, Any] | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[Row]]:
        """Rows of a named read in chunks, without loading them all."""

    @abc.abstractmethod
    async def refresh_statistics(self, table: str) -> None:
        """Called in the transaction of a bulk insert into ``table`` (a fan-out chunk): where the database keeps
        planner statistics and plans cached from them, bring them up to date once the table has outgrown them."""

    async def fetch_value(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        row = await self.fetch_one(query, params)
        return None if row is None else next(iter(row.values()))
