"""The console's compose page targets a roster: a civil-affairs clerk picks the department's roster, writes the
text with ``{{ row.<column> }}``, sees each resident's personal text in the preview, and saves a notice whose
target is the roster, as ``POST /notices`` with ``target.roster`` would. A roster of another department is
refused next to the field, and nothing is stored."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from notifier.console import compose as compose_page
from tests.conftest import TOWN_A, Api
from tests.console_sign_in import CSRF_FIELD, signed_in_session
from tests.test_rosters import add_residents, phone

BODY = "{{ row.姓名 }}您好：您的临时救助金{{ row.金额 }}元已发放。"


@pytest.fixture
async def clerk(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    session = await signed_in_session(api.store, api.base, department="civil-affairs", name="民政文员")
    try:
        yield session
    finally:
        await session.close()


async def roster(api: Api, key: str = "civ-issuer", name: str = "临时救助名单") -> int:
    rows = [{"手机号": phone(n), "姓名": f"王{n}英", "金额": str(400 + n)} for n in (1, 2, 3)]
    body = {"name": name, "key": "phone", "rows": rows}
    status, report = await api.call("POST", "/api/v1/rosters", key=key, json=body)
    assert status == 201 and report["matched"] == 3, report
    return int(report["id"])


async def form_start(clerk: aiohttp.ClientSession, title: str, body: str, channel: str) -> dict[str, object]:
    """A compose form's fields as the page gives them (its CSRF token) with the notice's content filled in."""
    async with clerk.get("/console/notices/new") as response:
        form = await response.text()
    return {
        "csrf_token": CSRF_FIELD.search(form)[1],  # type: ignore[index]
        "content": "text", "topic": "social-assistance", "title": title, "body": body, "severity": "info",
        "channel_mode": "first-available", "channels": channel,
    }  # fmt: skip


async def post_form(clerk: aiohttp.ClientSession, fields: dict[str, object]) -> tuple[int, str, str]:
    data = aiohttp.FormData()
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            data.add_field(name, str(one))
    async with clerk.post("/console/notices/new", data=data, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location", "")


async def compose(clerk: aiohttp.ClientSession, action: str, roster_id: int | str) -> tuple[int, str, str]:
    fields = await form_start(clerk, "临时救助金发放", BODY, "sms")
    return await post_form(clerk, {**fields, "target.roster": str(roster_id), "action": action})


async def test_the_form_offers_the_departments_rosters_only(api: Api, clerk: aiohttp.ClientSession) -> None:
    await add_residents(api.store, 3)
    own = await roster(api)
    async with clerk.get("/console/notices/new") as response:
        page = await response.text()
    assert f'<option value="{own}"' in page and "临时救助名单" in page
    env_roster = await roster(api, key="env-issuer", name="环保名单")
    async with clerk.get("/console/notices/new") as response:
        page = await response.text()
    assert f'<option value="{env_roster}"' not in page and "环保名单" not in page


async def test_preview_shows_personal_texts_and_save_targets_the_roster(api: Api, clerk: aiohttp.ClientSession) -> None:
    await add_residents(api.store, 3)
    roster_id = await roster(api)
    status, page, _ = await compose(clerk, "preview", roster_id)
    assert status == 200, page
    assert 'id="personal"' in page and "临时救助金401元" in page and "临时救助金403元" in page
    assert re.search(rf'<option value="{roster_id}" selected', page)

    status, _, location = await compose(clerk, "save", roster_id)
    assert status == 303 and re.fullmatch(r"/console/notices/\d+", location), location
    notice_id = int(location.rsplit("/", 1)[1])
    notice = await api.store.get_notice(notice_id)
    assert notice.target.roster == roster_id and notice.body == BODY
    async with clerk.get(f"{location}/edit") as response:
        assert re.search(rf'<option value="{roster_id}" selected', await response.text())


async def test_another_departments_roster_is_refused_at_the_field(api: Api, clerk: aiohttp.ClientSession) -> None:
    await add_residents(api.store, 3)
    other = await roster(api, key="env-issuer", name="环保名单")
    before, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    status, page, _ = await compose(clerk, "save", other)
    assert status in (403, 404, 422) and 'id="target-roster-error"' in page, status
    after, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    assert len(after) == len(before)


async def publicity_form(clerk: aiohttp.ClientSession, roster_id: int) -> dict[str, object]:
    today = dt.date.today()
    fields = await form_start(clerk, "2026年12月临时救助对象公示", "现将临时救助对象名单公示如下。", "bulletin")
    return {
        **fields, "target.areas": TOWN_A, "publicity.roster": str(roster_id),
        "publicity.columns": ["name", "area", "金额"], "publicity.masks": ["金额"],
        "publicity.from": today.isoformat(), "publicity.until": (today + dt.timedelta(days=6)).isoformat(),
        "publicity.complaint_phone": "0536-6212345", "publicity.paper": "A3", "action": "save",
    }  # fmt: skip


async def test_a_publicity_list_is_set_up_on_the_compose_page(api: Api, clerk: aiohttp.ClientSession) -> None:
    await add_residents(api.store, 3)
    roster_id = await roster(api)
    async with clerk.get("/console/notices/new") as response:
        page = await response.text()
    assert 'name="publicity.columns" value="金额"' in page and 'name="publicity.columns" value="name"' in page

    status, _, location = await post_form(clerk, await publicity_form(clerk, roster_id))
    assert status == 303, location
    notice = await api.store.get_notice(int(location.rsplit("/", 1)[1]))
    assert notice.publicity is not None
    publicity = notice.publicity
    assert (publicity.roster, publicity.columns) == (roster_id, ["name", "area", "金额"])
    assert publicity.masks == {"金额": "full"}
    assert (publicity.complaint_phone, publicity.paper) == ("0536-6212345", "A3")
    assert (publicity.until - publicity.from_date).days == 6
    async with clerk.get(f"{location}/edit") as response:
        edit = await response.text()
    assert re.search(r'name="publicity.masks" value="金额" checked', edit)
    assert re.search(rf'id="publicity-roster" name="publicity.roster">\s*<option value="">[^<]*</option>\s*'
                     rf'<option value="{roster_id}" selected', edit)  # fmt: skip


async def test_a_wrong_publicity_list_is_refused_at_its_fields(api: Api, clerk: aiohttp.ClientSession) -> None:
    await add_residents(api.store, 3)
    roster_id = await roster(api)
    before, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    cases = {
        "publicity-columns-error": {"publicity.columns": ["银行卡号"]},  # no such column in the roster
        "publicity-complaint_phone-error": {"publicity.complaint_phone": "打电话"},
        "publicity-until-error": {"publicity.until": "2026-13-40"},
        "publicity-paper-error": {"publicity.paper": "B5"},  # a form sent by hand: the page offers A4 and A3
    }
    for error_id, changes in cases.items():
        fields = {**await publicity_form(clerk, roster_id), **changes}
        status, page, _ = await post_form(clerk, fields)
        assert status == 422 and f'id="{error_id}"' in page, (error_id, status)
    after, _ = await api.store.list_notices(department=None, state=None, cursor=None, limit=100)
    assert len(after) == len(before)


async def test_editing_a_draft_keeps_a_roster_the_form_no_longer_offers(
    api: Api, clerk: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form offers the department's newest rosters only; a draft's older roster stays chosen on its edit page,
    so saving it again neither drops the draft's roster nor its publicity list without a word."""
    await add_residents(api.store, 3)
    older = await roster(api, name="上月名单")
    _, _, targeted = await compose(clerk, "save", older)
    _, _, published = await post_form(clerk, await publicity_form(clerk, older))
    assert targeted and published
    await roster(api, name="本月名单")
    monkeypatch.setattr(compose_page, "ROSTER_CHOICES", 1)
    for location, select in ((targeted, "target.roster"), (published, "publicity.roster")):
        async with clerk.get(f"{location}/edit") as response:
            edit = await response.text()
        chosen = re.search(rf'name="{re.escape(select)}"[^>]*>(.*?)</select>', edit, re.S)
        assert chosen and re.search(rf'<option value="{older}" selected', chosen[1]), (select, edit)
