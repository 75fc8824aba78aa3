"""``POST /api/v1/notice-preview``: what a notice not created yet would produce, counted by the engine's own
queries and composed by the adapters themselves, and why the residents it skips are skipped."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.sms_text import count_segments
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.engine import template_sandbox
from notifier.store import Store
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, Api
from tests.databases import run_sql
from tests.held_rendering import HeldRendering
from tests.test_bulletin_render import need_fonts

TITLE = "重污染天气橙色预警"
BODY = "明日起启动重污染天气橙色预警，中小学停止户外活动，请减少外出，老人儿童留在室内，注意防护健康。"
DRAFT = {"topic": "air-quality", "title": TITLE, "body": BODY, "severity": "severe",
         "target": {"areas": [TOWN_A]}, "channels": ["sms", "wechat", "email", "bulletin"]}  # fmt: skip
SIGNATURE, OPT_OUT = "昌乐县政府", "回TD退订"
PUBLIC_URL = "https://tongzhi.changle.gov.cn"


def county_settings(database_url: str, spool: Path) -> Settings:
    """SMS through Kannel then Aliyun, WeChat template messages, e-mail to an outbox, printouts to a spool."""
    channels: dict[str, dict[str, Any]] = {
        "sms-kannel": {"kind": "sms", "type": "kannel", "order": 1, "username": "u", "password": "p",
                       "url": "http://127.0.0.1:9/cgi-bin/sendsms", "signature": SIGNATURE,
                       "unsubscribe_text": OPT_OUT},
        "sms-aliyun": {"kind": "sms", "type": "aliyun_sms", "order": 2, "access_key_id": "LTAI-test",
                       "access_key_secret": "s", "sign_name": "昌乐县", "template_code": "SMS_1",
                       "endpoint": "http://127.0.0.1:9/"},
        "wechat-mp": {"kind": "wechat", "type": "wechat_official", "appid": "wx0123456789abcdef", "secret": "s",
                      "template_id": "T1", "title_key": "thing1", "body_key": "thing2",
                      "fixed_data": {"thing3": "昌乐县人民政府"}, "api_base": "http://127.0.0.1:9"},
        "email": {"kind": "email", "type": "outbox", "root": str(spool / "outbox")},
        "board": {"kind": "bulletin", "type": "bulletin", "public_url": PUBLIC_URL, "county_name": "昌乐县",
                  "spool_dir": str(spool / "board")},
    }  # fmt: skip
    return Settings.model_validate({"database": {"url": database_url}, "channels": channels})


@pytest.fixture
async def county(store: Store, settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    """The API (no engine) of a county with real gateway aliases, and keys of the environment department."""
    config = county_settings(settings.database.url, tmp_path)
    keys = {}
    for role in (Role.ISSUER, Role.VIEWER):
        _, keys[f"env-{role.value}"] = await store.create_api_key(
            department="environment", role=role, name=role, actor="t"
        )
    _, keys["civ-issuer"] = await store.create_api_key(
        department="civil-affairs", role=Role.ISSUER, name="c", actor="t"
    )
    server = TestServer(create_app(config, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(str(server.make_url("")).rstrip("/"), session, keys, store)
    finally:
        await server.close()


async def add(api: Api, resident: dict[str, Any], patch: dict[str, Any] | None = None) -> int:
    status, body = await api.call("POST", "/api/v1/subscribers", json={"topics": ["air-quality"], **resident})
    assert status == 201, body
    if patch:
        status, body = await api.call("PATCH", f"/api/v1/subscribers/{body['id']}", json=patch)
        assert status == 200, body
    return int(body["id"])


async def deliveries_in(store: Store) -> int:
    return int((await run_sql(store.db, "SELECT COUNT(*) AS n FROM deliveries"))[0]["n"])


async def draft_preview(api: Api, draft: dict[str, Any], query: str = "") -> tuple[int, Any]:
    return await api.call("POST", f"/api/v1/notice-preview{query}", json=draft)


async def test_the_sms_is_shown_as_each_gateway_receives_it_and_billed_for_the_audience(county: Api) -> None:
    for number, village in enumerate((VILLAGE_A1, VILLAGE_A2, VILLAGE_A2)):
        await add(county, {"name": f"居民{number}", "phone": f"1390000000{number}", "area_code": village,
                           "channels": ["sms"]})  # fmt: skip
    await add(county, {"name": "外镇", "phone": "13900000009", "area_code": VILLAGE_B1, "channels": ["sms"]})
    status, figures = await draft_preview(county, DRAFT)
    assert status == 200, figures
    rendered = f"{TITLE}：{BODY}（生态环境分局）"  # templates/notice/sms.txt
    sms = figures["messages"]["sms"]
    assert sms["alias"] == "sms-kannel" and sms["text"] == f"【{SIGNATURE}】{rendered}{OPT_OUT}"
    kannel, aliyun = sms["sms"]
    assert kannel["chars"] == len(sms["text"]) and kannel["parts_per_message"] == 2
    assert count_segments(kannel["text"]).segments == 2
    assert aliyun["text"] == f"【昌乐县】{rendered}" and aliyun["role"] == "backup"
    assert figures["sms"]["deliveries"] == 3 and figures["sms"]["billable_parts"] == 6
    assert figures["sms_segments"] == 2
    assert (figures["residents"], figures["reached"]) == (3, 3) and set(figures["towns"]) == {TOWN_A}
    # nothing was created: the preview writes no notice and no delivery
    assert (await county.store.list_notices(department=None, state=None, cursor=None, limit=10))[0] == []
    assert await deliveries_in(county.store) == 0


async def test_wechat_email_and_the_printout_as_their_adapters_compose_them(county: Api) -> None:
    status, figures = await draft_preview(county, DRAFT)
    assert status == 200, figures
    wechat = figures["messages"]["wechat"]
    assert wechat["alias"] == "wechat-mp"
    assert wechat["fields"] == {"thing1": TITLE, "thing2": wechat["text"], "thing3": "昌乐县人民政府"}
    email = figures["messages"]["email"]
    assert email["subject"] == TITLE and BODY in email["text"] and BODY in (email["html"] or "")
    board = figures["messages"]["bulletin"]
    assert figures["areas"] == {"bulletin": 2}  # the two villages of town A, planned with no engine running
    printout = board["printout"]
    assert printout["area_code"] == VILLAGE_A1 and printout["area_name"] == "宝都街道 恒盛社区居民委员会"
    assert printout["severity"] == "severe" and printout["department_name"] == "生态环境分局"
    assert BODY in printout["body"] and printout["png_base64"] is None  # the image only when asked


@pytest.mark.peer("fonts")
async def test_the_printout_image_is_page_one_with_the_villages_qr_code(county: Api, tmp_path: Path) -> None:
    need_fonts()
    status, figures = await draft_preview(county, DRAFT, "?printout=true")
    assert status == 200, figures
    assert figures["printout_error"] is None
    png = tmp_path / "page1.png"
    png.write_bytes(base64.b64decode(figures["messages"]["bulletin"]["printout"]["png_base64"]))
    assert png.read_bytes().startswith(b"\x89PNG")
    zbar = await asyncio.create_subprocess_exec("zbarimg", "-q", "--raw", str(png), stdout=asyncio.subprocess.PIPE)
    decoded = (await zbar.communicate())[0].decode().strip()
    assert decoded == f"{PUBLIC_URL}/subscribe?area={VILLAGE_A1}&topic=air-quality"


async def test_the_preview_refuses_what_creating_the_notice_would_refuse(county: Api) -> None:
    status, body = await draft_preview(county, {**DRAFT, "template": "heavy-pollution", "body": None, "data": {}})
    assert status == 422, body
    assert {e["loc"] for e in body["errors"]} >= {"data.level"}
    status, body = await county.call("POST", "/api/v1/notice-preview", json=DRAFT, key="civ-issuer")
    assert status == 403 and "air-quality" in body["detail"]
    status, body = await county.call("POST", "/api/v1/notice-preview", json=DRAFT, key="env-viewer")
    assert status == 403
    assert (await county.call("POST", "/api/v1/notice-preview", json=DRAFT, key=None))[0] == 401
    status, body = await draft_preview(county, {**DRAFT, "target": {"areas": ["3707259"]}})
    assert status == 422 and body["errors"][0]["loc"] == "target.areas.0"
    status, body = await draft_preview(county, DRAFT, "?printout=maybe")
    assert status == 422 and body["errors"][0]["loc"] == "query.printout"


def quiet_now() -> dict[str, str]:
    """Quiet hours from an hour ago to an hour ahead, local time: the resident is inside them now."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=1)).strftime("%H:%M")}


async def test_the_audience_per_town_says_why_each_skipped_resident_is_skipped(api: Api) -> None:
    """Through the default outbox channels: one resident of each kind of skip, one reached inside their quiet
    hours, one reached plainly, and one in the other town."""
    await add(api, {"name": "可达", "phone": "13900000001", "area_code": VILLAGE_A1, "channels": ["sms"]})
    await add(api, {"name": "安静", "phone": "13900000002", "area_code": VILLAGE_A1, "channels": ["sms"],
                    "quiet_hours": quiet_now()})  # fmt: skip
    await add(api, {"name": "退题", "phone": "13900000003", "area_code": VILLAGE_A2},
              {"opt_out_topics": ["air-quality"]})  # fmt: skip
    await add(api, {"name": "撤回", "phone": "13900000004", "area_code": VILLAGE_A2}, {"consent_withdrawn": True})
    await add(api, {"name": "退道", "phone": "13900000005", "area_code": VILLAGE_A2, "channels": ["sms"]},
              {"opt_out_channels": ["sms"]})  # fmt: skip
    await add(api, {"name": "无址", "area_code": VILLAGE_A2, "channels": ["sms"]})
    erased = await add(api, {"name": "删除", "phone": "13900000007", "area_code": VILLAGE_A1})
    assert (await api.call("DELETE", f"/api/v1/subscribers/{erased}"))[0] == 204
    await add(api, {"name": "外镇", "phone": "13900000008", "area_code": VILLAGE_B1, "channels": ["sms"]})

    info = {**DRAFT, "severity": "info", "channels": ["sms"], "target": {"areas": [TOWN_A, TOWN_B]}}
    status, figures = await draft_preview(api, info)
    assert status == 200, figures
    town = figures["towns"][TOWN_A]
    # an erased resident keeps the area (anonymous counts stay) and so is matched, and skipped
    expected = {"erased": 1, "topic_opt_out": 1, "consent_withdrawn": 1, "channel_opt_out": 1, "no_address": 1}
    assert town["residents"] == 7
    assert town["skipped_by_reason"] == expected
    assert town["skipped"] == sum(expected.values()) and town["reached"] == 2
    assert town["held_by_quiet_hours"] == 1  # an info notice waits for the end of quiet hours
    other = figures["towns"][TOWN_B]
    assert (other["reached"], other["skipped"], other["skipped_by_reason"]) == (1, 0, {})
    assert figures["skipped_by_reason"] == expected and figures["held_by_quiet_hours"] == 1

    status, urgent = await draft_preview(api, {**info, "severity": "severe"})
    assert status == 200 and urgent["held_by_quiet_hours"] == 0  # a severe one does not wait

    # the stored notice's preview gives the same figures
    status, created = await api.call("POST", "/api/v1/notices", json=info)
    assert status == 201, created
    status, stored = await api.call("GET", f"/api/v1/notices/{created['id']}/preview")
    assert status == 200 and stored["towns"][TOWN_A]["skipped_by_reason"] == expected
    assert stored["held_by_quiet_hours"] == 1


async def test_other_requests_are_answered_while_a_preview_renders(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A preview's first rendering is held until another request has been answered: on the event loop's thread
    it would hold the loop, and the other request would be answered only after the hold gave up."""
    held = HeldRendering(monkeypatch)
    draft = {**DRAFT, "channels": ["sms", "wechat"]}
    preview = asyncio.create_task(api.call("POST", "/api/v1/notice-preview", json=draft))
    assert await held.started()
    status, _ = await api.call("GET", "/api/v1/templates", key="env-viewer")
    held.events.append(f"another request answered {status}")
    held.release()
    status, body = await preview
    assert status == 200, body
    assert held.events == ["another request answered 200", "rendering released"]


async def test_a_preview_whose_renderings_together_pass_the_request_budget_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Light with its field's sample, so the template saves; heavy with the notice's data in every kind and
    language: each rendering within its own bound, together past the request's, and nothing is created."""
    monkeypatch.setattr(template_sandbox, "MAX_SECONDS", 60.0)
    monkeypatch.setattr(template_sandbox, "MAX_REQUEST_SECONDS", 180.0, raising=False)
    source = (
        "{% for a in range(170 if mode == 'heavy' else 1) %}{% for b in range(100) %}{% endfor %}{% endfor %}"
        "{{ title }}"
    )
    template = {
        "name": "mode-switch",
        "fields": [{"name": "mode", "sample": "light"}],
        "texts": {"zh": {"default": source}, "en": {"default": source}},
    }
    status, created = await api.call("POST", "/api/v1/templates", json=template, key="env-approver")
    assert status == 201, created
    notice = {**DRAFT, "body": None, "template": "mode-switch", "data": {"mode": "heavy"}}
    notice["channels"] = ["sms", "wechat"]
    for path in ("/api/v1/notice-preview", "/api/v1/notices"):
        status, problem = await api.call("POST", path, json=notice)
        assert status == 422, problem
        [error] = [error for error in problem["errors"] if error["type"] == "render_budget"]
        assert error["loc"] == "template" and "template mode-switch v1" in error["msg"], error
        assert "request's templates together" in error["msg"], error
    status, page = await api.call("GET", "/api/v1/notices")
    assert status == 200 and page["items"] == [], page
