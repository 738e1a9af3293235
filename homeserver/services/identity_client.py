"""Calls of the Identity Service API that the homeserver makes for its users:
binding (``/_matrix/identity/v2/3pid/bind``) and unbinding (``.../3pid/unbind``) a
third-party identifier, looking one up (``/lookup``), storing a third-party invite
(``/store-invite``) and checking that a key of the identity server is still valid.

Only identity servers allowed by ``[identity] allowed_servers`` are contacted: a
client names the server, and the homeserver must not become a way to reach any
address at all.  The unbind request is signed with the homeserver's key (X-Matrix
authorisation, as the Identity Service API asks of homeservers).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import httpx

from common.canonical_json import encode_canonical_json, sign_json
from common.errors import Codes, MatrixError
from common.identifiers import is_valid_server_name
from homeserver.config import IdentityConfig
from homeserver.signing_key import SigningKey
from homeserver.tls import trust_also

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

TIMEOUT_S = 10.0
NO_IDENTITY_SERVER = "This server uses no identity server: third-party identifiers cannot be bound to one"


class IdentityServerClient:
    def __init__(self, config: IdentityConfig, signing_key: SigningKey, server_name: str,
                 client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.signing_key = signing_key
        self.server_name = server_name
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT_S, verify=trust_also(config.ca_file))

    @property
    def enabled(self) -> bool:
        return bool(self.config.allowed_servers.strip())

    def check_server(self, id_server: Any) -> str:
        """The ``id_server`` a client named, if it is one this homeserver may contact."""
        if not self.enabled:
            raise MatrixError(400, Codes.THREEPID_DENIED, NO_IDENTITY_SERVER)
        if not isinstance(id_server, str) or not id_server:
            raise MatrixError(400, Codes.MISSING_PARAM, "id_server is required")
        if not is_valid_server_name(id_server):
            raise MatrixError(400, Codes.INVALID_PARAM, "id_server must be a server name (host[:port])")
        if not self.config.allows(id_server):
            raise MatrixError(400, Codes.SERVER_NOT_TRUSTED, f"Identity server {id_server} is not trusted here")
        return id_server

    async def bind(self, id_server: str, id_access_token: str, sid: str, client_secret: str,
                   mxid: str) -> tuple[str, str]:
        """POST /_matrix/identity/v2/3pid/bind: the (medium, address) now bound to ``mxid``."""
        answer = await self._post(
            id_server, "/_matrix/identity/v2/3pid/bind",
            {"sid": sid, "client_secret": client_secret, "mxid": mxid},
            {"Authorization": f"Bearer {id_access_token}"},
        )
        medium, address = answer.get("medium"), answer.get("address")
        if answer.get("mxid") != mxid or not isinstance(medium, str) or not isinstance(address, str):
            raise MatrixError(502, Codes.UNKNOWN, "The identity server gave no valid binding")
        return medium, address

    async def unbind(self, id_server: str, mxid: str, medium: str, address: str) -> bool:
        """POST /_matrix/identity/v2/3pid/unbind; whether the identity server did it."""
        path = "/_matrix/identity/v2/3pid/unbind"
        content = {"mxid": mxid, "threepid": {"medium": medium, "address": address}}
        try:
            await self._post(id_server, path, content, {"Authorization": self._x_matrix(id_server, path, content)})
        except MatrixError as exc:
            logger.info("unbinding %s from %s failed: %s", medium, id_server, exc.message)
            return False
        return True

    async def lookup(self, id_server: str, id_access_token: str, medium: str, address: str) -> str | None:
        """The Matrix user id bound to (medium, address), by the hashed v2 lookup."""
        auth = {"Authorization": f"Bearer {id_access_token}"}
        details = await self._request("GET", id_server, "/_matrix/identity/v2/hash_details", None, auth)
        algorithms = details.get("algorithms")
        pepper = details.get("lookup_pepper")
        if not isinstance(algorithms, list) or not isinstance(pepper, str):
            raise MatrixError(502, Codes.UNKNOWN, "The identity server gave no valid hash details")
        if "sha256" in algorithms:
            digest = hashlib.sha256(f"{address} {medium} {pepper}".encode()).digest()
            query, algorithm = base64.urlsafe_b64encode(digest).decode().rstrip("="), "sha256"
        elif "none" in algorithms:
            query, algorithm = f"{address} {medium}", "none"
        else:
            raise MatrixError(502, Codes.UNKNOWN, "The identity server offers no lookup algorithm known here")
        answer = await self._post(id_server, "/_matrix/identity/v2/lookup",
                                  {"addresses": [query], "algorithm": algorithm, "pepper": pepper}, auth)
        mappings = answer.get("mappings")
        mxid = mappings.get(query) if isinstance(mappings, dict) else None
        return mxid if isinstance(mxid, str) else None

    async def store_invite(self, id_server: str, id_access_token: str, invite: JsonDict) -> JsonDict:
        """POST /_matrix/identity/v2/store-invite: token, display_name and public keys."""
        answer = await self._post(id_server, "/_matrix/identity/v2/store-invite", invite,
                                  {"Authorization": f"Bearer {id_access_token}"})
        if not isinstance(answer.get("token"), str) or not answer["token"] \
                or not isinstance(answer.get("public_keys"), list) or not answer["public_keys"]:
            raise MatrixError(502, Codes.UNKNOWN, "The identity server did not store the invite")
        return answer

    async def key_is_valid(self, key_validity_url: str, public_key: str) -> bool:
        """GET ``key_validity_url``: whether the identity server still vouches for the key."""
        url = httpx.URL(key_validity_url)
        server = url.host if url.port is None else f"{url.host}:{url.port}"
        if url.scheme != "https" or not self.enabled or not self.config.allows(server):
            return False
        try:
            answer = await self._request("GET", server, url.path, None, {}, params={"public_key": public_key})
        except MatrixError:
            return False
        return answer.get("valid") is True

    def _x_matrix(self, destination: str, path: str, content: JsonDict) -> str:
        signed = sign_json(
            {"method": "POST", "uri": path, "origin": self.server_name, "destination": destination,
             "content": content},
            self.server_name, self.signing_key.version, self.signing_key.private_key,
        )
        sig = signed["signatures"][self.server_name][self.signing_key.key_id]
        return (f'X-Matrix origin="{self.server_name}",destination="{destination}",'
                f'key="{self.signing_key.key_id}",sig="{sig}"')

    async def _post(self, id_server: str, path: str, content: JsonDict, headers: dict[str, str]) -> JsonDict:
        return await self._request("POST", id_server, path, content, headers)

    async def _request(self, method: str, id_server: str, path: str, content: JsonDict | None,
                       headers: dict[str, str], params: dict[str, str] | None = None) -> JsonDict:
        try:
            response = await self.client.request(
                method, f"https://{id_server}{path}", params=params,
                content=None if content is None else encode_canonical_json(content),
                headers={"Content-Type": "application/json", **headers} if content is not None else headers,
            )
        except httpx.HTTPError as exc:
            raise MatrixError(502, Codes.UNKNOWN, f"The identity server {id_server} cannot be reached") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if response.status_code >= 400:
            errcode = answer.get("errcode")
            message = answer.get("error") or f"The identity server answered {response.status_code}"
            status = response.status_code if response.status_code < 500 else 502
            raise MatrixError(status, errcode if isinstance(errcode, str) else Codes.UNKNOWN, str(message))
        return answer

    async def close(self) -> None:
        await self.client.aclose()
