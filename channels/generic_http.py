"""A generic HTTP SMS gateway, described entirely in the config (for the long tail of local gateways).

Provider documentation: the gateway's own; the model is Novu's generic-sms provider
(https://docs.novu.co/integrations/providers/sms/generic-sms). Example (a JSON gateway):

    [channels.sms-local]
    kind = "sms"
    type = "generic_http"
    method = "POST"
    url = "https://sms.example.gov.cn/api/send"
    headers = { Authorization = "Bearer {{ secrets.token }}" }
    secrets = { token = "..." }
    body_template = '{"mobile": {{ to|tojson }}, "content": {{ text|tojson }}, "ref": {{ key|tojson }}}'
    message_id_path = "data.msgid"
    status_path = "code"
    success_values = ["0"]
    retry_values = ["busy", "1001"]

Templates (url, header values, query values, body) are jinja2 in a sandbox with StrictUndefined and see
``to``, ``text``, ``key`` (idempotency key), ``delivery_id``, ``notice_id``, ``alias`` and ``secrets``.

    reply                                                      result
    ---------------------------------------------------------  ----------------------------------------
    2xx, no status_path                                        Sent(<message_id_path> or "d<delivery id>")
    2xx, value at status_path in success_values                Sent(<message_id_path> or "d<delivery id>")
      (the value at message_id_path counts only when it is a string that is not empty, or an integer: an
      empty string, a boolean, a fraction, a list or an object is no id, and "d<delivery id>" is recorded)
    2xx, value at status_path in retry_values                  Retry("gateway status <value>")
    2xx, any other value                                       Failed("gateway-status", <value>)
    2xx, no JSON, or nothing (or null) at status_path          Retry(UNRECOGNISED): the gateway may have taken it
    429 / 408 / 5xx, timeout, connection error                 Retry (channels.http; Retry-After honoured)
    other 4xx                                                  Failed("http-4xx")
    a template fails (e.g. an undefined name)                  Failed("template-error"), nothing sent
"""

from __future__ import annotations

from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import Field, SecretStr, field_validator

from channels.base import Failed, OutboundMessage, Retry, SendResult, Sent, delivery_message_id, message_id_of
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions, HttpReply
from channels.sms_text import SmsTextOptions, compose_with, within_limit
from notifier.domain.text import ascii_digits

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class GenericHttpOptions(HttpOptions, SmsTextOptions):
    method: Literal["GET", "POST", "PUT"] = "POST"
    url: str = Field(description="template of the request URL")
    headers: dict[str, str] = Field(default_factory=dict, description="header name -> value template")
    query: dict[str, str] = Field(default_factory=dict, description="query parameter -> value template")
    body_template: str | None = Field(None, description="template of the request body; none for GET")
    content_type: str = "application/json; charset=utf-8"
    secrets: dict[str, SecretStr] = Field(default_factory=dict, description="values templates see as secrets.<name>")
    message_id_path: str | None = Field(None, description="dotted path of the message id in the JSON reply")
    status_path: str | None = Field(None, description="dotted path of the gateway's status in the JSON reply")
    success_values: list[str] = Field(default_factory=list)
    retry_values: list[str] = Field(default_factory=list)

    @field_validator("url", "body_template")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("headers", "query")
    @classmethod
    def _all_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for template in value.values():
            _compile(template)
        return value


def _compile(source: str) -> None:
    try:
        _ENV.from_string(source)
    except TemplateError as exc:
        raise ValueError(f"not a valid template: {exc}") from None


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (``data.items.0.id``); None when any step is missing."""
    for step in path.split("."):
        if isinstance(data, dict) and step in data:
            data = data[step]
        elif isinstance(data, list) and ascii_digits(step.removeprefix("-")) and -len(data) <= int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


def as_text(value: Any) -> str:
    """A reply value as config compares it: JSON spelling for booleans and null."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


class GenericHttpChannel(HttpChannel):
    Options = GenericHttpOptions
    max_batch = 50

    @property
    def generic(self) -> GenericHttpOptions:
        assert isinstance(self.options, GenericHttpOptions)
        return self.options

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        return compose_with(self.generic, text, confirm)

    def render(self, message: OutboundMessage, text: str) -> dict[str, Any]:
        """The request as aiohttp keyword arguments; raises TemplateError."""
        opts = self.generic
        context = {
            "to": message.recipient, "text": text, "key": message.idempotency_key, "delivery_id": message.delivery_id,
            "notice_id": message.notice_id, "alias": self.alias,
            "secrets": {name: value.get_secret_value() for name, value in opts.secrets.items()},
        }

        def fill(source: str) -> str:
            return _ENV.from_string(source).render(context)

        request: dict[str, Any] = {
            "method": opts.method,
            "url": fill(opts.url),
            "headers": {name: fill(value) for name, value in opts.headers.items()},
            "params": {name: fill(value) for name, value in opts.query.items()},
        }
        if opts.body_template is not None:
            request["data"] = fill(opts.body_template).encode("utf-8")
            request["headers"].setdefault("Content-Type", opts.content_type)
        return request

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        return await self.send_each(batch, self._send_one)

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        text = within_limit(
            self.gateway_text(message.text, message.confirm_url is not None), self.generic.max_segments
        )
        if isinstance(text, Failed):
            return text
        try:
            request = self.render(message, text)
        except TemplateError as exc:
            return Failed("template-error", self.redact(str(exc)))
        reply = await self.request(request.pop("method"), request.pop("url"), **request)
        if isinstance(reply, Retry):
            return reply
        return self.interpret(reply, message)

    def interpret(self, reply: HttpReply, message: OutboundMessage) -> SendResult:
        default = self.classify(reply)
        if default is not None:
            return default
        opts = self.generic
        data = reply.json()
        if opts.status_path is not None:
            status = lookup(data, opts.status_path)
            value = as_text(status)
            if status is None:
                return Retry(UNRECOGNISED)  # not the gateway's answer (a proxy's page, another shape): it may have sent
            if value not in opts.success_values:
                if value in opts.retry_values:
                    return Retry(f"gateway status {self.redact(value)[:40]}")
                return Failed("gateway-status", self.redact(value))
        found = message_id_of(lookup(data, opts.message_id_path)) if opts.message_id_path else None
        if found is not None:
            return Sent(found)
        return Sent(delivery_message_id(message.delivery_id, message.resend))


__all__ = ["GenericHttpChannel", "GenericHttpOptions", "as_text", "lookup"]
