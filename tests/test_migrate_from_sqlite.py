"""``notifier migrate --from sqlite:///old.db`` moves a SQLite installation into an empty PostgreSQL database: the
same rows, read back through the Store, with the audit chain intact and new ids continuing after the old ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.domain.enums import Role
from notifier.engine import Engine
from notifier.store import Store, open_database
from notifier.store.audit import AuditFilter
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import postgres_database
from tests.engine.conftest import (
    CHANNELS,
    VILLAGE_A1,
    VILLAGE_B1,
    approved,
    delivery_rows,
    make_settings,
    resident,
    seeded_store,
)
from tests.test_cli import run_cli

pytestmark = pytest.mark.peer("postgres")


async def populate(url: str, tmp_path: Path) -> dict[str, object]:
    """A small installation: residents, a notice sent to them by the engine, an API key; what it holds."""
    async with seeded_store(url) as store:
        people = [await resident(store, area=VILLAGE_A1), await resident(store, area=VILLAGE_B1, name="李四")]
        await store.add_optout(people[0].id, "topic", "social-assistance", "test")
        notice = await approved(store)
        settings = make_settings(tmp_path)
        channels = {alias: RecordingChannel(alias) for alias in CHANNELS}
        await Engine(store, settings, dict(channels), clock=FakeClock(), jitter=lambda: 0.5).run_until_idle()
        _, key = await store.create_api_key(department="environment", role=Role.ISSUER, name="moved", actor="test")
        return {
            "subscribers": await residents(store),
            "notice": (await store.get_notice(notice.id)).model_dump(),
            "deliveries": await delivery_rows(store, notice.id),
            "audit": [row async for rows in store.audit_rows(AuditFilter()) for row in rows],
            "key": key,
            "notice_id": notice.id,
        }


async def residents(store: Store) -> list[dict[str, object]]:
    page, _ = await store.list_subscribers(area=None, group=None, topic=None, cursor=None, limit=100)
    return [p.model_dump() for p in page]


async def test_a_populated_sqlite_store_moves_to_postgres(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/old.db"
    before = await populate(source, tmp_path)
    assert len(before["deliveries"]) == 2 and len(before["audit"]) >= 4  # type: ignore[arg-type]
    target = postgres_database(migrated=False)

    code, out, err = await run_cli("migrate", "--from", source, db_url=target, cwd=tmp_path)
    assert code == 0, err
    assert "subscribers 2" in out and "deliveries 2" in out

    db = await open_database(target)
    store = Store(db)
    try:
        assert await residents(store) == before["subscribers"]
        assert (await store.get_notice(int(before["notice_id"]))).model_dump() == before["notice"]  # type: ignore[call-overload]
        assert await delivery_rows(store, int(before["notice_id"])) == before["deliveries"]  # type: ignore[call-overload]
        assert [row async for rows in store.audit_rows(AuditFilter()) for row in rows] == before["audit"]
        assert (await store.verify_audit_chain()).broken is None
        assert await store.authenticate(str(before["key"])) is not None
        # the sequences continue after the copied ids, and the chain after the copied entries
        newcomer = await resident(store, area=VILLAGE_A1)
        assert newcomer.id == max(p["id"] for p in before["subscribers"]) + 1  # type: ignore[attr-defined, union-attr]
        assert (await store.verify_audit_chain()).broken is None
    finally:
        await db.close()

    code, _, err = await run_cli("migrate", "--from", source, db_url=target, cwd=tmp_path)
    assert code == 2 and "already holds data" in err and len(err.strip().splitlines()) == 1


async def test_migrate_from_needs_a_postgres_target_and_a_sqlite_source(tmp_path: Path) -> None:
    code, _, err = await run_cli(
        "migrate", "--from", f"sqlite:///{tmp_path}/none.db", db_url=postgres_database(migrated=False), cwd=tmp_path
    )
    assert code == 2 and "no SQLite database" in err
    code, _, err = await run_cli(
        "migrate", "--from", f"sqlite:///{tmp_path}/a.db", db_url=f"sqlite:///{tmp_path}/b.db", cwd=tmp_path
    )
    assert code == 2 and "PostgreSQL target" in err
