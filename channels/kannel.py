"""Kannel: SMS through the smsbox HTTP ``sendsms`` interface (to an SMPP/CIMD/... link of the operator).

Provider documentation: https://www.kannel.org/download/1.4.5/userguide-1.4.5/userguide.html
("SMS Push (send-sms) CGI Variables", "Delivery Reports"). Operator set-up: docs/kannel.md.

One ``GET /cgi-bin/sendsms`` per message with ``username``, ``password``, ``from``, ``to``, ``text``
(UTF-8, ``charset=UTF-8``; ``coding=2`` (UCS-2) when the text is not GSM 7-bit, as for every Chinese
text), ``smsc`` (optional routing), ``dlr-mask`` and a ``dlr-url`` pointing at our
``/hooks/kannel/dlr`` with the alias, our message id, a signature of the two and Kannel's ``%d``
(DLR type). Kannel has no message id of its own to return, so the provider message id is ours:
``d<delivery id>``, and ``d<delivery id>-r1`` for the reminder sent again on the same channel (a second send
of the delivery, ``OutboundMessage.resend``): the DLR carries it back and the hook matches the send by it, so a
late DLR of the first send does not mark the reminder delivered (it matches no recorded send and is kept
for the record). Messages sent before the reminder had ids of their own kept ``d<delivery id>``.

The signature (``dlr_signature``: HMAC-SHA256 of alias and message id, keyed with the alias's
``hook_token``) stands in for the token itself: Kannel keeps every dlr-url in its DLR store and writes
it to its log when the call fails, and such a URL must be worth that one message's receipt, not the
alias. ``hook_token_previous`` keeps the DLRs of messages sent before a token change verifiable.

    Kannel reply                                           result
    -----------------------------------------------------  ------------------------------------------
    202 "0: Accepted for delivery"                         Sent("d<delivery id>"; "d<delivery id>-r1" resent)
    202 "3: Queued for later delivery" (no SMSC up now)    Sent("d<delivery id>") (Kannel keeps it)
    2xx "Sent." (older Kannel versions)                    Sent("d<delivery id>")
    other 2xx (a proxy's error page, an empty body...)     Retry(UNRECOGNISED): Kannel may have taken it
    403 "Not routable. Do not try again."                  Failed("unroutable")
    403 "Authorization failed for sendsms"                 Failed("auth") (fix username/password)
    400 "Missing receiver number" and other 4xx            Failed("http-4xx", Kannel's text)
    503 "Temporal failure, try again later."               Retry("http 503")
    other 5xx, 429, timeout, connection refused/reset      Retry (channels.http)
    recipient not +digits                                  Failed("invalid-number"), nothing sent
    text longer than max_segments parts                    Failed("too-long"), nothing sent

DLR types (``dlr_mask`` is their sum; default 1+2+8+16 = 27): 1 delivered to the phone,
2 not delivered to the phone, 4 queued on the SMSC, 8 accepted by the SMSC, 16 rejected by the SMSC.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from pydantic import Field, SecretStr, field_validator
from yarl import URL

from channels.base import ChannelOptions, Failed, OutboundMessage, Retry, SendResult, Sent, delivery_message_id
from channels.http import UNRECOGNISED, HttpChannel, HttpOptions, HttpReply
from channels.sms_text import SmsTextOptions, compose_with, count_segments, within_limit


def phone_number(to: str) -> bool:
    """Whether ``to`` is a number Kannel can send to: an optional + and 3 to 20 ASCII digits (string methods, not a
    regular expression: this is checked for every message)."""
    digits = to[1:] if to[:1] == "+" else to
    return 3 <= len(digits) <= 20 and not digits.strip("0123456789")


class KannelOptions(HttpOptions, SmsTextOptions):
    url: str = Field("http://127.0.0.1:13013/cgi-bin/sendsms", description="smsbox sendsms URL")
    username: str = Field(description="a sendsms-user of smsbox")
    password: SecretStr
    sender: str | None = Field(None, description="sent as Kannel's 'from'; else smsbox's global-sender")
    smsc: str | None = Field(None, description="smsc-id to route through; else Kannel's routing")
    dlr_url: str | None = Field(None, description="public URL of our /hooks/kannel/dlr; no DLRs when unset")
    dlr_mask: int = Field(27, ge=1, le=63, description="1 delivered, 2 undelivered, 4 queued, 8 SMSC ack, 16 nack")
    hook_token: SecretStr | None = Field(
        None, description="the alias's hook secret: signs each dlr-url; Kannel's sms-service presents it (?token=)"
    )
    hook_token_previous: SecretStr | None = Field(
        None, description="the hook secret before the last change, still accepted while a rotation is under way"
    )

    @field_validator("url", "dlr_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            raise ValueError("expected an http:// or https:// URL")
        return value


def provider_id(message: OutboundMessage) -> str:
    """The id Kannel's DLR brings back (Kannel has none of its own)."""
    return delivery_message_id(message.delivery_id, message.resend)


def dlr_signature(hook_token: str, alias: str, message_id: str) -> str:
    """The ``sig`` of a dlr-url: proof that this alias's adapter asked for this message's receipts."""
    mac = hmac.new(hook_token.encode("utf-8"), f"kannel-dlr\n{alias}\n{message_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def accepted(reply: HttpReply) -> bool:
    """Whether a 2xx answer is smsbox's own word that it took the message: "0: Accepted for delivery", "3: Queued
    for later delivery", or "Sent." of older versions. Anything else (a proxy's page, an empty body) says nothing."""
    text = reply.body[:64].lstrip()
    return text.startswith((b"0:", b"3:")) or text.rstrip() == b"Sent."


class KannelChannel(HttpChannel):
    Options = KannelOptions
    max_batch = 100  # one request a message: the batch bounds only the leases a worker holds at once

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        super().__init__(alias, options)
        self._fixed_queries: dict[str, str] = {}  # by text: the encoded query up to the per-message part
        self._texts: dict[tuple[str, bool], str | Failed] = {}  # by (rendered text, confirm): what the gateway gets
        self._endpoint = urlsplit(self.kannel.url)

    @property
    def kannel(self) -> KannelOptions:
        assert isinstance(self.options, KannelOptions)
        return self.options

    def gateway_text(self, text: str, confirm: bool = False) -> str:
        return compose_with(self.kannel, text, confirm)

    def dlr_url(self, message: OutboundMessage) -> str | None:
        """Our hook URL for this message; ``%d`` stays literal for Kannel to fill in."""
        opts = self.kannel
        if opts.dlr_url is None:
            return None
        query = {"alias": self.alias, "id": provider_id(message)}
        if opts.hook_token is not None:
            query["sig"] = dlr_signature(opts.hook_token.get_secret_value(), self.alias, query["id"])
        separator = "&" if "?" in opts.dlr_url else "?"
        return f"{opts.dlr_url}{separator}{urlencode(query)}&type=%d"

    def params(self, message: OutboundMessage, text: str) -> dict[str, str]:
        opts = self.kannel
        params = {
            "username": opts.username,
            "password": opts.password.get_secret_value(),
            "to": message.recipient,
            "text": text,
            "charset": "UTF-8",
        }
        if count_segments(text).encoding == "ucs2":
            params["coding"] = "2"
        if opts.sender:
            params["from"] = opts.sender
        if opts.smsc:
            params["smsc"] = opts.smsc
        dlr_url = self.dlr_url(message)
        if dlr_url is not None:
            params["dlr-mask"] = str(opts.dlr_mask)
            params["dlr-url"] = dlr_url
        return params

    def request_url(self, message: OutboundMessage, text: str) -> URL:
        """The sendsms URL with ``params(message, text)`` as its query, already encoded: the part that is
        the same for every message of a text (credentials, text, coding, sender, route) is encoded once per
        text, only ``to`` and the DLR URL per message; the URL is made from its parts, not parsed again (yarl
        parsed, and hashed for its cache, the whole URL of every message: a fifth of the adapter's own work)."""
        fixed = self._fixed_queries.get(text)
        if fixed is None:
            if len(self._fixed_queries) >= 16:
                self._fixed_queries.clear()
            params = self.params(message, text)
            for per_message in ("to", "dlr-mask", "dlr-url"):
                params.pop(per_message, None)
            own = self._endpoint.query  # a query of the configured URL itself comes first
            encoded = urlencode(params, quote_via=quote)
            fixed = self._fixed_queries[text] = f"{own}&{encoded}" if own else encoded
        to = message.recipient
        to = to.replace("+", "%2B") if phone_number(to) else quote(to, safe="")  # +digits: only + to quote
        query = f"{fixed}&to={to}"
        dlr_url = self.dlr_url(message)
        if dlr_url is not None:
            query += f"&dlr-mask={self.kannel.dlr_mask}&dlr-url={quote(dlr_url, safe='')}"
        endpoint = self._endpoint
        return URL(SplitResult(endpoint.scheme, endpoint.netloc, endpoint.path, query, ""), encoded=True)

    def final_text(self, text: str, confirm: bool) -> str | Failed:
        """The text the gateway receives for a rendered ``text`` (``gateway_text``), or Failed("too-long"): once
        per text, not once per message (every resident of a notice gets the same)."""
        final = self._texts.get((text, confirm))
        if final is None:
            if len(self._texts) >= 16:
                self._texts.clear()
            final = within_limit(self.gateway_text(text, confirm), self.kannel.max_segments)
            self._texts[text, confirm] = final
        return final

    def reports_delivery(self) -> bool:
        return self.kannel.dlr_url is not None and self.kannel.hook_token is not None

    def receipt_ids(self, delivery_id: int, resend: int = 0) -> list[str]:
        return [delivery_message_id(delivery_id, resend)]

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        return await self.send_each(batch, self._send_one)

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        if not phone_number(message.recipient):
            return Failed("invalid-number", "the recipient is not a phone number")
        text = self.final_text(message.text, message.confirm_url is not None)
        if isinstance(text, Failed):
            return text
        reply = await self.request("GET", self.request_url(message, text))
        if isinstance(reply, Retry):
            return reply  # Kannel could not be reached
        default = self.classify(reply)
        if default is None:
            return Sent(provider_id(message)) if accepted(reply) else Retry(UNRECOGNISED)
        if reply.status == 403 and "routable" in reply.text.lower():
            return Failed("unroutable", self.redact(reply.text.strip()))
        if reply.status in (401, 403) and "authori" in reply.text.lower():
            return Failed("auth", "Kannel refused the username or password")
        return default


__all__ = ["KannelChannel", "KannelOptions", "dlr_signature", "provider_id"]
