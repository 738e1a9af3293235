"""Issue 15, Done-when bullet 2: a DM by e-mail with someone who has not registered yet.

Alice looks the address up (a keyless placeholder), opens the DM and writes
twice: nobody can encrypt to a person without a device, so both messages wait
in her outbox ("waiting for ... to join"), encrypted nowhere.  Bob registers
with that address and the name he chose: his account is ``@<chosen>``, the
looked-up id becomes its alias and the DM is handed over to him (the placeholder
leaves it); his client publishes keys, Alice's client learns of the device
through /sync, encrypts both messages to it, and Bob reads them; he answers and
Alice reads that, from ``@<chosen>``.  An invitation to the old lookup id reaches
him too.  The server's database is grepped after
every step: it never held a private key (or any key) of Bob's that his own client
did not publish.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from client_tk.core.account import register
from client_tk.core.client import ChatClient
from client_tk.core.outbox_driver import MessageWaiting
from tests.client.conftest import PASSWORD, bodies, options, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.homeserver.test_placeholders_keyless import KEY_TABLES, assert_no_key_material, rows_mentioning
from tests.support.server import serve_homeserver
from tests.support.smtp import SmtpSink

FIRST, SECOND = "written before bob existed, one", "written before bob existed, two"


async def test_email_dm_waits_for_the_person_then_reads_both_ways(
    make_config: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    config = make_config(registration={"open": True, "require_email": False}, smtp=smtp_sink.smtp_config(),
                         rate_limits={"email_lookup_per_minute": 1000})
    made: list[ChatClient] = []
    async with serve_homeserver(config) as server:
        try:
            alice = await register(options(server.base_url, tmp_path / "alice"), f"alice{secrets.token_hex(3)}",
                                   PASSWORD)
            made.append(alice)
            alice.start()
            bob_mail = f"bob-{secrets.token_hex(4)}@example.test"
            room = await alice.dm_by_email(bob_mail)
            bob_id = await alice.lookup_email(bob_mail)
            assert alice.rooms[room].is_direct
            for text in (FIRST, SECOND):
                with pytest.raises(MessageWaiting) as waiting:
                    await alice.send_text(room, text)
                assert waiting.value.user_ids == [bob_id]
            held = alice.outgoing(room)
            assert [(m.body, m.state) for m in held] == [(FIRST, "waiting"), (SECOND, "waiting")]
            assert all(m.error == f"waiting for {bob_id} to join" for m in held)
            # Nothing was sent or encrypted to anyone: no event, no key of Bob's anywhere.
            found = await rows_mentioning(server, bob_id)
            assert not set(found) & KEY_TABLES
            assert_no_key_material(found)
            await alice.sync_once(0)
            assert [m.state for m in alice.outgoing(room)] == ["waiting", "waiting"]

            chosen = f"bobchosen{secrets.token_hex(2)}"
            bob = await register(options(server.base_url, tmp_path / "bob"), chosen, PASSWORD, email=bob_mail,
                                 code_provider=smtp_sink.wait_for_code)
            made.append(bob)
            assert bob.user_id == f"@{chosen}:{server.config.server_name}" != bob_id  # his name
            bob.start()
            # Alice's client learns of Bob's device, encrypts both to it, sends them in order.
            await until(lambda: alice.outgoing(room) == [], what="alice's waiting messages sent")
            await until(lambda: room in bob.rooms, what="bob has the conversation")
            if bob.rooms[room].membership == "invite":
                await bob.accept(room)
            await until(lambda: bodies(bob, room) == [FIRST, SECOND], what="bob reads both")
            await bob.send_text(room, "bob answers at last")
            await until(lambda: "bob answers at last" in bodies(alice, room), what="alice reads the answer")
            answer = next(m for m in alice.messages(room) if m.body == "bob answers at last")
            assert answer.sender == bob.user_id
            # The conversation is with him under the name he chose; the lookup id has left it.
            members = alice.rooms[room].members
            assert members.get(bob.user_id) == "join" and members.get(bob_id) in (None, "leave")
            assert alice.rooms[room].is_direct and alice.find_dm(bob.user_id) == room
            assert (await alice.get_profile(bob.user_id)).get("displayname") == chosen
            # The lookup id stays an alias: a new invitation to it reaches Bob's account.
            group = await alice.create_group("after the alias", [bob_id])
            await until(lambda: group in bob.rooms, what="bob invited through the alias")
            assert alice.rooms[group].members.get(bob.user_id) == "invite"
            # Only what Bob's own client published is in the database: no private key, ever.
            for table, rows in [*(await rows_mentioning(server, bob_id)).items(),
                                *(await rows_mentioning(server, bob.user_id)).items()]:
                for text in rows:
                    assert '"seed"' not in text and "private" not in text, table
            await assert_server_holds_no_plaintext(server.config, [FIRST, SECOND, "bob answers at last"])
        finally:
            for client in made:
                await client.close()
