"""Areas, departments, topics and groups: the reference data notices and residents point at."""

from __future__ import annotations

from collections.abc import Iterable

from notifier.domain.contacts import area_level, parent_code
from notifier.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from notifier.domain.models import Area, AreaIn, Department, Group, GroupIn, Topic, TopicIn
from notifier.store.audit import AuditRepository
from notifier.store.common import decode_cursor, page
from notifier.store.database import Database


class CatalogRepository(AuditRepository):
    db: Database

    # areas

    async def create_area(self, area: AreaIn, actor: str) -> Area:
        level = area_level(area.code)
        parent = parent_code(area.code)
        async with self.db.transaction():
            if await self.db.fetch_one("get_area", {"code": area.code}):
                raise Conflict(f"area {area.code} exists")
            if parent is not None and not await self.db.fetch_one("get_area", {"code": parent}):
                raise InvalidInput("parent area unknown", [FieldError("code", f"no area {parent} above {area.code}")])
            await self.db.execute(
                "insert_area", {"code": area.code, "name": area.name, "level": level.value, "parent": parent}
            )
            await self.audit(actor, "area.create", "area", area.code, {"name": area.name})
        return Area(code=area.code, name=area.name, level=level.value, parent=parent)

    async def upsert_areas(self, areas: Iterable[tuple[str, str]]) -> None:
        """Load (code, name) pairs, parents first; used by the demo loader."""
        rows = [
            {"code": code, "name": name, "level": area_level(code).value, "parent": parent_code(code)}
            for code, name in sorted(areas, key=lambda pair: len(pair[0]))
        ]
        await self.db.execute_many("insert_area", rows)

    async def list_areas(self) -> list[Area]:
        return [Area(**row) for row in await self.db.fetch_all("list_areas")]

    async def printable_area_names(self) -> dict[str, str]:
        """Code -> name as printed on a notice: a village reads "<town> <village>", others their own name."""
        areas = {area.code: area for area in await self.list_areas()}
        return {
            code: f"{areas[area.parent].name} {area.name}"
            if area.level == "village" and area.parent in areas
            else area.name
            for code, area in areas.items()
        }

    async def get_area(self, code: str) -> Area:
        row = await self.db.fetch_one("get_area", {"code": code})
        if row is None:
            raise NotFound(f"no area {code}")
        return Area(**row)

    async def check_areas(self, codes: Iterable[str], loc: str) -> None:
        errors = [
            FieldError(f"{loc}.{i}", f"unknown area code {code}", "unknown_area")
            for i, code in enumerate(codes)
            if not await self.db.fetch_one("get_area", {"code": code})
        ]
        if errors:
            raise InvalidInput("unknown area code", errors)

    # departments

    async def upsert_department(self, code: str, name: str, topics: Iterable[str], groups: Iterable[str] = ()) -> None:
        """Create or rename a department; grant it topics to issue on and groups to work with (never revoked here)."""
        async with self.db.transaction():
            await self.db.execute("upsert_department", {"code": code, "name": name})
            for topic in topics:
                await self.db.execute("grant_department_topic", {"department": code, "topic": topic})
            for group in groups:
                await self.db.execute("grant_department_group", {"department": code, "group": group})

    async def get_department(self, code: str) -> Department:
        row = await self.db.fetch_one("get_department", {"code": code})
        if row is None:
            raise NotFound(f"no department {code}")
        topics = [r["code"] for r in await self.db.fetch_all("department_topics", {"department": code})]
        groups = [r["code"] for r in await self.db.fetch_all("department_groups", {"department": code})]
        return Department(code=row["code"], name=row["name"], topics=topics, groups=groups)

    async def list_departments(self) -> list[Department]:
        return [await self.get_department(r["code"]) for r in await self.db.fetch_all("list_departments")]

    # topics and groups

    async def create_topic(self, topic: TopicIn, actor: str) -> Topic:
        return Topic(**await self._create_code("topic", topic, actor))

    async def create_group(self, group: GroupIn, actor: str) -> Group:
        return Group(**await self._create_code("group", group, actor))

    async def upsert_topic(self, code: str, name: str, description: str = "") -> None:
        await self.db.execute("upsert_topic", {"code": code, "name": name, "description": description})

    async def upsert_group(self, code: str, name: str, description: str = "") -> None:
        await self.db.execute("upsert_group", {"code": code, "name": name, "description": description})

    async def _create_code(self, kind: str, item: TopicIn, actor: str) -> dict[str, object]:
        async with self.db.transaction():
            if await self.db.fetch_one(f"get_{kind}", {"code": item.code}):
                raise Conflict(f"{kind} {item.code} exists")
            await self.db.execute(f"insert_{kind}", item.model_dump())
            row = await self.db.fetch_one(f"get_{kind}", {"code": item.code})
            assert row is not None
            await self.audit(actor, f"{kind}.create", kind, item.code, {"name": item.name})
        return row

    async def list_topics(self, cursor: str | None, limit: int) -> tuple[list[Topic], str | None]:
        rows = await self.db.fetch_all("list_topics", {"after": decode_cursor(cursor) or 0, "limit": limit + 1})
        items, next_cursor = page(rows, limit)
        return [Topic(**r) for r in items], next_cursor

    async def list_groups(self, cursor: str | None, limit: int) -> tuple[list[Group], str | None]:
        rows = await self.db.fetch_all("list_groups", {"after": decode_cursor(cursor) or 0, "limit": limit + 1})
        items, next_cursor = page(rows, limit)
        return [Group(**r) for r in items], next_cursor

    async def check_codes(self, kind: str, codes: Iterable[str], loc: str) -> None:
        """Raise InvalidInput naming each unknown topic or group code."""
        errors = [
            FieldError(f"{loc}.{i}", f"unknown {kind} {code}", f"unknown_{kind}")
            for i, code in enumerate(codes)
            if not await self.db.fetch_one(f"get_{kind}", {"code": code})
        ]
        if errors:
            raise InvalidInput(f"unknown {kind}", errors)
