"""Getting a :class:`ChatClient`: register, log in from the local store, pair a new device.

* :func:`register` makes the account keys (identity, storage, login: independent,
  :mod:`client_tk.core.account_keyring`), registers with the login key (plus the
  password, for password login), creates the local store (format 2) and
  uploads this device's keys.  The server-side key backup stays **off**
  (:meth:`KeyBackup.enable` is the user's explicit opt-in).
* :func:`login` opens an existing local store with the password (the
  account keys are under the password envelope; a format-1 store is migrated
  first) and logs in with a signature
  over the server's challenge (``method="key"``, the password never leaves
  the device) or with the password; the device id is kept.
* :func:`start_pairing` / :func:`finish_pairing` (new device) and
  :func:`approve_pairing` (a logged-in device): the new device shows an
  8-digit code; the user types it on the old device, which sends the
  identity and login seeds (never its storage key: the new device draws its
  own), the backup secret (only if the backup is on) and the sealed
  descriptor of a one-time **history archive** (:mod:`client_tk.core.history`)
  sealed under the pairing key; the new device logs in with the key, makes its
  own pre-keys, imports the archive and deletes it from the server.  The
  server relays both ephemeral keys, so both devices first show the short code
  of the whole pairing transcript (:mod:`common.crypto.sas`) and the user
  confirms that the screens match: a server in the middle shows two different
  codes, the user refuses, and nothing is sent (:class:`SasMismatch`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from client_tk.core import history
from client_tk.core.account_keyring import AccountKeyring, open_account_keys, public_b64
from client_tk.core.client import ChatClient
from client_tk.core.crypto import b64, unb64
from client_tk.core.engine import now_ms
from client_tk.core.events import EventBus
from client_tk.core.keys import DEVICE_IDENTITY, KeyManager
from client_tk.core.store import LocalStore, account_dir_name
from client_tk.core.transport import CLIENT_V3, UNSTABLE, Transport
from common.canonical_json import unpadded_b64encode
from common.crypto import DEFAULT_KDF, IdentityKeyPair, KdfParams
from common.crypto import primitives as P
from common.crypto.account_keys import AccountKeys
from common.crypto.sas import PairingAgreement, PairingTranscript, SasMismatch, SasNotConfirmed
from common.errors import MatrixError

JsonDict = dict[str, Any]
CodeProvider = Callable[[str], Awaitable[str]]
SIGNATURE_LOGIN = "im.parley.login.signature"
PAIRING_INFO = b"Parley pairing v2"


@dataclass
class ClientOptions:
    base_url: str
    root: Path
    insecure: bool = False
    ca_file: str | None = None  # a private CA for the server's certificate (verification stays on)
    kdf: KdfParams = DEFAULT_KDF
    allow_weak_kdf: bool = False  # tests only
    clock: Callable[[], int] = now_ms
    sync_timeout_ms: int = 30_000
    request_timeout: float = 30.0
    bus: EventBus = field(default_factory=EventBus)
    device_name: str = "Parley"


def challenge_message(server_name: str, challenge_id: str, nonce: str) -> bytes:
    """Same canonical bytes as the homeserver's ``accounts.challenge_message``."""
    from common.canonical_json import encode_canonical_json
    return encode_canonical_json({"type": SIGNATURE_LOGIN, "server": server_name,
                                  "challenge_id": challenge_id, "nonce": nonce})


def _transport(opts: ClientOptions, token: str | None = None) -> Transport:
    return Transport(opts.base_url, access_token=token, insecure=opts.insecure, timeout=opts.request_timeout,
                     ca_file=opts.ca_file)


async def _interactive(http: Transport, path: str, body: JsonDict, auth_for: Callable[[JsonDict], Awaitable[JsonDict]]
                       ) -> JsonDict:
    """Matrix user-interactive auth: first call, 401 with a session, then the stage."""
    try:
        return await http.post(path, body, idempotent=False)
    except MatrixError as exc:
        if exc.status != 401 or "flows" not in exc.extra:
            raise
        auth = await auth_for(exc.extra)
        return await http.post(path, {**body, "auth": auth}, idempotent=False)


def _open_store(opts: ClientOptions, user_id: str) -> LocalStore:
    return LocalStore(opts.root / account_dir_name(user_id))


def _device_identity(store: LocalStore, account: IdentityKeyPair) -> IdentityKeyPair:
    """This device's own identity key: drawn once per device (never sent anywhere) and
    certified by the account key; a device made before per-device keys keeps the account key
    as its device key (its sessions are built on it)."""
    record = store.get("keys", DEVICE_IDENTITY)
    if record is not None:
        return IdentityKeyPair.from_seed(unb64(record["seed"]))
    if store.get("keys", "prekeys") is not None:
        return account
    identity = IdentityKeyPair.generate()
    store.put("keys", DEVICE_IDENTITY, {"seed": b64(identity.seed)})
    return identity


def _keyring(opts: ClientOptions, store: LocalStore, keys: AccountKeys) -> AccountKeyring:
    store.unlock(keys.storage_key)
    return AccountKeyring(store, keys, kdf=opts.kdf, allow_weak=opts.allow_weak_kdf)


async def _finish(opts: ClientOptions, store: LocalStore, ring: AccountKeyring, user_id: str,
                  device_id: str, token: str, password: str, *,
                  new_session: bool = True) -> ChatClient:
    store.put("secrets", "access_token", {"token": token})
    meta: dict[str, bytes] = {}
    if store.get_meta("account_keys") is None or store.get_meta("device_id") != device_id.encode():
        meta = {"user_id": user_id.encode(), "device_id": device_id.encode(),
                "base_url": opts.base_url.encode(), **await ring.sealed_meta(password)}
    account = ring.keys.identity
    device_identity = _device_identity(store, account)
    keys = KeyManager.load(store, device_identity, user_id, device_id,
                           None if device_identity.public == account.public else account)
    if new_session:  # a new login (e.g. after logout deleted the device): publish the keys again
        keys.device_keys_uploaded = False
    client = ChatClient(store, _transport(opts, token), keys, clock=opts.clock, bus=opts.bus,
                        sync_timeout_ms=opts.sync_timeout_ms)
    client.account = ring
    await store.commit(meta=meta)  # the envelope and the records it opens: one transaction
    await ring.ensure_registered(client.http, user_id, password)
    await client._maintain_keys(None)
    return client


CODE_ATTEMPTS = 5  # tries of the e-mail code per registration (the server may allow fewer)


def local_user_ids(root: Path) -> list[str]:
    """The accounts that have a local store under ``root`` (read from each store's plain meta)."""
    found: list[str] = []
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if not (folder / "store.db").is_file():
            continue
        store = LocalStore(folder)
        try:
            user = store.get_meta("user_id")
        finally:
            store.close()
        if user:
            found.append(user.decode())
    return found


def find_local_user(root: Path, name: str) -> str | None:
    """The full user id for a short name (``alice`` or ``@alice``) when one local account has it."""
    local = name.strip().lstrip("@").casefold()
    matches = [u for u in local_user_ids(root) if u[1:].split(":", 1)[0].casefold() == local]
    return matches[0] if len(matches) == 1 else None


async def register(opts: ClientOptions, username: str, password: str, *, email: str | None = None,
                   code_provider: CodeProvider | None = None) -> ChatClient:
    """Create an account (with an e-mail code when ``email`` is given) and this device."""
    keys = AccountKeys.generate()
    http = _transport(opts)
    try:
        body: JsonDict = {"username": username, "password": password,
                          "im.parley.login_key": public_b64(keys.login_key),
                          "initial_device_display_name": opts.device_name}

        async def auth_for(challenge: JsonDict) -> JsonDict:
            session = challenge.get("session")
            if email is None:
                return {"type": "m.login.dummy", "session": session}
            if code_provider is None:
                raise ValueError("an e-mail code provider is needed to register with an e-mail")
            client_secret = secrets.token_urlsafe(24)
            sid = (await http.post(CLIENT_V3 + "/register/email/requestToken",
                                   {"email": email, "client_secret": client_secret, "send_attempt": 1},
                                   auth=False))["sid"]
            for attempt in range(1, CODE_ATTEMPTS + 1):  # a mistyped code is asked for again
                code = await code_provider(email)
                try:
                    await http.post(UNSTABLE + "/email/submitToken",
                                    {"sid": sid, "client_secret": client_secret, "token": code}, auth=False)
                    break
                except MatrixError as exc:
                    if exc.errcode != "M_THREEPID_AUTH_FAILED" or attempt == CODE_ATTEMPTS:
                        raise
            return {"type": "m.login.email.identity", "session": session,
                    "threepid_creds": {"sid": sid, "client_secret": client_secret}}

        result = await _interactive(http, CLIENT_V3 + "/register", body, auth_for)
    finally:
        await http.aclose()
    user_id, device_id, token = result["user_id"], result["device_id"], result["access_token"]
    store = _open_store(opts, user_id)
    # An address looked up before registration: the server gives this account the name chosen
    # here, keeps the looked-up id as its alias and moves its invitations over.
    return await _finish(opts, store, _keyring(opts, store, keys), user_id, device_id, token, password)


async def login(opts: ClientOptions, user_id: str, password: str, *, method: str = "key") -> ChatClient:
    """Open the local store of ``user_id`` and log in again on the same device."""
    folder = opts.root / account_dir_name(user_id)
    if not (folder / "store.db").exists():
        raise FileNotFoundError(f"no local account for {user_id}: register or pair this device")
    keys = await asyncio.to_thread(open_account_keys, folder / "store.db", password, kdf=opts.kdf,
                                   allow_weak=opts.allow_weak_kdf)  # format 1 is migrated here
    store = LocalStore(folder)
    device = store.get_meta("device_id")
    if device is None:
        store.close()
        raise FileNotFoundError(f"local account for {user_id} is incomplete")
    ring = _keyring(opts, store, keys)
    token_record = store.get("secrets", "access_token")
    device_id = device.decode()
    if token_record is not None:  # still logged in: reuse the token if it works
        http = _transport(opts, str(token_record["token"]))
        try:
            who = await http.get(CLIENT_V3 + "/account/whoami")
            if who.get("device_id") == device_id:
                await http.aclose()
                return await _finish(opts, store, ring, user_id, device_id,
                                     str(token_record["token"]), password,
                                     new_session=False)
        except MatrixError:
            pass
        finally:
            await http.aclose()
    result = await _login_request(opts, user_id, ring.login_keys(), password, device_id, method)
    return await _finish(opts, store, ring, user_id, result["device_id"], result["access_token"],
                         password)


async def _login_request(opts: ClientOptions, user_id: str, login_keys: list[Ed25519PrivateKey],
                         password: str, device_id: str | None, method: str) -> JsonDict:
    """Log in with the password, or by signing a challenge with each of ``login_keys`` in turn
    (the server may still hold the previous login key: see :mod:`.account_keyring`)."""
    http = _transport(opts)
    try:
        ident = {"type": "m.id.user", "user": user_id}
        body: JsonDict = {"identifier": ident, "initial_device_display_name": opts.device_name}
        if device_id is not None:
            body["device_id"] = device_id
        if method == "password":
            return await http.post(CLIENT_V3 + "/login", {**body, "type": "m.login.password",
                                                          "password": password}, auth=False)
        for attempt, key in enumerate(login_keys, 1):
            challenge = await http.post(UNSTABLE + "/login/challenge", {"identifier": ident}, auth=False)
            server_name = user_id.split(":", 1)[1]
            message = challenge_message(server_name, challenge["challenge_id"], challenge["nonce"])
            try:
                return await http.post(CLIENT_V3 + "/login", {
                    **body, "type": SIGNATURE_LOGIN, "challenge_id": challenge["challenge_id"],
                    "signature": unpadded_b64encode(key.sign(message))}, auth=False)
            except MatrixError as exc:
                if exc.errcode != "M_FORBIDDEN" or attempt == len(login_keys):
                    raise
        raise ValueError("no login key to sign with")
    finally:
        await http.aclose()


# ------------------------------------------------------------------ pairing
@dataclass
class PairingRequest:
    code: str
    poll_token: str
    private: X25519PrivateKey
    device_name: str = ""


Confirm = Callable[[str], Awaitable[bool]]
"""Shows the pairing's short code (``1234-5678-9012``) and returns whether the user says the
other device's screen shows the same code."""


async def start_pairing(opts: ClientOptions, user_id: str | None = None) -> PairingRequest:
    """New device, step 1: get a code to type on a logged-in device."""
    private = P.generate_x25519()
    http = _transport(opts)
    try:
        body: JsonDict = {"ephemeral_key": b64(P.x25519_public_bytes(private)),
                          "device_display_name": opts.device_name}
        if user_id is not None:
            body["user_id"] = user_id
        result = await http.post(UNSTABLE + "/pairing/start", body, auth=False)
    finally:
        await http.aclose()
    return PairingRequest(str(result["code"]), str(result["poll_token"]), private, opts.device_name or "")


async def finish_pairing(opts: ClientOptions, request: PairingRequest, password: str, *, confirm: Confirm,
                         poll_interval: float = 1.0, max_polls: int = 90) -> ChatClient:
    """New device, step 2: once claimed, show the SAS and let the user confirm it (a mismatch
    raises :class:`SasMismatch`); then take the payload sealed under the confirmed key, log in
    with the key, import the history archive."""
    http = _transport(opts)
    agreement: PairingAgreement | None = None
    try:
        for _ in range(max_polls):
            result = await http.post(UNSTABLE + "/pairing/poll", {"poll_token": request.poll_token},
                                     auth=False)
            if agreement is None and isinstance(result.get("approving_key"), str):
                agreement = PairingAgreement.derive(request.private, PairingTranscript(
                    str(result["approving_user_id"]), request.code, request.device_name,
                    str(result["approving_device_id"]), P.x25519_public_bytes(request.private),
                    unb64(result["approving_key"])), "new")
                agreement.confirm(await confirm(agreement.decimal_text))
            if result.get("status") == "ready":
                break
            await asyncio.sleep(poll_interval)
        else:
            raise TimeoutError("pairing was not approved in time")
    finally:
        await http.aclose()
    if agreement is None:
        raise SasNotConfirmed("the pairing was answered without a code to compare: refused")
    key = agreement.key
    payload = result["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    raw = unb64(payload["ciphertext"])
    secret = json.loads(P.aes_gcm_decrypt(key, raw[:12], raw[12:], PAIRING_INFO))
    user_id = str(secret["user_id"])
    if user_id != agreement.transcript.user_id:
        raise SasMismatch("the pairing payload names another account than the confirmed code")
    if not isinstance(secret.get("login_seed"), str):
        raise SasMismatch("the pairing payload carries no login key: refused")
    # Our own storage key: the approving device's never leaves it.
    keys = AccountKeys(unb64(secret["identity_seed"]), P.random_bytes(32), unb64(secret["login_seed"]))
    login_result = await _login_request(opts, user_id, [keys.login_key], password, None, "key")
    store = _open_store(opts, user_id)
    ring = _keyring(opts, store, keys)
    if secret.get("backup_secret"):  # the user turned the backup on: it stays on here
        store.put("secrets", "backup", {"secret": secret["backup_secret"],
                                        "version": secret.get("backup_version")})
    client = await _finish(opts, store, ring, user_id, login_result["device_id"],
                           login_result["access_token"], password)
    if isinstance(secret.get("history"), str):
        async with client.lock:
            await history.receive_archive(client.http, client.store, key, secret["history"])
            await client.store.commit()
    if client.backup.enabled:
        await client.backup.restore()
    return client


async def approve_pairing(client: ChatClient, code: str, *, confirm: Confirm) -> str:
    """Logged-in device: claim the code with our ephemeral key, show the SAS; only if the user
    confirms it (else :class:`SasMismatch`, nothing sent) send our identity key, the backup
    secret (if on) and the history archive, sealed under the confirmed pairing key."""
    private = P.generate_x25519()
    own = P.x25519_public_bytes(private)
    claim = await client.http.post(UNSTABLE + "/pairing/claim", {"code": code, "ephemeral_key": b64(own)},
                                   idempotent=False)
    agreement = PairingAgreement.derive(private, PairingTranscript(
        client.user_id, code, str(claim.get("device_display_name") or ""), client.device_id,
        unb64(claim["ephemeral_key"]), own), "approving")
    agreement.confirm(await confirm(agreement.decimal_text))
    key = agreement.key
    found = client.backup.secret()
    assert client.account is not None, "a logged-in client has its account keys"
    secret = {"user_id": client.user_id, "identity_seed": b64(client.account.keys.identity_seed),
              "login_seed": b64(client.account.keys.login_seed),
              "backup_secret": b64(found[0]) if found else None,
              "backup_version": found[1] if found else None,
              "history": await history.send_archive(client.http, client.store, key)}
    nonce = P.random_bytes(12)
    ciphertext = nonce + P.aes_gcm_encrypt(key, nonce, json.dumps(secret).encode(), PAIRING_INFO)
    await client.http.post(UNSTABLE + "/pairing/send", {"pairing_id": claim["pairing_id"], "payload": {
        "ciphertext": b64(ciphertext)}}, idempotent=False)
    return str(claim.get("device_display_name") or "")
