"""A process that runs the API without an engine (an API node of a scale-out) keeps one renderer for its
requests, so a template is compiled once, not again for every notice checked or previewed."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.engine import render
from tests.conftest import TOWN_A, Api

NOTICE = {
    "topic": "air-quality",
    "title": "重污染天气预警",
    "template": "heavy-pollution",
    "data": {"level": "橙色", "start_date": "12月3日0时", "measures": "停止户外作业。"},
    "target": {"areas": [TOWN_A]},
}


async def test_notices_checked_without_an_engine_share_one_renderer(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    original_init = render.Renderer.__init__

    def counting_init(self: render.Renderer, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(render.Renderer, "__init__", counting_init)
    for _ in range(3):
        status, body = await api.call("POST", "/api/v1/notices", json=NOTICE)
        assert status == 201, body
        status, body = await api.call("POST", "/api/v1/notice-preview", json=NOTICE)
        assert status == 200, body
    assert made == []  # the app's renderer, made at start-up, whose compiled templates are kept
