"""The SMTP e-mail adapter against a real aiosmtpd server: what the server received is what we assert."""

from __future__ import annotations

import base64
import email
import logging
import re
from collections.abc import AsyncIterator, Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from channels.base import Failed, OutboundMessage, Retry, Sent
from channels.email_smtp import POLICY, SmtpEmailChannel, SmtpEmailOptions
from notifier.domain.errors import ConfigError
from notifier.signing import UnsubscribeLinks, read_unsubscribe
from tests.smtp_server import Recorder, SmtpServer, free_port

SECRET = SecretStr("test-signing-secret")
PUBLIC_URL = "https://notify.example.test"
SUBJECT = "停水通知：宝都街道 7 月 3 日 8:00-18:00"
TEXT = "尊敬的居民：因管网维修，宝都街道恒盛社区 7 月 3 日停水。请提前储水。"
HTML = "<p>尊敬的居民：因管网维修，<b>宝都街道恒盛社区</b> 7 月 3 日停水。</p>"


def links() -> UnsubscribeLinks:
    return UnsubscribeLinks(PUBLIC_URL, SECRET)


def outbound(n: int, recipient: str, *, html: str | None = HTML, subscriber: int | None = None) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=100 + n,
        notice_id=7,
        channel="email",
        alias="mail",
        recipient=recipient,
        text=TEXT,
        idempotency_key=f"n7-s{subscriber or 1000 + n}-email",
        subject=SUBJECT,
        html=html,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[SmtpServer]:
    smtp = SmtpServer(recorder)
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()


def options(server: SmtpServer, **extra: Any) -> SmtpEmailOptions:
    base = {
        "host": server.host,
        "port": server.port,
        "start_tls": False,
        "timeout": 10,
        "local_hostname": "notify.example.test",
        "from_address": "notices@example.test",
        "from_name": "昌乐县应急管理局",
    }
    return SmtpEmailOptions.model_validate(base | extra)


@pytest.fixture
async def channel(server: SmtpServer) -> AsyncIterator[SmtpEmailChannel]:
    adapter = SmtpEmailChannel("mail", options(server, unsubscribe_mailto="unsubscribe@example.test"), links=links())
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_message_on_the_wire(channel: SmtpEmailChannel, recorder: Recorder) -> None:
    [result] = await channel.send([outbound(1, "resident1@example.test")])

    assert isinstance(result, Sent)
    [received] = recorder.received
    assert received.mail_from == "notices@example.test"
    assert received.rcpt_tos == ["resident1@example.test"]
    mail = received.parsed()
    assert mail["Subject"] == SUBJECT
    assert mail["From"].addresses[0].display_name == "昌乐县应急管理局"
    assert mail["Message-ID"] == f"<{result.provider_message_id}>"
    assert mail["X-Idempotency-Key"] == "n7-s1001-email"
    assert mail.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in mail.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert mail.get_body(("plain",)).get_content().strip() == TEXT  # type: ignore[union-attr]
    assert mail.get_body(("html",)).get_content().strip() == HTML  # type: ignore[union-attr]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.search(rb"^List-Unsubscribe: <https://[^\r\n]+>\r?$", received.raw, re.MULTILINE)  # one plain line
    assert received.raw.isascii()  # 7-bit transfer encodings: no 8BITMIME needed on the way
    uris = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    assert uris[1] == "mailto:unsubscribe@example.test?subject=unsubscribe"
    assert uris[0].startswith(PUBLIC_URL + "/unsubscribe?token=")
    claims = read_unsubscribe(uris[0].partition("token=")[2], SECRET)
    assert (claims.subscriber_id, claims.channel, claims.notice_id) == (1001, "email", 7)


async def test_retry_carries_the_same_message_id(channel: SmtpEmailChannel, recorder: Recorder) -> None:
    first = await channel.send([outbound(1, "resident1@example.test")])
    again = await channel.send([outbound(1, "resident1@example.test")])
    other = await channel.send([outbound(2, "resident2@example.test")])

    assert first == again != other
    ids = [r.parsed()["Message-ID"] for r in recorder.received]
    assert ids[0] == ids[1] != ids[2]


async def test_text_only_without_html(channel: SmtpEmailChannel, recorder: Recorder) -> None:
    [result] = await channel.send([outbound(1, "resident1@example.test", html=None)])

    assert isinstance(result, Sent)
    mail = recorder.received[0].parsed()
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == TEXT
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def _dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


async def test_dkim_signature_verifies_and_covers_list_unsubscribe(
    server: SmtpServer, recorder: Recorder, tmp_path: Path
) -> None:
    path, record = _dkim_key(tmp_path)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        asked.append(name)
        return record if name == b"mail2024._domainkey.example.test." else None

    opts = options(server, dkim_selector="mail2024", dkim_domain="example.test", dkim_private_key_path=str(path))
    adapter = SmtpEmailChannel("mail", opts, links=links())
    await adapter.open()
    try:
        assert isinstance((await adapter.send([outbound(1, "resident1@example.test")]))[0], Sent)
    finally:
        await adapter.close()

    raw = recorder.received[0].raw
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"mail2024._domainkey.example.test."]
    signature = recorder.received[0].parsed()["DKIM-Signature"]
    tags = dict(tag.strip().split("=", 1) for tag in "".join(signature.split()).split(";") if tag)
    signed = tags["h"].lower().split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject", "message-id"} <= set(signed)
    assert (tags["d"], tags["s"]) == ("example.test", "mail2024")
    forged = re.sub(rb"token=[A-Za-z0-9_.%-]+", b"token=forged", raw, count=1)
    assert forged != raw and not dkim.verify(forged, dnsfunc=dns)


async def test_refusals_are_per_recipient_and_others_are_sent_once(
    channel: SmtpEmailChannel, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notifier")
    recorder.refuse = {
        "busy@example.test": "450 4.2.1 <busy@example.test>: mailbox busy",
        "gone@example.test": "550 5.1.1 <gone@example.test>: user unknown",
    }
    addresses = ["a@example.test", "busy@example.test", "gone@example.test", "b@example.test", "c@example.test"]

    results = await channel.send([outbound(i, address) for i, address in enumerate(addresses)])

    assert [type(r) for r in results] == [Sent, Retry, Failed, Sent, Sent]
    retry, failed = results[1], results[2]
    assert isinstance(retry, Retry) and retry.reason.startswith("450 ")
    assert isinstance(failed, Failed) and failed.reason_code == "rejected"
    assert failed.detail.startswith("550 5.1.1") and "gone@" not in failed.detail and "<recipient>:" in failed.detail
    for address in ("a@example.test", "b@example.test", "c@example.test"):
        assert len(recorder.to(address)) == 1
    assert sorted(recorder.rcpt_attempts) == sorted(addresses)
    assert len(recorder.received) == 3
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("notifier")]
    assert any("delivery 101" in line and "450" in line for line in ours)
    assert not any("@" in line or "昌乐" in line for line in ours)


async def test_connections_are_reused_across_a_batch_and_batches(
    channel: SmtpEmailChannel, server: SmtpServer, recorder: Recorder
) -> None:
    first = await channel.send([outbound(i, f"r{i}@example.test") for i in range(10)])
    second = await channel.send([outbound(i, f"r{i}@example.test") for i in range(10, 20)])

    assert all(isinstance(r, Sent) for r in first + second)
    assert len(recorder.received) == 20
    assert 1 <= server.connections <= 2  # pool_size defaults to 2
    assert recorder.sessions_used == server.connections


async def test_connections_reopen_after_the_server_drops_them(
    channel: SmtpEmailChannel, server: SmtpServer, recorder: Recorder
) -> None:
    assert all(isinstance(r, Sent) for r in await channel.send([outbound(i, f"r{i}@example.test") for i in range(4)]))
    before = server.connections
    server.restart()

    results = await channel.send([outbound(i, f"r{i}@example.test") for i in range(4, 8)])

    assert all(isinstance(r, Sent) for r in results), results
    assert server.connections > before
    assert len(recorder.received) == 8


async def test_unreachable_server_means_retry(recorder: Recorder) -> None:
    opts = SmtpEmailOptions(host="127.0.0.1", port=free_port(), timeout=5, from_address="notices@example.test")
    adapter = SmtpEmailChannel("mail", opts, links=links())
    results = await adapter.send([outbound(1, "a@example.test"), outbound(2, "b@example.test")])
    await adapter.close()

    assert [type(r) for r in results] == [Retry, Retry]
    assert all("connection" in r.reason.lower() for r in results if isinstance(r, Retry))


async def test_bad_address_fails_alone(channel: SmtpEmailChannel, recorder: Recorder) -> None:
    batch = [outbound(1, "ok@example.test"), outbound(2, "no address"), outbound(3, "x@example.test\r\nBcc: y@z.test")]

    results = await channel.send(batch)

    assert [type(r) for r in results] == [Sent, Failed, Failed]
    assert all(r.reason_code == "invalid-address" for r in results[1:] if isinstance(r, Failed))
    assert [r.rcpt_tos for r in recorder.received] == [["ok@example.test"]]


async def test_internationalised_domain_goes_out_in_idna(channel: SmtpEmailChannel, recorder: Recorder) -> None:
    [result] = await channel.send([outbound(1, "juming@昌乐.中国")])

    assert isinstance(result, Sent)
    assert recorder.received[0].rcpt_tos == ["juming@xn--fjq819c.xn--fiqs8s"]


async def test_without_subscriber_id_there_is_no_unsubscribe_header(
    channel: SmtpEmailChannel, recorder: Recorder
) -> None:
    message = outbound(1, "a@example.test")
    odd = OutboundMessage(**{**message.__dict__, "idempotency_key": "custom-key"})

    assert isinstance((await channel.send([odd]))[0], Sent)
    assert "List-Unsubscribe" not in recorder.received[0].parsed()


async def test_a_reminder_sent_again_keeps_its_unsubscribe_header_and_gets_a_new_message_id(
    channel: SmtpEmailChannel, recorder: Recorder
) -> None:
    message = outbound(1, "a@example.test")
    again = OutboundMessage(**{**message.__dict__, "idempotency_key": message.idempotency_key + "-r1"})

    assert all(isinstance(result, Sent) for result in await channel.send([message, again]))
    first, second = (received.parsed() for received in recorder.received)
    assert second["X-Idempotency-Key"] == first["X-Idempotency-Key"] + "-r1"
    assert second["Message-ID"] != first["Message-ID"]
    assert second["List-Unsubscribe"] == first["List-Unsubscribe"]


async def test_starttls_and_login(recorder: Recorder, tmp_path: Path) -> None:
    tls = _self_signed(tmp_path)
    server = SmtpServer(recorder, credentials=("county", "s3cret"), tls_context=tls, require_starttls=True)
    server.start()
    try:
        opts = options(server, start_tls=True, validate_certs=False, username="county", password="s3cret")
        adapter = SmtpEmailChannel("mail", opts, links=links())
        sent = await adapter.send([outbound(1, "a@example.test")])
        await adapter.close()
        wrong_opts = options(server, start_tls=True, validate_certs=False, username="county", password="wrong")
        wrong = SmtpEmailChannel("mail", wrong_opts, links=links())
        refused = await wrong.send([outbound(2, "b@example.test")])
        await wrong.close()
    finally:
        server.stop()

    assert isinstance(sent[0], Sent)
    assert isinstance(refused[0], Retry) and "535" in refused[0].reason
    assert [r.rcpt_tos for r in recorder.received] == [["a@example.test"]]


def _self_signed(tmp_path: Path) -> Any:
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": "blue"}, "Extra inputs are not permitted"),
        ({"use_tls": True, "start_tls": True}, "exclude each other"),
        ({"dkim_selector": "s1"}, "together"),
        ({"from_address": "not an address"}, "e-mail address"),
        ({"pool_size": 0}, "greater than or equal to 1"),
    ],
)
def test_options_are_checked(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SmtpEmailOptions.model_validate({"from_address": "notices@example.test"} | extra)


async def test_open_refuses_unsubscribe_without_links(server: SmtpServer) -> None:
    with pytest.raises(ConfigError, match="list_unsubscribe"):
        await SmtpEmailChannel("mail", options(server)).open()
    with pytest.raises(ConfigError, match="dkim_private_key_path"):
        bad = options(server, dkim_selector="s", dkim_domain="example.test", dkim_private_key_path="/nonexistent.pem")
        await SmtpEmailChannel("mail", bad, links=links()).open()


async def test_unsubscribe_headers_can_be_switched_off(server: SmtpServer, recorder: Recorder) -> None:
    adapter = SmtpEmailChannel("mail", options(server, list_unsubscribe=False))
    assert isinstance((await adapter.send([outbound(1, "a@example.test")]))[0], Sent)
    await adapter.close()

    mail = recorder.received[0].parsed()
    assert "List-Unsubscribe" not in mail and "List-Unsubscribe-Post" not in mail


def library_built(channel: SmtpEmailChannel, message: OutboundMessage, recipient: str, like: EmailMessage) -> bytes:
    """``message`` built whole by the email library, as the adapter once did; Date and List-Unsubscribe (a token
    with an expiry in it) taken from ``like``, the adapter's message."""
    o = channel.opts
    mail = EmailMessage(policy=POLICY)
    mail["From"] = Address(display_name=o.from_name or "", addr_spec=o.from_address)
    mail["To"] = Address(addr_spec=recipient)
    mail["Subject"] = " ".join((message.subject or "").split())
    mail["Date"] = str(like["Date"])
    mail["Message-ID"] = str(like["Message-ID"])
    mail["X-Idempotency-Key"] = message.idempotency_key
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
        if name in like:
            mail.set_raw(name, str(like[name]))
    mail.set_content(message.text, subtype="plain", charset="utf-8")
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail.as_bytes(policy=POLICY)


def parse(raw: bytes) -> EmailMessage:
    mail = email.message_from_bytes(raw, policy=default)
    assert isinstance(mail, EmailMessage) and not mail.defects
    return mail


def described(mail: EmailMessage) -> list[tuple[object, ...]]:
    """Every part's headers (the multipart boundary left out) and every leaf's decoded content, in order."""
    parts: list[tuple[object, ...]] = []
    for part in mail.walk():
        headers = [(name, str(value)) for name, value in part.items() if name.lower() != "content-type"]
        params = sorted((k, v) for k, v in part["Content-Type"].params.items() if k != "boundary")
        content = None if part.is_multipart() else part.get_content()
        parts.append((part.get_content_type(), params, headers, content, [type(d) for d in part.defects]))
    return parts


@pytest.mark.parametrize(
    ("recipient", "key", "subject", "html"),
    [
        ("resident1@example.test", "n7-s1001-email", SUBJECT, HTML),
        ("resident1@example.test", "n7-s1001-email", SUBJECT, None),
        ("juming@xn--fjq819c.xn--fiqs8s", "n7-s1001-email", "Water off  on 3 July,\tBaodu street", HTML),
        ('"two words"@example.test', "custom key with spaces", "短", HTML),
        ("r" * 70 + "@" + "long-domain." * 5 + "test", "n7-s1001-email", "停水" * 40, HTML),
        ("resident1@example.test", "=?utf-8?q?looks_encoded?=", SUBJECT, HTML),
        ("resident1@example.test", "k" * 90, "", "<p>" + "停水通知 " * 300 + "</p>"),
        ("resident1@example.test", "密钥-non-ascii", "-- boundary-like subject --", "--==============="),
    ],
)
def test_assembled_bytes_parse_like_the_library_built_message(
    recipient: str, key: str, subject: str, html: str | None
) -> None:
    opts = SmtpEmailOptions(
        from_address="notices@example.test", from_name="昌乐县应急管理局", unsubscribe_mailto="unsubscribe@example.test"
    )
    channel = SmtpEmailChannel("mail", opts, links=links())
    message = OutboundMessage(**{**outbound(1, recipient, html=html).__dict__, "idempotency_key": key})
    message = OutboundMessage(**{**message.__dict__, "subject": subject})

    raw, message_id = channel.render(message, recipient)
    reference = library_built(channel, message, recipient, parse(raw))

    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert described(parse(raw)) == described(parse(reference))
    assert parse(raw)["Message-ID"] == f"<{message_id}>"
    boundary = re.compile(rb"={15}\d+==")  # the library's random boundary; one per content, here per build
    assert boundary.sub(b"B", raw) == boundary.sub(b"B", reference)  # even the bytes, folding and order


def test_recipients_of_one_content_share_its_body_and_nothing_else() -> None:
    opts = SmtpEmailOptions(from_address="notices@example.test")
    channel = SmtpEmailChannel("mail", opts, links=links())
    first, second = outbound(1, "a@example.test"), outbound(2, "b@example.test")
    other = OutboundMessage(**{**outbound(3, "c@example.test").__dict__, "text": "另一条通知"})

    mails = [parse(channel.render(m, m.recipient)[0]) for m in (first, second, other)]

    assert [str(m["To"]) for m in mails] == ["a@example.test", "b@example.test", "c@example.test"]
    assert [m["X-Idempotency-Key"] for m in mails] == ["n7-s1001-email", "n7-s1002-email", "n7-s1003-email"]
    assert len({m["Message-ID"] for m in mails}) == len({m["List-Unsubscribe"] for m in mails}) == 3
    bodies = [m.get_body(("plain",)).get_content().strip() for m in mails]  # type: ignore[union-attr]
    assert bodies == [TEXT, TEXT, "另一条通知"]


def test_a_header_with_a_line_break_makes_the_message_fail_alone() -> None:
    channel = SmtpEmailChannel("mail", SmtpEmailOptions(from_address="notices@example.test"), links=links())
    bad = OutboundMessage(**{**outbound(1, "a@example.test").__dict__, "idempotency_key": "k\r\nBcc: x@y.test"})

    with pytest.raises(ValueError, match="linefeed"):
        channel.render(bad, "a@example.test")


async def test_a_batch_goes_out_over_every_pooled_connection(server: SmtpServer, recorder: Recorder) -> None:
    adapter = SmtpEmailChannel("mail", options(server, pool_size=4), links=links())
    try:
        results = await adapter.send([outbound(i, f"r{i}@example.test") for i in range(12)])
    finally:
        await adapter.close()

    assert all(isinstance(r, Sent) for r in results)
    assert server.connections == recorder.sessions_used == 4
    assert sorted(address for r in recorder.received for address in r.rcpt_tos) == sorted(
        f"r{i}@example.test" for i in range(12)
    )


class DroppingRecorder(Recorder):
    """Aborts the connection at MAIL FROM on the sessions in ``stale`` (a connection dropped while idle), or on
    every session with ``drop_all``."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: set[int] = set()
        self.seen: set[int] = set()
        self.drop_all = False
        self.mail_commands = 0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        self.mail_commands += 1
        self.seen.add(id(session))
        if self.drop_all or id(session) in self.stale:
            assert server.transport is not None
            server.transport.abort()
            return "421 gone"  # never reaches the client: the connection is already closed
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


async def test_a_connection_dropped_while_idle_is_reopened_once(caplog: pytest.LogCaptureFixture) -> None:
    recorder = DroppingRecorder()
    server = SmtpServer(recorder)
    server.start()
    adapter = SmtpEmailChannel("mail", options(server), links=links())
    try:
        first = await adapter.send([outbound(i, f"r{i}@example.test") for i in range(2)])
        recorder.stale = set(recorder.seen)  # the server forgot both pooled connections while they were idle
        second = await adapter.send([outbound(i, f"r{i}@example.test") for i in range(2, 6)])
        opened = server.connections
        recorder.drop_all, recorder.mail_commands = True, 0
        third = await adapter.send([outbound(i, f"r{i}@example.test") for i in range(6, 8)])
    finally:
        await adapter.close()
        server.stop()

    assert all(isinstance(r, Sent) for r in first + second), second
    assert opened == 4  # two, then each reopened once
    assert sorted(r.rcpt_tos[0] for r in recorder.received) == sorted(f"r{i}@example.test" for i in range(6))
    assert [type(r) for r in third] == [Retry, Retry]  # reused and dropped, reopened and dropped again: no loop
    assert recorder.mail_commands == 4
    assert all("connection" in r.reason.lower() for r in third if isinstance(r, Retry))


async def test_a_residents_code_or_link_has_no_unsubscribe_header_and_no_warning(
    channel: SmtpEmailChannel, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Direct messages (notifier.engine.direct: notice 0, negative delivery id) answer a resident's own request:
    there is no notice to leave, so no List-Unsubscribe and nothing to warn about."""
    caplog.set_level(logging.WARNING, logger="notifier.channels.email")
    code = OutboundMessage(delivery_id=-5, notice_id=0, channel="email", alias="mail", recipient="li@example.org",
                           text="请打开链接", idempotency_key="direct-5", subject="您的通知设置链接")  # fmt: skip
    assert isinstance((await channel.send([code]))[0], Sent)
    message = recorder.to("li@example.org")[0].parsed()
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert not [r for r in caplog.records if "List-Unsubscribe" in r.getMessage()]
