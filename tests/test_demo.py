"""The Changle County demo: its bundled data files and load_demo on a real SQLite store."""

from __future__ import annotations

import csv
import importlib.util
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import phonenumbers
import pytest

from notifier.demo import load_demo, read_areas, read_catalog
from notifier.domain.models import Subscriber
from notifier.store import Store
from tests.databases import database_url, open_migrated

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "notifier" / "demo" / "data"
DEPARTMENT_TOPICS = {
    "environment": {"air-quality"},
    "civil-affairs": {"social-assistance", "disaster-relief"},
    "education": {"education"},
    "health": {"public-health"},
    "poverty-alleviation": {"poverty-alleviation"},
    "emergency-management": {"disaster-relief"},
    "culture-sports": {"culture-sports"},
    "disabled-persons-federation": {"social-assistance"},
}
TOPICS = {
    "air-quality",
    "social-assistance",
    "disaster-relief",
    "education",
    "public-health",
    "culture-sports",
    "poverty-alleviation",
}
GROUPS = {"dibao", "extreme-poverty", "disabled", "elderly-alone", "pupils-parents", "orphans"}


@pytest.fixture
async def demo_store(tmp_path: Path) -> AsyncIterator[Store]:
    db = await open_migrated(database_url(tmp_path, "t.db"))
    try:
        yield Store(db)
    finally:
        await db.close()


async def all_subscribers(store: Store, **filters: str) -> list[Subscriber]:
    found: list[Subscriber] = []
    cursor: str | None = None
    while True:
        items, cursor = await store.list_subscribers(
            area=filters.get("area"), group=filters.get("group"), topic=filters.get("topic"), cursor=cursor, limit=1000
        )
        found += items
        if cursor is None:
            return found


def csv_rows() -> list[dict[str, str]]:
    with (DATA / "residents.csv").open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# --- the data files --------------------------------------------------------------------------------


def test_divisions_are_one_county_eight_towns_392_villages() -> None:
    areas = read_areas()
    lengths = [len(code) for code, _ in areas]
    assert (lengths.count(6), lengths.count(9), lengths.count(12)) == (1, 8, 392)
    assert ("370725", "昌乐县") in areas
    codes = {code for code, _ in areas}
    assert all(code[: len(code) - 3] in codes for code in codes if len(code) > 6)


def test_catalog_has_the_contract_codes() -> None:
    catalog = read_catalog()
    assert {t["code"] for t in catalog["topics"]} == TOPICS
    assert {g["code"] for g in catalog["groups"]} == GROUPS
    departments = {d["code"]: set(d["topics"]) for d in catalog["departments"]}
    assert departments == {**DEPARTMENT_TOPICS, "county-office": TOPICS}
    for item in catalog["topics"] + catalog["groups"] + catalog["departments"]:
        assert item["name"] and not item["name"].isascii()
    for item in catalog["topics"] + catalog["groups"]:
        assert item["description"]


def test_residents_csv_is_what_the_generator_writes(tmp_path: Path) -> None:
    generator = _load_generator()
    out = tmp_path / "residents.csv"
    generator.write(generator.generate(3000, 370725), out)
    assert out.read_bytes() == (DATA / "residents.csv").read_bytes()


def test_residents_csv_shape() -> None:
    rows = csv_rows()
    assert len(rows) == 3000
    villages = {code for code, _ in read_areas() if len(code) == 12}
    assert {r["area_code"] for r in rows} == villages
    phones = [r["phone"] for r in rows if r["phone"]]
    assert len(set(phones)) == len(phones)
    for phone in phones:
        number = phonenumbers.parse(phone, "CN")
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    groups = [g for r in rows for g in r["groups"].split(";") if g]
    shares = {g: groups.count(g) / len(rows) for g in GROUPS}
    assert shares["elderly-alone"] == pytest.approx(0.15, abs=0.01)
    assert shares["pupils-parents"] == pytest.approx(0.20, abs=0.01)
    assert shares["dibao"] == pytest.approx(0.04, abs=0.005)
    assert 0 < shares["orphans"] < 0.01
    unreachable = [r for r in rows if not any(r[c] for c in ("phone", "email", "wechat_openid", "wecom_userid"))]
    assert len(unreachable) / len(rows) == pytest.approx(0.05, abs=0.01)
    alone = [r for r in rows if "elderly-alone" in r["groups"]]
    assert all(not r["email"] and not r["wecom_userid"] for r in alone)
    assert all(1 <= len(r["topics"].split(";")) <= 4 for r in rows)
    assert all(len(r["wechat_openid"]) == 28 and r["wechat_openid"].startswith("o") for r in rows if r["wechat_openid"])
    assert all(r["consent_source"] == "demo" and r["external_id"].startswith("demo-") for r in rows)


# --- load_demo -------------------------------------------------------------------------------------


async def test_load_demo_loads_everything(demo_store: Store) -> None:
    summary = await load_demo(demo_store)

    assert (summary.areas, summary.departments, summary.topics, summary.groups) == (401, 9, 7, 6)
    assert (summary.residents_created, summary.residents_existing, summary.residents_failed) == (3000, 0, 0)
    areas = await demo_store.list_areas()
    assert [a.level for a in areas].count("village") == 392
    assert [a for a in areas if a.parent is None] == [a for a in areas if a.code == "370725"]
    departments = {d.code: set(d.topics) for d in await demo_store.list_departments()}
    assert departments == {**DEPARTMENT_TOPICS, "county-office": TOPICS}
    groups_of = {d.code: set(d.groups) for d in await demo_store.list_departments() if d.groups}
    assert groups_of == {
        "civil-affairs": {"dibao", "extreme-poverty", "elderly-alone", "orphans"},
        "education": {"pupils-parents"},
        "disabled-persons-federation": {"disabled"},
    }
    topics, _ = await demo_store.list_topics(None, 100)
    groups, _ = await demo_store.list_groups(None, 100)
    assert {t.code for t in topics} == TOPICS and {g.code for g in groups} == GROUPS

    residents = await all_subscribers(demo_store)
    assert len(residents) == 3000
    no_channel = [r for r in residents if not (r.phone or r.email or r.wechat_openid or r.wecom_userid)]
    assert 100 <= len(no_channel) <= 200
    phones = [r.phone for r in residents if r.phone]
    assert len(set(phones)) == len(phones) > 2500
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones)
    assert len(await all_subscribers(demo_store, group="dibao")) == 120
    assert len(await all_subscribers(demo_store, area="370725001")) > 3000 / 8  # subdistricts are bigger


async def test_load_demo_keeps_each_residents_fields(demo_store: Store) -> None:
    await load_demo(demo_store)
    expected = {r["external_id"]: r for r in csv_rows()}
    residents = await all_subscribers(demo_store)
    for resident in residents[::97]:
        row = expected[resident.external_id or ""]
        assert resident.name == row["name"]
        assert resident.area_code == row["area_code"]
        assert resident.groups == sorted(g for g in row["groups"].split(";") if g)
        assert resident.topics == sorted(row["topics"].split(";"))
        assert resident.consent.source == "demo"
        assert (resident.phone or "")[-11:] == row["phone"]
        if row["channels"]:
            assert resident.channels == row["channels"].split(";")
        quiet = resident.quiet_hours
        assert (f"{quiet.start}-{quiet.end}" if quiet else "") == row["quiet_hours"]


async def test_load_demo_twice_changes_nothing(demo_store: Store) -> None:
    await load_demo(demo_store)
    before = [r.model_dump() for r in await all_subscribers(demo_store)]

    again = await load_demo(demo_store)

    assert (again.residents_created, again.residents_existing, again.residents_failed) == (0, 3000, 0)
    assert [r.model_dump() for r in await all_subscribers(demo_store)] == before
    assert len(await demo_store.list_areas()) == 401
    assert len(await demo_store.list_departments()) == 9
    assert len((await demo_store.list_topics(None, 100))[0]) == 7


def test_catalog_toml_parses_standalone() -> None:
    with (DATA / "catalog.toml").open("rb") as file:
        assert tomllib.load(file) == read_catalog()


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_demo_residents", ROOT / "scripts" / "generate_demo_residents.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
