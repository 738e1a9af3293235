"""The server-server API's machinery: identity, transport, transactions (issue 14).

Built once per homeserver by :func:`homeserver.federation.setup.build_federation`
and reached as ``hs.federation`` (``request.app.state.hs.federation`` in the
API).  The interfaces other parts code against (docs/FEDERATION.md):

* **Key ring** (``federation.keyring``, :mod:`.keyring`):
  ``await verify_json(server_name, signed_obj, *, at_ts)`` raises a
  401 ``M_UNAUTHORIZED`` :class:`common.errors.MatrixError` unless the server
  signed the object with a key valid at ``at_ts``;
  ``await verify_event_signatures(event, room_version)`` raises 403
  ``M_FORBIDDEN`` unless the sender's server (v1/v2: also the event id's
  server; restricted joins: also the authorising server) signed the
  redacted event, from v5 with a key valid at ``origin_server_ts``;
  ``await lookup(server, key_id)`` has the shape of
  :data:`homeserver.services.incoming.KeyLookup`.
* **Incoming authentication** (:func:`homeserver.api.federation.auth.authenticate`):
  ``origin = await authenticate(request)`` in every ``/_matrix/federation/*``
  handler; verifies ``Authorization: X-Matrix`` (origin, destination, key,
  sig), the allow/deny lists and the per-origin rate limit.
* **Outgoing client** (``federation.client``, :mod:`.client`):
  ``await request(destination, method, path, *, query=None, json=None) -> dict``
  signs with X-Matrix, resolves the destination (overrides, well-known,
  port 8448), verifies TLS; raises :mod:`.errors` types
  (``DestinationUnreachable``, ``RemoteError``, ``InvalidResponse``,
  ``DestinationNotAllowed``; all are ``MatrixError`` subclasses).
* **PDUs of incoming transactions** (:mod:`.pdus`): a :class:`~.pdus.PduHandler`
  (``await handle_pdus(origin, pdus) -> {event_id: {} | {"error": ...}}``),
  installed with ``federation.set_pdu_handler(handler)`` in the composition
  root; the default refuses every PDU with an honest error.

Layering: this package sits beside ``services`` (it may use services and
storage, never ``api``); only ``homeserver/api/federation`` imports Starlette.
"""
