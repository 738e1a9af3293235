"""Identifier rules: the spec's localpart grammar, no control characters, no trailing newline."""

from __future__ import annotations

import pytest

from common.errors import MatrixError
from common.identifiers import (
    has_control_characters,
    is_valid_device_id,
    is_valid_localpart,
    is_valid_opaque_id,
    is_valid_server_name,
    normalise_email,
    parse_room_id,
    parse_user_id,
)


@pytest.mark.parametrize("localpart", ["alice\n", "alice\r", "a\x00b", "Alice", "al ice", "", "a" * 201, "é"])
def test_localparts_outside_the_grammar_are_refused(localpart: str) -> None:
    assert not is_valid_localpart(localpart)


@pytest.mark.parametrize("localpart", ["alice", "a.b_c=d-e/f+g", "0"])
def test_localparts_of_the_grammar_are_accepted(localpart: str) -> None:
    assert is_valid_localpart(localpart)


@pytest.mark.parametrize("user_id", ["@alice\n:hs", "@alice:hs\n", "@al\x7fice:hs", "@alice:h s", "alice:hs"])
def test_user_ids_with_control_characters_or_newlines_are_refused(user_id: str) -> None:
    with pytest.raises(MatrixError):
        parse_user_id(user_id)


def test_other_identifiers_refuse_a_trailing_newline() -> None:
    assert not is_valid_server_name("hs.example\n")
    assert not is_valid_device_id("ABCDEF\n")
    assert not is_valid_opaque_id("txn\n")
    with pytest.raises(MatrixError):
        parse_room_id("!room:hs\n")
    with pytest.raises(MatrixError):
        normalise_email("a@example.org\n\n x")
    assert is_valid_server_name("[::1]:8448") and is_valid_server_name("hs.example:8008")


def test_control_characters() -> None:
    assert has_control_characters("a\nb") and has_control_characters("\x7f") and has_control_characters("\x85")
    assert not has_control_characters("m.room.message é 😀")
