"""One-click unsubscribe: the target of the ``List-Unsubscribe`` link in every e-mail we send.

    GET  /unsubscribe?token=…   a small confirmation page (Chinese and English) whose button POSTs;
                                a GET never unsubscribes (mail scanners prefetch links)
    POST /unsubscribe?token=…   body ``List-Unsubscribe=One-Click``, form-encoded or multipart, as mail
                                providers send it (RFC 8058 §3.2) or as the page's form sends it:
                                records the opt-out from the token's channel and audits it; 200, never a
                                redirect (RFC 8058 §3.2); repeating it is harmless

RFC 8058 https://www.rfc-editor.org/rfc/rfc8058 : the POST carries no cookies or credentials, so the
signed token (``notifier.signing``) is the only proof; it names the subscriber and the channel.
Errors are problem documents: no token or a malformed one, or a body without the one-click field ->
400; a forged or expired token -> 403. A subscriber erased since the mail was sent gets the 200 page.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from aiohttp import web

from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Answer, Param, Route
from notifier.domain.enums import ChannelKind
from notifier.domain.errors import NotFound, NotifierError
from notifier.signing import MalformedToken, TokenError, UnsubscribeClaims, read_unsubscribe
from notifier.web.link_pages import link_page

ACTOR = "unsubscribe-link"
SOURCE = "one-click"
_STYLE = """body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;font-size:20px;line-height:1.6;
max-width:32em;margin:0 auto;padding:1em;color:#111;background:#fff}h1{font-size:1.5em;line-height:1.3}
button{display:block;width:100%;font-size:1.2em;min-height:56px;padding:.6em;margin:1.4em 0;border:0;
border-radius:8px;background:#b71c1c;color:#fff;font-weight:bold}
button:focus{outline:3px solid #0b4f8a;outline-offset:2px}"""
_CHANNEL_NAMES = {
    "email": ("电子邮件", "e-mail"),
    "sms": ("短信", "text messages"),
    "wechat": ("微信", "WeChat"),
    "wecom": ("企业微信", "WeCom"),
}


class BadRequest(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 400, "Bad request", "bad-unsubscribe-request")


class BadToken(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 403, "Invalid unsubscribe link", "bad-unsubscribe-token")


def _claims(request: web.Request) -> UnsubscribeClaims:
    token = request.query.get("token", "")
    if not token:
        raise BadRequest("the link has no token: open the complete link from the message")
    try:
        claims = read_unsubscribe(token, request.app[SETTINGS].security.signing_secret)
    except MalformedToken:
        raise BadRequest("the link is damaged: open the complete link from the message") from None
    except TokenError as exc:
        raise BadToken(f"{exc}: use the link in a more recent message") from None
    if claims.channel not in {kind.value for kind in ChannelKind if kind.is_personal}:
        raise BadRequest("the link names no channel a resident can leave")
    return claims


def _page(title: str, body: str) -> web.Response:
    return link_page(title, f"<main>{body}</main>", _STYLE)


async def unsubscribe_page(request: web.Request) -> web.Response:
    claims = _claims(request)
    zh, en = _CHANNEL_NAMES.get(claims.channel, (claims.channel, claims.channel))
    action = "?token=" + quote(request.query["token"], safe="")
    body = (
        f"<h1>退订{zh}通知</h1><p>确认后，我们将不再通过{zh}向您发送通知。</p>"
        f"<p lang='en'>Unsubscribe from notices by {en}: after you confirm, we will not send you notices by {en}.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type='submit'>确认退订 / Unsubscribe</button></form>"
    )
    return _page("退订 / Unsubscribe", body)


async def unsubscribe_confirm(request: web.Request) -> web.Response:
    claims = _claims(request)
    try:
        form = await request.post()
    except (ValueError, AssertionError, UnicodeDecodeError):
        raise BadRequest("the request body is not a form") from None
    if form.get("List-Unsubscribe") != "One-Click":
        raise BadRequest("the body must be List-Unsubscribe=One-Click (RFC 8058)")
    store = request.app[STORE]
    try:
        async with store.db.transaction():
            subscriber = await store.get_subscriber(claims.subscriber_id)
            if claims.channel not in subscriber.opt_out_channels:
                change = await store.add_optout_audited(subscriber.id, "channel", claims.channel, SOURCE)
                detail: dict[str, object] = {"channel": claims.channel, "source": SOURCE, "notice": claims.notice_id}
                detail.update(change)
                await store.audit(ACTOR, "subscriber.optout", "subscriber", subscriber.id, detail)
    except NotFound:
        pass  # erased since the message was sent: nothing will be sent to them anyway
    zh, en = _CHANNEL_NAMES.get(claims.channel, (claims.channel, claims.channel))
    body = f"<h1>已退订</h1><p>您将不再收到{zh}通知。</p><p lang='en'>You will no longer receive notices by {en}.</p>"
    return _page("已退订 / Unsubscribed", body)


_TOKEN = Param("token", {"type": "string", "minLength": 1}, required=True, description="the signed unsubscribe token")
_PAGE_ANSWER = Answer("an HTML page", "text/html", {"type": "string"})
_REFUSED = {400: "no or damaged token, or it names no channel a resident can leave", 403: "forged or expired token"}
ROUTES = [
    Route("GET", "/unsubscribe", unsubscribe_page, "Confirmation page of an unsubscribe link", "unsubscribe",
          public=True, params=(_TOKEN,), success=_PAGE_ANSWER, extra_responses=_REFUSED),
    Route("POST", "/unsubscribe", unsubscribe_confirm, "One-click unsubscribe (RFC 8058)", "unsubscribe",
          public=True, params=(_TOKEN,), success=_PAGE_ANSWER, content_required=True,
          content={"application/x-www-form-urlencoded": {
              "type": "object",
              "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
              "required": ["List-Unsubscribe"],
          }},
          extra_responses={**_REFUSED, 400: "no or damaged token, or the body is not List-Unsubscribe=One-Click",
                           413: "the body is too large"}),
]  # fmt: skip
