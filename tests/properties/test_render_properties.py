"""Rendering, in general: any notice the API accepts renders on every channel, and HTML stays escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from notifier.domain.builtin_templates import builtin_version
from notifier.domain.models import NoticeIn
from notifier.engine import Renderer
from tests.properties import SOME

CHANNELS = ["sms", "email", "wechat", "wecom", "bot", "bulletin"]
MARKUP = st.sampled_from(["<script>alert(1)</script>", "<b>", "&amp;", "\"'><img src=x onerror=1>", "{{ 7*7 }}"])


class Tags(HTMLParser):
    """An independent reading of the HTML: its elements and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


def accepted(title: str, body: str, data: dict[str, Any]) -> dict[str, Any]:
    """The notice as the API would store it; the example is skipped when the API refuses it."""
    try:
        notice = NoticeIn.model_validate(
            {"topic": "air-quality", "title": title, "body": body, "data": data, "target": {"areas": ["370725"]}}
        )
    except ValidationError:
        assume(False)
        raise
    return {**notice.model_dump(mode="json"), "id": 1, "department": "environment"}


VISIBLE = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))
visible_text = st.text(VISIBLE, min_size=1, max_size=40)
mixed_text = st.one_of(
    visible_text, MARKUP, st.builds("".join, st.lists(st.one_of(visible_text, MARKUP, st.just("\n\n")), max_size=4))
)
data_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), mixed_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(visible_text, inner, max_size=3)),
    max_leaves=10,
)
data = st.dictionaries(visible_text, data_values, max_size=4)


@SOME
@given(title=mixed_text, body=mixed_text, data=data)
def test_every_accepted_notice_renders_on_every_channel(title: str, body: str, data: dict[str, Any]) -> None:
    notice = accepted(title, body, data)
    renderer = Renderer(public_url="https://notices.example.gov.cn")
    context = renderer.context(notice, "生态环境分局")
    for channel in CHANNELS:
        rendered = renderer.render(builtin_version("notice"), channel, context)
        assert notice["body"] in (rendered["text"] or "")  # verbatim: plain text is never escaped
        if rendered["html"] is not None:
            html = parse(rendered["html"])
            assert html.tags == ["html", "body", "h1", *["p"] * html.tags.count("p")]
            assert notice["title"] in html.text and all(line in html.text for line in notice["body"].split("\n\n"))


@SOME
@given(title=mixed_text, data=data)
def test_any_accepted_data_renders_in_a_template_walking_it(title: str, data: dict[str, Any]) -> None:
    notice = accepted(title, "正文", data)
    renderer = Renderer()
    walk = builtin_version("walk", root=DATA_TEMPLATES)
    rendered = renderer.render(walk, "email", renderer.context(notice, "生态环境分局"))
    html = parse(rendered["html"] or "")
    assert set(html.tags) <= {"ul", "li"}
    assert rendered["text"] is not None


DATA_TEMPLATES = Path(__file__).with_name("templates")
