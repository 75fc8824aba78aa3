"""An opt-out the resident made themselves is theirs to take back, not a department's.

A resident who replied "TD" to an SMS, followed the unsubscribe link in a message or opted out on their own page
has refused those messages; a department's key clearing the opt-out (a ``PATCH`` without it) would undo the
resident's STOP, so it is ``403`` naming how and when the resident opted out, and nothing in the request changes.
An opt-out a department's key recorded, the department takes back. An admin key may correct the record. A
withdrawal of consent, which staff record for the resident, is taken back the same way: by the resident or an admin.
"""

from __future__ import annotations

from typing import Any

import pytest

from notifier.engine import optouts
from notifier.residents import flow
from notifier.web import unsubscribe
from tests.conftest import VILLAGE_A1, Api

RESIDENTS_OWN = {
    "sms-reply": optouts.SOURCE,
    "one-click": unsubscribe.SOURCE,
    "subscription page": f"api:{flow.ACTOR_SUBSCRIBE}",
    "own page": f"api:{flow.ACTOR_ME}",
}
RESIDENT = {
    "name": "退订甲",
    "phone": "13900000411",
    "email": "tuiding@example.com",
    "area_code": VILLAGE_A1,
    "channels": ["sms", "email"],
    "topics": ["air-quality"],
}


async def resident(api: Api) -> int:
    status, body = await api.call("POST", "/api/v1/subscribers", json=RESIDENT, key="env-admin")
    assert status == 201, body
    return int(body["id"])


async def stored(api: Api, resident_id: int) -> dict[str, Any]:
    status, body = await api.call("GET", f"/api/v1/subscribers/{resident_id}", key="env-admin")
    assert status == 200, body
    return dict(body)


@pytest.mark.parametrize("how", sorted(RESIDENTS_OWN))
@pytest.mark.parametrize(("kind", "value"), [("channel", "sms"), ("topic", "air-quality")])
async def test_a_department_may_not_clear_an_opt_out_the_resident_made(
    api: Api, how: str, kind: str, value: str
) -> None:
    resident_id = await resident(api)
    await api.store.add_optout(resident_id, kind, value, RESIDENTS_OWN[how])
    before = await stored(api, resident_id)
    assert before[f"opt_out_{kind}s"] == [value]

    patch = {f"opt_out_{kind}s": [], "name": "改名"}
    status, body = await api.call("PATCH", f"/api/v1/subscribers/{resident_id}", json=patch, key="env-issuer")

    assert status == 403, body
    assert body["type"] == "/problems/forbidden"
    assert f"opt_out_{kind}s" in body["detail"] and "themselves" in body["detail"] and value in body["detail"]
    assert "13900000411" not in body["detail"]
    assert await stored(api, resident_id) == before  # not the name either: the request changes nothing


async def test_the_reason_names_how_the_resident_opted_out(api: Api) -> None:
    resident_id = await resident(api)
    await api.store.add_optout(resident_id, "channel", "email", unsubscribe.SOURCE)
    patch = {"opt_out_channels": []}
    status, body = await api.call("PATCH", f"/api/v1/subscribers/{resident_id}", json=patch, key="env-issuer")
    assert status == 403 and "unsubscribe link" in body["detail"], body


async def test_other_changes_keep_the_residents_opt_out(api: Api) -> None:
    resident_id = await resident(api)
    await api.store.add_optout(resident_id, "channel", "sms", optouts.SOURCE)
    path = f"/api/v1/subscribers/{resident_id}"
    for patch in ({"name": "改名"}, {"opt_out_channels": ["sms", "email"]}):
        status, body = await api.call("PATCH", path, json=patch, key="env-issuer")
        assert status == 200, (patch, body)
    assert (await stored(api, resident_id))["opt_out_channels"] == ["email", "sms"]


async def test_a_department_takes_back_an_opt_out_a_department_recorded(api: Api) -> None:
    resident_id = await resident(api)
    path = f"/api/v1/subscribers/{resident_id}"
    status, body = await api.call("PATCH", path, json={"opt_out_channels": ["sms"]}, key="env-issuer")
    assert status == 200 and body["opt_out_channels"] == ["sms"], body
    status, body = await api.call("PATCH", path, json={"opt_out_channels": []}, key="env-issuer")
    assert status == 200 and body["opt_out_channels"] == [], body


async def test_an_admin_may_correct_the_record(api: Api) -> None:
    resident_id = await resident(api)
    await api.store.add_optout(resident_id, "channel", "sms", optouts.SOURCE)
    path = f"/api/v1/subscribers/{resident_id}"
    status, body = await api.call("PATCH", path, json={"opt_out_channels": []}, key="env-admin")
    assert status == 200 and body["opt_out_channels"] == [], body


async def test_a_department_records_a_withdrawal_of_consent_but_does_not_take_it_back(api: Api) -> None:
    resident_id = await resident(api)
    path = f"/api/v1/subscribers/{resident_id}"
    status, body = await api.call("PATCH", path, json={"consent_withdrawn": True}, key="env-issuer")
    assert status == 200 and body["consent"]["withdrawn_at"] is not None, body
    before = await stored(api, resident_id)
    status, body = await api.call("PATCH", path, json={"consent_withdrawn": False}, key="env-issuer")
    assert status == 403 and "consent_withdrawn" in body["detail"], body
    assert await stored(api, resident_id) == before
    status, body = await api.call("PATCH", path, json={"consent_withdrawn": False}, key="env-admin")
    assert status == 200 and body["consent"]["withdrawn_at"] is None, body


async def test_a_null_withdrawal_does_not_take_a_withdrawal_back_either(api: Api) -> None:
    resident_id = await resident(api)
    path = f"/api/v1/subscribers/{resident_id}"
    status, body = await api.call("PATCH", path, json={"consent_withdrawn": True}, key="env-issuer")
    assert status == 200, body
    before = await stored(api, resident_id)
    status, body = await api.call("PATCH", path, json={"consent_withdrawn": None}, key="env-issuer")
    assert status == 403 and "consent_withdrawn" in body["detail"], body
    assert await stored(api, resident_id) == before


@pytest.mark.parametrize("how", sorted(RESIDENTS_OWN))
async def test_a_resident_who_opts_out_where_a_department_did_holds_the_opt_out(api: Api, how: str) -> None:
    resident_id = await resident(api)
    path = f"/api/v1/subscribers/{resident_id}"
    status, body = await api.call("PATCH", path, json={"opt_out_channels": ["sms"]}, key="env-issuer")
    assert status == 200, body
    await api.store.add_optout(resident_id, "channel", "sms", RESIDENTS_OWN[how])  # the resident's own STOP
    status, body = await api.call("PATCH", path, json={"opt_out_channels": []}, key="env-issuer")
    assert status == 403 and "themselves" in body["detail"], body
    assert (await stored(api, resident_id))["opt_out_channels"] == ["sms"]
