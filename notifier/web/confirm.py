"""The confirmation link of a notice that asks for one (e-mail, WeCom text, WeChat template message tap).

    GET  /confirm?token=…   a small page with the notice's title and one button that POSTs; a GET never
                            confirms (mail scanners and link previews fetch links)
    POST /confirm?token=…   confirms the delivery the token names (``engine.confirmations.confirm_delivery``),
                            audited; repeating it is harmless ("already confirmed")

The token (``signing.ConfirmLinks``, 30 days) names the delivery and nothing personal; it is the only proof, as
for the one-click unsubscribe, so no cookie or session is involved and a forged cross-site POST can only
confirm with a token its sender already holds. No or a damaged token -> 400; forged or expired -> 403; a
delivery that no longer exists -> 404. Answers are HTML pages, never cached, kept out of referrers.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from aiohttp import web

from notifier.api.keys import SETTINGS, STORE
from notifier.api.routing import Answer, Param, Route
from notifier.domain.errors import NotifierError
from notifier.engine.confirmations import ConfirmOutcome, confirm_delivery
from notifier.signing import MalformedToken, TokenError, read_confirm
from notifier.web.link_pages import link_page

ACTOR = "confirm-link"
_STYLE = """body{font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em;line-height:1.6;font-size:20px}
button{font-size:1.2em;padding:.6em 2em}"""


class BadConfirmRequest(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 400, "Bad request", "bad-confirm-request")


class BadConfirmToken(NotifierError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 403, "Invalid confirmation link", "bad-confirm-token")


class UnknownDelivery(NotifierError):
    def __init__(self) -> None:
        super().__init__("this message is no longer on record", 404, "Not found", "not-found")


def _delivery_id(request: web.Request) -> int:
    token = request.query.get("token", "")
    if not token:
        raise BadConfirmRequest("the link has no token: open the complete link from the message")
    try:
        return read_confirm(token, request.app[SETTINGS].security.signing_secret)
    except MalformedToken:
        raise BadConfirmRequest("the link is damaged: open the complete link from the message") from None
    except TokenError as exc:
        raise BadConfirmToken(f"{exc}: the link is not valid (any more)") from None


def _page(title: str, body: str) -> web.Response:
    return link_page(title, body, _STYLE)


async def confirm_page(request: web.Request) -> web.Response:
    delivery_id = _delivery_id(request)
    row = await request.app[STORE].delivery_for_confirmation(delivery_id)
    if row is None:
        raise UnknownDelivery()
    notice = await request.app[STORE].get_notice(int(row["notice_id"]))
    action = "?token=" + quote(request.query["token"], safe="")
    body = (
        f"<h1>确认收到通知</h1><p>《{html.escape(notice.title)}》</p>"
        "<p>请点击下面的按钮，告诉我们您已收到这条通知。</p>"
        "<p lang='en'>Tap the button to confirm that you received this notice.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        "<button type='submit'>确认收到 / Confirm</button></form>"
    )
    return _page("确认收到 / Confirm", body)


async def confirm_post(request: web.Request) -> web.Response:
    delivery_id = _delivery_id(request)
    outcome = await confirm_delivery(request.app[STORE], delivery_id, actor=ACTOR, via="link")
    if outcome is ConfirmOutcome.UNKNOWN:
        raise UnknownDelivery()
    if outcome is ConfirmOutcome.NOT_ASKED:
        body = "<h1>无需确认</h1><p>这条通知不需要确认。</p><p lang='en'>This notice needs no confirmation.</p>"
    elif outcome is ConfirmOutcome.ALREADY:
        body = "<h1>已确认</h1><p>您已确认过这条通知，谢谢。</p><p lang='en'>You confirmed this notice before.</p>"
    else:
        body = "<h1>确认成功</h1><p>谢谢，您已确认收到这条通知。</p><p lang='en'>Thank you: receipt confirmed.</p>"
    return _page("确认收到 / Confirmed", body)


_TOKEN = Param("token", {"type": "string", "minLength": 1}, required=True, description="the signed confirmation token")
_HTML = Answer("an HTML page", "text/html", {"type": "string"})
_REFUSED = {400: "no or damaged token", 403: "forged or expired token", 404: "the message is no longer on record"}
ROUTES = [
    Route("GET", "/confirm", confirm_page, "Page of a notice's confirmation link (its button confirms)", "confirm",
          public=True, params=(_TOKEN,), success=_HTML, extra_responses=_REFUSED),
    Route("POST", "/confirm", confirm_post, "Confirm receipt of a notice (the link's button)", "confirm",
          public=True, params=(_TOKEN,), success=_HTML, extra_responses=_REFUSED),
]
