"""Text that comes from outside (search queries, file names, upload keys, person names, emails) must
hold no control characters: a NUL byte truncates C strings (SQLite's FTS5 parser, file system calls)
and PostgreSQL refuses it in any text value; the others only ever arrive by mistake or by malice.

One rule for every entry point: `check_text` raises InvalidInputError (a 400 from the API),
`CleanText` does the same inside a pydantic body (a 422), and `strip_controls` is for code that
must never raise on odd input (the search engine, the store's full-text query builders).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from heimdex.errors import HeimdexError

# C0 controls, DEL and C1 controls. Tab, line feed and carriage return are separate: free text (a
# pasted query, a name) may carry them, and it is collapsed to single spaces anyway.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROLS_AND_WHITESPACE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidInputError(HeimdexError):
    """A request value that cannot be used as given (a control character, for one)."""


def find_control(text: str, *, allow_whitespace: bool = False) -> str | None:
    """The first control character in `text` as `U+0000`, or None if it has none."""
    match = (_CONTROLS if allow_whitespace else _CONTROLS_AND_WHITESPACE).search(text)
    return f"U+{ord(match.group()):04X}" if match else None


def control_message(what: str, code: str) -> str:
    return f"{what} contains a control character ({code}); remove it and try again"


def check_text(text: str, what: str, *, allow_whitespace: bool = False) -> str:
    """`text` unchanged, or InvalidInputError naming `what` and the offending character."""
    code = find_control(text, allow_whitespace=allow_whitespace)
    if code is not None:
        raise InvalidInputError(control_message(what, code))
    return text


def strip_controls(text: str) -> str:
    """`text` with every control character (tab and newline included) turned into a space."""
    return _CONTROLS_AND_WHITESPACE.sub(" ", text)


def _no_controls(text: str) -> str:
    code = find_control(text)
    if code is not None:
        raise ValueError(f"contains a control character ({code})")
    return text


def _no_controls_but_whitespace(text: str) -> str:
    code = find_control(text, allow_whitespace=True)
    if code is not None:
        raise ValueError(f"contains a control character ({code})")
    return text


CleanText = Annotated[str, AfterValidator(_no_controls)]
"""A pydantic string field that refuses control characters (file names, keys, emails)."""

CleanFreeText = Annotated[str, AfterValidator(_no_controls_but_whitespace)]
"""Like CleanText, but tab and newline pass (names and other free text that is collapsed later)."""
