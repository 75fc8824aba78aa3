"""One process, two databases: each holds a template of the same name and version (both are the first version of
``water-cut``) with a different public text. Each database's public notice page shows its own template's text:
what a process keeps of a compiled template is found by the template's source, not by its name and version (which
unsaved drafts share too: each reads as version 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notifier.config import Settings
from notifier.domain.templates import TemplateIn, unsaved_version
from notifier.engine.render import Renderer
from notifier.store import Store
from tests.conftest import Api, running_api, seed_catalog
from tests.databases import database_url, open_migrated
from tests.test_public_notices import TOWN_A, page, publish

NOTICE = {"id": 1, "title": "停水通知", "severity": "info", "topic": "air-quality", "department": "environment"}


def water_cut(text: str) -> dict[str, Any]:
    return {
        "name": "water-cut",
        "description": "停水通知",
        "fields": [{"name": "street", "sample": "朝阳街"}],
        "texts": {"zh": {"default": "{{ street }}停水。", "feed": text}},
    }


async def published_page(api: Api, text: str) -> tuple[dict[str, Any], str]:
    status, saved = await api.call("POST", "/api/v1/templates", json=water_cut(text), key="env-approver")
    assert status == 201 and saved["version"] == 1, saved
    notice = await publish(api, title="停水通知", body=None, template="water-cut", data={"street": "新华路"},
                           target={"areas": [TOWN_A]})  # fmt: skip
    status, body, _ = await page(api, f"/public/notices/{notice['id']}")
    assert status == 200, body
    return notice, body


async def test_two_databases_each_show_their_own_template_of_the_same_name_and_version(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    other_settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": database_url(tmp_path, "other.db")})}
    )
    other_db = await open_migrated(other_settings.database.url)
    try:
        other_store = Store(other_db)
        await seed_catalog(other_store)
        first, first_page = await published_page(api, "甲库：{{ street }}今日停水。")
        async with running_api(other_store, other_settings) as other:
            second, second_page = await published_page(other, "乙库：{{ street }}明日停水。")
            status, first_again, _ = await page(api, f"/public/notices/{first['id']}")
    finally:
        await other_db.close()
    assert first["id"] == second["id"]  # the same notice id too: nothing but the template's text differs
    assert "甲库：新华路今日停水。" in first_page and "乙库" not in first_page
    assert "乙库：新华路明日停水。" in second_page and "甲库" not in second_page, second_page
    assert status == 200 and "甲库：新华路今日停水。" in first_again


def test_one_renderer_renders_each_unsaved_draft_of_a_name_with_its_own_source() -> None:
    """Drafts previewed before any save all read as version 1 of their name: the renderer a process keeps (the
    API's, the engine's) must not answer the second with the first's compiled source."""
    renderer = Renderer()
    context = {**renderer.context(NOTICE, "生态环境分局"), "street": "新华路"}
    for text in ("甲稿：{{ street }}今日停水。", "乙稿：{{ street }}明日停水。"):
        draft = unsaved_version(TemplateIn.model_validate(water_cut(text)), created_by="test")
        assert renderer.render(draft, "feed", context)["text"] == text.replace("{{ street }}", "新华路")
