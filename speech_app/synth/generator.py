"""Write N synthetic clips per word (one second unless SynthVariety says otherwise), spread over every
installed engine and voice.

Each clip draws its engine, voice, speed, pitch and augmentation from a generator seeded by
(seed, word, clip index) alone, so the files do not depend on --jobs or on the order workers finish.
"""

from __future__ import annotations

import copy
import hashlib
import multiprocessing
import multiprocessing.util
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import CLIP_SECONDS, AudioDecodeError, load_audio, write_wav
from ..data.dataset import speaker_of
from ..data.noise import NoiseBank
from .effects import VoiceEffects, augment_utterance, pitch_shift, warm_up
from .engines import (ALL_ENGINES, INSTALL_COMMAND, SpeechEngine, SynthesisError, available_engines,
                      engine_names)

DEFAULT_CLIPS_PER_WORD = 200  # synthetic clips of each word unless asked otherwise (`synth --per-word`, and
# `train --synth-per-word` in the dataset recipe; the custom recipe has its own, CustomWordsRecipe.synth_per_word)
SPEED_RANGE = (0.8, 1.25)  # speaking-rate multiplier drawn per clip, given to the engine
VOICE_PITCH_SEMITONES = 3.0  # per-clip pitch offset from the voice's own, drawn from [-this, +this]
SEED_MASK = 2**63 - 1  # SeedSequence wants non-negative entropy


@dataclass(frozen=True)
class SynthVariety:
    """How varied the clips are: the prosody drawn per clip, what the room and the microphone add,
    and how much of the speech may come from the robotic engine (espeak-ng)."""

    speed_range: tuple[float, float] = SPEED_RANGE
    pitch_semitones: float = VOICE_PITCH_SEMITONES
    effects: VoiceEffects = VoiceEffects()
    robotic_share: float | None = None  # cap on engines with `max_share` (None: the engine's own)
    # the clip's length: as long as the model's window, a clip's room and noise fill it, and a slow
    # word is not squeezed into CLIP_SECONDS
    clip_seconds: float = CLIP_SECONDS


DEFAULT_VARIETY = SynthVariety()


class SynthUsageError(ValueError):
    """Bad arguments: an unknown engine, an unusable word, a non-positive count."""


class NoEngineError(Exception):
    """No wanted speech engine is installed; the message says what to install."""


@dataclass(frozen=True)
class VoicePool:
    """The installed voices and how often each engine is drawn."""

    engines: tuple[SpeechEngine, ...]
    voices: tuple[tuple[str, ...], ...]  # per engine, sorted
    shares: tuple[float, ...]  # per engine, summing to 1

    @classmethod
    def from_engines(cls, engines: list[SpeechEngine], commercial_only: bool = False,
                     robotic_share: float | None = None) -> VoicePool:
        """commercial_only leaves out voices whose licence forbids shipping a model trained on them;
        robotic_share replaces the cap of engines that have one (`max_share`)."""
        voices = [tuple(v for v in e.voices() if not commercial_only or e.commercial_use(v)) for e in engines]
        kept = [(e, v) for e, v in zip(engines, voices) if v]
        if not kept:
            raise NoEngineError("none of the chosen engines has a voice whose licence allows commercial use; "
                                "install the main-section engines: " + INSTALL_COMMAND)
        engines, voices = [e for e, _ in kept], tuple(v for _, v in kept)
        return cls(tuple(engines), voices, tuple(engine_shares(engines, [len(v) for v in voices], robotic_share)))

    def pick(self, rng: np.random.Generator) -> tuple[SpeechEngine, str]:
        i = int(rng.choice(len(self.engines), p=self.shares))
        return self.engines[i], self.voices[i][int(rng.integers(len(self.voices[i])))]

    def close(self) -> None:
        """End what the engines keep running between utterances (the Festival sessions of this process)."""
        for engine in self.engines:
            engine.close()


def engine_shares(engines: list[SpeechEngine], voice_counts: list[int],
                  robotic_share: float | None = None) -> list[float]:
    """Share of clips per engine: by number of voices (about the number of speakers), except that an
    engine with `max_share` (robotic espeak-ng) is held to it, or to `robotic_share` when given,
    whenever other engines exist."""
    total = sum(voice_counts)
    shares = [n / total for n in voice_counts]
    caps = {i: e.max_share if robotic_share is None else robotic_share
            for i, e in enumerate(engines) if e.max_share is not None}
    capped = [i for i, cap in caps.items() if shares[i] > cap]
    free = [i for i in range(len(engines)) if i not in capped]
    if not capped or not free:
        return shares
    left = 1.0 - sum(caps[i] for i in capped)
    free_voices = sum(voice_counts[i] for i in free)
    return [caps[i] if i in capped else left * voice_counts[i] / free_voices
            for i in range(len(engines))]


def clip_file_name(engine: str, voice: str, index: int) -> str:
    """`<engine>-<voice>_nohash_<n>.wav`: the voice is the clip's "speaker" for the dataset split."""
    return f"{engine}-{voice}_nohash_{index}.wav"


def engine_and_voice(path: str | Path) -> tuple[str, str] | None:
    """(engine, voice) of a clip named by `clip_file_name`, or None for any other file."""
    speaker = speaker_of(path)
    for engine in sorted(engine_names(), key=len, reverse=True):  # the longest name that matches
        if speaker.startswith(engine + "-"):
            return engine, speaker[len(engine) + 1 :]
    return None


def clip_rng(seed: int, word: str, index: int) -> np.random.Generator:
    # a stable hash: Python's hash() of a str changes between processes
    word_key = int.from_bytes(hashlib.sha1(word.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed & SEED_MASK, word_key, index])


def speak(engine: SpeechEngine, voice: str, text: str, speed: float, pitch_semitones: float) -> np.ndarray:
    """The engine's utterance as 16 kHz float32, with the pitch offset applied one way or another."""
    with tempfile.TemporaryDirectory(prefix="speech-app-synth-") as tmp:
        raw_path = Path(tmp) / "engine.wav"  # at the engine's own rate; load_audio resamples
        engine.synthesize(text, voice, speed, pitch_semitones, raw_path)
        speech = load_audio(raw_path)
    return speech if engine.native_pitch(voice) else pitch_shift(speech, pitch_semitones)


@dataclass(frozen=True)
class ClipResult:
    word: str
    index: int
    engine: str
    voice: str
    licence: str
    path: Path | None  # None when the clip failed
    error: str = ""


class ClipMaker:
    """Everything one process needs to render clips: the voices, the noise, the seed."""

    def __init__(self, pool: VoicePool, out_dir: Path, seed: int, noise_files: list[Path] | None,
                 variety: SynthVariety = DEFAULT_VARIETY):
        self.pool, self.out_dir, self.seed, self.variety = pool, out_dir, seed, variety
        self.noise = NoiseBank.from_files(noise_files, seed) if noise_files else NoiseBank.generated(seed)
        self._noise_files = noise_files

    def for_batch(self, out_dir: Path, seed: int) -> ClipMaker:
        """The same voices, noise and variety, writing another batch's clips (its folder, its seed)."""
        other = copy.copy(self)
        other.out_dir, other.seed = Path(out_dir), seed
        if seed != self.seed and not self._noise_files:  # generated noise depends on the seed
            other.noise = NoiseBank.generated(seed)
        return other

    def __call__(self, word: str, index: int) -> ClipResult:
        rng = clip_rng(self.seed, word, index)
        engine, voice = self.pool.pick(rng)
        speed = rng.uniform(*self.variety.speed_range)
        pitch = rng.uniform(-self.variety.pitch_semitones, self.variety.pitch_semitones)
        path = self.out_dir / word / clip_file_name(engine.name, voice, index)
        result = dict(word=word, index=index, engine=engine.name, voice=voice, licence=engine.voice_licence(voice))
        try:
            speech = speak(engine, voice, word, speed, pitch)
            write_wav(path, augment_utterance(speech, rng, self.noise, self.variety.effects, self.variety.clip_seconds))
        except (SynthesisError, AudioDecodeError) as err:
            return ClipResult(**result, path=None, error=f"{word!r} #{index}: {err}")
        except Exception as err:  # noqa: BLE001 - one odd utterance must not end a run of thousands
            return ClipResult(**result, path=None,
                              error=f"{word!r} #{index} ({engine.name} {voice}): {type(err).__name__}: {err}")
        return ClipResult(**result, path=path)


_worker_makers: list[ClipMaker] = []  # one per batch, in each worker process, set by the pool's initializer


def _init_worker(makers: list[ClipMaker]) -> None:
    global _worker_makers
    _worker_makers = makers
    # as the worker exits: end the engines it kept running (Festival sessions), waiting for them, so
    # their CPU time is the worker's and none outlives it (the batches share one VoicePool)
    multiprocessing.util.Finalize(None, makers[0].pool.close, exitpriority=10)


def _make_clip_in_worker(batch: int, word: str, index: int) -> ClipResult:
    return _worker_makers[batch](word, index)


@dataclass
class SynthSummary:
    """What a run wrote: clips per engine and voice, the voices' licences, and what failed."""

    out_dir: Path
    requested: int
    seconds: float
    voices_installed: dict[str, int] = field(default_factory=dict)  # engine -> voices it could draw from
    clips_per_engine: Counter = field(default_factory=Counter)
    clips_per_voice: Counter = field(default_factory=Counter)  # key: (engine, voice)
    licences: dict[tuple[str, str], str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    other_files: int = 0  # clips already in the word folders from earlier runs, left alone

    @classmethod
    def from_results(cls, out_dir: Path, results: list[ClipResult], seconds: float,
                     voices_installed: dict[str, int] | None = None) -> SynthSummary:
        summary = cls(out_dir=out_dir, requested=len(results), seconds=seconds,
                      voices_installed=dict(voices_installed or {}))
        for r in sorted(results, key=lambda r: (r.word, r.index)):
            if r.path is None:
                summary.failures.append(r.error)
                continue
            summary.files.append(r.path)
            summary.clips_per_engine[r.engine] += 1
            summary.clips_per_voice[(r.engine, r.voice)] += 1
            summary.licences[(r.engine, r.voice)] = r.licence
        present = {p for word in {r.word for r in results} for p in (out_dir / word).glob("*.wav")}
        summary.other_files = len(present - set(summary.files))
        return summary

    @property
    def clips_written(self) -> int:
        return len(self.files)

    @property
    def clips_per_second(self) -> float:
        return self.clips_written / self.seconds if self.seconds > 0 else 0.0

    def _rows(self) -> list[tuple[str, str, str, str]]:
        rows = [("engine", "voice", "clips", "licence")]
        for engine in sorted(self.clips_per_engine):
            voices = sorted((v, n) for (e, v), n in self.clips_per_voice.items() if e == engine)
            licences = {self.licences[(engine, v)] for v, _ in voices}
            shared = licences.pop() if len(licences) == 1 else ""  # else each voice row names its own
            rows.append((engine, "(all)", str(self.clips_per_engine[engine]), shared))
            rows += [("", v, str(n), "" if shared else self.licences[(engine, v)]) for v, n in voices]
        return rows

    def table(self) -> str:
        lines = []
        if self.voices_installed:
            lines.append("engines: " + ", ".join(f"{e} ({n} voices)" for e, n in self.voices_installed.items()))
        rows = self._rows()
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
        lines.append(f"{self.clips_written} of {self.requested} clips written to {self.out_dir} in "
                     f"{self.seconds:.1f} s ({self.clips_per_second:.1f} clips/s); {len(self.failures)} failed")
        if self.other_files:
            lines.append(f"{self.other_files} other clips were already in these word folders and were left alone")
        lines += [f"  failed: {message}" for message in self.failures[:10]]
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more failures")
        return "\n".join(lines)


def no_engine_message(missing: list[str] | None = None) -> str:
    if missing:
        hints = "; ".join(f"{e.name}: sudo apt-get install {e.packages} ({e.section})"
                          for e in ALL_ENGINES if e.name in missing)
        return f"requested speech engine not installed. Install with {hints}, or use --engines auto"
    optional = "; ".join(f"{e.packages} ({e.section})" for e in ALL_ENGINES if e.section != "main")
    return (f"no offline speech engine is installed. Install the engines from Debian main with: {INSTALL_COMMAND}"
            f" (optional extra voices: {optional})")


def choose_engines(engines: str | list[str] = "auto") -> list[SpeechEngine]:
    """"auto" -> every installed engine; else exactly the named ones ("espeak-ng,flite" or a list)."""
    names = [n.strip() for n in engines.split(",")] if isinstance(engines, str) else [n.strip() for n in engines]
    names = [n for n in names if n]
    if not names:
        raise SynthUsageError("no engine named; use 'auto' or some of: " + ", ".join(engine_names()))
    installed = available_engines()
    if names == ["auto"]:
        if not installed:
            raise NoEngineError(no_engine_message())
        return installed
    unknown = [n for n in names if n not in engine_names()]
    if unknown:
        raise SynthUsageError(f"unknown engine {', '.join(unknown)}; choose from auto, {', '.join(engine_names())}")
    missing = [n for n in names if n not in {e.name for e in installed}]
    if missing:  # asked for by name, so leaving it out silently would surprise
        raise NoEngineError(no_engine_message(missing))
    return [e for e in installed if e.name in names]


def check_words(words: list[str]) -> list[str]:
    """Words and phrases as typed, each a folder name: stripped, de-duplicated, in order, and checked
    as every word is (speech_app.words)."""
    from ..words import WordError
    from ..words import check_words as checked

    try:
        cleaned = checked(w.strip() for w in words if w.strip())
    except WordError as err:
        raise SynthUsageError(str(err)) from None
    if not cleaned:
        raise SynthUsageError("no words given")
    return cleaned


@dataclass(frozen=True)
class WordBatch:
    """Words whose clips go to one folder: `per_word` clips of each, drawn from `seed`."""

    words: tuple[str, ...]
    out_dir: Path
    per_word: int
    seed: int


def synthesize_words(words: list[str], out_dir: Path, per_word: int = DEFAULT_CLIPS_PER_WORD, engines: str | list[str] = "auto",
                     seed: int = 0, jobs: int | None = None, noise_files: list[Path] | None = None,
                     progress: bool = True, commercial_only: bool = False,
                     variety: SynthVariety = DEFAULT_VARIETY) -> SynthSummary:
    """Write `per_word` clips for each word to `out_dir/<word>/<engine>-<voice>_nohash_<n>.wav`.

    Raises SynthUsageError for bad arguments and NoEngineError when no wanted engine is installed;
    clips that fail are counted in the summary, not raised. jobs=None uses every core.
    commercial_only: only voices whose licence allows shipping a model trained on them.
    variety: prosody, effects and the robotic engine's share (the defaults of `speech-app synth`).
    """
    words = check_words(words.split(",") if isinstance(words, str) else words)
    batch = WordBatch(tuple(words), Path(out_dir), per_word, seed)
    return synthesize_batches([batch], engines, jobs, noise_files, progress, commercial_only, variety)[0]


def synthesize_batches(batches: list[WordBatch], engines: str | list[str] = "auto", jobs: int | None = None,
                       noise_files: list[Path] | None = None, progress: bool = True, commercial_only: bool = False,
                       variety: SynthVariety = DEFAULT_VARIETY) -> list[SynthSummary]:
    """`synthesize_words` for several batches (words, folder, clips, seed) in one pool of workers: the
    workers and their engine sessions start once, and no core waits for the end of a small batch.
    Each batch's clips are those `synthesize_words` writes for it alone. One summary per batch."""
    for batch in batches:
        if batch.per_word < 1:
            raise SynthUsageError(f"--per-word must be at least 1, not {batch.per_word}")
    if jobs is not None and jobs < 1:
        raise SynthUsageError(f"--jobs must be at least 1, not {jobs}")
    pool = VoicePool.from_engines(choose_engines(engines), commercial_only, variety.robotic_share)
    tasks = [(b, word, index) for b, batch in enumerate(batches) for word in batch.words
             for index in range(batch.per_word)]
    jobs = min(jobs or os.cpu_count() or 1, max(1, len(tasks)))
    started = time.perf_counter()
    first = ClipMaker(pool, batches[0].out_dir, batches[0].seed, noise_files, variety)
    makers = [first.for_batch(batch.out_dir, batch.seed) for batch in batches]
    if jobs == 1:  # in this process: no start-up cost, and easier to debug
        results = _run_in_process(tasks, makers, progress)
    else:
        results = _run_in_pool(tasks, makers, jobs, progress)
    seconds = time.perf_counter() - started
    installed = {e.name: len(v) for e, v in zip(pool.engines, pool.voices)}
    return [SynthSummary.from_results(batch.out_dir, [r for b, r in results if b == i], seconds, installed)
            for i, batch in enumerate(batches)]


def _progress_bar(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="synth", file=sys.stderr, disable=not progress)


def _run_in_process(tasks: list[tuple[int, str, int]], makers: list[ClipMaker],
                    progress: bool) -> list[tuple[int, ClipResult]]:
    results = []
    try:
        with _progress_bar(len(tasks), progress) as bar:
            for batch, word, index in tasks:
                results.append((batch, makers[batch](word, index)))
                bar.update()
    finally:
        makers[0].pool.close()
    return results


def _run_in_pool(tasks: list[tuple[int, str, int]], makers: list[ClipMaker], jobs: int,
                 progress: bool) -> list[tuple[int, ClipResult]]:
    # Fork where it is safe (Linux): workers inherit librosa, its compiled kernels and the noise, which
    # spawn would load again in each worker (seconds each), and a caller's script needs no __main__ guard.
    # The workers never touch torch, whose threads are what makes fork risky.
    start_method = "fork" if sys.platform.startswith("linux") else "spawn"
    if start_method == "fork":
        warm_up()
    results = []
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(start_method),
                             initializer=_init_worker, initargs=(makers,)) as executor:
        # with fork, every worker starts at the first submit, before the bar starts its monitor thread
        futures = {executor.submit(_make_clip_in_worker, batch, word, index): batch for batch, word, index in tasks}
        with _progress_bar(len(tasks), progress) as bar:
            try:
                for future in as_completed(futures):
                    results.append((futures[future], future.result()))
                    bar.update()
            except BaseException:
                executor.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: drop queued clips, finish running ones
                raise
    return results
