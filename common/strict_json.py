"""The one JSON door: parse untrusted JSON into values canonical JSON can carry.

Everything a client sends may later be stored, signed (canonical JSON) and
served back to other users.  A value that canonical JSON cannot encode —
a lone UTF-16 surrogate, a float, ``1e400``, an integer outside ±(2**53-1),
``NaN``/``Infinity``, or nesting deep enough to exhaust recursion — would
break every later response that carries it, so it is refused here, at the
door, before any service sees it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_SAFE_INT = 2**53 - 1
# Matrix events are small and shallow; 64 levels is far beyond any real use
# and far below the interpreter's recursion limit (json.dumps, canonical JSON).
MAX_DEPTH = 64


class StrictJsonError(ValueError):
    """Refused JSON; ``not_json`` says whether it was not JSON at all (M_NOT_JSON)
    or JSON that Matrix cannot carry (M_BAD_JSON)."""

    def __init__(self, message: str, not_json: bool = False) -> None:
        super().__init__(message)
        self.not_json = not_json


class _Refused(Exception):
    """Raised from inside the parser hooks; turned into StrictJsonError."""

    def __init__(self, message: str, not_json: bool = False) -> None:
        super().__init__(message)
        self.not_json = not_json


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:
        raise _Refused("integers must lie within ±(2**53-1)")
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise _Refused("integers must lie within ±(2**53-1)")
    return value


def _refuse_float(text: str) -> Any:
    raise _Refused("numbers must be integers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("numbers must be finite")
    return value


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are JavaScript, not JSON: the body is not JSON at all.
    raise _Refused(f"{name} is not valid JSON", not_json=True)


def loads_strict(raw: bytes | str, allow_floats: bool = False, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` or raise :class:`StrictJsonError`.

    ``allow_floats`` admits finite non-integers (the spec's tag ``order``);
    every other rule holds regardless.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJsonError("the body is not UTF-8", not_json=True) from None
    _check_depth(raw, max_depth)
    try:
        value = json.loads(
            raw,
            parse_int=_parse_int,
            parse_float=_finite_float if allow_floats else _refuse_float,
            parse_constant=_refuse_constant,
        )
    except _Refused as exc:
        raise StrictJsonError(str(exc), not_json=exc.not_json) from None
    except (ValueError, RecursionError):
        raise StrictJsonError("not valid JSON", not_json=True) from None
    _check_strings(value)
    return value


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` before the recursive parser sees it.

    Strings are matched whole (so brackets inside them do not count); an
    unterminated string simply ends the scan and the parser refuses it.
    """
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise StrictJsonError(f"JSON nested deeper than {max_depth} levels")
        elif token in "]}":
            depth -= 1


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates (``"\\ud800"``) in any string or key: UTF-8 cannot carry them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJsonError("strings must be valid Unicode (no lone surrogates)") from None


def dumps_strict(value: Any) -> bytes:
    """Compact UTF-8 JSON that refuses NaN/Infinity and lone surrogates instead of emitting them."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
