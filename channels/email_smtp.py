"""E-mail over SMTP (aiosmtplib), one envelope per message, through a small pool of reused connections.

Standards and documentation:
    SMTP reply codes          RFC 5321 §4.2 https://www.rfc-editor.org/rfc/rfc5321#section-4.2
    List-Unsubscribe          RFC 2369 https://www.rfc-editor.org/rfc/rfc2369
    One-click unsubscribe     RFC 8058 https://www.rfc-editor.org/rfc/rfc8058 (both List-Unsubscribe headers
                              MUST be in the DKIM signature's h= tag)
    DKIM                      RFC 6376 https://www.rfc-editor.org/rfc/rfc6376, dkimpy https://launchpad.net/dkimpy/
    Bulk senders (Gmail)      https://support.google.com/a/answer/81126
    aiosmtplib                https://aiosmtplib.readthedocs.io/

Each message: multipart/alternative (text, plus HTML when ``html`` is set), UTF-8, a Message-ID derived
from the idempotency key (a retry carries the same id, so receivers can drop a duplicate), the key in
``X-Idempotency-Key``, ``List-Unsubscribe: <https://…/unsubscribe?token=…>[, <mailto:…>]`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``; optionally a DKIM-Signature whose h= covers both
List-Unsubscribe headers (signing is CPU work, done in a thread). The link's signed token names the
subscriber, read from the idempotency key ``n<notice>-s<subscriber>-<channel>`` (see ``_subscriber_id``).

The email library builds what the recipients of one content share (From, the RFC 2047 Subject, the MIME
headers and the encoded parts) once per content; each message is those bytes with its own To, Date,
Message-ID, X-Idempotency-Key and List-Unsubscribe lines put in between (``render``), handed to the client
as bytes. The messages of a batch go out concurrently, one transaction at a time per pooled connection; a
pooled connection found dropped on first use is reopened and the message tried once more (``_transact``).

Response -> result (every message is its own SMTP transaction, so a refusal never re-sends to others):

    250 after DATA                                   Sent(<Message-ID without brackets>)
    4xx to RCPT or DATA (mailbox busy, greylisting)  Retry("<code> <text>")
    5xx to RCPT or DATA (unknown user, policy)       Failed("rejected", "<code> <text>")
    4xx/5xx to MAIL FROM, EHLO, AUTH, or greeting    Retry (our or the relay's configuration; an operator fixes it)
    connection refused/lost, timeout, TLS failure    Retry (the connection is closed and re-opened on next use)
    recipient address the client cannot send to      Failed("invalid-address")

Server texts are kept with the recipient's address replaced by ``recipient``; logs carry only
delivery ids and codes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass, replace
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import aiosmtplib
import dkim
from pydantic import Field, SecretStr, field_validator, model_validator

from channels.base import Channel, ChannelOptions, ChannelSetup, Failed, OutboundMessage, Retry, SendResult, Sent
from notifier.domain.errors import ConfigError
from notifier.signing import UnsubscribeLinks

log = logging.getLogger("notifier.channels.email")

# 7-bit bodies (quoted-printable or base64) need no 8BITMIME; raw header values are never refolded
POLICY = SMTP_POLICY.clone(cte_type="7bit", refold_source="none")
ONE_CLICK = "List-Unsubscribe=One-Click"
DKIM_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"x-idempotency-key",
]  # fmt: skip
_KEY = re.compile(r"n([0-9]+)-s([0-9]+)-[a-z]+(?:-r[0-9]+)?")
# values the email library writes out unchanged: no encoded words, no folding (short), no quoting
_PLAIN = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_SIMPLE_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_SIMPLE_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_LINE = 78  # the policy's max_line_length: longer lines are folded by the library
_SHARED_KEPT = 16  # contents whose shared part is kept (one per notice and channel being sent)
# refusals of one message; after any other error the connection is closed and opened afresh
_KEEPS_CONNECTION = (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError,
                     aiosmtplib.SMTPSenderRefused)  # fmt: skip


@dataclass(frozen=True)
class _Shared:
    """What every message of one content (subject, text, html) shares, as the email library wrote it."""

    sender: bytes  # the From line
    subject: bytes  # the Subject line, RFC 2047 encoded and folded
    mime: bytes  # MIME-Version, Content-Type (and Content-Transfer-Encoding), blank line, encoded body


class SmtpEmailOptions(ChannelOptions):
    host: str = "localhost"
    port: int | None = Field(None, ge=1, le=65535, description="default 465 with use_tls, 587 with start_tls, else 25")
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False  # implicit TLS from the first byte (port 465)
    start_tls: bool | None = None  # None: upgrade when the server offers it; True: require; False: never
    validate_certs: bool = True
    timeout: float = Field(30, gt=0, le=600, description="seconds per SMTP command")
    pool_size: int = Field(2, ge=1, le=16, description="connections kept open and reused")
    local_hostname: str | None = None  # name sent in EHLO; default: this machine's FQDN
    from_address: str
    from_name: str | None = None
    list_unsubscribe: bool = True  # RFC 8058 headers; needs the unsubscribe links (public URL and secret)
    unsubscribe_mailto: str | None = None  # optional second List-Unsubscribe URI, a mailbox someone reads
    unsubscribe_ttl_days: int = Field(180, ge=1, le=3650)
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_path: str | None = None  # PEM RSA key; its public half at <selector>._domainkey.<domain>

    @field_validator("from_address", "unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                return _mailbox(value)
            except ValueError:
                raise ValueError("expected an e-mail address like notices@example.gov.cn") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmtpEmailOptions:
        if self.use_tls and self.start_tls:
            raise ValueError("use_tls (implicit TLS) and start_tls exclude each other")
        dkim_keys = (self.dkim_selector, self.dkim_domain, self.dkim_private_key_path)
        if any(dkim_keys) and not all(dkim_keys):
            raise ValueError("DKIM needs dkim_selector, dkim_domain and dkim_private_key_path together")
        return self


class SmtpEmailChannel(Channel):
    """The SMTP adapter; ``links`` builds the unsubscribe URLs (``UnsubscribeLinks.from_settings``)."""

    Options = SmtpEmailOptions
    max_batch: ClassVar[int] = 50

    def __init__(
        self, alias: str, options: ChannelOptions | None = None, *, links: UnsubscribeLinks | None = None
    ) -> None:
        super().__init__(alias, options)
        self.links = replace(links, ttl=self.opts.unsubscribe_ttl_days * 86400.0) if links else None
        self._dkim_key: bytes | None = None
        self._free: asyncio.Queue[aiosmtplib.SMTP] | None = None
        self._clients: list[aiosmtplib.SMTP] = []
        self._bodies: dict[tuple[str, str, str | None], _Shared] = {}  # oldest first
        self._domain = self.opts.from_address.rpartition("@")[2]
        self._simple_domain = _SIMPLE_DOMAIN.fullmatch(self._domain) is not None

    @property
    def opts(self) -> SmtpEmailOptions:
        assert isinstance(self.options, SmtpEmailOptions)
        return self.options

    def prepare(self, setup: ChannelSetup) -> None:
        if self.links is None:
            links = UnsubscribeLinks.from_settings(setup.settings)
            self.links = replace(links, ttl=self.opts.unsubscribe_ttl_days * 86400.0)

    async def open(self) -> None:
        """Check the configuration and load the DKIM key; connections open lazily on first use."""
        o = self.opts
        if o.list_unsubscribe and self.links is None:
            raise ConfigError(f"channels.{self.alias}: list_unsubscribe needs the unsubscribe links (public URL)")
        if o.list_unsubscribe and self.links and not self.links.public_url.startswith("https://"):
            log.warning("channel %s: server.public_url is not https; providers will not offer one-click", self.alias)
        if o.dkim_private_key_path:
            try:
                self._dkim_key = await asyncio.to_thread(Path(o.dkim_private_key_path).read_bytes)
                await asyncio.to_thread(self._sign, b"From: a@b.c\r\nSubject: key check\r\n\r\nx\r\n")
            except (OSError, dkim.DKIMException) as exc:
                raise ConfigError(f"channels.{self.alias}.dkim_private_key_path: unusable key: {exc}") from None
        self._clients = [self._client() for _ in range(o.pool_size)]
        self._free = asyncio.Queue()
        for client in self._clients:
            self._free.put_nowait(client)

    async def close(self) -> None:
        for client in self._clients:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        self._clients, self._free = [], None

    async def send(self, batch: list[OutboundMessage]) -> list[SendResult]:
        if self._free is None:
            await self.open()
        outcomes = await asyncio.gather(*(self._send_one(m) for m in batch), return_exceptions=True)
        results: list[SendResult] = []
        for message, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):  # a bug: keep it to its own message, the others stand
                log.error("channel %s: delivery %d: %s", self.alias, message.delivery_id, type(outcome).__name__)
                outcome = Retry(f"internal error: {type(outcome).__name__}")
            results.append(outcome)
        return results

    def _client(self) -> aiosmtplib.SMTP:
        o = self.opts
        return aiosmtplib.SMTP(
            hostname=o.host,
            port=o.port,
            username=o.username,
            password=o.password.get_secret_value() if o.password else None,
            use_tls=o.use_tls,
            start_tls=False if o.use_tls else o.start_tls,
            validate_certs=o.validate_certs,
            timeout=o.timeout,
            local_hostname=o.local_hostname,
        )

    async def _send_one(self, message: OutboundMessage) -> SendResult:
        try:
            recipient = _mailbox(message.recipient)
        except ValueError:
            return Failed("invalid-address", "not an address the SMTP client can send to")
        try:
            raw, message_id = self.render(message, recipient)
        except (ValueError, UnicodeError, MessageError) as exc:
            return Failed("invalid-message", f"the message cannot be encoded: {type(exc).__name__}")
        if self._dkim_key is not None:
            try:
                raw = await asyncio.to_thread(self._sign, raw) + raw
            except dkim.DKIMException as exc:
                return Retry(f"DKIM signing failed: {exc}")
        assert self._free is not None
        client = await self._free.get()
        try:
            await self._transact(client, recipient, raw)
        except asyncio.CancelledError:
            client.close()  # stopped mid-conversation: the connection's state is unknown
            raise
        except ValueError:  # the client's own address check, before any command was sent
            return Failed("invalid-address", "not an address the SMTP client can send to")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            result = _classify(exc, recipient)
            dropped = not isinstance(exc, _KEEPS_CONNECTION) or getattr(exc, "code", None) == 421
            if dropped:
                client.close()  # unknown state: re-opened by the next message that takes this client
            level = logging.WARNING if dropped else logging.INFO
            log.log(level, "channel %s: delivery %d: %s", self.alias, message.delivery_id, result)
            return result
        finally:
            self._free.put_nowait(client)
        return Sent(message_id)

    async def _transact(self, client: aiosmtplib.SMTP, recipient: str, raw: bytes) -> None:
        """One SMTP transaction on ``client``, connecting it first if need be.

        A pooled connection that a server or a NAT dropped while idle shows only when it is written to: then
        it is opened afresh and the same bytes (same Message-ID) are tried once more; a second failure, or any
        failure on a connection opened for this message, is the caller's to classify. Never more than twice.
        """
        reused = client.is_connected
        if not reused:
            await client.connect()
        try:
            await client.sendmail(self.opts.from_address, [recipient], raw)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise
            client.close()
            await client.connect()
            await client.sendmail(self.opts.from_address, [recipient], raw)

    def render(self, message: OutboundMessage, recipient: str) -> tuple[bytes, str]:
        """The message to ``recipient`` as CRLF bytes (unsigned) and its Message-ID without brackets.

        The parts every recipient of the same content shares (From, Subject, the MIME headers and the encoded
        body) come from the email library once per content (``_shared``); the per-recipient header lines are
        joined to them here, each one either a plain ASCII line that needs no encoding or folding, or folded by
        the library (``_header``). Identical, once parsed, to the whole message built by the library.
        """
        shared = self._shared(" ".join((message.subject or "").split()), message.text, message.html)
        message_id = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32] + "@" + self._domain
        lines = [
            shared.sender,
            _header("To", recipient, _SIMPLE_ADDRESS.fullmatch(recipient) is not None),
            shared.subject,
            _date_line(),
            _header("Message-ID", f"<{message_id}>", self._simple_domain),
            _header("X-Idempotency-Key", message.idempotency_key, _is_plain(message.idempotency_key)),
        ]
        for name, value in self._unsubscribe_headers(message).items():
            lines.append(f"{name}: {value}\r\n".encode("ascii"))  # from a signed token and a checked address
        lines.append(shared.mime)
        return b"".join(lines), message_id

    def _shared(self, subject: str, text: str, html: str | None) -> _Shared:
        """From, Subject and the MIME part (headers and encoded body) of a content, built once by the library."""
        key = (subject, text, html)
        shared = self._bodies.get(key)
        if shared is not None:
            return shared
        o = self.opts
        mail = EmailMessage(policy=POLICY)
        mail["From"] = Address(display_name=o.from_name or "", addr_spec=o.from_address)
        mail["Subject"] = subject
        mail.set_content(text, subtype="plain", charset="utf-8")
        if html is not None:
            mail.add_alternative(html, subtype="html", charset="utf-8")
        whole = mail.as_bytes(policy=POLICY)
        sender, subject_line = (POLICY.fold_binary(name, mail[name]) for name in ("From", "Subject"))
        if not whole.startswith(sender + subject_line):
            raise MessageError("unexpected header order from the email library")
        shared = _Shared(sender, subject_line, whole[len(sender) + len(subject_line) :])
        if len(self._bodies) >= _SHARED_KEPT:
            del self._bodies[next(iter(self._bodies))]  # the oldest content: notices go out one after another
        self._bodies[key] = shared
        return shared

    def _unsubscribe_headers(self, message: OutboundMessage) -> dict[str, str]:
        if not self.opts.list_unsubscribe or self.links is None:
            return {}
        if message.notice_id == 0:  # a resident's code or link (notifier.engine.direct): no notice to leave
            return {}
        subscriber_id = _subscriber_id(message)
        if subscriber_id is None:
            log.warning(
                "channel %s: delivery %d: no subscriber id, no List-Unsubscribe", self.alias, message.delivery_id
            )
            return {}
        uris = [f"<{self.links.url(subscriber_id, 'email', message.notice_id)}>"]
        if self.opts.unsubscribe_mailto:
            uris.append(f"<mailto:{self.opts.unsubscribe_mailto}?subject=unsubscribe>")
        return {"List-Unsubscribe": ", ".join(uris), "List-Unsubscribe-Post": ONE_CLICK}

    def _sign(self, raw: bytes) -> bytes:
        """The DKIM-Signature header line(s) for ``raw``; prepend them to the message."""
        o = self.opts
        assert self._dkim_key is not None and o.dkim_selector and o.dkim_domain
        signature: bytes = dkim.sign(
            raw,
            o.dkim_selector.encode(),
            o.dkim_domain.encode(),
            self._dkim_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=DKIM_HEADERS,
        )
        return signature


def _subscriber_id(message: OutboundMessage) -> int | None:
    """The subscriber id inside the idempotency key ``n<notice>-s<subscriber>-<channel>`` set by the engine."""
    match = _KEY.fullmatch(message.idempotency_key)
    return int(match.group(2)) if match else None


def _header(name: str, value: str, simple: bool) -> bytes:
    """The line ``name: value`` as the email library writes it: as is when ``simple`` (a value the library
    leaves unchanged) and short enough not to be folded; otherwise parsed, encoded and folded by the library
    (ValueError for a CR or LF in ``value``)."""
    if simple and len(name) + 2 + len(value) <= _LINE:
        return f"{name}: {value}\r\n".encode("ascii")
    return POLICY.fold_binary(*POLICY.header_store_parse(name, value))


def _is_plain(value: str) -> bool:
    """Printable ASCII words with single spaces and no encoded word: an unstructured value kept as is."""
    return "=?" not in value and _PLAIN.fullmatch(value) is not None


def _date_line() -> bytes:
    return _date_at(int(time.time()))


@lru_cache(maxsize=2)
def _date_at(second: int) -> bytes:
    """The Date line for ``second`` (Unix time), as the library writes ``formatdate(usegmt=True)``."""
    return POLICY.fold_binary(*POLICY.header_store_parse("Date", formatdate(second, usegmt=True)))


def _mailbox(address: str) -> str:
    """A bare address with an internationalised domain in IDNA form; ValueError for anything else
    (display names, lists, CR/LF, non-ASCII local parts, which would need SMTPUTF8)."""
    local, _, domain = address.strip().rpartition("@")
    try:
        if not local or not domain or not local.isascii():
            raise ValueError("not an ASCII mailbox")
        mailbox = f"{local}@{domain.encode('idna').decode('ascii')}"
        if not _SIMPLE_ADDRESS.fullmatch(mailbox):  # a plain dot-atom address needs no parser to tell
            Address(addr_spec=mailbox)
    except (ValueError, IndexError, UnicodeError, MessageError):
        raise ValueError("not a mailbox the SMTP client can send to") from None
    return mailbox


def _classify(exc: BaseException, recipient: str) -> SendResult:
    """Translate an aiosmtplib error into a result (the table in the module docstring)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return Retry(f"SMTP connection: {type(exc).__name__}: {_redact(str(exc), recipient)}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = f"{exc.code} {_redact(exc.message, recipient)}"
        refused = isinstance(exc, (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError))
        if refused and 500 <= exc.code < 600:
            return Failed("rejected", reply)
        return Retry(reply if refused else f"SMTP {type(exc).__name__}: {reply}")
    return Retry(f"SMTP {type(exc).__name__}: {_redact(str(exc), recipient)}")


def _redact(text: str, recipient: str) -> str:
    text = re.sub(re.escape(recipient), "recipient", text, flags=re.IGNORECASE) if recipient else text
    return " ".join(text.split())[:300]
