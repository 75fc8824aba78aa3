"""What a staff member can type or put in a URL on a console page is answered with a 4xx page naming the problem,
never a 500 and never a half-done action: the forms' and queries' edges that the pages' own tests do not reach."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from notifier.domain.enums import Role
from tests.conftest import Api
from tests.console_sign_in import CSRF_FIELD, signed_in_session


@pytest.fixture
async def approver(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    session = await signed_in_session(api.store, api.base, department="environment", role=Role.APPROVER)
    try:
        yield session
    finally:
        await session.close()


async def _csrf(session: aiohttp.ClientSession) -> str:
    async with session.get("/console") as response:
        return CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]


async def test_a_publicity_preview_of_more_columns_than_a_list_takes_is_a_422_page(
    api: Api, approver: aiohttp.ClientSession
) -> None:
    """A roster may have more columns than a publicity list takes (20), and the preview offers them all."""
    columns = [f"列{n}" for n in range(25)]
    row = {"手机号": "13912340001", **{column: "值" for column in columns}}
    status, roster = await api.call(
        "POST", "/api/v1/rosters", key="env-issuer", json={"name": "宽名单", "key": "phone", "rows": [row]}
    )
    assert status == 201, roster
    path = f"/console/rosters/{roster['id']}"
    async with approver.get(path, params=[("column", column) for column in columns]) as response:
        assert response.status == 422, await response.text()
        page = await response.text()
    assert 'id="preview-error"' in page and "20" in page and 'id="publicity' not in page  # no table, no "empty"
    async with approver.get(path, params=[("column", "列1"), ("column", "列1")]) as response:  # ticked twice
        assert response.status == 200, await response.text()
        page = await response.text()
    assert 'id="publicity' in page and 'id="preview-error"' not in page  # the table (here: none in the area)


@pytest.mark.parametrize("name", ["new", "NEW", "ｎｅｗ"])
@pytest.mark.parametrize("action", ["preview", "save"])
async def test_a_new_template_named_as_the_new_template_page_is_a_422_page_naming_the_box(
    api: Api, approver: aiohttp.ClientSession, action: str, name: str
) -> None:
    """/console/templates/new is the new-template page: a template of that name could never be opened there."""
    form = {"csrf_token": await _csrf(approver), "name": name, "texts.zh.default": "{{ title }}", "action": action}
    async with approver.post("/console/templates/new", data=form, allow_redirects=False) as response:
        assert response.status == 422, await response.text()
        page = await response.text()
    assert 'id="name-error"' in page and "新建模板页面" in page
    status, templates = await api.call("GET", "/api/v1/templates", key="env-viewer")
    assert status == 200 and all(t["department"] is None for t in templates["items"]), templates  # built-ins only


@pytest.mark.parametrize("action", ["preview", "save"])
async def test_a_new_template_without_a_name_is_a_422_page_naming_the_box(
    api: Api, approver: aiohttp.ClientSession, action: str
) -> None:
    form = {"csrf_token": await _csrf(approver), "name": " ", "texts.zh.default": "{{ title }}", "action": action}
    async with approver.post("/console/templates/new", data=form, allow_redirects=False) as response:
        assert response.status == 422, await response.text()
        assert 'id="name-error"' in await response.text()
    status, templates = await api.call("GET", "/api/v1/templates", key="env-viewer")
    assert status == 200 and all(t["department"] is None for t in templates["items"]), templates  # built-ins only
