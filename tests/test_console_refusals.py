"""What aiohttp refuses under /console before a page's code runs (no such page, a method a page does not take, an
upload over [server] max_body_bytes) is the console's error page with the console's security headers; the API
keeps its problem documents for the same refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from notifier.config import Settings
from notifier.console.security import HEADERS
from tests.conftest import Api
from tests.console_sign_in import CSRF_FIELD, signed_in_session

MAX_BODY = 20 * 1024  # shown to the clerk as "20 KB"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"server": settings.server.model_copy(update={"max_body_bytes": MAX_BODY})})


@pytest.fixture
async def clerk(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    session = await signed_in_session(api.store, api.base, department="environment", name="赵文员")
    try:
        yield session
    finally:
        await session.close()


def assert_console_page(response: aiohttp.ClientResponse, status: int) -> None:
    assert response.status == status and response.content_type == "text/html", response.content_type
    assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


async def test_an_unknown_console_path_is_the_console_404_page(api: Api, clerk: aiohttp.ClientSession) -> None:
    async with clerk.get("/console/no-such-page?lang=en") as response:
        assert_console_page(response, 404)
        page = await response.text()
    assert "There is no such page" in page and "赵文员" in page  # the signed-in clerk's bar is there
    async with aiohttp.ClientSession() as visitor, visitor.get(f"{api.base}/console/no/such/page") as response:
        assert_console_page(response, 404)
        assert "没有这个页面" in await response.text()


async def test_a_method_a_console_page_does_not_take_is_a_405_page_with_allow(clerk: aiohttp.ClientSession) -> None:
    async with clerk.delete("/console/rosters?lang=en") as response:
        assert_console_page(response, 405)
        assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))
        assert "This page does not take a DELETE request" in await response.text()


async def test_a_roster_over_the_body_limit_is_a_page_naming_the_limit(api: Api, clerk: aiohttp.ClientSession) -> None:
    async with clerk.get("/console/rosters") as response:
        token = CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]
    upload = aiohttp.FormData({"csrf_token": token, "name": "救助名单", "key": "phone"})
    rows = "".join(f"13912{n:06d},居民{n}\n" for n in range(MAX_BODY // 20))
    upload.add_field("file", ("手机号,姓名\n" + rows).encode(), filename="roster.csv", content_type="text/csv")
    async with clerk.post("/console/rosters?lang=en", data=upload, allow_redirects=False) as response:
        assert_console_page(response, 413)
        page = await response.text()
    assert "The file is too large" in page and "20 KB" in page and "[server] max_body_bytes" in page
    assert await api.store.list_rosters(None) == []  # nothing was read


async def test_the_api_keeps_its_problem_documents(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/no-such-resource")
    assert status == 404 and body["type"] == "/problems/http-404", body
    status, body = await api.call("DELETE", "/api/v1/rosters")
    assert status == 405 and body["type"] == "/problems/method-not-allowed", body
    status, body = await api.call("POST", "/api/v1/rosters", json={"rows": ["x" * MAX_BODY]})
    assert status == 413 and body["type"] == "/problems/too-large", body
