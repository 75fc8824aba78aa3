"""How a notice asking for confirmation is marked at render time and carries its link (no engine imports)."""

from __future__ import annotations

import html as html_escape
from collections.abc import Mapping

CONFIRM_MARK = "confirm"
LINK_KINDS = frozenset({"email", "wecom"})  # the link goes into the text; WeChat opens it on a tap


def mark_confirming(contents: Mapping[str, Mapping[str, str | None]]) -> dict[str, dict[str, str | None]]:
    """The rendered texts of a notice asking for confirmation, each marked so that dispatch adds the link."""
    return {kind: {**content, CONFIRM_MARK: "1"} for kind, content in contents.items()}


def asks_confirmation(content: Mapping[str, str | None]) -> bool:
    return bool(content.get(CONFIRM_MARK))


def with_confirm_link(kind: str, text: str, html: str | None, url: str | None) -> tuple[str, str | None]:
    """The text (and HTML) of an e-mail or WeCom message with the confirmation link at its end."""
    if url is None or kind not in LINK_KINDS:
        return text, html
    text = f"{text}\n\n确认收到请点击：{url}"
    if html is not None:
        link = f'<p><a href="{html_escape.escape(url)}">确认收到 / Confirm receipt</a></p>'
        html = html.replace("</body>", link + "</body>", 1) if "</body>" in html else html + link
    return text, html
