"""Area deliveries: kinds bot and bulletin reach an area (a resident group, a notice board), not a resident."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from channels.base import Channel, ChannelOptions, Failed, JobState, Retry
from channels.bulletin_cups import BulletinChannel, BulletinOptions, split_header
from channels.wecom_bot import WecomBotChannel
from notifier.config import Settings
from notifier.engine import Engine, cancel_notice
from notifier.engine.areas import POLL_EVERY, fan_out_areas
from notifier.engine.fanout import fan_out_next
from notifier.store import Store
from notifier.testing import FakeClock, RecordingChannel, RecordingOptions
from tests.databases import database_url
from tests.engine.conftest import (
    CHANNELS,
    COUNTY,
    TOWN_A,
    TOWN_B,
    VILLAGE_A1,
    VILLAGE_A2,
    VILLAGE_B1,
    approved,
    delivery_rows,
    resident,
    seeded_store,
)
from tests.fake_bots import FakeWecomBot
from tests.fake_wechat import FakeClock as FakeBotClock


class AreaOptions(RecordingOptions):
    areas: list[str] | None = None  # the areas the adapter reaches; None: any
    levels: list[str] | None = None  # None: the kind's default


class RecordingAreaChannel(RecordingChannel):
    """A recording adapter of kind bot or bulletin that reports print-job states as scripted."""

    Options = AreaOptions

    def __init__(self, alias: str, options: ChannelOptions | None = None, **values: object) -> None:
        super().__init__(alias, options if options is not None else AreaOptions.model_validate(values))
        self.jobs: dict[str, list[JobState]] = {}
        self.polled: list[str] = []

    @property
    def area_options(self) -> AreaOptions:
        assert isinstance(self.options, AreaOptions)
        return self.options

    def covered_areas(self) -> set[str] | None:
        return None if self.area_options.areas is None else set(self.area_options.areas)

    def area_levels(self) -> frozenset[str] | None:
        levels = self.area_options.levels
        return None if levels is None else frozenset(levels)

    def plan_job(self, area: str, *states: JobState) -> None:
        self.jobs[area] = list(states)

    async def poll_job(self, provider_message_id: str) -> JobState:
        self.polled.append(provider_message_id)
        area = next(
            m.recipient for m in self.messages if provider_message_id.startswith(f"{self.alias}-{m.delivery_id}-")
        )
        script = self.jobs.get(area) or ["completed"]
        return script.pop(0) if len(script) > 1 else script[0]


AREA_CHANNELS = {
    **CHANNELS,
    "bots": {"kind": "bot", "type": "recording"},
    "board": {"kind": "bulletin", "type": "recording"},
}


def area_settings(tmp_path: Path, channels: dict[str, Any] | None = None, **engine: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": database_url(tmp_path, "areas.db")},
            "engine": {"workers": 1, "poll_interval": 0.05, "backoff_base": 2, "backoff_max": 60, **engine},
            "channels": channels or AREA_CHANNELS,
        }
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with seeded_store(database_url(tmp_path, "areas.db")) as store:
        yield store


@pytest.fixture
def bots() -> RecordingAreaChannel:
    return RecordingAreaChannel("bots", areas=[TOWN_A, VILLAGE_A1, VILLAGE_B1], levels=["county", "town", "village"])


@pytest.fixture
def board() -> RecordingAreaChannel:
    return RecordingAreaChannel("board")  # the kind's default: one printout per village


def build(
    store: Store, tmp_path: Path, clock: FakeClock, extra: dict[str, Channel], settings: Settings | None = None
) -> Engine:
    adapters: dict[str, Channel] = {alias: RecordingChannel(alias) for alias in CHANNELS}
    adapters.update(extra)
    return Engine(store, settings or area_settings(tmp_path), adapters, clock=clock, jitter=lambda: 0.5)


async def test_town_notice_reaches_residents_groups_and_boards(
    store: Store, tmp_path: Path, bots: RecordingAreaChannel, board: RecordingAreaChannel
) -> None:
    clock = FakeClock()
    engine = build(store, tmp_path, clock, {"bots": bots, "board": board})
    in_town = [await resident(store, VILLAGE_A1), await resident(store, VILLAGE_A2)]
    await resident(store, VILLAGE_B1)
    notice = await approved(store, target={"areas": [TOWN_A]}, channels=["sms", "bot", "bulletin"], severity="severe")

    await engine.run_until_idle()

    rows = await delivery_rows(store, notice.id)
    assert sorted(r["subscriber_id"] for r in rows) == sorted(s.id for s in in_town)
    assert {r["channel"] for r in rows} == {"sms"}  # the deliveries list stays resident-only
    assert sorted(bots.recipients()) == [TOWN_A, VILLAGE_A1]  # covered areas of the town only
    assert sorted(board.recipients()) == [VILLAGE_A1, VILLAGE_A2]  # one printout per village
    keys = {m.idempotency_key for m in board.messages}
    assert keys == {f"n{notice.id}-a{VILLAGE_A1}-bulletin", f"n{notice.id}-a{VILLAGE_A2}-bulletin"}

    printout = board.messages[0]
    header, body = split_header(printout.text)
    assert printout.subject == "空气质量预警" and body == "明日重度污染，减少外出。"
    assert header["severity"] == "severe" and header["topic"] == "air-quality"
    assert header["department"] == "生态环境分局"
    issued = datetime.fromisoformat(header["issued"])
    assert issued.utcoffset() is not None and issued.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert abs(issued.timestamp() - notice.updated_at.timestamp()) < 1  # approval time
    post = bots.messages[0]
    assert post.subject == "空气质量预警" and post.text.startswith("明日重度污染")

    final = await store.get_notice(notice.id)
    assert final.state == "done"
    assert final.counts["sms"] == {"sent": 2}
    assert final.counts["bot"] == {"sent": 2} and final.counts["bulletin"] == {"sent": 2}
    assert final.areas_reached == 3 and final.reach == 1.0


async def test_county_wide_and_personal_targets(
    store: Store, tmp_path: Path, bots: RecordingAreaChannel, board: RecordingAreaChannel
) -> None:
    engine = build(store, tmp_path, FakeClock(), {"bots": bots, "board": board})
    wide = await approved(store, target={"topics": ["air-quality"]}, channels=["bulletin", "bot"])
    person = await resident(store, VILLAGE_B1)
    personal = await approved(store, target={"subscribers": [person.id]}, channels=["sms", "bulletin"])
    await engine.run_until_idle()

    assert sorted(board.recipients()) == [VILLAGE_A1, VILLAGE_A2, VILLAGE_B1]  # every village of the county
    assert sorted(bots.recipients()) == [TOWN_A, VILLAGE_A1, VILLAGE_B1]
    assert TOWN_B not in bots.recipients() and COUNTY not in bots.recipients()
    assert (await store.get_notice(wide.id)).areas_reached == 4  # distinct areas, both kinds
    named = await store.get_notice(personal.id)
    assert "bulletin" not in named.counts and named.areas_reached is None and named.counts["sms"] == {"sent": 1}


async def test_real_wecom_robot_gets_the_area_code_as_recipient(store: Store, tmp_path: Path) -> None:
    key_town, key_village = "693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa", "5c2b1e0d-1234-4bc4-97a0-0ec2sifa5bbb"
    async with FakeWecomBot(keys={key_town, key_village}, clock=FakeBotClock()) as fake:
        hook = f"{fake.url}/cgi-bin/webhook/send?key="
        options = WecomBotChannel.Options.model_validate(
            {"areas": {TOWN_A: hook + key_town, VILLAGE_A2: hook + key_village}}
        )
        robot = WecomBotChannel("bots", options)
        await robot.open()
        try:
            settings = area_settings(tmp_path, {**CHANNELS, "bots": {"kind": "bot", "type": "wecom_bot"}})
            engine = build(store, tmp_path, FakeClock(), {"bots": robot}, settings)
            notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bot"])
            await engine.run_until_idle()
        finally:
            await robot.close()
    assert len(fake.posts[key_town]) == 1 and len(fake.posts[key_village]) == 1
    content = fake.posts[key_town][0]["text"]["content"]
    assert content.startswith("空气质量预警\n明日重度污染") and "生态环境分局" in content
    final = await store.get_notice(notice.id)
    assert final.counts["bot"] == {"sent": 2} and final.state == "done"


async def test_retries_and_rate_limits_apply_to_area_deliveries(
    store: Store, tmp_path: Path, bots: RecordingAreaChannel
) -> None:
    clock = FakeClock()
    channels = {**AREA_CHANNELS, "bots": {"kind": "bot", "type": "recording", "rate_per_minute": 1}}
    engine = build(store, tmp_path, clock, {"bots": bots}, area_settings(tmp_path, channels))
    bots.plan(VILLAGE_A1, Retry("robot busy"), Retry("robot busy"))
    bots.plan(TOWN_A, Retry("robot busy", retry_after=30))
    notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bot"])

    await engine.run_until_idle()
    assert len(bots.messages) == 1  # one token a minute

    for _ in range(12):
        clock.advance(61)
        await engine.run_until_idle()
    rows = {r["area_code"]: r for r in await store.list_area_deliveries(notice.id)}
    assert rows[VILLAGE_A1]["state"] == "failed" and rows[VILLAGE_A1]["attempts"] == 5  # engine.max_attempts
    assert "retries exhausted" in rows[VILLAGE_A1]["last_error"]
    assert rows[TOWN_A]["state"] == "failed"
    times = [m.recipient for m in bots.messages]
    assert len(times) == 10  # never more than one send per pass of a minute


async def test_failed_area_moves_to_the_next_alias_that_reaches_it(store: Store, tmp_path: Path) -> None:
    primary = RecordingAreaChannel("bots", areas=[VILLAGE_A1, VILLAGE_A2])
    backup = RecordingAreaChannel("bots-backup", areas=[VILLAGE_A1])
    primary.plan(VILLAGE_A1, Failed("errcode-93000", "invalid webhook key"))
    primary.plan(VILLAGE_A2, Failed("errcode-93000", "invalid webhook key"))
    channels = {
        **CHANNELS,
        "bots": {"kind": "bot", "type": "recording", "order": 0},
        "bots-backup": {"kind": "bot", "type": "recording", "order": 1},
    }
    engine = build(
        store, tmp_path, FakeClock(), {"bots": primary, "bots-backup": backup}, area_settings(tmp_path, channels)
    )
    notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bot"])
    await engine.run_until_idle()
    rows = {r["area_code"]: r for r in await store.list_area_deliveries(notice.id)}
    assert rows[VILLAGE_A1]["state"] == "sent" and rows[VILLAGE_A1]["alias"] == "bots-backup"
    assert rows[VILLAGE_A2]["state"] == "failed" and "93000" in rows[VILLAGE_A2]["last_error"]


async def test_cancel_and_expiry_stop_area_deliveries(
    store: Store, tmp_path: Path, bots: RecordingAreaChannel, board: RecordingAreaChannel
) -> None:
    clock = FakeClock()
    engine = build(store, tmp_path, clock, {"bots": bots, "board": board})
    cancelled = await approved(store, target={"areas": [TOWN_A]}, channels=["bot", "bulletin"])
    assert await fan_out_next(engine.ctx) == cancelled.id
    assert await cancel_notice(store, cancelled.id, "test") == 4
    expiring = await approved(
        store,
        target={"areas": [TOWN_A]},
        channels=["bulletin"],
        expires_at=datetime.fromtimestamp(clock.now + 30).astimezone().isoformat(),
    )
    assert await fan_out_next(engine.ctx) == expiring.id
    clock.advance(60)
    await engine.run_until_idle()

    assert bots.messages == [] and board.messages == []
    gone = await store.get_notice(cancelled.id)
    assert gone.counts == {"bot": {"skipped": 2}, "bulletin": {"skipped": 2}} and gone.areas_reached == 0
    lapsed = await store.get_notice(expiring.id)
    assert lapsed.state == "expired" and lapsed.counts == {"bulletin": {"skipped": 2}}


async def test_poller_confirms_print_jobs(store: Store, tmp_path: Path, board: RecordingAreaChannel) -> None:
    clock = FakeClock()
    engine = build(store, tmp_path, clock, {"board": board}, area_settings(tmp_path, confirm_window=300))
    board.plan_job(VILLAGE_A1, "pending", "completed")
    board.plan_job(VILLAGE_A2, "failed")
    notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bulletin"])
    await engine.run_until_idle()
    assert (await store.get_notice(notice.id)).counts["bulletin"] == {"sent": 2}
    assert board.polled == []  # the first question waits POLL_EVERY seconds

    clock.advance(POLL_EVERY)
    await engine.run_until_idle()
    rows = {r["area_code"]: r for r in await store.list_area_deliveries(notice.id)}
    assert rows[VILLAGE_A1]["state"] == "sent" and rows[VILLAGE_A2]["state"] == "failed"

    clock.advance(POLL_EVERY)
    await engine.run_until_idle()
    final = await store.get_notice(notice.id)
    assert final.counts["bulletin"] == {"delivered": 1, "failed": 1} and final.areas_reached == 1
    assert len(board.polled) == 3


async def test_poller_gives_up_after_the_confirm_window(
    store: Store, tmp_path: Path, board: RecordingAreaChannel
) -> None:
    clock = FakeClock()
    engine = build(store, tmp_path, clock, {"board": board}, area_settings(tmp_path, confirm_window=150))
    board.plan_job(VILLAGE_A1, "pending")
    notice = await approved(store, target={"areas": [VILLAGE_A1]}, channels=["bulletin"])
    await engine.run_until_idle()
    for _ in range(5):
        clock.advance(POLL_EVERY)
        await engine.run_until_idle()
    (row,) = await store.list_area_deliveries(notice.id)
    assert row["state"] == "sent" and "confirm window" in row["last_error"]
    assert len(board.polled) == 3  # at 60, 120 and 180 s; none after the window closed


@pytest.mark.peer("fonts")
async def test_real_bulletin_spools_one_printout_per_village(store: Store, tmp_path: Path) -> None:
    from tests.test_bulletin_render import DIVISIONS, need_fonts

    need_fonts()
    options = BulletinOptions.model_validate(
        {
            "public_url": "https://notify.example.gov.cn",
            "county_name": "昌乐县",
            "divisions_csv": str(DIVISIONS),
            "spool_dir": str(tmp_path / "spool"),
            "render_workers": 1,
        }
    )
    printer = BulletinChannel("board", options)
    await printer.open()
    clock = FakeClock()
    try:
        engine = build(store, tmp_path, clock, {"board": printer})
        notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bulletin"])
        await engine.run_until_idle()
        clock.advance(POLL_EVERY)
        await engine.run_until_idle()
    finally:
        await printer.close()
    spooled = sorted(p.parent.name for p in (tmp_path / "spool").rglob("*.pdf"))
    assert spooled == [VILLAGE_A1, VILLAGE_A2]
    assert all(p.read_bytes().startswith(b"%PDF") for p in (tmp_path / "spool").rglob("*.pdf"))
    assert (await store.get_notice(notice.id)).counts["bulletin"] == {"delivered": 2}


async def test_lost_leases_and_repeated_fan_out_send_each_area_once(
    store: Store, tmp_path: Path, bots: RecordingAreaChannel
) -> None:
    clock = FakeClock()
    engine = build(store, tmp_path, clock, {"bots": bots})
    notice = await approved(store, target={"areas": [TOWN_A]}, channels=["bot"])
    row = await store.db.fetch_one("get_notice", {"id": notice.id})
    assert row is not None
    assert await fan_out_next(engine.ctx) == notice.id
    await fan_out_areas(engine.ctx, {**row, "fanout_by": engine.ctx.worker}, ["bot"], None)  # after finish: no-op
    claimed = await store.claim_deliveries("bots", "crashed-worker", clock(), 60, 10)
    assert len(claimed) == 2

    await engine.run_until_idle()
    assert bots.messages == []  # leased by a worker that died
    clock.advance(61)
    await engine.run_until_idle()
    assert sorted(bots.recipients()) == [TOWN_A, VILLAGE_A1]
    assert [r["attempts"] for r in await store.list_area_deliveries(notice.id)] == [2, 2]
