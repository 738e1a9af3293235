"""An SMTP server that answers QUIT oddly after accepting the mail (an error code
instead of 221, as some test and relay servers do) does not fail the request."""

from __future__ import annotations

import socket
import threading
from typing import Any

from tests.support.server import serve_homeserver


class RudeSmtpServer:
    """Accepts every message, then answers QUIT with an error and hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.messages: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                conn.sendall(b"220 rude.example ESMTP\r\n")
                while line := reader.readline():
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb in (b"EHLO", b"HELO"):
                        conn.sendall(b"250 rude.example\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go ahead\r\n")
                        data = b""
                        while (chunk := reader.readline()) not in (b".\r\n", b""):
                            data += chunk
                        self.messages.append(data)
                        conn.sendall(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"500 unrecognised command\r\n")  # not "221"
                        break
                    else:
                        conn.sendall(b"250 ok\r\n")

    def close(self) -> None:
        self.sock.close()


async def test_mail_accepted_then_an_odd_goodbye(make_config: Any) -> None:
    smtp = RudeSmtpServer()
    try:
        config = make_config(smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"})
        async with serve_homeserver(config) as server:
            response = await server.api("POST", "register/email/requestToken",
                                        json={"email": "rude@example.test", "client_secret": "abc"})
            assert response.status_code == 200, response.text
            assert "sid" in response.json()
            assert len(smtp.messages) == 1 and b"verification code" in smtp.messages[0]
    finally:
        smtp.close()
