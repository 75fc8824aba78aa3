"""The settings a resident saved on their own page are theirs, not a department's to change.

Channels (and their order), quiet hours and language hold for every department's notices. Once the resident has
saved them on their page (/me, ``flow.update_settings``), a department's key changing any of them is ``403`` naming
the fields and when the resident chose them, and nothing in the request changes; the same values sent again,
other fields and opt-outs stay the department's to write. Before the resident chose anything, a department sets
them as before; an admin key may correct the record.
"""

from __future__ import annotations

from typing import Any

import pytest

from notifier.residents import flow
from tests.conftest import VILLAGE_A1, Api

RESIDENT = {
    "name": "设置甲",
    "phone": "13900000412",
    "email": "shezhi@example.com",
    "area_code": VILLAGE_A1,
    "channels": ["sms", "email"],
    "topics": ["air-quality"],
}
OWN_SETTINGS = flow.MySettings(
    topics=["air-quality"], channels=["email", "sms"], quiet_start="22:00", quiet_end="07:00", language="zh"
)
DEPARTMENT_CHANGES = {
    "channels": {"channels": ["sms"]},
    "channel order": {"channels": ["sms", "email"]},
    "quiet_hours": {"quiet_hours": None},
    "other quiet_hours": {"quiet_hours": {"start": "23:00", "end": "06:00"}},
    "language": {"language": "en"},
}


async def resident(api: Api) -> tuple[int, str]:
    status, body = await api.call("POST", "/api/v1/subscribers", json=RESIDENT, key="env-admin")
    assert status == 201, body
    return int(body["id"]), f"/api/v1/subscribers/{body['id']}"


async def stored(api: Api, resident_id: int) -> dict[str, Any]:
    status, body = await api.call("GET", f"/api/v1/subscribers/{resident_id}", key="env-admin")
    assert status == 200, body
    return dict(body)


@pytest.mark.parametrize("change", sorted(DEPARTMENT_CHANGES))
async def test_a_department_may_not_change_settings_the_resident_chose(api: Api, change: str) -> None:
    resident_id, path = await resident(api)
    await flow.update_settings(api.store, resident_id, OWN_SETTINGS)
    before = await stored(api, resident_id)

    patch = {**DEPARTMENT_CHANGES[change], "name": "改名"}
    status, body = await api.call("PATCH", path, json=patch, key="env-issuer")

    assert status == 403, body
    assert body["type"] == "/problems/forbidden"
    field = next(iter(DEPARTMENT_CHANGES[change]))
    assert field in body["detail"] and "themselves" in body["detail"], body
    assert await stored(api, resident_id) == before  # not the name either: the request changes nothing


async def test_the_same_settings_sent_again_and_other_fields_are_taken(api: Api) -> None:
    resident_id, path = await resident(api)
    await flow.update_settings(api.store, resident_id, OWN_SETTINGS)
    unchanged = {"channels": ["email", "sms"], "quiet_hours": {"start": "22:00", "end": "07:00"}, "language": "zh"}
    for patch in ({**unchanged, "name": "改名"}, {"opt_out_channels": ["sms"]}, {"email": "xin@example.com"}):
        status, body = await api.call("PATCH", path, json=patch, key="env-issuer")
        assert status == 200, (patch, body)
    after = await stored(api, resident_id)
    assert (after["name"], after["opt_out_channels"], after["channels"]) == ("改名", ["sms"], ["email", "sms"])


@pytest.mark.parametrize("change", sorted(DEPARTMENT_CHANGES))
async def test_a_department_sets_settings_the_resident_never_chose(api: Api, change: str) -> None:
    chosen_id, _ = await resident(api)
    await flow.update_settings(api.store, chosen_id, OWN_SETTINGS)  # another resident's choice binds only them
    data = {**RESIDENT, "phone": "13900000413", "email": "qita@example.com",
            "quiet_hours": {"start": "22:00", "end": "07:00"}, "channels": ["email", "sms"]}  # fmt: skip
    status, body = await api.call("POST", "/api/v1/subscribers", json=data, key="env-issuer")
    assert status == 201, body
    path = f"/api/v1/subscribers/{body['id']}"
    status, body = await api.call("PATCH", path, json=DEPARTMENT_CHANGES[change], key="env-issuer")
    assert status == 200, body
    field = next(iter(DEPARTMENT_CHANGES[change]))
    assert body[field] == DEPARTMENT_CHANGES[change][field], body


async def test_an_admin_may_correct_the_record(api: Api) -> None:
    resident_id, path = await resident(api)
    await flow.update_settings(api.store, resident_id, OWN_SETTINGS)
    status, body = await api.call("PATCH", path, json={"channels": ["sms"], "language": "en"}, key="env-admin")
    assert status == 200 and (body["channels"], body["language"]) == (["sms"], "en"), body


async def test_the_resident_changes_their_settings_again(api: Api) -> None:
    resident_id, _ = await resident(api)
    await flow.update_settings(api.store, resident_id, OWN_SETTINGS)
    again = flow.MySettings(topics=["air-quality"], channels=["sms"], language="en")
    after = await flow.update_settings(api.store, resident_id, again)
    assert (after.channels, after.quiet_hours, after.language) == (["sms"], None, "en")
