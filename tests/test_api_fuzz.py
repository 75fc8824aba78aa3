"""No 500 for anything a user can send: mutated bodies, paths and queries against the real server."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.conftest import TOWN_A, VILLAGE_A1, Api

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    1e308,
    "",
    " ",
    "\u0000",
    "💥" * 50,
    "a" * 5000,
    [],
    {},
    [None],
    {"$ref": "x"},
    "370725",
    "2026-13-45T99:00:00Z",
    "NaN",
    ["sms", "sms"],
    {"start": "22:00"},
    3.5,
]

VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/subscribers"): {
        "name": "张三",
        "phone": "13900001111",
        "area_code": VILLAGE_A1,
        "groups": ["dibao"],
        "channels": ["sms"],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    },
    ("POST", "/api/v1/notices"): {
        "topic": "air-quality",
        "title": "t",
        "body": "b",
        "severity": "info",
        "target": {"areas": [TOWN_A], "groups": ["dibao"]},
        "channels": ["sms"],
    },
    ("POST", "/api/v1/topics"): {"code": "water", "name": "供水"},
    ("POST", "/api/v1/areas"): {"code": f"{TOWN_A}900", "name": "x"},
}


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and depth < 3:
        out = dict(value)
        key = rng.choice(list(out))
        action = rng.randrange(4)
        if action == 0:
            del out[key]
        elif action == 1:
            out[key] = rng.choice(ODD_VALUES)
        elif action == 2:
            out[key] = mutate(rng, out[key], depth + 1)
        else:
            out[rng.choice(["extra", "id", "state", "__proto__"])] = rng.choice(ODD_VALUES)
        return out
    if isinstance(value, list) and value and depth < 3:
        return [mutate(rng, v, depth + 1) for v in value] + rng.sample(ODD_VALUES, 1)
    return rng.choice(ODD_VALUES)


async def test_mutated_bodies_never_cause_a_server_error(api: Api) -> None:
    rng = random.Random(20261129)
    for (method, path), valid in VALID_BODIES.items():
        for _ in range(80):
            body = mutate(rng, valid)
            status, answer = await api.call(method, path, json=body, key="env-admin")
            assert status < 500, (path, body, answer)
            assert status in (200, 201, 403, 409, 422), (path, body, answer)


async def test_raw_bytes_and_odd_paths_never_cause_a_server_error(api: Api) -> None:
    rng = random.Random(7)
    raw_bodies = [b"\xff\xfe", b"null", b"1e999999", b'{"a":' * 5000, json.dumps("x").encode(), b"\x00" * 64]
    paths = [
        "/api/v1/subscribers/99999999999999999999",
        "/api/v1/subscribers/-1",
        "/api/v1/notices/0/approve",
        "/api/v1/notices/%00",
        "/api/v1/subscribers?limit=99999999999999999999",
        "/api/v1/subscribers?area=%F0%9F",
        "/api/v1/notices?state=nope",
        "/api/v1/topics?cursor=%00%00",
    ]
    for path in paths:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            status, answer = await api.call(method, path, data=rng.choice(raw_bodies), key="env-admin")
            assert status < 500, (method, path, answer)
    for raw in raw_bodies:
        status, answer = await api.call(
            "POST", "/api/v1/notices", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == 422, (raw[:20], answer)
