"""A real SMTP server on loopback that keeps what it receives."""

from __future__ import annotations

import asyncio
import re
import time
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.server import free_port


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def messages_to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for_code(self, address: str, within_s: float = 10.0) -> str:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for message in reversed(self.messages_to(address)):
                body = message.get_payload(decode=True)
                assert isinstance(body, bytes)
                match = re.search(rb"\b(\d{6})\b", body)
                if match:
                    return match.group(1).decode()
            await asyncio.sleep(0.02)
        raise AssertionError(f"no code mailed to {address}")

    def smtp_config(self) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "security": "none"}
