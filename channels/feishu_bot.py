"""Feishu / Lark custom bot (自定义机器人): a notice posted into the Feishu groups of an area.

API: ``POST https://open.feishu.cn/open-apis/bot/v2/hook/{hook_id}`` with JSON
(https://open.larkoffice.com/document/ukTMukTMukTM/ucTM5YjL3ETO24yNxkjN.md). With signature
verification enabled the body carries ``"timestamp"`` (seconds, as a string, within one hour) and

    sign = base64(HmacSHA256(key=f"{timestamp}\\n{secret}", msg=b""))

(unlike DingTalk the key is the string to sign and the message is empty; not URL-encoded). Limits:
100 requests a minute and 5 a second per bot, request body <= 20 KB (the text is cut to fit).
Areas, pausing and results per message: ``channels.wecom_bot.AreaBotChannel``.

    answer                                       result
    -------------------------------------------  -----------------------------------------------
    code 0                                       Sent(<idempotency key>)
    11232 frequency limited                      Retry(retry_after=60); the bot is paused for the batch
    19021 sign or timestamp, 19022 IP, 19024
    keyword, 9499 bad request, others            Failed("errcode-<n>", msg)
    no bot for the area                          Failed("unreachable")
    transport error / HTTP 5xx / 429             Retry (channels.http)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, ClassVar, Literal

from channels.base import OutboundMessage
from channels.wecom_bot import AreaBotChannel, BotOptions, BotTarget, clip_utf8, compose

MAX_TEXT_BYTES = 18 * 1024  # leaves room for the envelope inside the 20 KB body limit


def feishu_sign(secret: str, timestamp: int) -> str:
    """The documented signature of a custom-bot request."""
    string_to_sign = f"{timestamp}\n{secret}"
    return base64.b64encode(hmac.new(string_to_sign.encode("utf-8"), b"", hashlib.sha256).digest()).decode("ascii")


class FeishuBotOptions(BotOptions):
    msg_type: Literal["text", "post"] = "text"  # post: rich text with the subject as its title


class FeishuBotChannel(AreaBotChannel):
    Options = FeishuBotOptions
    default_rate_per_minute = 100
    default_rate_per_second: ClassVar[int] = 5
    code_field = "code"
    message_field = "msg"
    throttle_codes = frozenset({11232})
    retry_codes = frozenset()

    def build(self, target: BotTarget, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        opts = self.options
        assert isinstance(opts, FeishuBotOptions)
        body: dict[str, Any] = {}
        if target.secret is not None:
            timestamp = int(self.wall_clock())
            body["timestamp"] = str(timestamp)
            body["sign"] = feishu_sign(target.secret.get_secret_value(), timestamp)
        if opts.msg_type == "post":
            paragraph = [{"tag": "text", "text": clip_utf8(message.text, MAX_TEXT_BYTES)}]
            post = {"zh_cn": {"title": message.subject or "", "content": [paragraph]}}
            body.update({"msg_type": "post", "content": {"post": post}})
        else:
            body.update({"msg_type": "text", "content": {"text": clip_utf8(compose(message), MAX_TEXT_BYTES)}})
        return target.webhook.get_secret_value(), body


__all__ = ["FeishuBotChannel", "FeishuBotOptions", "feishu_sign"]
