"""The console's two languages: Chinese first, English on request.

Text lives beside its use as a pair: ``t("登录", "Log in")`` in a template or handler. The few words every
page shares (navigation, buttons) are in ``MESSAGES`` and called by key: ``t("nav.home")``. The language is
the ``lang`` cookie, set by any console URL with ``?lang=zh`` or ``?lang=en``; Chinese when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT: Language = "zh"
COOKIE = "console_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, tuple[str, str]] = {
    "app.title": ("通知服务 工作台", "Notifier console"),
    "nav.home": ("首页", "Home"),
    "nav.password": ("修改密码", "Change password"),
    "nav.logout": ("退出登录", "Log out"),
    "nav.skip": ("跳到正文", "Skip to content"),
    "nav.label": ("主导航", "Main navigation"),
    "lang.other": ("English", "中文"),
    "lang.switch": ("切换语言", "Switch language"),
    "role.issuer": ("起草人", "issuer"),
    "role.approver": ("审核人", "approver"),
    "role.admin": ("管理员", "administrator"),
    "role.viewer": ("查看人", "viewer"),
}

Translate = Callable[..., str]


@dataclass(frozen=True)
class Translator:
    language: Language

    def __call__(self, zh_or_key: str, en: str | None = None) -> str:
        if en is None:
            pair = MESSAGES.get(zh_or_key)
            if pair is None:
                return zh_or_key
            zh_or_key, en = pair
        return en if self.language == "en" else zh_or_key

    @property
    def other(self) -> Language:
        return "en" if self.language == "zh" else "zh"


def request_language(request: web.Request) -> tuple[Language, bool]:
    """The page's language, and whether the request asked to change it (so the cookie must be set)."""
    asked = request.query.get("lang")
    for language in LANGUAGES:
        if asked == language:
            return language, True
    cookie = request.cookies.get(COOKIE)
    for language in LANGUAGES:
        if cookie == language:
            return language, False
    return DEFAULT, False
