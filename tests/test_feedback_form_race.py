"""Two public feedback forms from one client address at once, on PostgreSQL, where their transactions run side by
side: the second waits for the first and is refused by ``[feedback] form_per_hour``, instead of counting only the
forms taken before it (a burst of forms was taken whole, past the limit).

Interleaved by hand, as ``tests/engine/test_receipt_race.py`` does: the first form stops just after it counted, the
second runs until it has counted too or waits for a lock the first holds, then the first goes on and both finish.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import NoticeState
from notifier.domain.models import NoticeIn
from notifier.store import Store, open_database
from tests.conftest import COUNTY, seed_catalog
from tests.databases import postgres_database, url_of
from tests.engine.test_receipt_race import Look, looked_or_stopped

pytestmark = pytest.mark.peer("postgres")

NOTICE = {"topic": "social-assistance", "title": "临时救助金发放通知", "body": "请于12月5日前到村委会领取救助金。",
          "target": {"areas": [COUNTY]}, "channels": ["sms"], "public": True}  # fmt: skip


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    db = await open_database(postgres_database())
    store = Store(db)
    await seed_catalog(store)
    try:
        yield store
    finally:
        await db.close()


async def test_two_forms_counting_before_either_is_taken_are_counted_one_after_the_other(pg_store: Store) -> None:
    settings = Settings.model_validate({"database": {"url": url_of(pg_store.db)}, "feedback": {"form_per_hour": 1}})
    notice, _ = await pg_store.create_notice(NoticeIn.model_validate(NOTICE), department="civil-affairs",
                                             created_by=None, actor="test")  # fmt: skip
    await pg_store.transition_notice(notice.id, [NoticeState.DRAFT], NoticeState.APPROVED, actor="test")
    server = TestServer(create_app(settings, store=pg_store), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url(f"/public/notices/{notice.id}/feedback"))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(url) as response:
                token = re.search(r'name="form_token" value="([^"]+)"', await response.text())[1]  # type: ignore[index]

            async def send() -> int:
                form = {"category": "opinion", "text": "建议在村委会门口张贴名单。", "form_token": token}
                async with browser.post(url, data=form) as response:
                    return response.status

            count = Look(pg_store, "recent_feedback_from", stop=True)
            first = asyncio.create_task(send())
            await asyncio.wait_for(count.done.wait(), 10)  # the first has counted; it has not been taken yet
            count.done.clear()  # set again by the second's count, if it gets that far
            second = asyncio.create_task(send())
            await asyncio.wait_for(looked_or_stopped(pg_store, count), 10)
            count.go.set()
            statuses = await asyncio.wait_for(asyncio.gather(first, second), 10)
    finally:
        await server.close()

    assert statuses == [200, 429]
    items, _ = await pg_store.list_feedback(department="civil-affairs", unlinked=False, notice_id=notice.id, state=None,
                                            overdue=None, cursor=None, limit=50)  # fmt: skip
    assert len(items) == 1
