"""What a word to recognize may be called: one check for `train --words`, the folder names of takes,
`synth --words` and the app's Custom words tab, made before any work.

A word becomes a folder name (`recordings/<word>/`, `<synthetic>/<word>/`), a label that is printed
one per line and in CSV, and a class the model must tell from the others: so it is short, one line,
a valid folder name on any system, and different from the other words by more than case or spacing
("Yes" and "yes" trained as two labels split every "yes" between them, and neither ever fired).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MAX_WORD_CHARS = 50  # a command of a few words; at 4 bytes a character at most, far below a folder name's 255 bytes
SHOWN_CHARS = 30  # of a word quoted in a message, so the message stays one readable line
WORD_PATTERN = re.compile(r"[\w' -]+")  # letters, digits, _, spaces, apostrophes, hyphens: a folder name anywhere
NOT_A_WORD_STARTS = ("_", ".")  # `_unknown_`, `_silence_`, `_background_noise_`; hidden folders
ALLOWED = "use letters, digits, spaces, apostrophes and hyphens, not starting with '_' or '.'"


class WordError(ValueError):
    """A word that cannot be used; the message names the word and the problem in one line."""


def shown(word: str) -> str:
    """The word quoted for a message: control characters escaped, a long word cut short."""
    return repr(word if len(word) <= SHOWN_CHARS else word[: SHOWN_CHARS - 3] + "...")


def word_key(word: str) -> str:
    """What two words are compared by: case and spacing do not count ('Lights  On' is 'lights on')."""
    return " ".join(word.casefold().split())


def check_word(word: str) -> str:
    """The word itself, or WordError saying why it cannot be one."""
    if not word.strip():
        raise WordError("an empty word")
    if len(word) > MAX_WORD_CHARS:
        raise WordError(f"{shown(word)}: a word is at most {MAX_WORD_CHARS} characters, not {len(word)} "
                        f"(it becomes a folder name)")
    if any(unicodedata.category(char).startswith("C") for char in word):
        raise WordError(f"{shown(word)}: a word cannot hold a line break or another control character "
                        f"(labels are printed one per line)")
    if word.startswith(NOT_A_WORD_STARTS) or not WORD_PATTERN.fullmatch(word):
        raise WordError(f"{shown(word)}: {ALLOWED}")
    return word


def check_words(words: Iterable[str]) -> list[str]:
    """The words in order, each checked; a word given twice is kept once, and two that differ only in
    case or spacing are refused (which one was meant is the user's to say)."""
    kept: dict[str, str] = {}  # word_key -> the word as given
    for word in words:
        check_word(word)
        earlier = kept.setdefault(word_key(word), word)
        if earlier != word:
            raise WordError(f"{shown(earlier)} and {shown(word)} are the same word (case and spacing do not "
                            f"count); give it once")
    return list(kept.values())


def parse_words(text: str) -> list[str]:
    """'yes, lights on' -> ['yes', 'lights on']: comma-separated, each stripped and checked."""
    return check_words(part.strip() for part in text.split(",") if part.strip())
