"""A real SMTP server for the local stack: the relay e-mail notifications go through.

aiosmtpd (from PyPI) on 127.0.0.1, run as an operator's relay would be: STARTTLS offered
and required before anything else, with a certificate for 127.0.0.1 from the stack's CA
(the client verifies it, as it verifies a real relay's), and AUTH required, only over
TLS, with a username and a password the stack puts into the Secret Manager stand-in (the
functions read it as they do in the cloud: SMTP_PASSWORD_SECRET). The production code
(shared/smtp_mail.py) runs unchanged against it.

Every message taken is kept: `received()` for tests (in-process), and a file per message,
<folder>/<UTC time>-<n>.eml, for people (./scripts/dev prints where). `answer(address, reply)` makes
it refuse mail to one address with that reply (tests: "550 5.1.1 ..." is refused for good,
"450 4.2.1 ..." tried again).
"""

from __future__ import annotations

import email
import email.policy
import logging
import secrets
import ssl
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devstack.local_ca import LocalCa
from devstack.processes import free_port

USERNAME = "license-server"
# aiosmtpd 1.4 still fills its deprecated Session.login_data after every AUTH, logging a warning each time
logging.getLogger("mail.log").addFilter(lambda record: "Session.login_data is deprecated" not in record.getMessage())


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server took it: its envelope, how the session was, its bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    tls: bool  # the session had STARTTLS before the message
    authenticated_as: str | None

    @property
    def message(self) -> EmailMessage:
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # what policy.default makes
        return message


class _Handler:
    def __init__(self, server: LocalSmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        refusal = self._server.refusal(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        content = envelope.original_content or (envelope.content if isinstance(envelope.content, bytes) else b"")
        self._server.keep(ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), content,
                                       tls=session.ssl is not None, authenticated_as=login))
        return "250 2.0.0 Message accepted for delivery"


class LocalSmtpServer:
    """aiosmtpd on a free port of 127.0.0.1 with STARTTLS and AUTH required."""

    def __init__(self, *, ca: LocalCa | None = None, folder: Path | None = None) -> None:
        self.password = secrets.token_urlsafe(24)
        self.username = USERNAME
        self.ca = ca or LocalCa("Local stack CA")
        self._dir = tempfile.TemporaryDirectory(prefix="smtp-")
        self._tls = self.ca.issue_server_certificate("127.0.0.1", Path(self._dir.name) / "tls")
        self.folder = folder or Path(self._dir.name) / "mail"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._refusals: dict[str, str] = {}
        self._controller: Controller | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def ca_file(self) -> Path:
        """The PEM of the CA the server's certificate chains to (SMTP_CA_FILE)."""
        return self._tls.ca_file

    def start(self) -> LocalSmtpServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._tls.cert_file, self._tls.key_file)
        for _ in range(5):  # a free port may be taken before the bind: try another
            port = free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=port, server_hostname="smtp.local-stack",
                                    ready_timeout=10, tls_context=context, require_starttls=True, auth_required=True,
                                    auth_require_tls=True, authenticator=self._authenticate)
            try:
                controller.start()
            except OSError:
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError("the SMTP server did not start on any of 5 free ports")

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        good = (isinstance(auth_data, LoginPassword) and auth_data.login == self.username.encode()
                and secrets.compare_digest(auth_data.password, self.password.encode()))
        return AuthResult(success=good, handled=False, auth_data=auth_data if good else None)

    # -- what tests and people read -----------------------------------------------------------
    def keep(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._received.append(mail)
            # named by when it came (a folder kept across runs of ./scripts/dev never has a name twice)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            (self.folder / f"{stamp}-{len(self._received):05d}.eml").write_bytes(mail.raw)

    def received(self, to: str | None = None) -> list[ReceivedMail]:
        """Every message taken (to one address: `to`), oldest first."""
        with self._lock:
            return [m for m in self._received if to is None or to.lower() in (r.lower() for r in m.rcpt_tos)]

    def answer(self, address: str, reply: str | None) -> None:
        """Refuse RCPT TO `address` with `reply` (e.g. "550 5.1.1 no such user"); None: accept again."""
        with self._lock:
            if reply is None:
                self._refusals.pop(address.lower(), None)
            else:
                self._refusals[address.lower()] = reply

    def refusal(self, address: str) -> str | None:
        with self._lock:
            return self._refusals.get(address.lower())

    def describe(self) -> str:
        return (f"SMTP relay: aiosmtpd at {self.host}:{self.port}, STARTTLS required (a certificate of the stack's CA "
                f"for 127.0.0.1), AUTH as {self.username}; every message received is kept in {self.folder}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._dir.cleanup()
