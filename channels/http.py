"""The HTTP layer every HTTP adapter shares: one session, timeouts, classification, redaction.

An adapter subclasses ``HttpChannel`` (options: subclass ``HttpOptions``), calls ``await self.request(...)``
and gets either an ``HttpReply`` (the provider answered; the adapter reads the body) or a ``Retry``
(the provider could not be reached). ``classify_status(reply)`` gives the default result for a status
that is not a success, so no adapter repeats the try/except/log block:

    transport problem                              result
    ---------------------------------------------  --------------------------------------------
    timeout (connect or total)                     Retry("timeout")
    connection refused, DNS, TLS, bad reply,       Retry("connection error: <class>")
    a body cut off before its announced length
    the connection dropped after the request went  Retry(OUTCOME_UNKNOWN): the provider may have taken the
    out and before the reply's status line         message; sent once, never again by aiohttp (below)
    HTTP 2xx                                       None: the adapter reads the body
    HTTP 429                                       Retry("http 429", retry_after=Retry-After)
    HTTP 408                                       Retry("http 408") (the provider timed out)
    HTTP 5xx                                       Retry("http 5xx", retry_after=Retry-After if sent)
    HTTP 4xx (other), 1xx/3xx                      Failed("http-4xx", <redacted body snippet>)

No request is resent behind the engine's back. aiohttp's client sends a request of an idempotent method
(GET, PUT, DELETE...; ``aiohttp.client.IDEMPOTENT_METHODS``) a second time, on a new connection and without a
word, when a kept-alive connection drops before the reply (RFC 9112 9.3.1 allows it). Kannel's sendsms is a GET:
a gateway that took the message before the connection dropped sent it twice (20,006 messages at the sink of
one loaded benchmark round of 20,000), with one send in our records. The session's client middleware
``_no_silent_resend`` (public aiohttp API since 3.12) turns that drop into ``OutcomeUnknown``, which aiohttp
passes up instead of resending; the engine gets ``Retry(OUTCOME_UNKNOWN)``, counts the try, writes the reason
into the delivery's ``last_error`` and decides what follows as for any other Retry.
tests/test_http_no_resend.py counts the requests a real server reads, for every method.

``Retry-After`` is read as seconds or as an HTTP date (RFC 9110 10.2.3); a value in the past is 0, one beyond a day
is a day (``MAX_RETRY_AFTER``), and a negative or unreadable one is ignored.

Redaction: ``self.redact(text)`` removes every ``SecretStr`` value of the adapter's options, the values
of secret-looking parameters (``password=``, ``token=``, ``sign=``...) and masks phone numbers
(``+8613800138000`` -> ``+86138****8000``). Everything this module logs or puts into a reason goes
through it; adapters must do the same with anything they log.

One ``aiohttp.ClientSession`` per adapter, opened in ``open()`` and closed in ``close()``; its
connection pool is bounded by ``max_connections`` (small gateways such as Kannel listen with a backlog
of 10, so the default is 8) and keeps connections alive between sends. As many requests as the pool has
connections are in flight at once (every worker's batches share them); the others wait for a turn
before their request starts, so ``timeout`` and ``connect_timeout`` time the exchange with the
provider, never the wait for a free connection, and a batch of any size can run concurrently. A batch
takes up to ``timeout`` per turn of the pool; a request whose turn comes too late to be answered before the
batch's deadline (``channels.base.SendWindow``, set by the engine around ``send``; the batch's first turn
always goes) is not started and answers ``Retry(started=False)``: a slow provider gets as many messages as
the time allows, the rest go in the next batch, and no batch is cut off half-sent (so ``batch_limit`` is
``max_batch``, not a worst case of turns).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, Field, SecretStr
from yarl import URL

from channels.base import Channel, ChannelOptions, Failed, OutboundMessage, Retry, SendResult, send_window
from notifier.domain.masking import mask_phones_in_text
from notifier.domain.text import ascii_digits

log = logging.getLogger("notifier.channels.http")

MAX_BODY_BYTES = 65_536  # a provider's reply larger than this is cut; no SMS gateway answers more
SNIPPET_CHARS = 200  # how much of a reply body goes into a Failed detail or a log line
MAX_RETRY_AFTER = 86400.0  # seconds: the longest wait a Retry-After header is taken for (a daily limit's)

_SECRET_PARAMS = re.compile(
    r"(?i)\b(password|passwd|pass|pwd|token|secret|api[-_]?key|access[-_]?key(?:[-_]?secret)?|"
    r"secret[-_]?key|signature|sign|sig|authorization)(\"?\s*[=:]\s*\"?)([^&\s\"',;]+)"
)

OUTCOME_UNKNOWN = "connection dropped before the reply: the provider may have taken the message"
UNRECOGNISED = "unrecognised answer: the provider may have taken the message"  # a 2xx that says neither yes nor no


class OutcomeUnknown(aiohttp.ClientError):
    """The connection dropped after the request was handed to it and before the reply's status line."""


async def _no_silent_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: a drop of the connection after it was opened leaves aiohttp as ``OutcomeUnknown``.

    aiohttp resends a request of an idempotent method once when its handler raises ``ServerDisconnectedError``
    or ``ClientOSError`` (not when the connection could not be opened: ``ClientConnectorError``, connect
    timeout); any other ``ClientError`` it raises as it is. Nothing is resent then, and the caller hears of it.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # the connection was never opened: nothing was sent (aiohttp does not resend these either)
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise OutcomeUnknown(f"{type(exc).__name__}: {exc}") from exc


class HttpOptions(ChannelOptions):
    """Options every HTTP adapter has, besides its own."""

    timeout: float = Field(10.0, gt=0, le=300, description="seconds for the whole request")
    connect_timeout: float = Field(5.0, gt=0, le=60, description="seconds to open the connection")
    max_connections: int = Field(8, ge=1, le=100, description="connection pool size of this alias")


@dataclass(frozen=True)
class HttpReply:
    """What the provider answered; ``body`` is at most MAX_BODY_BYTES."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (or nested too deep for the parser: ``[[[[...``)."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret values, secret-looking parameters or phone numbers."""
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return mask_phones_in_text(text)


def secret_values(options: BaseModel) -> list[str]:
    """Every SecretStr value in an options model (also inside nested models, lists and dicts)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(options)
    return found


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent/invalid. At most
    ``MAX_RETRY_AFTER``: a header of years (a proxy's, or a typo) would park the message past any notice's end."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if ascii_digits(value):
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - current), MAX_RETRY_AFTER)


def classify_status(reply: HttpReply, secrets: Iterable[str] = ()) -> Retry | Failed | None:
    """The default result of an HTTP status: None for 2xx (the adapter decides), else Retry or Failed."""
    status = reply.status
    if 200 <= status < 300:
        return None
    if status == 429 or status == 408 or status >= 500:
        return Retry(f"http {status}", parse_retry_after(reply.headers.get("Retry-After")))
    snippet = redact(reply.text[:SNIPPET_CHARS], secrets).strip()
    return Failed(f"http-{status}", snippet)


class HttpChannel(Channel):
    """Base of HTTP adapters: owns the session; ``request`` never raises for transport problems."""

    Options: ClassVar[type[ChannelOptions]] = HttpOptions
    messages_per_request: ClassVar[int] = 1  # messages one provider request carries (Tencent: 200 numbers)

    def __init__(self, alias: str, options: ChannelOptions | None = None) -> None:
        super().__init__(alias, options)
        self._session: aiohttp.ClientSession | None = None
        self._turns: asyncio.Semaphore | None = None  # one per pooled connection
        self._secrets = secret_values(self.options)

    @property
    def http_options(self) -> HttpOptions:
        assert isinstance(self.options, HttpOptions)
        return self.options

    async def open(self) -> None:
        if self._session is not None:
            return
        opts = self.http_options
        self._turns = asyncio.Semaphore(opts.max_connections)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=opts.timeout, connect=opts.connect_timeout),
            connector=aiohttp.TCPConnector(limit=opts.max_connections),
            headers={"User-Agent": "notifier"},
            middlewares=(_no_silent_resend,),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def batch_limit(self, seconds: float) -> int:
        """``max_batch``, whatever ``seconds``: a request that could not be answered in the batch's time is not
        started (``request`` and ``SendWindow``), so no batch is cut off half-sent however slow the provider."""
        del seconds
        return self.max_batch

    async def send_each(
        self, batch: Sequence[OutboundMessage], send_one: Callable[[OutboundMessage], Awaitable[SendResult]]
    ) -> list[SendResult]:
        """``send_one`` for each message of a batch (one request a message), the results in the batch's order:
        as many lanes as the pool has connections, each taking the next message not yet taken. A task a message
        (a hundred a batch, nearly all of them queueing for a turn of the pool) cost the engine about 5 % more
        processor time a message in ``bench sms`` (three pairs of runs, each lower with lanes)."""
        results: list[SendResult | None] = [None] * len(batch)
        taken = 0

        async def lane() -> None:
            nonlocal taken
            while taken < len(batch):
                index = taken
                taken += 1
                try:
                    results[index] = await send_one(batch[index])
                except BaseException:
                    taken = len(batch)  # the batch is answered Retry as a whole: the other lanes start no more
                    raise

        lanes = min(len(batch), self.http_options.max_connections)
        if lanes == 1:
            await lane()
        elif lanes > 1:
            await asyncio.gather(*(lane() for _ in range(lanes)))
        return [result for result in results if result is not None]

    def classify(self, reply: HttpReply) -> Retry | Failed | None:
        return classify_status(reply, self._secrets)

    async def request(self, method: str, url: str | URL, **kwargs: Any) -> HttpReply | Retry:
        """Send one request (``kwargs`` as for aiohttp: params, data, json, headers); Retry on transport errors.

        ``url`` may be a ``yarl.URL`` built with ``encoded=True`` (a query encoded by the adapter, sent as is).
        """
        if self._session is None or self._turns is None:
            raise RuntimeError(f"channel {self.alias!r} used before open()")
        async with self._turns:
            if not self._may_start():
                return Retry("not started: the batch's time ran out before a connection was free", started=False)
            return await self._exchange(method, url, **kwargs)

    def _may_start(self) -> bool:
        """Whether a request may start now, counting it as begun when it may (``SendWindow.starts``): it is
        answered (or timed out) before the batch's deadline, or it is of the batch's first turn of the pool."""
        window = send_window.get()
        if window is None:
            return True
        opts = self.http_options
        if window.starts < opts.max_connections or asyncio.get_running_loop().time() + opts.timeout <= window.deadline:
            window.starts += 1
            return True
        return False

    async def _exchange(self, method: str, url: str | URL, **kwargs: Any) -> HttpReply | Retry:
        assert self._session is not None
        try:
            async with self._session.request(method, url, **kwargs) as response:
                body = await read_body(response)
                # the response's own (case-insensitive, read-only) headers: no copy per response
                reply = HttpReply(response.status, response.headers, body)
        except TimeoutError:
            log.warning("%s: %s %s timed out", self.alias, method, self.redact(_origin(str(url))))
            return Retry("timeout")
        except OutcomeUnknown as exc:
            log.warning(
                "%s: %s %s: %s (%s)",
                self.alias,
                method,
                self.redact(_origin(str(url))),
                OUTCOME_UNKNOWN,
                self.redact(str(exc)),
            )
            return Retry(OUTCOME_UNKNOWN)
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"connection error: {type(exc).__name__}"
            log.warning(
                "%s: %s %s failed: %s", self.alias, method, self.redact(_origin(str(url))), self.redact(str(exc))
            )
            return Retry(reason)
        if reply.status >= 300:
            log.info(
                "%s: %s %s -> %d %s",
                self.alias,
                method,
                self.redact(_origin(str(url))),
                reply.status,
                self.redact(reply.text[:SNIPPET_CHARS]),
            )
        return reply


async def read_body(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, up to MAX_BODY_BYTES. One ``read(n)`` returns what has arrived so far, not the
    body: a reply split over several packets would be read short, and one whose connection dropped
    mid-body would pass for complete; reading to the end raises ``ClientPayloadError`` for the latter. Once the
    whole body has arrived and been read (``at_eof``: its announced end reached, nothing left buffered), no read
    more is needed to learn it: the usual short reply is one read, not two."""
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        chunk = await content.read(MAX_BODY_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if content.at_eof():
            break
    return b"".join(chunks)


def _origin(url: str) -> str:
    """The URL without its query string: queries carry credentials and phone numbers."""
    return url.split("?", 1)[0]


__all__ = [
    "OUTCOME_UNKNOWN",
    "UNRECOGNISED",
    "HttpChannel",
    "HttpOptions",
    "HttpReply",
    "classify_status",
    "parse_retry_after",
    "redact",
    "secret_values",
]
