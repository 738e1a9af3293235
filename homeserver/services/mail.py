"""Outgoing e-mail: verification codes over SMTP, or to the log in dev mode."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from homeserver.config import Config

logger = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    def __init__(self, config: Config) -> None:
        self.smtp = config.smtp

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.smtp.verify_tls:  # allowed in dev mode only (Config.validate)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _send_sync(self, message: EmailMessage) -> None:
        cfg = self.smtp
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, context=self._context(), timeout=30)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=30)
        try:
            if cfg.security == "starttls":
                client.starttls(context=self._context())
            if cfg.username:
                client.login(cfg.username, cfg.password)
            client.send_message(message)
        except BaseException:
            client.close()
            raise
        # The server accepted the message: a quirk while saying goodbye (a dropped
        # connection, an odd reply to QUIT) must not fail the request.
        try:
            client.quit()
        except (smtplib.SMTPException, OSError) as exc:
            logger.info("SMTP server %s misbehaved after accepting the mail: %r", cfg.host, exc)
            client.close()

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await asyncio.to_thread(self._send_sync, message)


class LogMailer:
    """Dev mode: writes the message to the log instead of sending it."""

    async def send(self, to: str, subject: str, body: str) -> None:
        logger.warning("DEV MODE e-mail to %s: %s\n%s", to, subject, body)


class BothMailer:
    def __init__(self, *mailers: Mailer) -> None:
        self.mailers = mailers

    async def send(self, to: str, subject: str, body: str) -> None:
        for mailer in self.mailers:
            await mailer.send(to, subject, body)


def build_mailer(config: Config) -> Mailer:
    mailers: list[Mailer] = []
    if config.smtp.host:
        mailers.append(SmtpMailer(config))
    if config.dev_mode and config.security.log_verification_codes:
        mailers.append(LogMailer())
    if not mailers:
        mailers.append(_NoMailer())
    return mailers[0] if len(mailers) == 1 else BothMailer(*mailers)


class _NoMailer:
    async def send(self, to: str, subject: str, body: str) -> None:
        logger.error("no SMTP server configured; cannot send %r to %s", subject, to)
