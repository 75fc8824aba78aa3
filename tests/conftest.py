"""Shared fixtures: a migrated store (SQLite, or PostgreSQL: tests/databases.py) with a small real catalog, and
the API on a real port."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

import notifier.api.app
from notifier.api import create_app
from notifier.api.routing import Route
from notifier.config import Settings
from notifier.console import passwords
from notifier.domain.enums import Role
from notifier.store import Store
from tests.databases import (  # the hooks and fixture that choose the test database
    _drop_test_databases,
    database_url,
    open_migrated,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_sessionfinish,
    pytest_testnodedown,
    pytest_unconfigure,
)

__all__ = [
    "_drop_test_databases",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_sessionfinish",
    "pytest_testnodedown",
    "pytest_unconfigure",
]

pytest_plugins = ["tests.peers", "pytester"]

COUNTY = "370725"
TOWN_A, TOWN_B = "370725001", "370725002"
VILLAGE_A1, VILLAGE_A2, VILLAGE_B1 = "370725001036", "370725001037", "370725002020"

SMALL_CATALOG: dict[str, Any] = {
    "areas": [
        (COUNTY, "昌乐县"),
        (TOWN_A, "宝都街道"),
        (TOWN_B, "宝城街道"),
        (VILLAGE_A1, "恒盛社区居民委员会"),
        (VILLAGE_A2, "昌盛社区居民委员会"),
        (VILLAGE_B1, "昌明社区居民委员会"),
    ],
    "topics": [("air-quality", "空气质量"), ("social-assistance", "社会救助"), ("disaster-relief", "灾害救助")],
    "groups": [("dibao", "低保户"), ("elderly-alone", "独居老人"), ("disabled", "残疾人")],
    "departments": [  # code, name, topics it issues on, groups it works with
        ("environment", "生态环境分局", ["air-quality"], []),
        ("civil-affairs", "民政局", ["social-assistance", "disaster-relief"], ["dibao", "elderly-alone"]),
    ],
}


async def seed_catalog(store: Store) -> None:
    await store.upsert_areas(SMALL_CATALOG["areas"])
    for code, name in SMALL_CATALOG["topics"]:
        await store.upsert_topic(code, name)
    for code, name in SMALL_CATALOG["groups"]:
        await store.upsert_group(code, name)
    for code, name, topics, groups in SMALL_CATALOG["departments"]:
        await store.upsert_department(code, name, topics, groups)


def built_once(build: Callable[[list[Route]], dict[str, Any]]) -> Callable[[list[Route]], dict[str, Any]]:
    """``build`` (the OpenAPI document of a list of routes) run once for each list; each caller gets a copy of its
    own (unpickled: a third of the time ``copy.deepcopy`` takes)."""
    built: dict[tuple[int, ...], tuple[Sequence[Route], bytes]] = {}  # the routes kept, so their ids stay theirs

    def build_once(routes: list[Route]) -> dict[str, Any]:
        key = tuple(map(id, routes))
        if key not in built:
            built[key] = (list(routes), pickle.dumps(build(routes), pickle.HIGHEST_PROTOCOL))
        document: dict[str, Any] = pickle.loads(built[key][1])
        return document

    return build_once


@pytest.fixture(autouse=True, scope="session")
def _openapi_built_once() -> Iterator[None]:
    """Every app builds its OpenAPI document from the JSON schemas of all its routes' models, about 40 ms of
    processor time, and most tests start an app: the document of the same routes is built once a process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(notifier.api.app, "build_openapi", built_once(notifier.api.app.build_openapi))
        yield


# argon2id at the lowest cost it takes: the production hasher (RFC 9106's low-memory profile) spends about 0.2 s
# of processor time on each hash and check, and every console test signs in. The production cost is checked on
# the hash a `notifier staff create` process makes (tests/test_console_auth.py).
CHEAP_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_HASHER", CHEAP_PASSWORD_HASHER)
        passwords._dummy_hash.cache_clear()
        yield
        passwords._dummy_hash.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    outbox = {"type": "outbox", "root": str(tmp_path / "outbox")}
    channels = {kind: {"kind": kind, **outbox} for kind in ("sms", "wechat", "wecom", "email")}
    return Settings.model_validate({"database": {"url": database_url(tmp_path)}, "channels": channels})


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    db = await open_migrated(settings.database.url)
    store = Store(db)
    await seed_catalog(store)
    try:
        yield store
    finally:
        await db.close()


@dataclass
class Api:
    """A client for the running server, with one key per role and department."""

    base: str
    session: aiohttp.ClientSession
    keys: dict[str, str]
    store: Store

    async def call(
        self, method: str, path: str, *, key: str | None = "env-issuer", json: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        async with self.session.request(method, self.base + path, json=json, headers=headers, **kwargs) as resp:
            if resp.content_type in ("application/json", "application/problem+json"):
                return resp.status, await resp.json()
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def running_api(store: Store, settings: Settings) -> AsyncIterator[Api]:
    """The service over ``store`` on 127.0.0.1, with the catalog's keys (see :class:`Api`)."""
    keys = {}
    for department, short in (("environment", "env"), ("civil-affairs", "civ")):
        for role in Role:
            _, plain = await store.create_api_key(
                department=department, role=role, name=f"{short}-{role}", actor="test"
            )
            keys[f"{short}-{role.value}"] = plain
        _, plain = await store.create_api_key(department=department, role=Role.APPROVER, name="second", actor="test")
        keys[f"{short}-approver2"] = plain
    server = TestServer(create_app(settings, store=store), host="127.0.0.1", port=0)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        try:
            yield Api(str(server.make_url("")).rstrip("/"), session, keys, store)
        finally:
            await server.close()


@pytest.fixture
async def api(store: Store, settings: Settings) -> AsyncIterator[Api]:
    async with running_api(store, settings) as running:
        yield running
