"""One-click unsubscribe end to end: a real mail through aiosmtpd, its link POSTed to the running app."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from channels.base import OutboundMessage, Sent
from channels.email_smtp import SmtpEmailChannel, SmtpEmailOptions
from notifier.api import create_app
from notifier.config import Settings
from notifier.domain.models import SubscriberIn
from notifier.signing import UnsubscribeLinks, sign
from notifier.store import Store
from notifier.web import unsubscribe
from tests.conftest import VILLAGE_A1
from tests.databases import database_url
from tests.smtp_server import Recorder, SmtpServer

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Site:
    base: str
    settings: Settings
    session: aiohttp.ClientSession

    def links(self) -> UnsubscribeLinks:
        return UnsubscribeLinks.from_settings(self.settings)

    async def call(self, method: str, url: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.request(method, url, allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), response


@pytest.fixture
async def site(store: Store, settings: Settings) -> AsyncIterator[Site]:
    app = create_app(settings, store=store, extra_routes=unsubscribe.ROUTES)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    settings.server.public_url = base
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        try:
            yield Site(base, settings, session)
        finally:
            await server.close()


async def resident(store: Store, name: str = "王芳", email: str = "wangfang@example.com") -> int:
    data = SubscriberIn.model_validate({"name": name, "email": email, "area_code": VILLAGE_A1})
    return (await store.create_subscriber(data, "test")).id


async def optout_audits(store: Store) -> list[dict[str, Any]]:
    rows = await store.db.fetch_all("list_audit", {"after": 0, "limit": 100})
    return [dict(row) for row in rows if row["action"] == "subscriber.optout"]


async def mailed_link(site: Site, store: Store, subscriber_id: int) -> str:
    """Send a real mail through the adapter and read the https/http URI from its List-Unsubscribe."""
    recorder = Recorder()
    smtp = SmtpServer(recorder)
    smtp.start()
    try:
        opts = SmtpEmailOptions(host=smtp.host, port=smtp.port, start_tls=False, from_address="notices@example.test")
        adapter = SmtpEmailChannel("mail", opts, links=site.links())
        message = OutboundMessage(
            delivery_id=1, notice_id=9, channel="email", alias="mail", recipient="wangfang@example.com",
            text="空气质量预警", idempotency_key=f"n9-s{subscriber_id}-email", subject="重污染天气橙色预警",
        )  # fmt: skip
        assert isinstance((await adapter.send([message]))[0], Sent)
        await adapter.close()
    finally:
        smtp.stop()
    header = recorder.received[0].parsed()["List-Unsubscribe"]
    [url] = [uri for uri in re.findall(r"<([^>]+)>", header) if uri.startswith("http")]
    return str(url)


async def test_one_click_post_from_the_mail_unsubscribes_once(site: Site, store: Store) -> None:
    subscriber_id = await resident(store)
    other = await resident(store, "赵磊", "zhaolei@example.com")
    url = await mailed_link(site, store, subscriber_id)

    status, body, response = await site.call("POST", url, data=ONE_CLICK)

    assert status == 200 and "已退订" in body and "no longer" in body
    assert response.content_type == "text/html"
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == ["email"]
    assert (await store.get_subscriber(other)).opt_out_channels == []
    [audit] = await optout_audits(store)
    assert audit["object_id"] == str(subscriber_id) and audit["actor"] == "unsubscribe-link"
    assert json.loads(audit["detail"]) == {
        "channel": "email",
        "source": "one-click",
        "notice": 9,
        "before": {"opt_out_channels": []},
        "after": {"opt_out_channels": ["email"]},
    }
    rows = await store.db.fetch_all("subscriber_optout_values", {"ids": json.dumps([subscriber_id])})
    assert [(r["kind"], r["value"]) for r in rows] == [("channel", "email")]

    again, _, _ = await site.call("POST", url, data=ONE_CLICK)

    assert again == 200
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == ["email"]
    assert len(await optout_audits(store)) == 1


async def test_multipart_one_click_body_is_accepted(site: Site, store: Store) -> None:
    subscriber_id = await resident(store)
    form = aiohttp.MultipartWriter("form-data")  # what Gmail sends
    form.append("One-Click").set_content_disposition("form-data", name="List-Unsubscribe")

    status, _, _ = await site.call("POST", site.links().url(subscriber_id, "email"), data=form)

    assert status == 200
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == ["email"]


async def test_get_shows_a_bilingual_page_and_changes_nothing(site: Site, store: Store) -> None:
    subscriber_id = await resident(store)
    url = site.links().url(subscriber_id, "email", 3)

    status, body, response = await site.call("GET", url)

    assert status == 200 and response.content_type == "text/html"
    assert "退订" in body and "Unsubscribe" in body
    assert '<form method="post"' in body and 'name="List-Unsubscribe" value="One-Click"' in body
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "wangfang" not in body and "王芳" not in body
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == []
    assert await optout_audits(store) == []
    action = re.search(r'action="([^"]+)"', body)
    assert action is not None
    target = site.base + "/unsubscribe" + html.unescape(action.group(1))
    status, _, _ = await site.call("POST", target, data=ONE_CLICK)
    assert status == 200
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == ["email"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("make_query", "status"),
    [
        (lambda links: "", 400),
        (lambda links: "?token=", 400),
        (lambda links: "?token=garbage", 400),
        (lambda links: "?token=" + links.token(1, "email")[:-3] + "xyz", 403),
        (
            lambda links: "?token=" + UnsubscribeLinks(links.public_url, SecretStr("other-secret")).token(1, "email"),
            403,
        ),
        (lambda links: "?token=" + sign({"p": "unsub", "s": 1, "c": "email"}, links.secret, 1, now=1e9), 403),
        (lambda links: "?token=" + links.token(1, "telegraph"), 400),
        (lambda links: "?token=" + links.token(1, "bulletin"), 400),
        (lambda links: "?token=" + sign({"s": 1, "c": "email"}, links.secret, 60), 400),
    ],
)
async def test_bad_tokens_are_problems_never_500(
    site: Site, store: Store, method: str, make_query: Any, status: int
) -> None:
    subscriber_id = await resident(store)
    assert subscriber_id == 1

    got, body, response = await site.call(method, site.base + "/unsubscribe" + make_query(site.links()), data=ONE_CLICK)

    assert got == status
    assert response.content_type == "application/problem+json"
    assert json.loads(body)["status"] == status
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == []


@pytest.mark.parametrize(
    "data",
    [None, {"List-Unsubscribe": "yes"}, "List-Unsubscribe=One-Click&x=%ZZ", b"\xff\xfe"],
)
async def test_post_without_the_one_click_body_is_refused(site: Site, store: Store, data: Any) -> None:
    subscriber_id = await resident(store)
    headers = {"Content-Type": "multipart/form-data; boundary=zzz"} if isinstance(data, bytes) else {}

    status, _, _ = await site.call("POST", site.links().url(subscriber_id, "email"), data=data, headers=headers)

    assert status == 400
    assert (await store.get_subscriber(subscriber_id)).opt_out_channels == []


async def test_erased_resident_gets_the_done_page(site: Site, store: Store) -> None:
    subscriber_id = await resident(store)
    await store.delete_subscriber(subscriber_id, "test")

    status, body, _ = await site.call("POST", site.links().url(subscriber_id, "email"), data=ONE_CLICK)

    assert status == 200 and "已退订" in body
    assert await optout_audits(store) == []


async def test_routes_are_public_and_documented(site: Site) -> None:
    assert all(route.public for route in unsubscribe.ROUTES)
    status, body, _ = await site.call("GET", site.base + "/openapi.json")
    assert status == 200
    assert {"get", "post"} <= set(json.loads(body)["paths"]["/unsubscribe"])


async def test_a_broken_multipart_body_is_a_400_not_a_server_error(tmp_path: Path) -> None:
    settings = Settings.model_validate({"database": {"url": database_url(tmp_path, "u.db")}})
    token = UnsubscribeLinks.from_settings(settings).token(1, "email")
    server = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        body = b"--xyz\r\nContent-Disposition form-data\r\n\r\nList-Unsubscribe=One-Click\r\n--xyz--\r\n"
        headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
        async with aiohttp.ClientSession() as session:
            url = server.make_url("/unsubscribe").with_query(token=token)
            async with session.post(url, data=body, headers=headers) as resp:
                assert resp.status == 400, await resp.text()
    finally:
        await server.close()
