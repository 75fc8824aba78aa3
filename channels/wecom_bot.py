"""WeCom group robot (群机器人 / 消息推送): a notice posted into the resident groups of an area.

API: ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with JSON
(https://developer.work.weixin.qq.com/document/path/91770). No signing: the key is the secret, so the
webhook URL is kept as a ``SecretStr`` and its key is redacted from logs. Each robot accepts at most
20 messages a minute. text content <= 2048 bytes, markdown <= 4096 bytes (longer text is cut here).

This module also holds ``AreaBotChannel``, the part every group-bot adapter shares (WeCom here,
``channels.dingtalk_bot``, ``channels.feishu_bot``): the message recipient of kind ``bot`` is an area
code (town or village); the alias's ``areas`` table maps area codes to the webhook of that area's
group, so a town's notice reaches the town group and, with one delivery per village, each village
group. An area without a configured robot is ``Failed("unreachable")``; a robot that answers "too
fast" is paused for the rest of the batch (its other messages get the same ``Retry`` without a call)
while other areas' robots go on. ``default_rate_per_minute`` is the documented per-robot limit,
for the engine's rate limiter (applied per alias, so it is conservative for aliases with many robots).

    answer (WeCom robot)                   result
    -------------------------------------  ---------------------------------------------------
    errcode 0                              Sent(<idempotency key>)  (robots return no message id)
    45009 frequency limit (reported code)  Retry(retry_after=60); the robot is paused for the batch
    -1 system busy, 45033 concurrency      Retry
    93000 invalid webhook key, others      Failed("errcode-<n>", errmsg)
    no robot for the area                  Failed("unreachable")
    no integer errcode (false is not 0)    Retry("unreadable answer from the robot")
    transport error / HTTP 5xx / 429       Retry (channels.http)
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from channels.base import ChannelOptions, Failed, OutboundMessage, Retry, SendResult, Sent
from channels.http import HttpChannel, HttpOptions, HttpReply
from channels.wechat_official import utf8_json

log = logging.getLogger("notifier.channels.bots")

AreaCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,12}$")]


class BotTarget(BaseModel):
    """One group's robot: its webhook URL as copied from the client, and its signing secret if any."""

    model_config = ConfigDict(extra="forbid")

    webhook: SecretStr
    secret: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_url(cls, value: Any) -> Any:
        return {"webhook": value} if isinstance(value, str) else value

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("the webhook must be an http(s) URL")
        return value


class BotOptions(HttpOptions):
    areas: dict[AreaCode, BotTarget] = Field(min_length=1)  # area code -> that area's group robot


def clip_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8, ending with an ellipsis when cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", errors="ignore") + "…"


def compose(message: OutboundMessage) -> str:
    return f"{message.subject}\n{message.text}" if message.subject else message.text


class AreaBotChannel(HttpChannel):
    """A group-bot adapter: subclasses build the request and declare their codes and limits."""

    Options = BotOptions
    max_batch = 20
    default_rate_per_minute: ClassVar[int]
    throttle_seconds: ClassVar[float] = 60.0  # Retry-after when a robot says "too fast"
    code_field: ClassVar[str] = "errcode"
    message_field: ClassVar[str] = "errmsg"
    throttle_codes: ClassVar[frozenset[int]]
    retry_codes: ClassVar[frozenset[int]] = frozenset({-1})

    def __init__(
        self, alias: str, options: ChannelOptions | None = None, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(alias, options)
        self.wall_clock = wall_clock
        for target in self.bot_options.areas.values():  # the key or id inside a webhook is its secret
            parts = urlsplit(target.webhook.get_secret_value())
            tail = parts.path.rsplit("/", 1)[-1]
            self._secrets.extend([v for _, v in parse_qsl(parts.query)] + ([tail] if len(tail) >= 16 else []))

    @property
    def bot_options(self) -> BotOptions:
        assert isinstance(self.options, BotOptions)
        return self.options

    def covered_areas(self) -> set[str]:
        """The areas with a group robot in the ``areas`` table: the engine posts only to these."""
        return set(self.bot_options.areas)

    def area_levels(self) -> frozenset[str]:
        return frozenset({"county", "town", "village"})  # a county group too, when one is configured

    @abc.abstractmethod
    def build(self, target: BotTarget, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body of the post for one message."""

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        paused: dict[str, SendResult] = {}  # webhook -> the Retry its "too fast" answer gave
        for message in batch:
            target = self.bot_options.areas.get(message.recipient)
            if target is None:
                results.append(Failed("unreachable", f"no group robot configured for area {message.recipient}"))
                continue
            robot = target.webhook.get_secret_value()
            if robot in paused:
                results.append(paused[robot])
                continue
            url, body = self.build(target, message)
            result, throttled = self.interpret(await self.request("POST", url, **utf8_json(body)), message)
            if throttled:
                paused[robot] = result
            if not isinstance(result, Sent):
                log.info("%s: area %s, delivery %s: %s", self.alias, message.recipient, message.delivery_id, result)
            results.append(result)
        return results

    def interpret(self, reply: HttpReply | Retry, message: OutboundMessage) -> tuple[SendResult, bool]:
        """The result of one post, and whether the robot said it is over its rate."""
        if isinstance(reply, Retry):
            return reply, False
        data = reply.json()
        code = data.get(self.code_field) if isinstance(data, dict) else None
        if not isinstance(code, int) or isinstance(code, bool) or reply.status >= 500 or reply.status == 429:
            return self.classify(reply) or Retry("unreadable answer from the robot"), False
        text = self.redact(f"{self.code_field} {code}: {data.get(self.message_field, '')}"[:200])
        if code == 0:
            return Sent(message.idempotency_key), False
        if code in self.throttle_codes:
            return Retry(f"robot over its rate ({text})", self.throttle_seconds), True
        if code in self.retry_codes:
            return Retry(text), False
        return Failed(f"errcode-{code}", text), False


class WecomBotOptions(BotOptions):
    msgtype: Literal["text", "markdown"] = "text"
    mention_all: bool = False  # text only: "@all" in mentioned_list


class WecomBotChannel(AreaBotChannel):
    Options = WecomBotOptions
    default_rate_per_minute = 20
    throttle_codes = frozenset({45009})
    retry_codes = frozenset({-1, 45033})

    def build(self, target: BotTarget, message: OutboundMessage) -> tuple[str, dict[str, Any]]:
        opts = self.options
        assert isinstance(opts, WecomBotOptions)
        if opts.msgtype == "markdown":
            heading = f"**{message.subject}**\n" if message.subject else ""
            return target.webhook.get_secret_value(), {
                "msgtype": "markdown",
                "markdown": {"content": clip_utf8(heading + message.text, 4096)},
            }
        text: dict[str, Any] = {"content": clip_utf8(compose(message), 2048)}
        if opts.mention_all:
            text["mentioned_list"] = ["@all"]
        return target.webhook.get_secret_value(), {"msgtype": "text", "text": text}


__all__ = ["AreaBotChannel", "BotOptions", "BotTarget", "WecomBotChannel", "WecomBotOptions", "clip_utf8", "compose"]
