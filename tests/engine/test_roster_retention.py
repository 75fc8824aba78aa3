"""Roster rows are personal data: erased by housekeeping after the department's retention (fake clock), with an
audit entry; never while a notice that has not ended uses them."""

from __future__ import annotations

from notifier.engine import Engine
from notifier.engine.roster_retention import erase_expired_rosters
from notifier.store import Store
from notifier.store.audit import AuditFilter
from notifier.testing import FakeClock, RecordingChannel
from subscribers.roster_rows import table_from_rows
from tests.engine.conftest import approved, resident

DAY = 86400.0


async def roster_of(store: Store, phones: list[str]) -> int:
    table = table_from_rows([{"phone": p, "金额": str(100 * n)} for n, p in enumerate(phones, 1)])
    return await store.create_roster(
        department="civil-affairs", name="救助名单", key="phone", table=table, direct=False, actor="test"
    )


async def erasures(store: Store) -> list[tuple[str, str | None]]:
    entries, _ = await store.list_audit(AuditFilter(action="roster.erase"), None, 100)
    return [(entry.actor, entry.object_id) for entry in entries]


async def test_roster_is_erased_after_retention_and_not_before(
    engine: Engine, engine_store: Store, clock: FakeClock, channels: dict[str, RecordingChannel]
) -> None:
    people = [await resident(engine_store) for _ in range(3)]
    roster_id = await roster_of(engine_store, [p.phone or "" for p in people])
    await engine_store.set_roster_retention("civil-affairs", 30, "test")
    notice = await approved(
        engine_store, "civil-affairs", topic="social-assistance", body="{{ row.金额 }}元", target={"roster": roster_id}
    )
    # past the retention, but the notice has not been sent yet: kept
    assert await erase_expired_rosters(engine.ctx, clock() + 40 * DAY) == 0
    await engine.run_until_idle()
    texts = sorted(m.text for m in channels["sms-main"].messages)
    assert texts == [f"空气质量预警：{n}元（民政局）" for n in (100, 200, 300)]
    assert (await engine_store.get_notice(notice.id)).state.value == "done"
    assert await erasures(engine_store) == []

    clock.advance(29 * DAY)  # 29 days after the notice ended: kept
    await engine.run_until_idle()
    assert len(await engine_store.roster_rows_page(roster_id, 0, 10)) == 3

    clock.advance(2 * DAY)  # 31 days after: erased, once, with an audit entry
    await engine.run_until_idle()
    assert await engine_store.roster_rows_page(roster_id, 0, 10) == []
    assert (await engine_store.roster_report(roster_id))["erased_at"] is not None
    clock.advance(DAY)
    await engine.run_until_idle()
    assert await erasures(engine_store) == [("engine", str(roster_id))]


async def test_default_retention_is_180_days_after_upload_when_unused(
    engine: Engine, engine_store: Store, clock: FakeClock
) -> None:
    people = [await resident(engine_store) for _ in range(2)]
    roster_id = await roster_of(engine_store, [p.phone or "" for p in people])
    clock.advance(179 * DAY)
    await engine.run_until_idle()
    assert len(await engine_store.roster_rows_page(roster_id, 0, 10)) == 2
    clock.advance(2 * DAY)
    await engine.run_until_idle()
    assert await engine_store.roster_rows_page(roster_id, 0, 10) == []
