"""Reach reports and the department assessment: a real notice through the engine, with failures, fallbacks and
receipts; every figure of the report is checked against counts the test makes itself from the deliveries."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from channels.base import Failed
from notifier import approval
from notifier.config import ChannelConfig, Settings
from notifier.domain.enums import ChannelKind, Role
from notifier.domain.models import ApiKeyInfo, NoticeIn, SubscriberIn, SubscriberPatch
from notifier.engine import Engine
from notifier.engine.receipts import record_receipt
from notifier.report_formats import to_xlsx
from notifier.store import Store
from notifier.store.feedback import NewFeedback
from notifier.testing import RecordingChannel
from tests.conftest import TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, Api
from tests.databases import run_sql
from tests.test_cli import run_cli

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _key(store: Store, role: Role, department: str = "environment") -> ApiKeyInfo:
    key, _ = await store.create_api_key(department=department, role=role, name=f"r-{role}", actor="test")
    return key


async def _residents(store: Store) -> dict[str, list[int]]:
    """Residents of towns A and B: SMS only, SMS then e-mail, e-mail only; one opted out of SMS and e-mail."""
    people: dict[str, list[int]] = defaultdict(list)
    plan = [
        (VILLAGE_A1, ["sms"], False),
        (VILLAGE_A1, ["sms"], False),
        (VILLAGE_A1, ["sms", "email"], True),
        (VILLAGE_A2, ["sms", "email"], True),
        (VILLAGE_A2, ["sms"], False),
        (VILLAGE_A2, ["email"], True),
        (VILLAGE_B1, ["sms"], False),
        (VILLAGE_B1, ["sms"], False),
        (VILLAGE_B1, ["sms", "email"], True),
        (VILLAGE_B1, ["sms"], False),
    ]
    for i, (village, channels, has_email) in enumerate(plan):
        data: dict[str, Any] = {"name": f"居民{i}", "area_code": village, "channels": channels}
        data.update(phone=f"+8613900{i:06d}", topics=["air-quality"])
        if has_email:
            data["email"] = f"r{i}@example.org"
        resident = await store.create_subscriber(SubscriberIn.model_validate(data), "test")
        people[village].append(resident.id)
    opted_out = people[VILLAGE_A1][0]
    await store.update_subscriber(opted_out, SubscriberPatch(consent_withdrawn=True), "test")
    return people


async def sent_notice(store: Store, settings: Settings) -> tuple[int, dict[str, RecordingChannel]]:
    """A severe alert for the whole county, run through the engine: some SMS fail (two of them fall back to
    e-mail), five messages are confirmed delivered by a receipt, every village board gets a printout."""
    await _residents(store)
    config = settings.model_copy(deep=True)
    config.channels = {
        "sms": ChannelConfig(kind=ChannelKind.SMS, type="recording"),
        "email": ChannelConfig(kind=ChannelKind.EMAIL, type="recording"),
        "board": ChannelConfig(kind=ChannelKind.BULLETIN, type="recording"),
    }
    channels = {alias: RecordingChannel(alias) for alias in config.channels}
    for i in (2, 3):  # SMS then e-mail: the SMS fails, the e-mail goes
        channels["sms"].plan(f"+8613900{i:06d}", Failed("invalid-number", "空号"))
    channels["sms"].plan("+8613900000004", Failed("blocked", "用户拒收"))
    channels["sms"].plan("+8613900000007", Failed("invalid-number"))
    issuer, approver = await _key(store, Role.ISSUER), await _key(store, Role.APPROVER)
    notice, _ = await store.create_notice(
        NoticeIn.model_validate(
            {
                "topic": "air-quality",
                "title": "重污染天气橙色预警",
                "body": "明日起启动橙色预警。",
                "severity": "severe",
                "target": {"areas": ["370725"]},
                "channels": ["sms", "email", "bulletin"],
            }
        ),
        department="environment",
        created_by=issuer.id,
        actor="test",
    )
    notice = await approval.submit(store, config.approval, issuer, notice)
    await approval.approve(store, config.approval, approver, notice, None)
    engine = Engine(store, config, dict(channels))
    await engine.run_until_idle()
    await engine.run_until_idle()
    rows = await store.db.fetch_all("list_deliveries", {"notice_id": notice.id, "after": 0, "limit": 1000})
    sent = [r for r in rows if r["state"] == "sent"]
    sms = [r for r in sent if r["channel"] == "sms"][:4]  # four SMS and one e-mail confirmed by a receipt
    for row in [*sms, next(r for r in sent if r["channel"] == "email")]:
        assert await record_receipt(store, row["alias"], row["provider_message_id"], "delivered") == "applied"
    return notice.id, channels


async def independent_counts(store: Store, notice_id: int) -> dict[str, Any]:
    """The report's figures, counted here from the rows of deliveries: to residents, and printouts to areas."""
    rows = await run_sql(
        store.db,
        "SELECT d.subscriber_id, d.channel, d.state, d.last_error, d.delivered_at, s.area_code "
        "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.notice_id = ?",
        (notice_id,),
    )
    printouts = await run_sql(
        store.db,
        "SELECT area_code FROM deliveries WHERE notice_id = ? AND area_code IS NOT NULL"
        " AND channel = 'bulletin' AND state = 'sent'",
        (notice_id,),
    )

    def figures(part: list[dict[str, Any]]) -> dict[str, Any]:
        targeted = {r["subscriber_id"] for r in part}
        reached = {r["subscriber_id"] for r in part if r["state"] in ("delivered", "confirmed")}
        sent_to = {r["subscriber_id"] for r in part if r["state"] in ("sent", "delivered", "confirmed")}
        states = Counter(r["state"] for r in part)
        reasons = Counter(r["last_error"].split(":")[0].strip() for r in part if r["state"] == "failed")
        return {
            "targeted": len(targeted),
            "reached": len(reached),
            "sent_to": len(sent_to),
            "reach_rate": round(len(reached) / len(targeted), 4) if targeted else None,
            "sent": states["sent"] + states["delivered"] + states["confirmed"],
            "delivered": states["delivered"] + states["confirmed"],
            "confirmed": states["confirmed"],
            "failed": states["failed"],
            "failed_by_reason": dict(sorted(reasons.items())),
            "fallback": states["fallback"],
            "skipped": states["skipped"],
        }

    first: dict[int, str] = {}
    for r in rows:
        if r["state"] == "delivered":
            first[r["subscriber_id"]] = min(first.get(r["subscriber_id"], r["delivered_at"]), r["delivered_at"])
    return {
        "notice": {**figures(rows), "printouts": len(printouts)},
        "channels": {kind: figures([r for r in rows if r["channel"] == kind]) for kind in ("sms", "email")},
        "towns": {town: figures([r for r in rows if r["area_code"][:9] == town]) for town in (TOWN_A, TOWN_B)},
        "villages": dict(Counter(r["area_code"] for r in printouts)),
        "first_delivered": sorted(datetime.fromisoformat(t) for t in first.values()),
    }


def _subset(report_row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {name: report_row[name] for name in expected}


@pytest.fixture
async def report_notice(api: Api, settings: Settings) -> tuple[int, dict[str, Any]]:
    notice_id, _ = await sent_notice(api.store, settings)
    return notice_id, await independent_counts(api.store, notice_id)


async def test_reach_figures_equal_the_counts_of_the_deliveries(
    api: Api, report_notice: tuple[int, dict[str, Any]]
) -> None:
    notice_id, expected = report_notice
    # the scenario has every kind of outcome, so no figure is trivially zero
    assert expected["notice"]["failed"] == 2 and expected["notice"]["fallback"] == 2
    assert expected["notice"]["delivered"] == 5 and expected["notice"]["printouts"] == 3
    assert expected["notice"]["targeted"] == 9  # the resident who withdrew consent has no message
    status, report = await api.call("GET", "/api/v1/reports/reach?from=2000-01-01", key="env-viewer")
    assert status == 200, report
    [notice] = report["notices"]
    assert notice["notice_id"] == notice_id
    assert _subset(notice, expected["notice"]) == expected["notice"]
    assert notice["failed_by_reason"] == {"blocked": 1, "invalid-number": 1}
    assert {c["channel"]: _subset(c, expected["channels"][c["channel"]]) for c in report["channels"]} == expected[
        "channels"
    ]
    assert {t["town"]: _subset(t, expected["towns"][t["town"]]) for t in report["towns"]} == expected["towns"]
    assert {t["town"]: t["name"] for t in report["towns"]} == {TOWN_A: "宝都街道", TOWN_B: "宝城街道"}
    assert {v["village"]: v["printouts"] for v in report["villages"]} == expected["villages"]
    assert _subset(report["total"], expected["notice"]) == expected["notice"]
    [department] = report["departments"]
    assert department["department"] == "environment" and department["notices"] == 1
    assert _subset(department, expected["notice"]) == expected["notice"]
    released = datetime.fromisoformat(notice["released_at"])
    for share, field in ((0.5, "minutes_to_50_percent"), (0.9, "minutes_to_90_percent")):
        needed = math.ceil(share * expected["notice"]["targeted"])
        times = expected["first_delivered"]
        want = round((times[needed - 1] - released).total_seconds() / 60, 2) if len(times) >= needed else None
        assert notice[field] == want, field
    assert (
        notice["minutes_to_50_percent"] is None or expected["notice"]["reached"] * 2 >= expected["notice"]["targeted"]
    )


async def test_the_period_and_the_department_choose_the_notices(
    api: Api, report_notice: tuple[int, dict[str, Any]]
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    status, report = await api.call("GET", f"/api/v1/reports/reach?from={tomorrow}", key="env-viewer")
    assert status == 200 and report["notices"] == [] and report["total"]["targeted"] == 0
    status, report = await api.call("GET", "/api/v1/reports/reach?to=2000-01-01", key="env-viewer")
    assert status == 200 and report["notices"] == []
    status, report = await api.call("GET", "/api/v1/reports/reach", key="civ-viewer")
    assert status == 200 and report["notices"] == [] and report["department"] == "civil-affairs"
    status, body = await api.call("GET", "/api/v1/reports/reach?department=environment", key="civ-viewer")
    assert status == 403
    status, report = await api.call("GET", "/api/v1/reports/reach?department=environment", key="civ-admin")
    assert status == 200 and len(report["notices"]) == 1
    for bad in ("from=yesterday", "to=1700000000", "from=2026-13-01", "department=Env"):
        status, body = await api.call("GET", f"/api/v1/reports/reach?{bad}", key="env-viewer")
        assert status == 422 and body["errors"][0]["loc"].startswith("query."), (bad, body)


async def test_a_day_is_the_whole_day_in_the_service_time_zone(
    api: Api, settings: Settings, report_notice: tuple[int, dict[str, Any]]
) -> None:
    """``from=D&to=D`` is D from its first to its last moment where the service is, in both reports: the
    notice released just now is in today's reach."""
    notice_id, _ = report_notice
    zone = ZoneInfo(settings.server.timezone)
    today = datetime.now(zone).date()
    first = datetime.combine(today, time(), zone).astimezone(UTC)
    last = datetime.combine(today + timedelta(days=1), time(), zone).astimezone(UTC)
    bounds = (first.isoformat().replace("+00:00", "Z"), last.isoformat().replace("+00:00", "Z"))
    for path in ("reach", "departments"):
        status, report = await api.call("GET", f"/api/v1/reports/{path}?from={today}&to={today}", key="env-viewer")
        assert status == 200 and (report["from"], report["to"]) == bounds, (path, report)
    status, report = await api.call("GET", f"/api/v1/reports/reach?from={today}&to={today}", key="env-viewer")
    assert [n["notice_id"] for n in report["notices"]] == [notice_id]
    lowercase = bounds[0].replace("T", "t").replace("Z", "z")  # RFC 3339 allows it
    status, report = await api.call("GET", f"/api/v1/reports/reach?from={lowercase}", key="env-viewer")
    assert status == 200 and report["from"] == bounds[0], report


async def test_a_period_outside_the_calendar_is_a_422_naming_the_field(
    api: Api, report_notice: tuple[int, dict[str, Any]]
) -> None:
    """Days and times the calendar cannot hold once moved to the period's bounds (before 0001-01-01 UTC, after
    9999-12-31) are refused as invalid input, not a 500."""
    for path in ("reach", "departments"):
        for bad, field in (("from=0001-01-01T00:00:00%2B08:00", "from"), ("to=9999-12-31T23:59:59-08:00", "to")):
            status, body = await api.call("GET", f"/api/v1/reports/{path}?{bad}", key="env-viewer")
            assert status == 422 and [e["loc"] for e in body["errors"]] == [f"query.{field}"], (path, bad, body)


async def test_a_day_or_time_off_the_calendar_is_a_422_in_our_words_naming_the_field(
    api: Api, report_notice: tuple[int, dict[str, Any]]
) -> None:
    """An offset of 24 hours or more, a 13th month, a 30th of February, a 25th hour: the problem names the field
    and says what is wrong in the service's words, not Python's (``timedelta``, ``must be in 1..12``)."""
    cases = [
        ("from=2026-11-30T08:00:00%2B24:00", "from", "the zone offset +24:00 is out of range: from -23:59 to +23:59"),
        ("to=2026-11-30T08:00:00-99:59", "to", "the zone offset -99:59 is out of range: from -23:59 to +23:59"),
        ("from=2026-13-01", "from", "2026-13-01 is not a day of the calendar"),
        ("to=2026-02-30", "to", "2026-02-30 is not a day of the calendar"),
        ("to=2026-11-30T25:00:00Z", "to", "not a time of the calendar: a day of its month, hours 00-23, minutes "
                                          "and seconds 00-59, e.g. 2026-11-30T08:00:00+08:00"),
    ]  # fmt: skip
    for path in ("reach", "departments"):
        for bad, field, message in cases:
            status, body = await api.call("GET", f"/api/v1/reports/{path}?{bad}", key="env-viewer")
            assert status == 422, (path, bad, body)
            assert [(e["loc"], e["msg"]) for e in body["errors"]] == [(f"query.{field}", message)], (path, bad, body)
            assert body["detail"] == f"1 invalid field(s): query.{field}: {message}"
    status, report = await api.call("GET", "/api/v1/reports/reach?from=2026-11-30T08:00:00-23:59", key="env-viewer")
    assert status == 200 and report["from"] == "2026-12-01T07:59:00Z"


async def test_the_period_picks_notices_by_their_release_not_their_creation(
    api: Api, settings: Settings, report_notice: tuple[int, dict[str, Any]]
) -> None:
    """A notice drafted 40 days ago and approved now belongs to this period's reach and issued notices, and to
    the old period's created notices only."""
    notice_id, expected = report_notice
    forty_days_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="microseconds")
    await run_sql(api.store.db, "UPDATE notices SET created_at = ? WHERE id = ?", (forty_days_ago, notice_id))
    recent = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    old_from = (datetime.now(UTC) - timedelta(days=45)).date().isoformat()
    old_to = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    status, report = await api.call("GET", f"/api/v1/reports/reach?from={recent}", key="env-viewer")
    assert status == 200 and [n["notice_id"] for n in report["notices"]] == [notice_id]
    assert report["total"]["reached"] == expected["notice"]["reached"]
    status, report = await api.call("GET", f"/api/v1/reports/reach?from={old_from}&to={old_to}", key="env-viewer")
    assert status == 200 and report["notices"] == []  # created then, but not sent then
    status, now = await api.call("GET", f"/api/v1/reports/departments?from={recent}", key="env-viewer")
    [environment] = now["departments"]
    figures = ("notices_created", "notices_submitted", "notices_issued")
    assert tuple(environment[f] for f in figures) == (0, 1, 1)
    assert environment["reached"] == expected["notice"]["reached"]
    status, then = await api.call("GET", f"/api/v1/reports/departments?from={old_from}&to={old_to}", key="env-viewer")
    [environment] = then["departments"]
    assert (environment["notices_created"], environment["notices_issued"], environment["reached"]) == (1, 0, 0)


async def test_csv_and_xlsx_carry_the_same_figures(api: Api, report_notice: tuple[int, dict[str, Any]]) -> None:
    notice_id, expected = report_notice
    status, text = await api.call("GET", "/api/v1/reports/reach", key="env-viewer", headers={"Accept": "text/csv"})
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    [notice] = [r for r in rows if r["scope"] == "notices"]
    assert notice["key"] == str(notice_id) and notice["title" if "title" in notice else "name"] == "重污染天气橙色预警"
    for field in ("targeted", "reached", "sent", "delivered", "failed", "fallback", "printouts"):
        assert int(notice[field]) == expected["notice"][field], field
    assert notice["failed_by_reason"] == "blocked=1; invalid-number=1"
    assert {r["key"]: int(r["printouts"]) for r in rows if r["scope"] == "villages"} == expected["villages"]

    url = api.base + "/api/v1/reports/reach"
    headers = {"Authorization": f"Bearer {api.keys['env-viewer']}", "Accept": XLSX}
    async with api.session.get(url, headers=headers) as response:
        assert response.status == 200 and response.content_type == XLSX
        workbook = load_workbook(io.BytesIO(await response.read()), read_only=True)
    assert workbook.sheetnames == ["total", "notices", "departments", "channels", "towns", "villages"]
    header, *lines = [list(row) for row in workbook["notices"].iter_rows(values_only=True)]
    sheet_row = dict(zip(header, lines[0], strict=True))
    assert sheet_row["key"] == str(notice_id)
    assert {f: sheet_row[f] for f in ("targeted", "reached", "failed")} == {
        f: expected["notice"][f] for f in ("targeted", "reached", "failed")
    }


async def test_the_department_assessment(api: Api, settings: Settings, report_notice: tuple[int, Any]) -> None:
    _, expected = report_notice
    store = api.store
    issuer, approver = await _key(store, Role.ISSUER), await _key(store, Role.APPROVER)
    data = {"topic": "air-quality", "title": "提示", "body": "注意防护。", "target": {"areas": [TOWN_A]}}
    late, _ = await store.create_notice(
        NoticeIn.model_validate(data), department="environment", created_by=issuer.id, actor="t"
    )
    late = await approval.submit(store, settings.approval, issuer, late)
    hours_ago = (datetime.now(UTC) - timedelta(hours=30)).isoformat(timespec="microseconds")
    # submitted 30 hours ago
    await run_sql(store.db, "UPDATE notices SET submitted_at = ? WHERE id = ?", (hours_ago, late.id))
    await approval.approve(store, settings.approval, approver, late, None)  # info is due within 1440 minutes
    waiting, _ = await store.create_notice(
        NoticeIn.model_validate(data), department="environment", created_by=issuer.id, actor="t"
    )
    await approval.submit(store, settings.approval, issuer, waiting)  # not yet due: not counted

    status, report = await api.call("GET", "/api/v1/reports/departments?from=2000-01-01", key="env-admin")
    assert status == 200, report
    [environment] = [d for d in report["departments"] if d["department"] == "environment"]
    assert environment["notices_created"] == 3 and environment["notices_submitted"] == 3
    assert environment["notices_issued"] == 2
    assert (environment["approvals_due"], environment["approved_on_time"], environment["on_time_rate"]) == (2, 1, 0.5)
    assert environment["targeted"] == expected["notice"]["targeted"]  # the late notice has not been sent
    assert environment["reached"] == expected["notice"]["reached"]
    assert environment["feedback_received"] == 0 and environment["feedback_in_time_rate"] is None
    assert {d["department"] for d in report["departments"]} == {"environment", "civil-affairs"}
    status, own = await api.call("GET", "/api/v1/reports/departments", key="civ-viewer")
    assert status == 200 and [d["department"] for d in own["departments"]] == ["civil-affairs"]
    assert own["departments"][0]["notices_created"] == 0
    status, text = await api.call("GET", "/api/v1/reports/departments", key="env-admin", headers={"Accept": "text/csv"})
    assert status == 200 and text.splitlines()[0].startswith("scope,department,name,notices_created")


async def test_feedback_answered_in_time_in_the_assessment(api: Api, settings: Settings) -> None:
    """Feedback items answered in time, answered late, open past their due time and open within it; the
    assessment's figures equal what the test counts from the feedback table itself."""
    store = api.store
    now = datetime.now(UTC)
    plan = [  # department, hours since it came, hours it had to be answered, answered now
        ("environment", 1, 72, True),  # in time
        ("environment", 100, 72, True),  # late
        ("environment", 100, 72, False),  # open, overdue
        ("environment", 2, 72, False),  # open, not due yet
        ("environment", 3, 72, True),  # in time
        ("civil-affairs", 80, 72, True),  # late, another department
    ]
    for department, hours, within, answer in plan:
        received = now - timedelta(hours=hours)
        item = NewFeedback(channel="form", text="路灯坏了", department=department)
        item_id = await store.add_feedback(item, received=received, due=received + timedelta(hours=within), actor="t")
        if answer:
            await store.answer_feedback(item_id, "已派人维修。", None, "t")
    counted: dict[str, dict[str, Any]] = {}
    for row in await run_sql(store.db, "SELECT department, due_at, answered_at FROM feedback"):
        tally = counted.setdefault(row["department"], {"department": row["department"], "received": 0, "due": 0,
                                                        "in_time": 0})  # fmt: skip
        tally["received"] += 1
        answered, due = row["answered_at"], datetime.fromisoformat(row["due_at"])
        tally["due"] += answered is not None or due < now
        tally["in_time"] += answered is not None and datetime.fromisoformat(answered) <= due
    assert counted["environment"] == {"department": "environment", "received": 5, "due": 4, "in_time": 2}
    status, report = await api.call("GET", "/api/v1/reports/departments?from=2000-01-01", key="env-admin")
    assert status == 200, report
    for department in report["departments"]:
        want = counted.get(department["department"], {"received": 0, "due": 0, "in_time": 0})
        got = (department["feedback_received"], department["feedback_due"], department["feedback_answered_in_time"])
        assert got == (want["received"], want["due"], want["in_time"]), department["department"]
        rate = round(want["in_time"] / want["due"], 4) if want["due"] else None
        assert department["feedback_in_time_rate"] == rate
    status, own = await api.call("GET", "/api/v1/reports/departments", key="civ-viewer")
    assert status == 200 and own["departments"][0]["feedback_due"] == counted["civil-affairs"]["due"]


async def test_notifier_report_on_the_command_line(
    api: Api, settings: Settings, report_notice: tuple[int, Any], tmp_path: Path
) -> None:
    _, expected = report_notice
    url = settings.database.url
    code, out, err = await run_cli("report", "--from", "2000-01-01", "--format", "csv", db_url=url)
    assert code == 0, err
    [notice] = [r for r in csv.DictReader(io.StringIO(out)) if r["scope"] == "notices"]
    assert int(notice["reached"]) == expected["notice"]["reached"]
    code, out, err = await run_cli("report", "--department", "environment", db_url=url)
    assert code == 0, err and '"reach"' in out and '"departments"' in out
    target = tmp_path / "report.xlsx"
    code, _, err = await run_cli("report", "--format", "xlsx", "--output", str(target), db_url=url)
    assert code == 0, err
    assert "assessment" in load_workbook(target, read_only=True).sheetnames
    code, _, err = await run_cli("report", "--format", "xlsx", db_url=url)
    assert code == 2 and "--output" in err
    code, _, err = await run_cli("report", "--from", "last week", db_url=url)
    assert code == 2 and "--from" in err and "Traceback" not in err
    code, _, err = await run_cli("report", "--department", "nowhere", db_url=url)
    assert code == 2 and "Traceback" not in err


def test_a_workbook_holds_no_character_xml_cannot() -> None:
    """A notice title may keep U+FFFE or U+FFFF (no control, so the text checks let them through): written into a
    workbook as they are, they made the whole download unreadable (a parse error at the first cell holding one)."""
    tables = {"notices": (["title", "note"], [["通知\ufffe甲\uffff", "=1+1"]])}
    workbook = load_workbook(io.BytesIO(to_xlsx(tables)), read_only=True)
    assert [[cell.value for cell in row] for row in workbook["notices"].iter_rows()] == [
        ["title", "note"], ["通知甲", "'=1+1"],
    ]  # fmt: skip
