"""common.strict_json: what the one JSON door lets through."""

from __future__ import annotations

import pytest

from common.strict_json import MAX_DEPTH, StrictJsonError, dumps_strict, loads_strict


@pytest.mark.parametrize("raw", [
    '{"a":"\\ud800"}', '{"\\udc00":1}', '{"a":1e400}', '{"a":1.0}', '{"a":9007199254740992}',
    '{"a":-9007199254740992}', "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
])
def test_refused_as_bad_json(raw: str) -> None:
    with pytest.raises(StrictJsonError) as info:
        loads_strict(raw)
    assert not info.value.not_json


@pytest.mark.parametrize("raw", [b"{", b'{"a":"\xff"}', b"", b"[" * 10, b'{"a":NaN}', b'{"a":-Infinity}'])
def test_refused_as_not_json(raw: bytes) -> None:
    with pytest.raises(StrictJsonError) as info:
        loads_strict(raw)
    assert info.value.not_json


def test_accepted_values() -> None:
    assert loads_strict('{"a":[9007199254740991,-9007199254740991,"[[[\\"{{{",true,null]}') == {
        "a": [2**53 - 1, -(2**53 - 1), '[[["{{{', True, None]}
    assert loads_strict("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert loads_strict('{"order":0.5}', allow_floats=True) == {"order": 0.5}
    with pytest.raises(StrictJsonError):
        loads_strict('{"order":1e400}', allow_floats=True)


def test_dumps_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError):
        dumps_strict({"a": float("inf")})
    with pytest.raises(UnicodeEncodeError):
        dumps_strict({"a": "\ud800"})
    assert dumps_strict({"a": "é"}) == '{"a":"é"}'.encode()
