"""Sending a notification's mail through the operator's SMTP relay (the standard library's smtplib).

One connection per mail (a notify run sends few), in this order:

    connect SMTP_HOST:SMTP_PORT (587) -> EHLO -> STARTTLS (the certificate verified for
    SMTP_HOST) -> EHLO -> AUTH SMTP_USERNAME (password from Secret Manager) -> MAIL FROM
    MAIL_FROM -> RCPT TO <the address> -> DATA

STARTTLS is required (the relay must offer it) unless SMTP_STARTTLS=0, which shared/
config.py allows only in a demo-* project; AUTH is never sent on a connection without
TLS, whatever the settings say. The password is read from Secret Manager (SMTP_PASSWORD_
SECRET) when first needed, kept for a few minutes, and read again at once when the relay
refuses it (an operator rotated it). Locally the relay's certificate comes from the stack's
own CA (SMTP_CA_FILE); deployed, from the system's trust store.

A failure is never raised: `send` answers a MailSent (the reply code, an error line, the
latency, and whether the relay session itself failed), which the domain judges
(shared/domain/email_notifications.py). No password or message body is in an error.
"""

from __future__ import annotations

import contextlib
import email.policy
import email.utils
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

from shared.domain.email_notifications import MailSent, NotificationMail, address_problem, header_text, message_id
from shared.errors import BackendUnavailable

TIMEOUT_S = 10.0
PASSWORD_TTL_S = 300.0
"""How long a password read from Secret Manager is used before it is read again."""
_REPLY_CHARS = 200
# SMTP's line endings; header lines unfolded up to RFC 5322's hard limit, so that a long
# Message-ID stays on its line (some parsers keep a folded one's leading space)
_POLICY = email.policy.SMTP.clone(max_line_length=998)


class _Password:
    """The relay password of this process: read when needed, kept PASSWORD_TTL_S, forgotten
    when the relay refuses it."""

    def __init__(self, read: Callable[[], str], *, ttl_s: float, monotonic: Callable[[], float]) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: str | None = None
        self._read_at = 0.0

    def get(self) -> str:
        """Raises BackendUnavailable when it cannot be read."""
        with self._lock:
            if self._value is None or self._monotonic() - self._read_at >= self._ttl_s:
                # .strip(): a version added with `echo` ends in a newline that is not the password's
                self._value, self._read_at = self._read().strip(), self._monotonic()
            return self._value

    def forget(self) -> None:
        with self._lock:
            self._value = None


class _RelayFailed(Exception):
    """The session with the relay failed before the message was offered (not the recipient's refusal)."""

    def __init__(self, status: int | None, error: str) -> None:
        super().__init__(error)
        self.status = status


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return header_text(f"{code} {said}", _REPLY_CHARS)


class SmtpMailer:
    """The Mailer port (shared/licensing/ports.py) over an SMTP relay."""

    def __init__(self, *, host: str, port: int, mail_from: str, starttls: bool = True, username: str | None = None,
                 password: Callable[[], str] | None = None, ca_file: str | None = None, timeout_s: float = TIMEOUT_S,
                 password_ttl_s: float = PASSWORD_TTL_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        problem = address_problem(mail_from)
        if problem:
            raise ValueError(f"MAIL_FROM {mail_from!r}: {problem}")
        if username and password is None:
            raise ValueError("an SMTP username needs its password (SMTP_PASSWORD_SECRET)")
        self._host, self._port, self._mail_from = host, port, mail_from
        self._domain = mail_from.rpartition("@")[2].lower()
        self._starttls = starttls
        self._username = username or None
        self._password = _Password(password, ttl_s=password_ttl_s, monotonic=monotonic) if password else None
        self._ca_file = ca_file
        self._timeout_s = timeout_s

    def send(self, to: str, mail: NotificationMail, *, at_ms: int) -> MailSent:
        """Send `mail` to `to` (checked by the caller: address_problem) dated `at_ms`."""
        if address_problem(to):
            raise ValueError("the recipient was not checked (shared/domain/email_notifications.py address_problem)")
        content = self._message(to, mail, at_ms).as_bytes()
        started = time.perf_counter()

        def sent(status: int | None, error: str | None, *, relay_failed: bool = False) -> MailSent:
            return MailSent(status, error, round((time.perf_counter() - started) * 1000), relay_failed=relay_failed)

        try:  # connected by the constructor: its host is then STARTTLS's server name (the certificate's)
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s, local_hostname=self._domain)
        except smtplib.SMTPConnectError as exc:  # a greeting other than 220
            return sent(exc.smtp_code, f"the relay refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}",
                        relay_failed=True)
        except (smtplib.SMTPException, OSError) as exc:
            return sent(None, header_text(f"{type(exc).__name__}: {exc}", _REPLY_CHARS))
        try:
            self._open(smtp)
            code, text = smtp.mail(self._mail_from)
            if code != 250:
                return sent(code, f"MAIL FROM refused: {_reply(code, text)}")
            code, text = smtp.rcpt(to)
            if code not in (250, 251):
                return sent(code, f"recipient refused: {_reply(code, text)}")
            code, text = smtp.data(content)
            return sent(code, None if 200 <= code < 300 else f"message refused: {_reply(code, text)}")
        except _RelayFailed as failed:
            return sent(failed.status, str(failed), relay_failed=True)
        except smtplib.SMTPResponseException as exc:  # DATA refused before the message (not 354)
            return sent(exc.smtp_code, f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:  # no answer: refused or lost connection, timeout, TLS
            return sent(None, header_text(f"{type(exc).__name__}: {exc}", _REPLY_CHARS))
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _open(self, smtp: smtplib.SMTP) -> None:
        """Greet, STARTTLS and AUTH as the settings say. Raises _RelayFailed, or smtplib's and
        the socket's errors when nothing answers."""
        smtp.ehlo()
        if self._starttls:
            if not smtp.has_extn("starttls"):
                raise _RelayFailed(None, "the relay does not offer STARTTLS: nothing is sent in the clear")
            try:
                smtp.starttls(context=ssl.create_default_context(cafile=self._ca_file))
            except smtplib.SMTPResponseException as exc:
                raise _RelayFailed(exc.smtp_code, f"STARTTLS refused: {_reply(exc.smtp_code, exc.smtp_error)}") \
                    from None
            smtp.ehlo()
        if self._username is None:
            return
        if not isinstance(smtp.sock, ssl.SSLSocket):
            raise _RelayFailed(None, "AUTH is never sent without TLS (SMTP_STARTTLS=0 with SMTP_USERNAME)")
        assert self._password is not None
        try:
            try:
                smtp.login(self._username, self._password.get())
            except smtplib.SMTPAuthenticationError:
                self._password.forget()  # rotated since it was read? read it again, once
                smtp.login(self._username, self._password.get())
        except smtplib.SMTPAuthenticationError as exc:
            raise _RelayFailed(exc.smtp_code, f"AUTH refused: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError:
            raise _RelayFailed(None, "the relay offers no AUTH (SMTP_USERNAME is set)") from None
        except smtplib.SMTPException as exc:  # no mechanism in common
            raise _RelayFailed(None, header_text(f"AUTH failed: {exc}", _REPLY_CHARS)) from None
        except BackendUnavailable:
            raise _RelayFailed(None, "the SMTP password could not be read from Secret Manager") from None
        except ValueError as exc:  # SMTP_PASSWORD_SECRET is no secret's name
            raise _RelayFailed(None, header_text(f"SMTP_PASSWORD_SECRET: {exc}", _REPLY_CHARS)) from None

    def _message(self, to: str, mail: NotificationMail, at_ms: int) -> EmailMessage:
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._mail_from
        message["To"] = to
        message["Subject"] = header_text(mail.subject)
        message["Date"] = email.utils.format_datetime(datetime.fromtimestamp(at_ms / 1000, UTC))
        message["Message-ID"] = message_id(mail.event_id, self._domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to it
        for name, value in mail.headers().items():
            message[name] = value
        message.set_content(mail.body)
        return message
