"""matrix-nio (aiohttp, HTTP/1.1) uploads and downloads media and reads/sets profiles."""

from __future__ import annotations

import io
import os
import secrets

import nio
from PIL import Image

from tests.homeserver.test_media_support import png_bytes
from tests.support.server import RunningServer


async def _client(server: RunningServer) -> nio.AsyncClient:
    name = f"nio{secrets.token_hex(4)}"
    client = nio.AsyncClient(server.base_url, name)
    registered = await client.register(name, "nio password 123", device_name="nio")
    assert isinstance(registered, nio.RegisterResponse), registered
    return client


async def test_nio_upload_download_and_profiles(server: RunningServer) -> None:
    alice = await _client(server)
    bob = await _client(server)
    try:
        # A file upload and download.
        data = os.urandom(300_000)
        uploaded, keys = await alice.upload(
            io.BytesIO(data), content_type="application/octet-stream", filename="blob.bin", filesize=len(data)
        )
        assert isinstance(uploaded, nio.UploadResponse), uploaded
        assert keys is None
        downloaded = await bob.download(mxc=uploaded.content_uri)
        assert isinstance(downloaded, nio.MemoryDownloadResponse), downloaded
        assert downloaded.body == data
        assert downloaded.filename == "blob.bin"
        # An encrypted attachment: nio encrypts, the server stores opaque bytes.
        secret = b"attachment plaintext " * 100
        enc_upload, decryption = await alice.upload(
            io.BytesIO(secret), content_type="image/png", filename="x.png", encrypt=True, filesize=len(secret)
        )
        assert isinstance(enc_upload, nio.UploadResponse), enc_upload
        assert decryption is not None
        ciphertext = await bob.download(mxc=enc_upload.content_uri)
        assert isinstance(ciphertext, nio.MemoryDownloadResponse)
        assert secret not in ciphertext.body
        plain = nio.crypto.attachments.decrypt_attachment(
            ciphertext.body, decryption["key"]["k"], decryption["hashes"]["sha256"], decryption["iv"]
        )
        assert plain == secret
        # An avatar: upload a PNG, set it, read it back; thumbnail through nio.
        image = png_bytes(64, 48)
        avatar, _ = await alice.upload(io.BytesIO(image), content_type="image/png", filename="me.png",
                                       filesize=len(image))
        assert isinstance(avatar, nio.UploadResponse), avatar
        assert isinstance(await alice.set_avatar(avatar.content_uri), nio.ProfileSetAvatarResponse)
        assert isinstance(await alice.set_displayname("Alice from nio"), nio.ProfileSetDisplayNameResponse)
        profile = await bob.get_profile(alice.user_id)
        assert isinstance(profile, nio.ProfileGetResponse), profile
        assert profile.displayname == "Alice from nio"
        assert profile.avatar_url == avatar.content_uri
        name = await bob.get_displayname(alice.user_id)
        assert isinstance(name, nio.ProfileGetDisplayNameResponse) and name.displayname == "Alice from nio"
        got_avatar = await bob.get_avatar(alice.user_id)
        assert isinstance(got_avatar, nio.ProfileGetAvatarResponse) and got_avatar.avatar_url == avatar.content_uri
        server_name, media_id = avatar.content_uri[len("mxc://"):].split("/")
        thumb = await bob.thumbnail(server_name, media_id, 16, 16)
        assert isinstance(thumb, nio.ThumbnailResponse), thumb
        assert max(Image.open(io.BytesIO(thumb.body)).size) <= 16
        # Refusals come back as nio errors with the Matrix errcode.
        refused = await bob.set_displayname("x" * 300)
        assert isinstance(refused, nio.ProfileSetDisplayNameError)
        assert refused.status_code == "M_INVALID_PARAM"
        missing = await bob.download(mxc=f"mxc://{server.config.server_name}/AAAAAAAAAAAAAAAAAAAAAAAA")
        assert isinstance(missing, nio.DownloadError)
        assert missing.status_code == "M_NOT_FOUND"
    finally:
        await alice.close()
        await bob.close()
