"""Training data from text alone: synthetic speech for the user's words, and for filler words that
teach the model what `_unknown_` sounds like. Clips are cached, so a second run synthesizes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from ..atomic_files import write_text
from ..cache import cache_folder
from .generator import DEFAULT_CLIPS_PER_WORD, DEFAULT_VARIETY, SynthVariety, engine_and_voice

# Everyday words and the other Speech Commands words; whichever the user did not ask for become
# `_unknown_`. Varied lengths and sounds, so the model learns "some other word", not one voice.
FILLER_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "backward", "forward", "follow",
    "learn", "visual", "hello", "water", "window", "paper", "table", "yellow", "morning",
    "open", "close", "music", "light", "play", "pause", "next", "computer", "kitchen", "coffee",
)
FILLER_CLIPS_PER_WORD = 12
WORD_STORE = "words"  # under the cache root: one folder of clips per word and request, shared by the sets
WORD_DONE = ".complete.json"
SET_DONE = ".complete.json"
# what a word's clips depend on besides the word, its seed and its number of clips
WORD_REQUEST_KEYS = ("engines", "noise", "commercial_only", "variety", "voices", "store_version")
# of how a clip is made from its seed (generator.py, effects.py): raise it when a change there makes other
# clips, so that no cached clip of the old making is taken for a new one. 2: the key holds the voices.
STORE_VERSION = 2
# No engine is suggested when a set is made: the twelfth session's pico (Debian non-free; real takes heard in
# conversation 76.5% -> 81.1%) helped while every weight trained from text alone, and adds nothing since the lower
# layers are kept (custom_words.text_only_trainable: 83.3% heard with it against 84.1%, 6.6 false alarms an hour
# against 3.3; training/studies/CONVERSATION_STUDY.md, fourteenth session). `make voices` still installs it.


def synth_cache_root() -> Path:
    return cache_folder("synth")


def voices_key(engines: str, commercial_only: bool) -> list[str]:
    """What speaks for a request: each chosen engine's executable (`fingerprint`: an upgrade changes it) and
    the voices it would draw from. Installing, removing or upgrading an engine or a voice changes the key."""
    from .generator import VoicePool, choose_engines

    pool = VoicePool.from_engines(choose_engines(engines), commercial_only)
    return [f"{engine.fingerprint()}: {' '.join(voices)}" for engine, voices in zip(pool.engines, pool.voices)]


def read_marker(path: Path) -> dict | None:
    """The record of a finished store entry or set, or None: absent, or damaged (an entry is then made again,
    never trusted)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("clips_per_engine"), dict) else None


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
    fillers = filler_words(words)
    misses = near_miss_words(words) if near_miss_clips else []
    request = {"words": list(words), "per_word": per_word, "seed": seed, "engines": engines,
               "fillers": fillers, "filler_clips": FILLER_CLIPS_PER_WORD,
               # the noise by name and size, not path: the same package installed elsewhere reuses the cache
               "noise": [f"{Path(p).name} {Path(p).stat().st_size}" for p in noise_files or []],
               "voices": voices_key(engines, commercial_only), "store_version": STORE_VERSION}
    if misses:  # older requests keep their keys (and their cached folders)
        request.update(near_misses=misses, near_miss_clips=near_miss_clips)
    if commercial_only:
        request["commercial_only"] = True
    if variety != DEFAULT_VARIETY:
        request["variety"] = asdict(variety)
    key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_root or synth_cache_root()
    folder = root / key
    done_marker = folder / SET_DONE
    cached = read_marker(done_marker)
    if cached is not None:
        if progress:
            say_engines(cached["clips_per_engine"], cached=True)
        return folder
    # each word's clips are drawn from (seed, word, clip index) alone, so a word's folder is the same in
    # every set: the store keeps it once, and a new set synthesizes only the words no earlier set had
    # (the filler words, shared by nearly every set, cost a new set nothing)
    common = {k: v for k, v in request.items() if k in WORD_REQUEST_KEYS}
    runs = [(words, per_word, seed), (fillers, FILLER_CLIPS_PER_WORD, seed + 1)]
    runs += [(misses, near_miss_clips, seed + 2)] if misses else []
    clips_per_engine: Counter = Counter()
    requests = [(run_words, {**common, "clips": clips, "seed": run_seed}) for run_words, clips, run_seed in runs]
    for stored in stored_words(root, requests, engines, jobs, noise_files, progress, commercial_only, variety):
        for word, (word_folder, counts) in stored.items():
            link_folder(word_folder, folder / word)
            clips_per_engine.update(counts)
    if progress:
        say_engines(clips_per_engine)
    write_text(done_marker, json.dumps({**request, "clips_per_engine": dict(sorted(clips_per_engine.items()))},
                                       indent=2))
    return folder


def word_store_folder(root: Path, word: str, request: dict) -> Path:
    """Where the store keeps one word's clips for a request (seed, clips, engines, noise, voices, variety)."""
    key = hashlib.sha1(json.dumps({**request, "word": word}, sort_keys=True).encode()).hexdigest()[:16]
    return root / WORD_STORE / key


def stored_words(root: Path, runs: list[tuple[list[str], dict]], engines: str, jobs: int | None,
                 noise_files: list[Path] | None, progress: bool, commercial_only: bool,
                 variety: SynthVariety) -> list[dict[str, tuple[Path, dict]]]:
    """Per run (words, request): {word: (its clip folder in the store, clips per engine)}, synthesizing
    only the words the store does not hold yet, every run's in one pool of workers."""
    from .generator import WordBatch, synthesize_batches

    places = [{word: word_store_folder(root, word, request) for word in words} for words, request in runs]
    missing = [[word for word, place in run_places.items() if read_marker(place / WORD_DONE) is None]
               for run_places in places]
    if any(missing):
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            todo = [i for i, words in enumerate(missing) if words]
            batches = [WordBatch(tuple(missing[i]), staging / str(i), runs[i][1]["clips"], runs[i][1]["seed"])
                       for i in todo]
            summaries = synthesize_batches(batches, engines, jobs, noise_files, progress, commercial_only, variety)
            for i, batch, summary in zip(todo, batches, summaries):
                for word in missing[i]:
                    counts = Counter(engine_and_voice(p)[0] for p in summary.files if p.parent.name == word)
                    store_word(batch.out_dir / word, places[i][word],
                               {**runs[i][1], "word": word, "clips_per_engine": counts})
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [{word: (place / word, read_marker(place / WORD_DONE)["clips_per_engine"])
             for word, place in run_places.items()} for run_places in places]


def store_word(clips: Path, place: Path, record: dict) -> None:
    """Move a word's freshly made clips into its store folder. The entry is put together beside it (clips, then
    the marker) and renamed into place whole, so a process that trains at the same time (the GUI and the CLI,
    two benchmarks) never sees, removes or fills a half-made entry; if it stored the word first, its entry stays."""
    if read_marker(place / WORD_DONE) is not None:  # another process stored it meanwhile
        return
    place.parent.mkdir(parents=True, exist_ok=True)
    entry = Path(tempfile.mkdtemp(prefix=".entry-", dir=place.parent))
    try:
        clips.mkdir(exist_ok=True)  # a word whose every clip failed: an empty folder
        os.replace(clips, entry / clips.name)
        write_text(entry / WORD_DONE, json.dumps(record))
        if read_marker(place / WORD_DONE) is None:  # an entry an interrupted older run left unfinished, or damaged
            shutil.rmtree(place, ignore_errors=True)
        try:
            os.rename(entry, place)
        except OSError:  # another process renamed its whole entry into place first
            if read_marker(place / WORD_DONE) is None:
                raise
    finally:
        shutil.rmtree(entry, ignore_errors=True)


def link_folder(source: Path, target: Path) -> None:
    """`target` with every file of `source`: hard links (no copy of the audio) where the file system
    allows them, else copies."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        destination = target / path.name
        if destination.exists():
            continue
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def say_engines(clips_per_engine: Counter | dict, cached: bool = False) -> None:
    """Which engines spoke (the user may have fewer, or more, installed than expected)."""
    print(f"synthetic speech{' (cached)' if cached else ''}: " + engines_line(clips_per_engine), file=sys.stderr)


def engines_line(clips_per_engine: Counter | dict) -> str:
    """"espeak-ng 120 clips, flite 80 clips": the engines that made a synthetic set."""
    return ", ".join(f"{engine} {n} clips" for engine, n in sorted(clips_per_engine.items())) or "no clips"
