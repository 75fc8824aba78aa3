"""API keys: listed and revoked from the command line and the admin API; a revoked key stops at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.domain.enums import Role
from tests.conftest import Api
from tests.databases import url_of
from tests.test_cli import run_cli

NON_ADMIN = [role.value for role in Role if role is not Role.ADMIN]


def prefix(plain: str) -> str:
    return plain.split("_")[1]


async def audit_rows(api: Api, action: str) -> list[dict[str, Any]]:
    rows = await api.store.db.fetch_all("list_audit", {"after": 0, "limit": 10_000})
    return [row for row in rows if row["action"] == action]


async def test_key_revoked_on_the_command_line_is_refused_by_the_running_server(api: Api) -> None:
    status, _ = await api.call("GET", "/api/v1/topics", key="env-viewer")
    assert status == 200
    code, out, err = await run_cli("apikey", "revoke", prefix(api.keys["env-viewer"]), db_url=db_url(api))
    assert code == 0, err
    assert prefix(api.keys["env-viewer"]) in out
    status, body = await api.call("GET", "/api/v1/topics", key="env-viewer")
    assert status == 401 and "revoked" in body["detail"]
    status, _ = await api.call("GET", "/api/v1/topics", key="env-issuer")  # the others still work
    assert status == 200


def db_url(api: Api) -> str:
    return url_of(api.store.db)


async def test_admin_lists_keys_without_their_secrets(api: Api) -> None:
    await api.call("GET", "/api/v1/topics", key="civ-viewer")
    status, body = await api.call("GET", "/api/v1/apikeys?limit=500", key="env-admin")
    assert status == 200, body
    listed = {item["prefix"]: item for item in body["items"]}
    assert set(listed) == {prefix(plain) for plain in api.keys.values()}
    viewer = listed[prefix(api.keys["civ-viewer"])]
    assert viewer["department"] == "civil-affairs" and viewer["role"] == "viewer" and viewer["name"] == "civ-viewer"
    assert viewer["created_at"] and viewer["last_used_at"] and viewer["revoked_at"] is None
    assert listed[prefix(api.keys["civ-issuer"])]["last_used_at"] is None
    text = json.dumps(body)
    assert not any(plain.split("_", 2)[2] in text for plain in api.keys.values())
    assert "hash" not in text


async def test_admin_revokes_a_key_at_once_and_the_audit_log_says_who(api: Api) -> None:
    target = prefix(api.keys["civ-issuer"])
    status, body = await api.call("POST", f"/api/v1/apikeys/{target}/revoke", key="env-admin")
    assert status == 200, body
    assert body["prefix"] == target and body["revoked_at"] is not None
    status, _ = await api.call("GET", "/api/v1/topics", key="civ-issuer")
    assert status == 401
    status, again = await api.call("POST", f"/api/v1/apikeys/{target}/revoke", key="env-admin")
    assert status == 200 and again["revoked_at"] == body["revoked_at"]  # revoking twice changes nothing
    revocations = await audit_rows(api, "apikey.revoke")
    assert len(revocations) == 1
    admin = await api.store.authenticate(api.keys["env-admin"])
    assert admin is not None and revocations[0]["actor"] == f"apikey:{admin.id}"
    assert target in revocations[0]["detail"]
    status, body = await api.call("GET", "/api/v1/apikeys?limit=500", key="env-admin")
    assert {i["prefix"]: i for i in body["items"]}[target]["revoked_at"] is not None


async def test_key_creation_and_revocation_are_audited_without_the_key(api: Api) -> None:
    code, out, err = await run_cli("apikey", "create", "--department", "environment", "--role", "viewer",
                                   db_url=db_url(api))
    assert code == 0, err
    plain = out.strip().splitlines()[-1]
    code, _, err = await run_cli("apikey", "revoke", prefix(plain), db_url=db_url(api))
    assert code == 0, err
    created = [row for row in await audit_rows(api, "apikey.create") if row["actor"] == "cli"]
    revoked = await audit_rows(api, "apikey.revoke")
    assert len(created) == 1 and len(revoked) == 1 and revoked[0]["actor"] == "cli"
    assert created[0]["object_id"] == revoked[0]["object_id"]
    assert plain.split("_", 2)[2] not in json.dumps([*created, *revoked])


@pytest.mark.parametrize("role", NON_ADMIN)
@pytest.mark.parametrize("department", ["env", "civ"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/apikeys"), ("POST", "/api/v1/apikeys/{p}/revoke")])
async def test_only_admins_see_or_revoke_keys(api: Api, role: str, department: str, method: str, path: str) -> None:
    target = prefix(api.keys["civ-approver2"])
    status, _ = await api.call(method, path.format(p=target), key=f"{department}-{role}")
    assert status == 403
    status, _ = await api.call(method, path.format(p=target), key=None)
    assert status == 401
    assert await api.store.authenticate(api.keys["civ-approver2"]) is not None


@pytest.mark.parametrize("bad", ["000000000000", "ABCDEF", "x" * 13, "１２３４５６７８９０１２"])
async def test_revoking_an_unknown_or_malformed_prefix(api: Api, bad: str) -> None:
    status, body = await api.call("POST", f"/api/v1/apikeys/{bad}/revoke", key="env-admin")
    assert status in (404, 422), body
    assert body["type"].startswith("/problems/")
    code, _, err = await run_cli("apikey", "revoke", bad, db_url=db_url(api))
    assert code == 2 and bad in err


async def test_cli_lists_keys_with_their_state(api: Api) -> None:
    await api.call("GET", "/api/v1/topics", key="env-viewer")
    await api.call("POST", f"/api/v1/apikeys/{prefix(api.keys['civ-viewer'])}/revoke", key="env-admin")
    code, out, err = await run_cli("apikey", "list", db_url=db_url(api))
    assert code == 0, err
    header, *lines = out.strip().splitlines()
    assert header.split() == ["prefix", "department", "role", "name", "created", "last", "used", "revoked"]
    rows = {line.split()[0]: line.split() for line in lines}
    assert set(rows) == {prefix(plain) for plain in api.keys.values()}
    viewer = rows[prefix(api.keys["env-viewer"])]
    assert viewer[1:4] == ["environment", "viewer", "env-viewer"] and viewer[-1] == "-" and viewer[-2] != "-"
    assert rows[prefix(api.keys["civ-viewer"])][-1] != "-"
    assert not any(plain.split("_", 2)[2] in out for plain in api.keys.values())


async def test_cli_takes_the_key_from_the_environment(api: Api) -> None:
    notice = {"topic": "air-quality", "title": "提示", "body": "今日空气良", "target": {"areas": ["370725"]}}
    status, created = await api.call("POST", "/api/v1/notices", json=notice)
    assert status == 201, created
    code, out, err = await run_cli("notices", "show", str(created["id"]), db_url=db_url(api),
                                   env={"NOTIFIER_API_KEY": api.keys["env-viewer"]})
    assert code == 0, err
    assert json.loads(out)["id"] == created["id"]
    code, _, err = await run_cli("notices", "show", str(created["id"]), db_url=db_url(api))
    assert code == 2 and "NOTIFIER_API_KEY" in err


async def test_key_endpoints_are_in_the_openapi_document(api: Api) -> None:
    _, document = await api.call("GET", "/openapi.json", key=None)
    assert "get" in document["paths"]["/api/v1/apikeys"]
    revoke = document["paths"]["/api/v1/apikeys/{prefix}/revoke"]["post"]
    assert [p["schema"]["type"] for p in revoke["parameters"] if p["name"] == "prefix"] == ["string"]
