"""Training data from text alone: synthetic speech for the user's words, and for filler words that
teach the model what `_unknown_` sounds like. Clips are cached, so a second run synthesizes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from .generator import DEFAULT_CLIPS_PER_WORD, DEFAULT_VARIETY, SynthVariety

# Everyday words and the other Speech Commands words; whichever the user did not ask for become
# `_unknown_`. Varied lengths and sounds, so the model learns "some other word", not one voice.
FILLER_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "backward", "forward", "follow",
    "learn", "visual", "hello", "water", "window", "paper", "table", "yellow", "morning",
    "open", "close", "music", "light", "play", "pause", "next", "computer", "kitchen", "coffee",
)
FILLER_CLIPS_PER_WORD = 12


def synth_cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "speech-app" / "synth"


def filler_words(words: list[str]) -> list[str]:
    taken = {w.lower() for w in words} | {part.lower() for w in words for part in w.split()}
    return sorted({w for w in FILLER_WORDS if w not in taken})


def near_miss_words(words: list[str]) -> list[str]:
    """Near misses of every word (see negatives.near_misses), none of them a word or filler word."""
    from ..data.negatives import near_misses

    fillers = set(filler_words(words))
    return sorted({miss for w in words for miss in near_misses(w, words) if miss not in fillers})


def synthesize_training_set(words: list[str], *, per_word: int = DEFAULT_CLIPS_PER_WORD, seed: int = 0,
                            engines: str = "auto", jobs: int | None = None, noise_files: list[Path] | None = None,
                            progress: bool = True, cache_root: Path | None = None, near_miss_clips: int = 0,
                            commercial_only: bool = False, variety: SynthVariety = DEFAULT_VARIETY) -> Path:
    """A folder of synthetic clips for `words` plus filler words and, with `near_miss_clips`, that many
    clips of each near miss of each word (cached by the request). commercial_only and variety: as in
    `synthesize_words`. The folder's `.complete.json` records the clips made by each engine."""
    from . import synthesize_words

    fillers = filler_words(words)
    misses = near_miss_words(words) if near_miss_clips else []
    request = {"words": list(words), "per_word": per_word, "seed": seed, "engines": engines,
               "fillers": fillers, "filler_clips": FILLER_CLIPS_PER_WORD,
               # the noise by name and size, not path: the same package installed elsewhere reuses the cache
               "noise": [f"{Path(p).name} {Path(p).stat().st_size}" for p in noise_files or []]}
    if misses:  # older requests keep their keys (and their cached folders)
        request.update(near_misses=misses, near_miss_clips=near_miss_clips)
    if commercial_only:
        request["commercial_only"] = True
    if variety != DEFAULT_VARIETY:
        request["variety"] = asdict(variety)
    key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    folder = (cache_root or synth_cache_root()) / key
    done_marker = folder / ".complete.json"
    if done_marker.is_file():
        return folder
    runs = [(words, per_word, seed), (fillers, FILLER_CLIPS_PER_WORD, seed + 1)]
    runs += [(misses, near_miss_clips, seed + 2)] if misses else []
    clips_per_engine: Counter = Counter()
    for run_words, clips, run_seed in runs:
        summary = synthesize_words(run_words, folder, clips, engines, run_seed, jobs, noise_files, progress,
                                   commercial_only, variety)
        clips_per_engine.update(summary.clips_per_engine)
    if progress:  # which engines spoke: the user may have fewer (or more) installed than expected
        print("synthetic speech: " + engines_line(clips_per_engine), file=sys.stderr)
    done_marker.write_text(json.dumps({**request, "clips_per_engine": dict(sorted(clips_per_engine.items()))},
                                      indent=2))
    return folder


def engines_line(clips_per_engine: Counter | dict) -> str:
    """"espeak-ng 120 clips, flite 80 clips": the engines that made a synthetic set."""
    return ", ".join(f"{engine} {n} clips" for engine, n in sorted(clips_per_engine.items())) or "no clips"
