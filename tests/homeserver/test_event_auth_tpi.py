"""The third-party invite authorisation rule (spec, m.room.member rule for invites with
``third_party_invite``), on plain data."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.canonical_json import sign_json, unpadded_b64encode
from homeserver.services.event_auth import AuthError
from homeserver.services.event_auth_tpi import check_third_party_invite

KEY = Ed25519PrivateKey.generate()
PUBLIC = unpadded_b64encode(KEY.public_key().public_bytes_raw())


def _state(sender: str = "@alice:hs", keys: dict[str, Any] | None = None) -> Any:
    content = keys if keys is not None else {"public_key": PUBLIC, "display_name": "B"}
    return {("m.room.third_party_invite", "tok"): {"sender": sender, "content": content}}


def _tpi(mxid: str = "@bob:hs", token: str = "tok", key: Ed25519PrivateKey = KEY) -> dict[str, Any]:
    return {"display_name": "B", "signed": sign_json({"mxid": mxid, "token": token}, "id.example", "0", key)}


def test_a_signature_by_a_published_key_allows() -> None:
    check_third_party_invite({"sender": "@alice:hs"}, _tpi(), _state(), "@bob:hs", "leave")
    # The key may be published in public_keys only.
    listed = {"public_keys": [{"public_key": PUBLIC, "key_validity_url": "https://id.example/v"}]}
    check_third_party_invite({"sender": "@alice:hs"}, _tpi(), _state(keys=listed), "@bob:hs", "leave")


@pytest.mark.parametrize(("event", "tpi", "state", "target", "membership", "why"), [
    ({"sender": "@alice:hs"}, _tpi(), _state(), "@bob:hs", "ban", "banned"),
    ({"sender": "@alice:hs"}, {"display_name": "B"}, _state(), "@bob:hs", "leave", "mxid and token"),
    ({"sender": "@alice:hs"}, _tpi(mxid="@carol:hs"), _state(), "@bob:hs", "leave", "not the invited user"),
    ({"sender": "@alice:hs"}, _tpi(token="other"), _state(), "@bob:hs", "leave", "No third-party invite"),
    ({"sender": "@mallory:hs"}, _tpi(), _state(), "@bob:hs", "leave", "Only the sender"),
    ({"sender": "@alice:hs"}, _tpi(key=Ed25519PrivateKey.generate()), _state(), "@bob:hs", "leave", "signature"),
    ({"sender": "@alice:hs"}, _tpi(), _state(keys={"public_key": "not base64!"}), "@bob:hs", "leave", "signature"),
])
def test_refused(event: Any, tpi: Any, state: Any, target: str, membership: str, why: str) -> None:
    with pytest.raises(AuthError, match=why):
        check_third_party_invite(event, tpi, state, target, membership)
