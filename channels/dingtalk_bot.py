"""DingTalk (钉钉) custom robot: a notice posted into the DingTalk groups of an area.

API: ``POST https://oapi.dingtalk.com/robot/send?access_token=XXX[&timestamp=MS&sign=SIGN]``, JSON
UTF-8 (https://open.dingtalk.com/document/robots/custom-robot-access). With 加签 (signing) enabled,
per https://open.dingtalk.com/document/robots/customize-robot-security-settings :

    timestamp = now in milliseconds (within one hour of DingTalk's clock)
    sign = urlencode(base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")))   (UTF-8)

and ``&timestamp=...&sign=...`` are appended to the webhook URL. Each robot takes at most 20 messages
a minute; beyond that it answers 130101 and stays throttled for 10 minutes, so the retry waits 600 s.
Areas, pausing and results per message: ``channels.wecom_bot.AreaBotChannel``.

    answer                                  result
    --------------------------------------  ----------------------------------------------------
    errcode 0                               Sent(<idempotency key>)
    130101 send too fast                    Retry(retry_after=600); the robot is paused for the batch
    -1 system busy                          Retry
    310000 sign / keyword / IP refused,
    300001 token is not exist, others       Failed("errcode-<n>", errmsg)
    no robot for the area                   Failed("unreachable")
    transport error / HTTP 5xx / 429        Retry (channels.http)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from typing import Any, Literal

from channels.base import OutboundMessage
from channels.wecom_bot import AreaBotChannel, BotOptions, BotTarget, compose


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The documented signature, already URL-encoded for the query string."""
    string_to_sign = f"{timestamp_ms}\n{secret}"
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


class DingtalkBotOptions(BotOptions):
    msgtype: Literal["text", "markdown"] = "text"
    at_all: bool = False  # "@所有人"


class DingtalkBotChannel(AreaBotChannel):
    Options = DingtalkBotOptions
    default_rate_per_minute = 20
    throttle_seconds = 600.0
    throttle_codes = frozenset({130101})

    def build(self, target: BotTarget, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        opts = self.options
        assert isinstance(opts, DingtalkBotOptions)
        url = target.webhook.get_secret_value()
        if target.secret is not None:
            timestamp = round(self.wall_clock() * 1000)
            sign = dingtalk_sign(target.secret.get_secret_value(), timestamp)
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={sign}"
        body: dict[str, Any]
        if opts.msgtype == "markdown":
            title = message.subject or message.text[:20]
            heading = f"### {message.subject}\n\n" if message.subject else ""
            body = {"msgtype": "markdown", "markdown": {"title": title, "text": heading + message.text}}
        else:
            body = {"msgtype": "text", "text": {"content": compose(message)}}
        body["at"] = {"isAtAll": opts.at_all}
        return url, body


__all__ = ["DingtalkBotChannel", "DingtalkBotOptions", "dingtalk_sign"]
