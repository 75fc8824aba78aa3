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
    "state.draft": ("草稿", "draft"),
    "state.pending_approval": ("待审核", "waiting for approval"),
    "state.approved": ("已批准", "approved"),
    "state.scheduled": ("已排期", "scheduled"),
    "state.sending": ("发送中", "sending"),
    "state.done": ("已完成", "done"),
    "state.rejected": ("已驳回", "rejected"),
    "state.cancelled": ("已撤销", "cancelled"),
    "state.expired": ("已过期", "expired"),
    "severity.info": ("一般信息", "information"),
    "severity.minor": ("蓝色（轻微）", "minor"),
    "severity.moderate": ("黄色（较重）", "moderate"),
    "severity.severe": ("橙色（严重）", "severe"),
    "severity.extreme": ("红色（特别严重）", "extreme"),
    "channel.sms": ("短信", "SMS"),
    "channel.wechat": ("微信公众号", "WeChat"),
    "channel.wecom": ("企业微信", "WeCom"),
    "channel.email": ("电子邮件", "Email"),
    "channel.bot": ("群机器人", "Group bots"),
    "channel.bulletin": ("村务公告栏打印", "Notice-board printout"),
    "channel.feed": ("公开信息栏", "Public feed"),
    "delivery.queued": ("排队中", "queued"),
    "delivery.sending": ("发送中", "sending"),
    "delivery.sent": ("已发送", "sent"),
    "delivery.delivered": ("已送达", "delivered"),
    "delivery.confirmed": ("已确认", "confirmed"),
    "delivery.failed": ("失败", "failed"),
    "delivery.skipped": ("跳过", "skipped"),
    "delivery.fallback": ("转其他渠道", "handed on"),
    "skip.erased": ("已注销", "erased"),
    "skip.consent_withdrawn": ("撤回同意", "consent withdrawn"),
    "skip.topic_opt_out": ("退订此主题", "opted out of the topic"),
    "skip.channel_opt_out": ("退订所选渠道", "opted out of the channels"),
    "skip.no_address": ("无可用联系方式", "no address for the channels"),
    "decision.approved": ("批准", "approved"),
    "decision.rejected": ("驳回", "rejected"),
    "decision.overridden": ("紧急先行发布", "sent by emergency override"),
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
