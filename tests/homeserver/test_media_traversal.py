"""No id a client supplies reaches outside the media folder (the earlier app's C6 fix).

Requests are sent byte-for-byte over a raw socket so that no client-side
URL normalisation hides the attempt.
"""

from __future__ import annotations

import json

from tests.homeserver.test_media_support import UNSTABLE, png_bytes, raw_request, upload_ok
from tests.support.server import RunningServer

SECRET = b"TOP-SECRET-CONTENT-42"

BAD_IDS = [
    "..", "%2e%2e", "%2E%2E", ".", "..%2F..%2Fsecret.txt", "%2e%2e%2f%2e%2e%2fsecret.txt",
    "..%5C..%5Csecret.txt", "%2Fetc%2Fpasswd", "%2F", "abc%00def", "%00", "abcd%00",
    "a" * 65, "A" * 4000, "tmp", "secret.txt", "~root", "abcd%2F..%2F..%2F..%2Fsecret.txt",
]
BAD_SERVERS = ["evil.example", "..", "%2e%2e", "localhost", "127.0.0.1:1", "%2Fetc"]


def _check(status: int, data: bytes, what: str) -> None:
    assert status in (400, 403, 404, 405), (what, status, data[:300])
    assert SECRET not in data, what
    body = data.split(b"\r\n\r\n", 1)[1]
    if body.strip():
        assert json.loads(body)["errcode"].startswith("M_"), (what, body[:200])


async def test_traversal_in_every_media_path(server: RunningServer) -> None:
    alice = await server.register()
    # Plant files the attacks would like to read.
    (server.config.data_path / "secret.txt").write_bytes(SECRET)
    media_root = server.config.media_path.resolve()
    media_root.mkdir(parents=True, exist_ok=True)
    (media_root / "secret.txt").write_bytes(SECRET)
    (media_root.parent / "secret.txt").write_bytes(SECRET)
    # A file in the right place but with no metadata row is not served either.
    planted = media_root / "ab" / "cd"
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "abcdPLANTEDxxxxxxxxxxxxx").write_bytes(SECRET)
    real = await upload_ok(server, alice, png_bytes(), "image/png")
    real_id = real.rsplit("/", 1)[1]
    auth = dict(alice.headers)
    ours = server.config.server_name

    targets = [(ours, i) for i in BAD_IDS + ["abcdPLANTEDxxxxxxxxxxxxx"]]
    targets += [(s, real_id) for s in BAD_SERVERS]
    for server_name, media_id in targets:
        for prefix in ("/_matrix/client/v1/media", "/_matrix/media/v3", "/_matrix/media/r0"):
            for path in (
                f"{prefix}/download/{server_name}/{media_id}",
                f"{prefix}/download/{server_name}/{media_id}/name.txt",
                f"{prefix}/thumbnail/{server_name}/{media_id}?width=8&height=8",
            ):
                status, data = await raw_request(server, f"GET {path} HTTP/1.1", auth)
                _check(status, data, path)
        path = f"/_matrix/media/v3/upload/{server_name}/{media_id}"
        status, data = await raw_request(
            server, f"PUT {path} HTTP/1.1", {**auth, "Content-Type": "text/plain"}, b"overwrite"
        )
        _check(status, data, path)

    # Unnormalised dot segments and absolute paths in the request target.
    for path in (
        f"/_matrix/client/v1/media/download/{ours}/../../../../secret.txt",
        f"/_matrix/client/v1/media/download/{ours}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        f"/_matrix/client/v1/media/download/{ours}//etc/passwd",
        f"/_matrix/client/v1/media/download/{ours}/{real_id}/../../../secret.txt",
        "/_matrix/media/v3/download/../../secret.txt",
    ):
        status, data = await raw_request(server, f"GET {path} HTTP/1.1", auth)
        _check(status, data, path)

    # Ids inside JSON bodies: attach and avatar URLs.
    for bad in BAD_IDS[:8] + [f"mxc://{ours}/../secret.txt", f"mxc://evil.example/{real_id}",
                              f"mxc://{ours}/{real_id}/../x", "/etc/passwd", f"mxc://{ours}/a\u0000b"]:
        response = await server.api(
            "POST", UNSTABLE + "/media/attach", alice,
            json={"room_id": f"!room:{ours}", "event_id": "$abcdefgh", "media_ids": [bad]},
        )
        assert response.status_code in (400, 403, 404), (bad, response.text)
        avatar = bad if bad.startswith("mxc://") else f"mxc://{ours}/{bad}"
        response = await server.api(
            "PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": avatar}
        )
        if avatar == f"mxc://evil.example/{real_id}":
            # Another server's valid mxc:// URI is a legal avatar (checked for syntax only,
            # nothing here is read or written for it).
            assert response.status_code == 200, response.text
            continue
        assert response.status_code in (400, 403, 404), (avatar, response.text)
    # The real media is intact and still served.
    status, data = await raw_request(
        server, f"GET /_matrix/client/v1/media/download/{ours}/{real_id} HTTP/1.1", auth
    )
    assert status == 200 and data.endswith(png_bytes())
