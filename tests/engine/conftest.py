"""Engine fixtures: a migrated store with a small catalog, recording channels and a fake clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from notifier import approval
from notifier.config import ApprovalConfig, Settings
from notifier.domain.enums import NoticeState, Role
from notifier.domain.models import Notice, NoticeIn, Subscriber, SubscriberIn
from notifier.engine import Engine, add_recurring_notice
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel
from tests.databases import database_url, open_migrated

COUNTY, TOWN_A, TOWN_B = "370725", "370725001", "370725002"
VILLAGE_A1, VILLAGE_A2, VILLAGE_B1 = "370725001001", "370725001002", "370725002001"

CHANNELS = {
    "sms-main": {"kind": "sms", "type": "recording", "order": 0},
    "sms-backup": {"kind": "sms", "type": "recording", "order": 1},
    "email": {"kind": "email", "type": "recording"},
    "wechat": {"kind": "wechat", "type": "recording"},
    "wecom": {"kind": "wecom", "type": "recording"},
}


def make_settings(tmp_path: Path, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "engine.db")},
            "engine": {"workers": 1, "poll_interval": 0.05, "backoff_base": 2, "backoff_max": 60, **engine},
            "channels": CHANNELS,
        }
    )


async def seed(store: Store) -> None:
    await store.upsert_areas(
        [
            (COUNTY, "昌乐县"),
            (TOWN_A, "甲镇"),
            (TOWN_B, "乙镇"),
            (VILLAGE_A1, "甲一村"),
            (VILLAGE_A2, "甲二村"),
            (VILLAGE_B1, "乙一村"),
        ]
    )
    for code in ("air-quality", "social-assistance", "disaster-relief"):
        await store.upsert_topic(code, code)
    for code in ("dibao", "elderly-alone", "disabled"):
        await store.upsert_group(code, code)
    await store.upsert_department("environment", "生态环境分局", ["air-quality"])
    await store.upsert_department("civil-affairs", "民政局", ["social-assistance", "disaster-relief"])


@pytest.fixture
def engine_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@contextlib.asynccontextmanager
async def seeded_store(url: str) -> AsyncIterator[Store]:
    """A migrated database at ``url`` holding the test county (``seed``), closed on exit."""
    db = await open_migrated(url)
    store = Store(db)
    await seed(store)
    try:
        yield store
    finally:
        await db.close()


@pytest.fixture
async def engine_store(engine_settings: Settings) -> AsyncIterator[Store]:
    async with seeded_store(engine_settings.database.url) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def channels() -> dict[str, RecordingChannel]:
    return {alias: RecordingChannel(alias) for alias in CHANNELS}


@pytest.fixture
def engine(
    engine_store: Store, engine_settings: Settings, channels: dict[str, RecordingChannel], clock: FakeClock
) -> Engine:
    return Engine(engine_store, engine_settings, dict(channels), clock=clock, jitter=lambda: 0.5)


_phones = iter(range(10_000_000))


async def resident(store: Store, area: str = VILLAGE_A1, **fields: Any) -> Subscriber:
    """A resident with a fresh synthetic phone unless told otherwise."""
    data: dict[str, Any] = {"name": "居民", "area_code": area, "channels": ["sms"], **fields}
    if "phone" not in fields:
        data["phone"] = f"+86139{next(_phones):08d}"
    return await store.create_subscriber(SubscriberIn.model_validate(data), "test")


async def approved(store: Store, department: str = "environment", **fields: Any) -> Notice:
    """A notice moved straight to approved, as the API does after an approver's decision."""
    data: dict[str, Any] = {
        "topic": "air-quality",
        "title": "空气质量预警",
        "body": "明日重度污染，减少外出。",
        "target": {"areas": [COUNTY]},
        "channels": ["sms"],
        **fields,
    }
    notice, _ = await store.create_notice(
        NoticeIn.model_validate(data), department=department, created_by=None, actor="test"
    )
    return await store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")


async def approved_series(store: Store, notice: NoticeIn, *, cron: str, department: str = "environment") -> int:
    """A recurring notice registered by an issuer and approved by an approver, as the approval rules ask."""
    recurring_id = await add_recurring_notice(
        store, ApprovalConfig(), notice, department=department, cron=cron, actor="apikey:issuer"
    )
    key, _ = await store.create_api_key(department=department, role=Role.APPROVER, name="series approver", actor="t")
    await approval.approve_recurring(store, key, recurring_id, "每周例行")
    return recurring_id


async def delivery_rows(store: Store, notice_id: int) -> list[dict[str, Any]]:
    deliveries, _ = await store.list_deliveries(notice_id, None, 10_000)
    return [d.model_dump() for d in deliveries]


def count_fan_out_chunks(store: Store) -> list[Any]:
    """The arguments of every chunk transaction the store runs from now on (``fan_out_chunk`` wrapped)."""
    chunks: list[Any] = []
    fan_out_chunk = store.fan_out_chunk

    async def counted(*args: Any) -> bool:
        chunks.append(args)
        return await fan_out_chunk(*args)

    store.fan_out_chunk = counted  # type: ignore[method-assign]
    return chunks
