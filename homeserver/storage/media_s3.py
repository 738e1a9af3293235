"""Media in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage...) via aiobotocore.

One object per media id, named ``<prefix><mediaId>``, written whole by one
``PutObject`` after the upload was spooled, counted and hashed locally (an
object appears complete or not at all, as with the filesystem store's
rename).  Downloads stream ``GetObject`` (with a ``Range`` for partial
requests); thumbnails and avatar checks work on a temporary local copy.
The client is created on first use and closed with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from homeserver.media_config import MediaConfig
from homeserver.storage.media_store import CHUNK, MediaStoreUnavailable, checked

_MISSING = {"NoSuchKey", "404", "NotFound"}
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


async def _call(client: Any, operation: str, media_id: str = "", **params: Any) -> Any:
    """One S3 call: a missing object is FileNotFoundError, any other failure MediaStoreUnavailable."""
    try:
        return await getattr(client, operation)(**params)
    except ClientError as exc:
        if _missing(exc):
            raise FileNotFoundError(media_id) from None
        raise MediaStoreUnavailable(f"S3 {operation}: {exc}") from exc
    except (BotoCoreError, aiohttp.ClientError, TimeoutError) as exc:
        raise MediaStoreUnavailable(f"S3 {operation}: {type(exc).__name__}: {exc}") from exc


class S3MediaStore:
    def __init__(self, config: MediaConfig, spool_dir: Path) -> None:
        self.config = config
        self.bucket = config.bucket
        self.spool_dir = spool_dir
        self._client: Any = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def key(self, media_id: str) -> str:
        return self.config.prefix + checked(media_id)

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    options: dict[str, Any] = {"region_name": self.config.region}
                    if self.config.endpoint:
                        options["endpoint_url"] = self.config.endpoint
                    if self.config.access_key_id:
                        options["aws_access_key_id"] = self.config.access_key_id
                        options["aws_secret_access_key"] = self.config.secret_access_key
                    aio = AioConfig(
                        s3={"addressing_style": "path" if self.config.path_style else "auto"},
                        retries={"max_attempts": 4, "mode": "standard"},
                        connect_timeout=10, read_timeout=60,
                    )
                    self._client = await stack.enter_async_context(
                        get_session().create_client("s3", config=aio, **options)
                    )
                    self._exit = stack
        return self._client

    async def put(self, media_id: str, source: Path, size: int, content_type: str) -> None:
        client = await self.client()
        body = await asyncio.to_thread(open, source, "rb")
        with body:
            await _call(client, "put_object", media_id, Bucket=self.bucket, Key=self.key(media_id),
                        Body=body, ContentLength=size, ContentType=content_type)

    async def local_path(self, media_id: str) -> Path | None:
        return None

    async def open_range(self, media_id: str, first: int, last: int) -> AsyncIterator[bytes]:
        client = await self.client()
        response = await _call(client, "get_object", media_id, Bucket=self.bucket, Key=self.key(media_id),
                               Range=f"bytes={first}-{last}")
        return _chunks(response["Body"])

    @contextlib.asynccontextmanager
    async def local_copy(self, media_id: str) -> AsyncIterator[Path]:
        client = await self.client()
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.spool_dir / f"{secrets.token_hex(16)}.copy"
        try:
            response = await _call(client, "get_object", media_id, Bucket=self.bucket, Key=self.key(media_id))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                async for chunk in _chunks(response["Body"]):
                    out.write(chunk)
            yield path
        finally:
            path.unlink(missing_ok=True)

    async def delete(self, media_ids: list[str]) -> None:
        keys = [self.key(m) for m in media_ids]
        if not keys:
            return
        client = await self.client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start:start + DELETE_BATCH]
            answer = await _call(client, "delete_objects", Bucket=self.bucket,
                                 Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            errors = [e for e in answer.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                raise MediaStoreUnavailable(f"the media store refused to delete {len(errors)} object(s): {errors[0]}")

    async def exists(self, media_id: str) -> bool:
        client = await self.client()
        try:
            await _call(client, "head_object", media_id, Bucket=self.bucket, Key=self.key(media_id))
        except FileNotFoundError:
            return False
        return True

    async def ids(self) -> AsyncIterator[str]:
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.config.prefix):
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(self.config.prefix):]
                with contextlib.suppress(FileNotFoundError):
                    yield checked(name)

    async def close(self) -> None:
        if self._exit is not None:
            stack, self._exit, self._client = self._exit, None, None
            await stack.aclose()


async def _chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await body.read(CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
