"""One signed-in session holds at most four follow-page streams at once: each polls the database every half
second for up to ten minutes and keeps a connection."""

from __future__ import annotations

import aiohttp

from notifier.console.security import HEADERS
from notifier.domain.enums import Role
from notifier.domain.models import NoticeIn
from tests.conftest import Api
from tests.console_sign_in import signed_in_session

STREAMS_PER_SESSION = 4  # as docs/console.md says


async def open_stream(session: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
    """A follow stream, served: its first event has come."""
    response = await session.get(path)
    assert response.status == 200, await response.text()
    assert await response.content.readline() == b"event: snapshot\n"
    return response


async def test_a_session_holds_only_so_many_follow_streams(api: Api) -> None:
    key, _ = await api.store.create_api_key(department="environment", role=Role.ISSUER, name="撰稿", actor="test")
    body = {"topic": "air-quality", "title": "空气质量提示", "body": "无", "target": {"areas": ["370725"]},
            "channels": ["sms"]}  # fmt: skip
    notice, _ = await api.store.create_notice(
        NoticeIn.model_validate(body), department="environment", created_by=key.id, actor="test"
    )  # a draft: its stream stays open
    path = f"/console/notices/{notice.id}/events"
    clerk = await signed_in_session(api.store, api.base, department="environment", name="钱文员")
    colleague = await signed_in_session(api.store, api.base, department="environment", name="孙文员")
    streams = []
    try:
        streams = [await open_stream(clerk, path) for _ in range(STREAMS_PER_SESSION)]
        async with clerk.get(f"{path}?lang=en") as refused:
            assert refused.status == 429 and refused.content_type == "text/html"
            assert int(refused.headers["Retry-After"]) > 0
            assert {name: refused.headers.get(name) for name in HEADERS} == HEADERS
            assert f"{STREAMS_PER_SESSION} follow pages are already updating live" in await refused.text()
        streams.append(await open_stream(colleague, path))  # per session: another one is not counted with these
        streams.pop(0).close()  # a tab closed: its place is free at once
        streams.append(await open_stream(clerk, path))
        async with clerk.get(path) as refused:
            assert refused.status == 429
    finally:
        for stream in streams:
            stream.close()
        await clerk.close()
        await colleague.close()
