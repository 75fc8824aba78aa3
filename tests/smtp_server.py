"""A real SMTP server for tests: aiosmtpd's Controller on 127.0.0.1 and a free port, in its own thread.

``Recorder`` keeps every message it accepts (raw bytes and the connection it came on) and refuses
the recipients listed in ``refuse`` at RCPT time with the reply given there (``"450 4.2.1 busy"``).
``SmtpServer`` counts the connections opened to it, and can be restarted on the same port to drop
every client connection. ``tls_context`` offers STARTTLS; ``credentials`` makes AUTH required.
"""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    session: Session  # one per connection

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.raw, policy=default)
        assert isinstance(message, EmailMessage)
        return message


class Recorder:
    """aiosmtpd handler: records accepted messages, refuses chosen recipients."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: dict[str, str] = {}  # lower-case address -> SMTP reply
        self.rcpt_attempts: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            self.rcpt_attempts.append(address)
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        with self._lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw, session))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    @property
    def sessions_used(self) -> int:
        """How many distinct connections delivered accepted messages."""
        sessions: list[Session] = []
        for received in self.received:
            if not any(received.session is known for known in sessions):
                sessions.append(received.session)
        return len(sessions)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _CountingController(Controller):
    def __init__(self, owner: SmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        self.owner.connections += 1
        return super().factory()  # type: ignore[no-any-return, no-untyped-call]


class SmtpServer:
    """The in-process server; ``connections`` counts client connections (not the start-up probe)."""

    def __init__(self, recorder: Recorder, *, credentials: tuple[str, str] | None = None, **smtp: Any) -> None:
        self.recorder = recorder
        self.host = "127.0.0.1"
        self.port = free_port()
        self.connections = 0
        self.credentials = credentials
        self.smtp = dict(smtp)
        if credentials:
            self.smtp.update(authenticator=self._authenticate, auth_required=True)
        self._controller: _CountingController | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        controller = _CountingController(self, self.recorder, hostname=self.host, port=self.port, **self.smtp)
        controller.start()
        self.connections = 0  # forget Controller.start()'s own probe connection
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller.loop.close()
            self._controller = None

    def restart(self) -> None:
        """Stop (dropping every open client connection) and listen again on the same port."""
        connections = self.connections
        self.stop()
        self.start()
        self.connections = connections
