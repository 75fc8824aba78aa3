"""A download of personal data from the console is a GET, which the forms' CSRF token does not guard: a page of
another site could send a signed-in browser there (its SameSite=Lax session cookie goes along on a top-level
navigation), filling the staff member's downloads with residents' data and the audit log with an export in their
name. Such a download is refused when the browser says another site asked for it (``Sec-Fetch-Site``)."""

from __future__ import annotations

from notifier.domain.enums import Role
from notifier.store.audit import AuditFilter
from tests.conftest import COUNTY, Api
from tests.console_sign_in import signed_in_session

AUDITED = {"subscriber.export", "roster.read", "notice.follow_up"}


async def _audited(api: Api) -> int:
    entries, _ = await api.store.list_audit(AuditFilter(), None, 1000)
    return sum(1 for entry in entries if entry.action in AUDITED)


async def test_a_download_of_personal_data_asked_for_by_another_site_is_refused_and_not_audited(api: Api) -> None:
    rows = [{"手机号": "13912340001", "姓名": "王一英"}]
    status, roster = await api.call(
        "POST", "/api/v1/rosters", key="env-issuer", json={"name": "救助名单", "key": "phone", "rows": rows}
    )
    assert status == 201, roster
    notice = {"topic": "air-quality", "title": "请确认", "body": "请回复确认。", "target": {"areas": [COUNTY]},
              "channels": ["sms"], "confirmation": {"remind_after_minutes": 60}}  # fmt: skip
    status, created = await api.call("POST", "/api/v1/notices", key="env-issuer", json=notice)
    assert status == 201, created
    downloads = [
        "/console/residents/export.csv?all=1",
        f"/console/rosters/{roster['id']}/unmatched.csv",
        f"/console/notices/{created['id']}/unconfirmed.pdf",
    ]
    session = await signed_in_session(api.store, api.base, department="environment", role=Role.ISSUER)
    async with session:
        for path in downloads:
            for site in ("cross-site", "same-site"):
                async with session.get(path, headers={"Sec-Fetch-Site": site}) as response:
                    assert response.status == 403 and response.content_type == "text/html", (path, site)
        assert await _audited(api) == 0
        for site in ("same-origin", "none", None):  # a link of the console's, a typed address, an older browser
            headers = {"Sec-Fetch-Site": site} if site else {}
            for path in downloads:
                async with session.get(path, headers=headers) as response:
                    assert response.status == 200, (path, site, await response.text())
                    assert "attachment" in response.headers["Content-Disposition"]
        assert await _audited(api) == 3 * len(downloads)


async def test_a_console_page_opened_from_another_site_still_opens(api: Api) -> None:
    """Only downloads are guarded: a link to a console page in an e-mail or another system still works."""
    session = await signed_in_session(api.store, api.base, department="environment", role=Role.ISSUER)
    async with session, session.get("/console/residents", headers={"Sec-Fetch-Site": "cross-site"}) as response:
        assert response.status == 200
