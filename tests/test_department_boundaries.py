"""Departments are the unit of authorisation: a key or a console account of one department never reads, changes,
cancels, approves or exports another department's object, nor learns that it exists.

The walk: every route that takes an object's id in its path (the API's from its route table, the console's from
its own), called by each role of the environment department with an object of civil affairs, answers exactly what
it answers for an id that does not exist (404, the same problem document or error page; 403 to a role the route
refuses whatever the object) and changes nothing. Ids given in a body (a notice's ``references``, ``target.roster``,
``publicity.roster``) are refused as unknown ones are; so are, on the console's routes without an id, list filters and
form fields naming another department's group, topic or department. A role a route's table entry does not name
is refused (403) on its own department's objects. The follow-up list of a county-wide notice names only the residents
its department reads, as ``GET /subscribers`` does (docs/security.md, "Who may do what").
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from notifier import console
from notifier.api.app import ALL_ROUTES
from notifier.config import Settings
from notifier.domain.enums import Role
from notifier.engine.feedback import take_feedback
from notifier.policy import personal_data_scope
from notifier.store import Store
from notifier.store.audit import AuditFilter
from notifier.store.feedback import NewFeedback
from subscribers.importer import import_file
from tests.conftest import COUNTY, VILLAGE_A1, VILLAGE_B1, Api
from tests.console_sign_in import CSRF_FIELD, signed_in_session
from tests.databases import run_sql

UNKNOWN = 987_654_321  # no object has this id
ENV_ROLES = ("viewer", "issuer", "approver", "admin")
ADMINS_READ = ("roster", "resident")  # every department's, by design (docs/rosters.md, docs/api.md): not walked


def notice_body(department: str, **changes: Any) -> dict[str, Any]:
    topic = "air-quality" if department == "environment" else "social-assistance"
    body = {
        "topic": topic,
        "title": "部门边界测试通知",
        "body": "请留意。",
        "target": {"areas": [COUNTY]},
        "channels": ["sms"],
    }
    return {**body, **changes}


@dataclass
class Objects:
    """One department's objects, by kind; each notice in the state its actions need."""

    draft: int  # submit, edit
    pending: int  # approve, reject, override, cancel
    asking: int  # asks for confirmation: the follow-up list
    roster: int
    feedback: int
    resident: int  # in the department's scope only


async def make_objects(api: Api, settings: Settings, short: str, department: str, resident: int) -> Objects:
    async def notice(**changes: Any) -> int:
        status, body = await api.call(
            "POST", "/api/v1/notices", key=f"{short}-issuer", json=notice_body(department, **changes)
        )
        assert status == 201, body
        return int(body["id"])

    async def submit(notice_id: int) -> None:
        status, body = await api.call("POST", f"/api/v1/notices/{notice_id}/submit", key=f"{short}-issuer")
        assert status == 200, body

    draft, pending = await notice(), await notice()
    await submit(pending)
    asking = await notice(confirmation={"remind_after_minutes": 60})
    await submit(asking)
    rows = [{"手机号": "13912340001", "姓名": "王一英", "金额": "100"}]
    status, roster = await api.call(
        "POST", "/api/v1/rosters", key=f"{short}-issuer", json={"name": "救助名单", "key": "phone", "rows": rows}
    )
    assert status == 201, roster
    feedback = await take_feedback(
        api.store,
        settings,
        NewFeedback(channel="sms", text="什么时候发放？", notice_id=pending, subscriber_id=resident),
        actor="test",
    )
    return Objects(draft, pending, asking, int(roster["id"]), feedback, resident)


@dataclass
class World:
    civ: Objects
    env: Objects
    civ_only_resident: dict[str, Any]  # in dibao, subscribed to social assistance: civil affairs' alone
    env_resident: dict[str, Any]  # subscribed to air quality


@pytest.fixture
async def world(api: Api, settings: Settings) -> World:
    people = [
        {
            "name": "低保甲",
            "phone": "13900000101",
            "area_code": VILLAGE_A1,
            "groups": ["dibao"],
            "topics": ["social-assistance"],
            "channels": ["sms"],
        },
        {
            "name": "空气乙",
            "phone": "13900000102",
            "area_code": VILLAGE_B1,
            "topics": ["air-quality"],
            "channels": ["sms"],
        },
    ]
    created = []
    for person in people:
        status, body = await api.call("POST", "/api/v1/subscribers", json=person, key="env-admin")
        assert status == 201, body
        created.append(body)
    civ = await make_objects(api, settings, "civ", "civil-affairs", created[0]["id"])
    env = await make_objects(api, settings, "env", "environment", created[1]["id"])
    return World(civ, env, *created)


def without_id(text: str, path: str, object_id: int) -> str:
    """``text`` with the request's path written as its route and the id it names (``no notice 12``) as ``ID``:
    what two answers are compared on."""
    concrete = path.replace("{id}", str(object_id))
    return re.sub(rf"(?<=\s){object_id}(?![0-9])", "ID", text.replace(concrete, path))


def same_answer(body: Any, path: str, object_id: int) -> Any:
    if not isinstance(body, dict):
        return without_id(body, path, object_id)
    return {
        name: without_id(value, path, object_id) if name in ("detail", "instance") else value
        for name, value in body.items()
    }


# ------------------------------------------------------------------------------------------------ the API walk

ID_ROUTES = sorted(
    (r.method, r.path) for r in ALL_ROUTES if not r.public and r.path.startswith("/api/v1/") and "{id}" in r.path
)
# the object each path's id names, and the one of a department's objects whose state lets the action succeed
KIND = {
    "/api/v1/notices/{id}/submit": "draft",
    "PUT /api/v1/notices/{id}": "draft",
    "/api/v1/notices/{id}/follow-up": "asking",
    "/api/v1/notices/": "pending",
    "/api/v1/rosters/": "roster",
    "/api/v1/feedback/": "feedback",
    "/api/v1/subscribers/": "resident",
}
BODIES: dict[str, Any] = {  # what makes each action succeed on the department's own object
    "PUT /api/v1/notices/{id}": notice_body("civil-affairs", title="改过的标题"),
    "POST /api/v1/notices/{id}/approve": {"comment": "同意"},
    "POST /api/v1/notices/{id}/override": {"comment": "来不及审批"},
    "POST /api/v1/notices/{id}/reject": {"comment": "不同意"},
    "POST /api/v1/notices/{id}/cancel": {"reason": "撤回"},
    "POST /api/v1/feedback/{id}/assign": {"assigned_to": "张三"},
    "POST /api/v1/feedback/{id}/reply": {"text": "已经发放。"},
    "POST /api/v1/feedback/{id}/close": {"outcome": "已解决"},
    "PATCH /api/v1/subscribers/{id}": {"language": "en"},
    "POST /api/v1/templates": {"name": "env-second", "texts": {"zh": {"default": "{{ body }}"}}},
    "PUT /api/v1/templates/{name}": {"texts": {"zh": {"default": "{{ body }}"}}},
}


def kind_of(method: str, path: str) -> str:
    for prefix, kind in KIND.items():
        if f"{method} {path}" == prefix or path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return kind
    raise AssertionError(f"{method} {path} takes an id of no known kind: add it to KIND")


def allowed_roles(method: str, path: str) -> set[str]:
    [route] = [r for r in ALL_ROUTES if (r.method, r.path) == (method, path)]
    return set(route.roles or ENV_ROLES)


async def snapshot(api: Api, objects: Objects, short: str) -> dict[str, Any]:
    """Everything the owning department reads of its objects (as its admin, who reads every resident)."""
    paths = [f"/api/v1/notices/{n}" for n in (objects.draft, objects.pending, objects.asking)]
    paths += [
        f"/api/v1/notices/{objects.pending}/deliveries",
        f"/api/v1/rosters/{objects.roster}",
        f"/api/v1/rosters/{objects.roster}/rows",
        f"/api/v1/feedback/{objects.feedback}",
        f"/api/v1/subscribers/{objects.resident}",
    ]
    seen = {}
    for path in paths:
        status, body = await api.call("GET", path, key=f"{short}-admin")
        assert status == 200, (path, body)
        seen[path] = body
    return seen


@pytest.mark.parametrize(("method", "path"), ID_ROUTES, ids=[f"{m} {p}" for m, p in ID_ROUTES])
async def test_another_departments_object_is_answered_as_an_unknown_one_and_left_alone(
    api: Api, world: World, method: str, path: str
) -> None:
    kind = kind_of(method, path)
    foreign = getattr(world.civ, kind)
    before = await snapshot(api, world.civ, "civ")
    body = BODIES.get(f"{method} {path}")
    for role in ENV_ROLES:
        if role == "admin" and kind in ADMINS_READ:
            continue
        answers = []
        for object_id in (foreign, UNKNOWN):
            for accept in ("application/json", "application/pdf") if path.endswith("/follow-up") else ("*/*",):
                status, answer = await api.call(
                    method,
                    path.replace("{id}", str(object_id)),
                    key=f"env-{role}",
                    json=body,
                    headers={"Accept": accept},
                )
                answers.append((status, same_answer(answer, path, object_id)))
        half = len(answers) // 2
        assert answers[:half] == answers[half:], f"env-{role}: {method} {path} tells civil affairs' {kind} exists"
        expected = 404 if role in allowed_roles(method, path) else 403
        assert {status for status, _ in answers} == {expected}, (role, answers)
    assert await snapshot(api, world.civ, "civ") == before


@pytest.mark.parametrize("role", ["issuer", "admin"])
async def test_ids_in_a_body_name_only_the_departments_own_objects(api: Api, world: World, role: str) -> None:
    """A notice that refers to, targets or publishes another department's notice or roster is refused as one
    naming an unknown id is, in the draft preview as on creation."""
    today = date.today()
    publicity = {
        "columns": ["name"],
        "from": today.isoformat(),
        "until": (today + timedelta(days=6)).isoformat(),
        "complaint_phone": "0536-6212345",
    }
    variants = {
        "references": lambda i: notice_body("environment", references=i),
        "target.roster": lambda i: notice_body("environment", target={"roster": i}),
        "publicity.roster": lambda i: notice_body(
            "environment", publicity={**publicity, "roster": i}, channels=["bulletin"]
        ),
    }
    for path in ("/api/v1/notices", "/api/v1/notice-preview", f"/api/v1/notices/{world.env.draft}"):
        method = "PUT" if path.endswith(str(world.env.draft)) else "POST"
        key = "env-issuer" if method == "PUT" else f"env-{role}"  # only the author edits a notice
        for name, make in variants.items():
            foreign = world.civ.pending if name == "references" else world.civ.roster
            answers = []
            for object_id in (foreign, UNKNOWN):
                status, answer = await api.call(method, path, key=key, json=make(object_id))
                answers.append((status, same_answer(answer, path, object_id)))
            assert answers[0] == answers[1], (method, path, name, answers)
            assert answers[0][0] == 422 and answers[0][1]["errors"][0]["loc"] == name, answers
    status, listed = await api.call("GET", f"/api/v1/feedback?notice={world.civ.pending}", key=f"env-{role}")
    assert status == 200 and listed["items"] == []


# ------------------------------------------------------------------------- roles within the department


ROLE_ROUTES = sorted((r.method, r.path) for r in ALL_ROUTES if r.roles and r.path.startswith("/api/v1/"))


@pytest.mark.parametrize(("method", "path"), ROLE_ROUTES, ids=[f"{m} {p}" for m, p in ROLE_ROUTES])
async def test_a_role_the_route_does_not_name_is_refused_on_its_own_departments_objects(
    api: Api, world: World, method: str, path: str
) -> None:
    before = await snapshot(api, world.env, "env")
    status, template = await api.call(
        "POST",
        "/api/v1/templates",
        key="env-approver",
        json={"name": "env-boundary", "texts": {"zh": {"default": "{{ title }}：{{ body }}"}}},
    )
    assert status == 201, template
    prefix = api.keys["env-viewer"].split("_")[1]
    concrete = path.replace("{prefix}", prefix).replace("{name}", "env-boundary")
    if "{id}" in path:
        concrete = concrete.replace("{id}", str(getattr(world.env, kind_of(method, path))))
    refused = [role for role in ENV_ROLES if role not in allowed_roles(method, path)]
    assert refused, f"{method} {path} names every role"
    for role in refused:
        status, answer = await api.call(method, concrete, key=f"env-{role}", json=BODIES.get(f"{method} {path}", {}))
        assert status == 403 and answer["type"] == "/problems/forbidden", (role, answer)
    assert await snapshot(api, world.env, "env") == before
    status, keys = await api.call("GET", "/api/v1/apikeys", key="env-admin")
    assert status == 200 and not any(k["revoked_at"] for k in keys["items"]), keys
    status, versions = await api.call("GET", "/api/v1/templates/env-boundary/versions", key="env-viewer")
    assert status == 200 and len(versions["items"]) == 1


# ---------------------------------------------------------------------------------------- the console walk


@dataclass
class Staff:
    session: aiohttp.ClientSession
    base: str
    csrf: str

    async def request(self, method: str, path: str, form: dict[str, str]) -> tuple[int, str]:
        data = {"csrf_token": self.csrf, **form} if method == "POST" else None
        timeout = aiohttp.ClientTimeout(total=20)  # a stream opened by mistake would run for ten minutes
        async with self.session.request(
            method, self.base + path, data=data, allow_redirects=False, timeout=timeout
        ) as response:
            return response.status, await response.text()


SignIn = Callable[[str], Awaitable[Staff]]


@pytest.fixture
async def sign_in(api: Api, store: Store) -> AsyncIterator[SignIn]:
    """Signs a new console account of the environment department in, with the role given."""
    sessions: list[aiohttp.ClientSession] = []

    async def signed_in(role: str) -> Staff:
        session = await signed_in_session(store, api.base, department="environment", role=Role(role),
                                          name=f"环境{role}")  # fmt: skip
        sessions.append(session)
        async with session.get(f"{api.base}/console") as response:
            csrf = CSRF_FIELD.search(await response.text())[1]  # type: ignore[index]
        return Staff(session, api.base, csrf)

    try:
        yield signed_in
    finally:
        for session in sessions:
            await session.close()


ANY = set(ENV_ROLES)
ISSUERS, APPROVERS = {"issuer", "admin"}, {"approver", "admin"}
# (method, path, the object kind its id names, the roles the page lets in, the form that makes the action succeed)
CONSOLE_ROUTES: list[tuple[str, str, str, set[str], dict[str, str]]] = [
    ("GET", "/console/notices/{id}", "pending", ANY, {}),
    ("GET", "/console/notices/{id}/edit", "draft", ISSUERS, {}),
    ("POST", "/console/notices/{id}/edit", "draft", ISSUERS, {"action": "save", "title": "改", "body": "改"}),
    ("POST", "/console/notices/{id}/approve", "pending", APPROVERS, {"comment": "同意"}),
    ("POST", "/console/notices/{id}/reject", "pending", APPROVERS, {"comment": "不同意"}),
    ("GET", "/console/notices/{id}/follow", "pending", ANY, {}),
    ("GET", "/console/notices/{id}/events", "pending", ANY, {}),
    ("POST", "/console/notices/{id}/cancel", "pending", ISSUERS | APPROVERS, {"reason": "撤回"}),
    ("POST", "/console/notices/{id}/follow-up", "pending", ISSUERS, {"kind": "update"}),
    ("GET", "/console/notices/{id}/unconfirmed", "asking", ANY, {}),
    ("GET", "/console/notices/{id}/unconfirmed.pdf", "asking", ANY, {}),
    ("GET", "/console/feedback/{id}", "feedback", ANY, {}),
    ("POST", "/console/feedback/{id}/assign", "feedback", ISSUERS | APPROVERS, {"assigned_to": "张三"}),
    ("POST", "/console/feedback/{id}/reply", "feedback", ISSUERS | APPROVERS, {"text": "已经发放。"}),
    ("POST", "/console/feedback/{id}/close", "feedback", ISSUERS | APPROVERS, {"outcome": "已解决"}),
    ("GET", "/console/rosters/{id}", "roster", ANY, {}),
    ("GET", "/console/rosters/{id}/unmatched.csv", "roster", ANY, {}),
    ("GET", "/console/residents/{id}", "resident", ANY, {}),
]


def test_the_console_walk_covers_every_console_route_with_an_id() -> None:
    with_id = {(method, path) for method, path, _ in console.ROUTES if "{id}" in path}
    assert with_id == {(method, path) for method, path, *_ in CONSOLE_ROUTES}


@pytest.mark.parametrize("role", ENV_ROLES)
async def test_a_console_page_answers_another_departments_object_as_an_unknown_one(
    api: Api, world: World, sign_in: SignIn, role: str
) -> None:
    staff = await sign_in(role)
    before = await snapshot(api, world.civ, "civ")
    for method, path, kind, roles, form in CONSOLE_ROUTES:
        if role == "admin" and kind in ADMINS_READ:
            continue
        answers = []
        for object_id in (getattr(world.civ, kind), UNKNOWN):
            status, text = await staff.request(method, path.replace("{id}", str(object_id)), form)
            answers.append((status, without_id(text, path, object_id)))
        assert answers[0] == answers[1], f"{role}: {method} {path} tells civil affairs' {kind} exists"
        assert answers[0][0] == (404 if role in roles else 403), (method, path, answers[0])
    assert await snapshot(api, world.civ, "civ") == before


@pytest.mark.parametrize("role", ["viewer", "issuer", "approver"])
async def test_a_console_filter_naming_another_departments_group_or_department_is_refused(
    world: World, sign_in: SignIn, role: str
) -> None:
    """The console routes without an id in their path: a list filter naming civil affairs' group or department
    is refused as the API refuses it, and one naming its topic finds only the residents the department reads."""
    staff = await sign_in(role)
    hidden = world.civ_only_resident
    refused = [
        "/console/residents?group=dibao",
        "/console/residents/export.csv?group=dibao",
        "/console/reports?department=civil-affairs",
        "/console/reports/reach.csv?department=civil-affairs",
    ]
    for path in refused:
        status, text = await staff.request("GET", path, {})
        assert status == 403 and hidden["name"] not in text, (path, status)
    for path in ("/console/residents?topic=social-assistance", "/console/residents/export.csv?topic=social-assistance",
                 "/console/residents?all=1", f"/console/residents?phone={hidden['phone'][-4:]}"):  # fmt: skip
        status, text = await staff.request("GET", path, {})
        assert status == 200 and hidden["name"] not in text and hidden["phone"][-8:] not in text, path


async def test_a_console_form_naming_another_departments_group_or_topic_is_refused(
    api: Api, world: World, sign_in: SignIn
) -> None:
    """(Templates are not a department's: any department may issue with any, docs/api.md#templates.)"""
    staff = await sign_in("issuer")
    base = {"topic": "air-quality", "title": "越界", "body": "越界", "target.areas": COUNTY, "channels": "sms"}
    for form in ({**base, "target.areas": "", "target.groups": "dibao"}, {**base, "topic": "social-assistance"}):
        for action in ("preview", "draft", "submit"):
            status, text = await staff.request("POST", "/console/notices/new", {**form, "action": action})
            assert status == 403 and 'id="audience"' not in text, (form, action, status)
        status, text = await staff.request("POST", "/console/notices/preview", form)
        assert status == 403 and 'id="audience"' not in text, (form, status)
    status, page = await api.call("GET", "/api/v1/notices?limit=100", key="env-admin")
    assert status == 200 and not any(n["title"] == "越界" for n in page["items"]), page


# ------------------------------------------------------------------------------ residents outside the scope


async def test_the_follow_up_list_names_only_residents_the_department_reads(
    api: Api, world: World, sign_in: SignIn
) -> None:
    """A county-wide notice reaches residents its department may not read; its deliveries show them by id only,
    and so must its follow-up list: not the name and phone number of civil affairs' dibao household."""
    hidden, own = world.civ_only_resident, world.env_resident
    for resident in (hidden, own):
        await run_sql(
            api.store.db,
            "INSERT INTO deliveries (notice_id, subscriber_id, channel, state, address, created_at, updated_at)"
            " VALUES (?, ?, 'sms', 'sent', ?, '2026-12-01T08:00:00+00:00', '2026-12-01T08:00:00+00:00')",
            (world.env.asking, resident["id"], resident["phone"]),
        )
    path = f"/api/v1/notices/{world.env.asking}/follow-up"
    for role in ("viewer", "issuer", "approver"):
        status, page = await api.call("GET", path, key=f"env-{role}")
        assert status == 200 and [r["subscriber_id"] for r in page["items"]] == [own["id"]], page
        assert "13900000101" not in json.dumps(page) and hidden["name"] not in json.dumps(page, ensure_ascii=False)
    staff = await sign_in("viewer")
    status, text = await staff.request("GET", f"/console/notices/{world.env.asking}/unconfirmed", {})
    assert status == 200 and own["name"] in text, text
    assert hidden["name"] not in text and "13900000101" not in text
    status, page = await api.call("GET", path, key="env-admin")  # an admin reads every resident
    assert status == 200 and [r["subscriber_id"] for r in page["items"]] == [hidden["id"], own["id"]]
    status, page = await api.call("GET", f"/api/v1/notices/{world.env.asking}/deliveries", key="env-viewer")
    assert {item["subscriber_id"] for item in page["items"]} == {hidden["id"], own["id"]}
    assert "13900000101" not in json.dumps(page)


async def test_the_follow_page_shows_no_address_a_gateway_echoed(api: Api, world: World, sign_in: SignIn) -> None:
    """The console's failures by reason, as the API's delivery list: a gateway's words without the address they
    often repeat (here of civil affairs' resident, whom a county-wide notice of the environment reached)."""
    hidden = world.civ_only_resident
    errors = {
        "email": "rejected: 550 5.1.1 <JIA@example.org>: Recipient address rejected",
        "sms": "invalid-number: isv.MOBILE_NUMBER_ILLEGAL: 13900000101 is not a mobile number",
    }
    for channel, error in errors.items():
        await run_sql(
            api.store.db,
            "INSERT INTO deliveries (notice_id, subscriber_id, channel, state, address, last_error, created_at,"
            " updated_at) VALUES (?, ?, ?, 'failed', ?, ?, '2026-12-01T08:00:00+00:00', '2026-12-01T08:00:00+00:00')",
            (
                world.env.pending,
                hidden["id"],
                channel,
                "jia@example.org" if channel == "email" else hidden["phone"],
                error,
            ),
        )
    staff = await sign_in("viewer")
    status, text = await staff.request("GET", f"/console/notices/{world.env.pending}/follow", {})
    assert status == 200, text
    failures = re.search(r'<table id="live-failures">.*?</table>', text, re.DOTALL)
    assert failures is not None, text
    assert "rejected" in failures[0] and "invalid-number" in failures[0]
    assert "13900000101" not in text and "jia@example.org" not in text.lower()


async def test_a_console_imports_report_names_only_residents_the_department_reads(
    api: Api, world: World, tmp_path: Path
) -> None:
    """A row whose phone number or external_id another resident has is refused, and the report names that
    resident only to a department that reads them, as the API's 409 does (what the console's import runs)."""
    hidden, own = world.civ_only_resident, world.env_resident
    await run_sql(api.store.db, "UPDATE subscribers SET external_id = 'MZ-0001' WHERE id = ?", (hidden["id"],))
    roster = tmp_path / "居民.csv"
    roster.write_text(
        "name,phone,area_code,external_id,topics\n"
        f"甲,{hidden['phone']},{VILLAGE_A1},,air-quality\n"
        f"乙,13900000199,{VILLAGE_A1},MZ-0001,air-quality\n"
        f"丙,{own['phone']},{VILLAGE_A1},,air-quality\n",
        encoding="utf-8",
    )
    issuer = await api.store.authenticate(api.keys["env-issuer"])
    assert issuer is not None
    scope = await personal_data_scope(api.store, issuer)
    report = tmp_path / "report.csv"
    result = await import_file(api.store, roster, actor="test", report_path=report, scope=scope)
    assert result.imported == 0
    rows = list(csv.reader(report.read_text(encoding="utf-8-sig").splitlines()))
    assert [(row[0], row[2]) for row in rows[1:]] == [("2", "phone"), ("3", "external_id"), ("4", "phone")]
    assert [row[3] for row in rows[1:]] == [
        "a resident outside the department's residents has this phone number",
        "a resident outside the department's residents has this external_id",
        f"resident {own['id']} has this phone number",
    ]
    # that a value is registered cannot be hidden from the one registering it: the refusals are in the log, as
    # the API's 409s are (subscriber.duplicate), counted in the import's own entry
    entries, _ = await api.store.list_audit(AuditFilter(action="subscriber.import"), None, 10)
    assert [(e.detail["duplicates"], e.detail["disclosed"]) for e in entries] == [(3, 1)]
