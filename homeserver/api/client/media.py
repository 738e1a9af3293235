"""The media repository over HTTP: upload, create, download, thumbnails, config, attach.

Every download path requires authentication, the legacy
``/_matrix/media/v3/download`` and ``/thumbnail`` included: Parley has no
unauthenticated media (Matrix 1.11 froze it; matrix-nio 0.26 downloads
through ``/_matrix/client/v1/media`` with its access token, and its legacy
upload path ``/_matrix/media/v3/upload`` is authenticated anyway).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from common.errors import Codes, MatrixError, bad_param
from homeserver.api.http import json_response, path_param, read_json, require_auth, services

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "
        "style-src 'unsafe-inline'; media-src 'self'; object-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Cache-Control": "private, max-age=86400",
}

_SINGLE_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})\Z")


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise bad_param("Invalid Content-Length")
    return int(raw)


async def upload(request: Request) -> Response:
    """POST /_matrix/media/v3/upload"""
    requester = await require_auth(request)
    uri = await services(request).media.upload(
        requester.user_id,
        request.stream(),
        request.headers.get("content-type"),
        request.query_params.get("filename"),
        _declared_length(request),
    )
    return json_response({"content_uri": uri})


async def upload_to(request: Request) -> Response:
    """PUT /_matrix/media/v3/upload/{serverName}/{mediaId}"""
    requester = await require_auth(request)
    await services(request).media.upload(
        requester.user_id,
        request.stream(),
        request.headers.get("content-type"),
        request.query_params.get("filename"),
        _declared_length(request),
        target=(path_param(request, "server_name"), path_param(request, "media_id")),
    )
    return json_response({})


async def create(request: Request) -> Response:
    """POST /_matrix/media/v1/create"""
    requester = await require_auth(request)
    return json_response(await services(request).media.create(requester.user_id))


async def media_config(request: Request) -> Response:
    """GET /_matrix/client/v1/media/config"""
    await require_auth(request)
    return json_response(services(request).media.config_json())


def _check_range(request: Request, size: int) -> tuple[int, int] | None:
    """Only a single satisfiable byte range is served; anything else is 416.

    Returns the (first, last) bytes asked for, None without a Range header."""
    value = request.headers.get("range")
    if value is None:
        return None
    unsatisfiable = MatrixError(
        416, Codes.INVALID_PARAM, "Requested range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )
    match = _SINGLE_RANGE.match(value.strip().lower())
    if match is None or (not match.group(1) and not match.group(2)):
        raise unsatisfiable
    first, last = match.group(1), match.group(2)
    if first:
        if int(first) >= size or (last and int(last) < int(first)):
            raise unsatisfiable
        return int(first), min(int(last), size - 1) if last else size - 1
    if int(last) == 0 or size == 0:
        raise unsatisfiable
    return max(0, size - int(last)), size - 1


def _disposition(kind: str, filename: str | None) -> str:
    if filename is None:
        return kind
    quoted = quote(filename)
    if quoted != filename:
        return f"{kind}; filename*=utf-8''{quoted}"
    return f'{kind}; filename="{filename}"'


async def download(request: Request) -> Response:
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]"""
    await require_auth(request)
    filename = request.path_params.get("file_name") or None
    if filename is not None and "/" in str(filename):
        # Only an *encoded* "/" may appear in the file-name segment (matrix-nio sends the
        # caller's file name); a literal one is a different path, not a file name.
        raw = bytes(request.scope.get("raw_path") or b"")
        tail = raw.rsplit(b"/" + path_param(request, "media_id").encode() + b"/", 1)[-1]
        if b"/" in tail:
            raise MatrixError(404, Codes.UNRECOGNIZED, "Unrecognized request")
    media = await services(request).media.get_file(
        path_param(request, "server_name"), path_param(request, "media_id"),
        str(filename) if filename else None,
    )
    wanted = _check_range(request, media.size)
    disposition = "inline" if media.inline else "attachment"
    headers = dict(SECURITY_HEADERS)
    if media.path is None:
        # A remote store (S3): stream the object, or the one range asked for.
        first, last = wanted if wanted is not None else (0, media.size - 1)
        headers.update({"Content-Disposition": _disposition(disposition, media.filename),
                        "Accept-Ranges": "bytes", "Content-Length": str(max(0, last - first + 1))})
        if wanted is not None:
            headers["Content-Range"] = f"bytes {first}-{last}/{media.size}"
        if media.size == 0:
            return Response(b"", media_type=media.content_type, headers=headers)
        body = await services(request).media.open_range(media, first, last)
        return StreamingResponse(body, status_code=206 if wanted is not None else 200,
                                 media_type=media.content_type, headers=headers)
    if media.filename is None:
        headers["Content-Disposition"] = disposition
    return FileResponse(
        media.path,
        media_type=media.content_type,
        filename=media.filename,
        content_disposition_type=disposition,
        headers=headers,
    )


async def thumbnail(request: Request) -> Response:
    """GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}"""
    await require_auth(request)
    params = request.query_params
    try:
        width = int(params.get("width", ""))
        height = int(params.get("height", ""))
    except ValueError:
        raise MatrixError(400, Codes.MISSING_PARAM, "width and height are required integers") from None
    data, content_type = await services(request).media.thumbnail(
        path_param(request, "server_name"), path_param(request, "media_id"),
        width, height, params.get("method", "scale"),
    )
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = "inline"
    return Response(data, media_type=content_type, headers=headers)


async def attach(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/media/attach"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).media.attach(
        requester.user_id, body.get("room_id"), body.get("event_id"), body.get("media_ids")
    )
    return json_response({})


async def delete_own(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/media/delete ``{media_id: mxc URI}``"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).media.delete_own(requester.user_id, body.get("media_id"))
    return json_response({})
