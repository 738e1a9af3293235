"""The ``[media]`` section: where media files live (a folder, or an S3-compatible bucket)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

FILESYSTEM = "filesystem"
S3 = "s3"


@dataclass(frozen=True)
class MediaConfig:
    # "filesystem": files under media_dir (or <data_dir>/media), shared by the instances of a
    # deployment only through a shared folder.  "s3": objects in an S3-compatible bucket, so
    # instances need no shared folder.
    store: str = FILESYSTEM
    # The S3 API endpoint, e.g. https://s3.eu-central-1.amazonaws.com or a MinIO / Ceph RGW /
    # Garage address; empty: the AWS endpoint of ``region``.
    endpoint: str = ""
    bucket: str = ""
    region: str = "us-east-1"
    # Objects are named <prefix><media id>.
    prefix: str = "media/"
    # Empty: the usual AWS credential chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
    # AWS_PROFILE, an instance role).  PARLEY_MEDIA_SECRET_ACCESS_KEY keeps it out of the file.
    access_key_id: str = ""
    secret_access_key: str = ""
    # Path-style addressing (http://host/bucket/key): what most self-hosted stores expect.
    path_style: bool = True

    def problems(self, dev_mode: bool) -> list[str]:
        """What is wrong with this section (empty: nothing)."""
        if self.store == FILESYSTEM:
            return []
        if self.store != S3:
            return [f"media.store must be {FILESYSTEM!r} or {S3!r}"]
        out: list[str] = []
        if not self.bucket:
            out.append("media.bucket is required when media.store = 's3'")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            out.append("media.access_key_id and media.secret_access_key must be set together")
        if len(self.prefix) > 200 or any(ord(c) < 0x21 or c in "\\?#" for c in self.prefix):
            out.append("media.prefix must be at most 200 printable characters without \\ ? #")
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                out.append("media.endpoint must be an http(s) URL")
            elif parts.scheme == "http" and not dev_mode and not _loopback(parts.hostname):
                out.append("media.endpoint over plain http is only allowed to loopback or with dev_mode")
        return out


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
