"""Which clips train, validate and test a model, and with which labels.

Two layouts are read:
- Speech Commands: one folder per word, `_background_noise_/`, files `<speaker>_nohash_<n>.wav`,
  optionally `validation_list.txt`/`testing_list.txt`; otherwise the dataset's own speaker-hash split.
- Plain word folders of custom recordings, any file names, any length.
`_silence_` and `_unknown_` are added as in the standard 12-class task.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..audio import is_audio_file

SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
BACKGROUND_NOISE_DIR = "_background_noise_"
STANDARD_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SPLIT_LIST_FILES = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
SPLITS = ("training", "validation", "testing")

VALIDATION_PERCENT = 10.0
TESTING_PERCENT = 10.0
SILENCE_PERCENT = 10.0  # of the wanted-word clips in each split, as in the standard task
UNKNOWN_PERCENT = 10.0
# the constant TensorFlow's input_data.py uses, so the split matches the dataset's published one
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
# Picks which `_unknown_` clips join each split, so an index comes out the same every time. Any fixed
# number would do; this is the one TensorFlow's speech_commands example seeds its data with.
# `train` and `evaluate` pass their own --seed instead.
UNKNOWN_DRAW_SEED = 59185


@dataclass(frozen=True)
class Example:
    path: str | None  # None: a `_silence_` example, made from background noise when loaded
    label: str
    split: str
    word: str = ""  # the folder the clip came from (differs from label for `_unknown_`)
    source: str = "real"  # "real" or "synthetic"


@dataclass
class DatasetIndex:
    labels: list[str]
    examples: list[Example]
    noise_files: list[Path] = field(default_factory=list)

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def counts(self) -> dict[str, Counter]:
        table: dict[str, Counter] = {name: Counter() for name in SPLITS}
        for example in self.examples:
            table[example.split][example.label] += 1
        return table


def speaker_of(path: str | Path) -> str:
    """The speaker part of a Speech Commands name (`3cfc6b3a_nohash_1.wav` -> `3cfc6b3a`)."""
    return re.sub(r"_nohash_.*$", "", Path(path).name)


def which_set(path: str | Path, validation_percent: float = VALIDATION_PERCENT,
              testing_percent: float = TESTING_PERCENT) -> str:
    """The split of a file by a stable hash of its speaker, so a speaker never spans two splits and
    a clip keeps its split as the dataset grows (the rule of the Speech Commands dataset)."""
    digest = hashlib.sha1(speaker_of(path).encode("utf-8")).hexdigest()
    percentage = (int(digest, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percent:
        return "validation"
    if percentage < validation_percent + testing_percent:
        return "testing"
    return "training"


def word_folders(data_dir: Path) -> dict[str, list[Path]]:
    """Audio files per word folder; folders starting with `_` or `.` are not words."""
    folders = {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if folder.name.startswith(("_", ".")):
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_audio_file(p))
        if files:
            folders[folder.name] = files
    return folders


def is_speech_commands_layout(data_dir: Path) -> bool:
    return (data_dir / BACKGROUND_NOISE_DIR).is_dir() or any((data_dir / f).is_file() for f in SPLIT_LIST_FILES.values())


def read_split_lists(data_dir: Path) -> dict[str, str]:
    """`word/name` (no extension) -> split, from the dataset's list files when it ships them."""
    listed = {}
    for split, filename in SPLIT_LIST_FILES.items():
        list_file = data_dir / filename
        if list_file.is_file():
            for line in list_file.read_text().splitlines():
                if line.strip():
                    listed[_list_key(Path(line.strip()))] = split
    return listed


def _list_key(relative: Path) -> str:
    return relative.with_suffix("").as_posix()


def default_words(data_dirs: list[Path]) -> list[str]:
    """The standard ten commands for Speech Commands data; every folder for custom recordings."""
    if any(is_speech_commands_layout(d) for d in data_dirs):
        return list(STANDARD_WORDS)
    return sorted({word for d in data_dirs for word in word_folders(d)})


def build_index(data_dirs: list[Path], words: list[str] | None = None, *, seed: int = UNKNOWN_DRAW_SEED,
                silence_percent: float = SILENCE_PERCENT, unknown_percent: float = UNKNOWN_PERCENT,
                validation_percent: float = VALIDATION_PERCENT, testing_percent: float = TESTING_PERCENT,
                synthetic_dirs: list[Path] = (), allow_missing: bool = False,
                holdout_real: tuple[str, ...] = (), testing_speakers: frozenset[str] = frozenset(),
                even_unknown: bool = False) -> DatasetIndex:
    """Examples of `words` (plus `_silence_` and `_unknown_`) from real data folders and, optionally,
    folders of synthetic speech. Synthetic clips only train, except for a word (or `_unknown_`)
    with no real clip at all: then they are split like real ones, so the word can be validated.
    Real training clips of the `holdout_real` words are left out: their real clips only validate
    (to measure what synthetic speech alone is worth). Every real clip of a `testing_speakers`
    speaker tests (a development test kept away from training and validation). `even_unknown` draws
    `_unknown_` evenly across the other words, real clips first, instead of in proportion to their
    clips (which lets a few plentiful words make up the class)."""
    data_dirs, synthetic_dirs = [Path(d) for d in data_dirs], [Path(d) for d in synthetic_dirs]
    for d in data_dirs + synthetic_dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such data folder")
    words = list(words) if words else default_words(data_dirs or synthetic_dirs)
    wanted, unknown_pool, noise_files = [], [], []
    for data_dir in data_dirs:
        noise_files += noise_files_of(data_dir)
        _scan(data_dir, words, "real", wanted, unknown_pool, validation_percent, testing_percent,
              testing_speakers=testing_speakers)
    real_words = {e.word for e in wanted} | ({UNKNOWN_LABEL} if unknown_pool else set())
    for data_dir in synthetic_dirs:
        noise_files += noise_files_of(data_dir)
        _scan(data_dir, words, "synthetic", wanted, unknown_pool, validation_percent, testing_percent, real_words)
    wanted = [e for e in wanted if not (e.source == "real" and e.word in holdout_real and e.split == "training")]
    missing = [w for w in words if not any(e.word == w for e in wanted)]
    if missing and not allow_missing:
        raise ValueError(f"no recordings for: {', '.join(missing)} (looked in {', '.join(map(str, data_dirs))})")
    wanted = _ensure_validation(wanted)
    examples = list(wanted)
    rng = random.Random(seed)
    for split in SPLITS:
        n_wanted = sum(e.split == split for e in wanted)
        pool = [e for e in unknown_pool if e.split == split]
        # at least an average word's worth each: with two custom words, 10% would be a handful of clips
        per_word = math.ceil(n_wanted / max(1, len(words)))
        n_unknown = min(len(pool), max(math.ceil(n_wanted * unknown_percent / 100.0), per_word)) if unknown_percent else 0
        examples += _even_sample(pool, n_unknown, rng) if even_unknown else rng.sample(pool, n_unknown)
        n_silence = max(math.ceil(n_wanted * silence_percent / 100.0), per_word) if n_wanted and silence_percent else 0
        examples += [Example(None, SILENCE_LABEL, split, SILENCE_LABEL)] * n_silence
    labels = [SILENCE_LABEL, UNKNOWN_LABEL] + [w for w in words if w not in (SILENCE_LABEL, UNKNOWN_LABEL)]
    return DatasetIndex(labels=labels, examples=examples, noise_files=noise_files)


def noise_files_of(data_dir: Path) -> list[Path]:
    """The background-noise recordings of a Speech Commands folder (not the README beside them)."""
    noise_dir = data_dir / BACKGROUND_NOISE_DIR
    return sorted(p for p in noise_dir.iterdir() if is_audio_file(p)) if noise_dir.is_dir() else []


def _scan(data_dir: Path, words: list[str], source: str, wanted: list, unknown_pool: list,
          validation_percent: float, testing_percent: float, real_words: set[str] = frozenset(),
          testing_speakers: frozenset[str] = frozenset()) -> None:
    """Append the examples of one folder to `wanted` or `unknown_pool`."""
    listed = read_split_lists(data_dir)
    for word, files in word_folders(data_dir).items():
        label = word if word in words else UNKNOWN_LABEL
        train_only = source == "synthetic" and (word if label != UNKNOWN_LABEL else UNKNOWN_LABEL) in real_words
        for path in files:
            split = listed.get(_list_key(path.relative_to(data_dir))) or which_set(path, validation_percent, testing_percent)
            if speaker_of(path) in testing_speakers:
                split = "testing"
            if train_only or (source == "synthetic" and split == "testing"):
                split = "training"  # synthetic speech never tests a model
            example = Example(str(path), label, split, word, source)
            (wanted if label != UNKNOWN_LABEL else unknown_pool).append(example)


def _even_sample(pool: list[Example], n: int, rng: random.Random) -> list[Example]:
    """n examples spread evenly over the words of `pool` (a word with fewer clips gives all it has,
    the rest is shared by the others), real clips before synthetic ones within a word."""
    by_word: dict[str, list[Example]] = defaultdict(list)
    for e in pool:
        by_word[e.word].append(e)
    sizes = sorted(len(v) for v in by_word.values())
    quota, left = 0, n
    for i, size in enumerate(sizes):  # the largest per-word quota whose total fits in n
        if (size - quota) * (len(sizes) - i) > left:
            quota += left // (len(sizes) - i)
            break
        left -= (size - quota) * (len(sizes) - i)
        quota = size
    chosen = []
    for word in sorted(by_word):
        items = by_word[word]
        real = [e for e in items if e.source == "real"]
        synthetic = [e for e in items if e.source != "real"]
        take = min(quota, len(items))
        picked = rng.sample(real, min(take, len(real)))
        chosen += picked + rng.sample(synthetic, take - len(picked))
    return chosen


def read_speaker_list(list_file: Path) -> frozenset[str]:
    """Speakers of the clips named in a list file (one clip path a line, as in `testing_list.txt`)."""
    lines = Path(list_file).read_text().splitlines()
    return frozenset(speaker_of(line.strip()) for line in lines if line.strip() and not line.startswith("#"))


def _ensure_validation(examples: list[Example]) -> list[Example]:
    """Give every word with recordings from two or more speakers at least one validation speaker.

    A handful of custom takes can all hash into training; then the training speaker with the
    fewest clips moves to validation, with all their clips of every word, which keeps the split
    speaker-disjoint across the whole dataset.
    """
    by_word: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by_word[e.word].append(e)
    moved: set[str] = set()
    for word, items in by_word.items():
        items = [e for e in items if e.source == "real"] or items  # synthetic voices validate only alone
        speakers = Counter(speaker_of(e.path) for e in items)
        if len(speakers) < 2 or any(e.split == "validation" or speaker_of(e.path) in moved for e in items):
            continue
        training_speakers = [s for s in speakers if all(e.split == "training" for e in items if speaker_of(e.path) == s)]
        if len(training_speakers) >= 2:
            moved.add(min(training_speakers, key=lambda s: (speakers[s], s)))
    if not moved:
        return examples
    return [Example(e.path, e.label, "validation", e.word, e.source) if speaker_of(e.path) in moved else e
            for e in examples]
