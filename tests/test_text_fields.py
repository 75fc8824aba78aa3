"""Control and invisible characters: refused in single-line fields, kept out of bodies, never a forged header line."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest

from channels.base import OutboundMessage, Sent
from channels.outbox import OutboxChannel
from notifier.domain.text import multi_line, single_line
from subscribers.importer import import_file
from tests.conftest import TOWN_A, VILLAGE_A1, Api
from tests.test_importer import read_report, residents, roster_store, write_csv

__all__ = ["roster_store"]  # the importer's fixture, shared

NUL, ESC, DEL, C1 = "\x00", "\x1b", "\x7f", "\x85"
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff"]
NEVER = [NUL, ESC, DEL, C1, *BIDI, *ZERO_WIDTH, "\u2028", "\u2029"]
LINE_BREAKS = ["\n", "\r", "\r\n", "\t", "\v", "\f"]

NOTICE: dict[str, Any] = {
    "topic": "air-quality",
    "title": "空气质量预警",
    "body": "明日重污染天气",
    "target": {"areas": [TOWN_A]},
    "channels": ["sms"],
}
RESIDENT: dict[str, Any] = {"name": "张三", "phone": "13900001111", "area_code": VILLAGE_A1}


@pytest.mark.parametrize("char", NEVER + LINE_BREAKS, ids=lambda c: f"U+{ord(c[0]):04X}")
def test_a_single_line_refuses_control_and_invisible_characters(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char[0]):04X}"):
        single_line(f"王{char}秀英")


@pytest.mark.parametrize("char", [*NEVER, "\v", "\f"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_body_refuses_them_too(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        multi_line(f"第一行\n第二{char}行")


def test_a_body_keeps_line_feeds_and_tabs_and_reads_cr_as_a_line_feed() -> None:
    assert multi_line("一\r\n二\r三\n\t四") == "一\n二\n三\n\t四"


def test_text_is_normalised_to_nfc() -> None:
    decomposed = "Jose\u0301 Zhu\u0308"
    assert single_line(decomposed) == unicodedata.normalize("NFC", decomposed) == "José Zhü"
    assert multi_line("e\u0301\ne\u0301") == "é\né"


@pytest.mark.parametrize("char", [NUL, ESC, "\n", "\r", "\u202e", "\u2067", "\u200b", "\ufeff"], ids=repr)
async def test_the_api_names_the_field_with_a_control_character(api: Api, char: str) -> None:
    cases: list[tuple[str, str, dict[str, Any], str, str]] = [
        ("POST", "/api/v1/notices", {**NOTICE, "title": f"预警{char}To: x@example.com"}, "env-issuer", "title"),
        ("POST", "/api/v1/subscribers", {**RESIDENT, "name": f"张{char}三"}, "env-issuer", "name"),
        ("POST", "/api/v1/subscribers", {**RESIDENT, "external_id": f"r{char}1"}, "env-issuer", "external_id"),
        ("POST", "/api/v1/topics", {"code": "water", "name": f"供{char}水"}, "env-admin", "name"),
        ("POST", "/api/v1/groups", {"code": "veterans", "name": f"退役{char}军人"}, "env-admin", "name"),
        ("POST", "/api/v1/areas", {"code": f"{TOWN_A}900", "name": f"新{char}村"}, "env-admin", "name"),
        ("POST", "/api/v1/notices", {**NOTICE, "data": {f"k{char}x": "v"}}, "env-issuer", "data"),
    ]
    if char not in "\n\r":  # a body and data values may hold line breaks
        cases += [
            ("POST", "/api/v1/notices", {**NOTICE, "body": f"明日{char}停水"}, "env-issuer", "body"),
            ("POST", "/api/v1/notices", {**NOTICE, "data": {"place": f"村{char}委"}}, "env-issuer", "data"),
            ("POST", "/api/v1/topics", {"code": "water", "name": "供水", "description": f"a{char}b"}, "env-admin",
             "description"),
        ]  # fmt: skip
    for method, path, body, key, field in cases:
        status, answer = await api.call(method, path, json=body, key=key)
        assert status == 422, (path, body, answer)
        assert [e["loc"] for e in answer["errors"]] == [field], answer
        assert f"U+{ord(char):04X}" in answer["errors"][0]["msg"]


async def test_a_rejection_reason_is_checked_as_a_body(api: Api) -> None:
    status, notice = await api.call("POST", "/api/v1/notices", json=NOTICE)
    assert status == 201
    assert (await api.call("POST", f"/api/v1/notices/{notice['id']}/submit"))[0] == 200
    status, answer = await api.call(
        "POST", f"/api/v1/notices/{notice['id']}/reject", json={"reason": "\u202e不予批准"}, key="env-approver"
    )
    assert status == 422 and [e["loc"] for e in answer["errors"]] == ["reason"], answer


async def test_the_api_keeps_body_line_breaks_and_stores_nfc(api: Api) -> None:
    body = {**NOTICE, "title": "Cafe\u0301 关闭", "body": "第一行\r\n第二行\n\t第三行", "data": {"k": "a\nb"}}
    status, answer = await api.call("POST", "/api/v1/notices", json=body)
    assert status == 201, answer
    assert (answer["title"], answer["body"], answer["data"]) == ("Café 关闭", "第一行\n第二行\n\t第三行", {"k": "a\nb"})
    status, resident = await api.call("POST", "/api/v1/subscribers", json={**RESIDENT, "name": "Zoe\u0308"})
    assert status == 201 and resident["name"] == "Zoë"


async def test_imported_rows_with_control_characters_are_reported_not_imported(
    roster_store: Any, tmp_path: Path
) -> None:
    village = "370725001036"
    source = write_csv(
        tmp_path / "roster.csv",
        [
            "external_id,name,phone,area_code,groups,consent_source",
            f"r-1,王\u202e秀英,13812345678,{village},,",
            f"r-2,张伟,13812345679,{village},dibao\u200b,",
            f"r\x1b[2J-3,李娜,13812345670,{village},,",
            f"r-4,刘强,13812345671,{village},,paper\x00form",
            f"r-5,Jose\u0301,13812345672,{village},,",
        ],
    )
    report = tmp_path / "errors.csv"
    result = await import_file(roster_store, source, actor="test", report_path=report)

    assert (result.imported, result.failed) == (1, 4)
    stored = await residents(roster_store)
    assert [(r.external_id, r.name) for r in stored] == [("r-5", "José")]
    lines = read_report(report)
    assert [(e["row"], e["external_id"], e["field"]) for e in lines] == [
        ("2", "r-1", "name"),
        ("3", "r-2", "groups"),
        ("4", "", "external_id"),
        ("5", "r-4", "consent_source"),
    ]
    assert all("control or invisible character" in e["message"] for e in lines)
    text = report.read_text(encoding="utf-8-sig")
    assert "\x1b" not in text and "\u202e" not in text


async def test_the_outbox_writes_each_header_field_on_its_own_line(tmp_path: Path) -> None:
    channel = OutboxChannel("sms", OutboxChannel.Options.model_validate({"root": str(tmp_path)}))
    await channel.open()
    forged = "停水通知\nTo: +8613911111111\r\nSubject: 伪造\u2028Notice: 9"
    message = OutboundMessage(
        7, 3, "email", "sms", "a@example.com\nTo: b@example.com", "正文\nTo: 正文里的一行", "n3-s1\r\nX: y",
        subject=forged,
    )  # fmt: skip

    assert await channel.send([message]) == [Sent("outbox-7")]
    head, _, body = (tmp_path / "sms" / "7.txt").read_text(encoding="utf-8").partition("\n\n")
    lines = head.split("\n")
    assert [line.split(":")[0] for line in lines] == ["To", "Channel", "Notice", "Idempotency-Key", "Subject"]
    assert lines[0] == "To: a@example.com\\u000aTo: b@example.com"
    assert lines[4] == "Subject: 停水通知\\u000aTo: +8613911111111\\u000d\\u000aSubject: 伪造\\u2028Notice: 9"
    assert body == "正文\nTo: 正文里的一行\n"
