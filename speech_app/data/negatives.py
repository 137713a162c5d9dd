"""What a custom-word model learns to ignore, for users who have no dataset.

The package carries real clips of many other words and short background noise from Speech
Commands (CC BY 4.0, see negatives_data/README.md), and makes "near misses" of each custom word:
texts that share its start, spoken by the offline TTS engines. No I/O beyond listing the bundled
files.
"""

from __future__ import annotations

from pathlib import Path

from ..audio import is_audio_file

NEGATIVES_DIR = Path(__file__).resolve().parent / "negatives_data"
SPEECH_DIR = "speech"  # <word>/<speaker>_nohash_0.ogg: real speakers of the dataset's training split
NOISE_DIR = "noise"
MIN_PREFIX_LETTERS = 3
# No rhymes with another onset ("harvis", "bomputer"): measured, they cost real takes and gained no
# rejection. One consonant apart, real voices and microphones blur them into the word itself:
# text only, "computer" went from 80.7% to 86.7-87.3% of real takes without them (rejection of
# other speech 98.5% -> 98.1-99.3%; training/studies/CUSTOM_WORDS_STUDY.md, variants).


def bundled_speech(exclude_words: list[str] = ()) -> dict[str, list[Path]]:
    """Bundled clips per word, without the user's own words (or any word inside a phrase of theirs)."""
    taken = {w.lower() for w in exclude_words} | {part.lower() for w in exclude_words for part in w.split()}
    folder = NEGATIVES_DIR / SPEECH_DIR
    if not folder.is_dir():
        return {}
    return {d.name: sorted(p for p in d.iterdir() if is_audio_file(p))
            for d in sorted(folder.iterdir()) if d.is_dir() and d.name.lower() not in taken}


def bundled_noise() -> list[Path]:
    folder = NEGATIVES_DIR / NOISE_DIR
    return sorted(p for p in folder.iterdir() if is_audio_file(p)) if folder.is_dir() else []


def near_misses(word: str, others: list[str] = ()) -> list[str]:
    """Texts close to `word` that must not trigger it: its first part, its start with another
    ending, and for a phrase each of its words alone and the phrase cut short.

    `others` (the other custom words) are never returned: "lights" is a near miss of "lights on",
    but "lights off" is a word of its own.
    """
    word = word.lower().strip()
    parts = word.split()
    misses: list[str] = []
    if len(parts) > 1:
        misses += parts + [" ".join(parts[:-1])]
    last = parts[-1]
    head = " ".join(parts[:-1] + [""]) if len(parts) > 1 else ""
    if len(last) > MIN_PREFIX_LETTERS + 1:
        cut = max(MIN_PREFIX_LETTERS, (len(last) + 1) // 2)
        misses.append(head + last[:cut])  # "comp", "jarv": the start alone
        misses.append(head + last[:cut] + "o")  # the start with another ending
    taken = {w.lower() for w in others} | {word}
    unique = []
    for miss in misses:
        if miss and miss not in taken and miss not in unique:
            unique.append(miss)
    return unique
