"""An extreme alert sent by emergency override is flagged in the console (home page, approvals queue, the
notice's page) until its approvers have approved it after the fact; then the flag goes. Over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from notifier import approval
from notifier.api import create_app
from notifier.config import ApprovalConfig, Settings
from notifier.domain.enums import Role
from notifier.domain.models import NoticeIn
from notifier.store import Store
from tests.conftest import TOWN_A
from tests.console_sign_in import CSRF_FIELD, signed_in_session


@dataclass
class Staff:
    session: aiohttp.ClientSession
    base: str

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path, allow_redirects=False) as response:
            return response.status, await response.text()

    async def approve(self, notice_id: int) -> int:
        _, page = await self.get(f"/console/notices/{notice_id}")
        form = {"csrf_token": CSRF_FIELD.search(page)[1], "comment": "同意，补批"}  # type: ignore[index]
        url = f"{self.base}/console/notices/{notice_id}/approve"
        async with self.session.post(url, data=form, allow_redirects=False) as response:
            return response.status


@pytest.fixture
async def console(settings: Settings, store: Store) -> AsyncIterator[str]:
    settings.approval = ApprovalConfig.model_validate({"severity": {"extreme": 2}, "override_roles": ["admin"]})
    server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _signed_in(store: Store, base: str, role: Role, department: str, name: str) -> Staff:
    session = await signed_in_session(store, base, department=department, role=role, name=name)
    return Staff(session, base)


async def test_an_override_is_flagged_until_approved_after_the_fact(
    console: str, store: Store, settings: Settings
) -> None:
    issuer, _ = await store.create_api_key(department="environment", role=Role.ISSUER, name="起草", actor="t")
    admin, _ = await store.create_api_key(department="environment", role=Role.ADMIN, name="值班领导", actor="t")
    data = {"topic": "air-quality", "title": "特别严重污染红色预警", "body": "立即停课停工。", "severity": "extreme",
            "target": {"areas": [TOWN_A]}, "channels": ["sms"]}  # fmt: skip
    notice, _ = await store.create_notice(
        NoticeIn.model_validate(data), department="environment", created_by=issuer.id, actor="t"
    )
    await approval.override(store, settings.approval, admin, notice, "来不及审批，先行发布")
    first = await _signed_in(store, console, Role.APPROVER, "environment", "王审核")
    second = await _signed_in(store, console, Role.APPROVER, "environment", "赵审核")
    clerk = await _signed_in(store, console, Role.ISSUER, "environment", "李文员")
    elsewhere = await _signed_in(store, console, Role.APPROVER, "civil-affairs", "周民政")
    flag = f'id="overdue-{notice.id}"'
    try:
        for staff, path in ((first, "/console"), (first, "/console/approvals"), (clerk, "/console")):
            status, page = await staff.get(path)
            assert status == 200 and flag in page and "逾期待补批" in page, path
            assert "值班领导" in page  # who sent it by override
        status, page = await elsewhere.get("/console")
        assert status == 200 and flag not in page  # another department's alert

        status, page = await first.get(f"/console/notices/{notice.id}")
        assert status == 200 and 'id="approval-overdue"' in page and "0 / 2" in page
        assert 'id="approve"' in page and 'id="reject"' not in page  # it was sent: it can only be approved
        assert await first.approve(notice.id) == 303
        status, page = await first.get("/console/approvals")
        assert flag in page and "1 / 2" in page  # one of two approvers: still overdue
        assert await first.approve(notice.id) == 409  # the same approver counts once
        assert await second.approve(notice.id) == 303

        for staff, path in ((first, "/console"), (first, "/console/approvals"), (clerk, "/console")):
            status, page = await staff.get(path)
            assert status == 200 and flag not in page, path
        status, page = await first.get(f"/console/notices/{notice.id}")
        assert 'id="approval-overdue"' not in page and "已补批" in page and 'id="decision-form"' not in page
        assert not (await store.get_notice(notice.id)).approval_overdue
    finally:
        for staff in (first, second, clerk, elsewhere):
            await staff.session.close()
