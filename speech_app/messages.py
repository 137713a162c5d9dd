"""Error text for one-line messages: every user-facing error names the file and the problem on a
single line, whatever the library underneath put in its exception (tracebacks, newlines, tabs)."""

from __future__ import annotations

MAX_REASON_CHARS = 200  # a library's reason beyond this is noise in a one-line message


def one_line(reason: BaseException | str) -> str:
    """`reason` with its whitespace collapsed to single spaces; an exception without text gives its
    type's name, so the message never ends in empty parentheses."""
    text = " ".join(str(reason).split())
    if not text and isinstance(reason, BaseException):
        text = type(reason).__name__
    return text[:MAX_REASON_CHARS]
