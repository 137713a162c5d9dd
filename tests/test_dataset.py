"""Dataset indexing: the speaker-hash split, split lists, `_silence_`/`_unknown_`, custom word folders."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_app.data.dataset import (
    SILENCE_LABEL,
    SPLITS,
    STANDARD_WORDS,
    UNKNOWN_LABEL,
    build_index,
    read_speaker_list,
    default_words,
    speaker_of,
    which_set,
)


def _tf_which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """TensorFlow's speech_commands/input_data.py which_set, verbatim in substance (the dataset's own rule)."""
    max_num_wavs_per_class = 2**27 - 1
    base_name = Path(filename).name
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage_hash = ((int(hash_name_hashed, 16) % (max_num_wavs_per_class + 1))
                       * (100.0 / max_num_wavs_per_class))
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < (testing_percentage + validation_percentage):
        return "testing"
    return "training"


def _random_speakers(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(32):08x}" for _ in range(n)]


def _touch_dataset(root: Path, words: dict[str, list[str]], noise: bool = True) -> Path:
    """Empty files in a Speech Commands layout: indexing never decodes audio."""
    for word, names in words.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / word / name).touch()
    if noise:
        (root / "_background_noise_").mkdir(exist_ok=True)
        (root / "_background_noise_" / "noise.wav").touch()
    return root


def test_speaker_of():
    assert speaker_of("yes/3cfc6b3a_nohash_1.wav") == "3cfc6b3a"
    assert speaker_of(Path("/data/no/3cfc6b3a_nohash_12.flac")) == "3cfc6b3a"
    assert speaker_of("custom/take_one.wav") == "take_one.wav"


def test_which_set_matches_the_tensorflow_rule():
    for name in _random_speakers(500, seed=1):
        filename = f"/data/yes/{name}_nohash_0.wav"
        assert which_set(filename) == _tf_which_set(filename), name
    assert which_set("x/abc.wav", 30, 30) == _tf_which_set("x/abc.wav", 30, 30)


def test_which_set_is_deterministic_and_by_speaker():
    for name in _random_speakers(200, seed=2):
        splits = {which_set(f"{folder}/{name}_nohash_{n}.{ext}")
                  for folder in ("yes", "no", "/abs/data/up") for n in range(3) for ext in ("wav", "flac")}
        assert len(splits) == 1, name
        assert which_set(f"yes/{name}_nohash_0.wav") == which_set(f"yes/{name}_nohash_0.wav")


def test_split_fractions_approach_80_10_10():
    counts = Counter(which_set(f"w/{name}_nohash_0.wav") for name in _random_speakers(20_000, seed=3))
    total = sum(counts.values())
    assert abs(counts["training"] / total - 0.80) < 0.02
    assert abs(counts["validation"] / total - 0.10) < 0.02
    assert abs(counts["testing"] / total - 0.10) < 0.02


def test_split_percentages_are_honoured():
    counts = Counter(which_set(f"w/{name}_nohash_0.wav", 20, 30) for name in _random_speakers(10_000, seed=4))
    assert abs(counts["validation"] / 10_000 - 0.20) < 0.02
    assert abs(counts["testing"] / 10_000 - 0.30) < 0.02


def _big_index_dataset(tmp_path: Path, n_speakers: int = 150) -> tuple[Path, list[str]]:
    speakers = _random_speakers(n_speakers, seed=5)
    words = {w: [f"{s}_nohash_0.wav" for s in speakers] for w in ("yes", "no", "up")}
    words.update({w: [f"{s}_nohash_{n}.wav" for s in speakers for n in range(2)] for w in ("cat", "dog", "bird")})
    return _touch_dataset(tmp_path / "sc", words), speakers


def test_build_index_is_speaker_disjoint_and_uses_the_hash(tmp_path):
    root, _ = _big_index_dataset(tmp_path)
    index = build_index([root], ["yes", "no", "up"])
    by_speaker = defaultdict(set)
    for e in index.examples:
        if e.path is not None:
            by_speaker[speaker_of(e.path)].add(e.split)
            assert e.split == which_set(e.path)
    assert by_speaker and all(len(s) == 1 for s in by_speaker.values())


def _expected_extra(n_wanted: int, n_words: int, percent: float = 10.0) -> int:
    """10% of a split's wanted clips, but at least an average word's worth (few custom words)."""
    return max(math.ceil(n_wanted * percent / 100.0), math.ceil(n_wanted / n_words)) if n_wanted else 0


def test_build_index_adds_silence_and_unknown_per_split(tmp_path):
    root, _ = _big_index_dataset(tmp_path)
    words = ["yes", "no", "up"]
    index = build_index([root], words)
    assert index.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "yes", "no", "up"]
    counts = index.counts()
    for split in SPLITS:
        n_wanted = sum(counts[split][w] for w in words)
        assert n_wanted > 0, split
        assert counts[split][SILENCE_LABEL] == _expected_extra(n_wanted, len(words)), split
        assert counts[split][UNKNOWN_LABEL] == _expected_extra(n_wanted, len(words)), split
    silence = [e for e in index.examples if e.label == SILENCE_LABEL]
    assert all(e.path is None for e in silence)
    unknown = [e for e in index.examples if e.label == UNKNOWN_LABEL]
    assert {e.word for e in unknown} <= {"cat", "dog", "bird"}
    assert len({e.path for e in unknown}) == len(unknown)  # drawn without repetition
    assert all(e.split == which_set(e.path) for e in unknown)  # unknown clips keep their speaker's split
    assert index.noise_files == [root / "_background_noise_" / "noise.wav"]


def test_silence_and_unknown_are_ten_percent_with_many_words(tmp_path):
    words = [f"w{i:02d}" for i in range(12)]
    speakers = _random_speakers(120, seed=8)
    layout = {w: [f"{s}_nohash_0.wav" for s in speakers] for w in words}
    layout.update({f"other{i}": [f"{s}_nohash_0.wav" for s in speakers] for i in range(3)})
    root = _touch_dataset(tmp_path / "sc", layout)
    counts = build_index([root], words).counts()
    for split in SPLITS:
        n_wanted = sum(counts[split][w] for w in words)
        assert counts[split][SILENCE_LABEL] == math.ceil(0.1 * n_wanted) == _expected_extra(n_wanted, 12), split
        assert counts[split][UNKNOWN_LABEL] == math.ceil(0.1 * n_wanted), split
        assert abs(counts[split][SILENCE_LABEL] / n_wanted - 0.10) < 0.02


def test_build_index_is_reproducible_and_seeded(tmp_path):
    root, _ = _big_index_dataset(tmp_path)
    assert build_index([root], ["yes", "no", "up"]).examples == build_index([root], ["yes", "no", "up"]).examples
    unknown = lambda seed: [e.path for e in build_index([root], ["yes", "no", "up"], seed=seed).examples  # noqa: E731
                            if e.label == UNKNOWN_LABEL]
    assert unknown(1) != unknown(2)


def test_unknown_percentage_is_honoured_and_capped_by_the_pool(tmp_path):
    root, speakers = _big_index_dataset(tmp_path)
    counts = build_index([root], ["yes"], unknown_percent=150).counts()
    for split in SPLITS:
        speakers_here = sum(which_set(f"{s}_nohash_0.wav") == split for s in speakers)
        pool = speakers_here * (1 + 1 + 2 + 2 + 2)  # no, up: one clip per speaker; cat, dog, bird: two
        assert counts[split][UNKNOWN_LABEL] == min(pool, math.ceil(1.5 * counts[split]["yes"]))
    counts = build_index([root], ["yes", "no", "up", "cat", "dog"], unknown_percent=1000).counts()
    for split in SPLITS:  # only "bird" is left over: every bird clip of the split, no more
        assert counts[split][UNKNOWN_LABEL] == 2 * sum(which_set(f"{s}_nohash_0.wav") == split for s in speakers)


def test_split_lists_override_the_hash(tmp_path):
    speakers = _random_speakers(60, seed=6)
    training = [s for s in speakers if which_set(f"{s}_nohash_0.wav") == "training"]
    validation = [s for s in speakers if which_set(f"{s}_nohash_0.wav") == "validation"]
    assert len(training) >= 3 and validation
    root = _touch_dataset(tmp_path / "sc", {"yes": [f"{s}_nohash_0.flac" for s in speakers],
                                            "no": [f"{s}_nohash_0.flac" for s in speakers]})
    # the lists name .wav files (as the dataset does) while the folder holds FLAC conversions
    (root / "validation_list.txt").write_text(f"yes/{training[0]}_nohash_0.wav\nno/{training[1]}_nohash_0.wav\n\n")
    (root / "testing_list.txt").write_text(f"yes/{training[2]}_nohash_0.wav\nyes/{validation[0]}_nohash_0.wav\n")
    index = build_index([root], ["yes", "no"])
    split_of = {(e.word, speaker_of(e.path)): e.split for e in index.examples if e.path}
    assert split_of[("yes", training[0])] == "validation"
    assert split_of[("no", training[1])] == "validation"
    assert split_of[("yes", training[2])] == "testing"
    assert split_of[("yes", validation[0])] == "testing"
    # files the lists do not name keep their hash split
    assert split_of[("no", training[0])] == "training"
    assert split_of[("no", validation[0])] == "validation"


def test_a_split_list_alone_marks_a_speech_commands_layout(tmp_path):
    root = _touch_dataset(tmp_path / "sc", {"yes": ["a_nohash_0.wav"]}, noise=False)
    assert default_words([root]) == ["yes"]
    (root / "testing_list.txt").write_text("")
    assert default_words([root]) == list(STANDARD_WORDS)


def test_every_folder_as_words_35_word_style(tmp_path):
    words = ["backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
             "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
             "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero"]
    speakers = _random_speakers(30, seed=7)
    root = _touch_dataset(tmp_path / "sc", {w: [f"{s}_nohash_0.wav" for s in speakers] for w in words})
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x_nohash_0.wav").touch()
    index = build_index([root], words)
    assert index.labels == [SILENCE_LABEL, UNKNOWN_LABEL] + words
    counts = index.counts()
    assert counts["training"][UNKNOWN_LABEL] == 0  # nothing is left over to be unknown
    for w in words:
        assert counts["training"][w] > 0 and counts["validation"][w] > 0
    assert all(e.word != ".hidden" for e in index.examples)
    # the command line splits --words the same way
    from speech_app.cli import build_parser

    args = build_parser().parse_args(["train", str(root), "--out", "m.safetensors", "--words", ",".join(words)])
    assert [w.strip() for w in args.words.split(",") if w.strip()] == words


def test_custom_word_folders_default_to_every_folder(tmp_path):
    root = tmp_path / "custom"
    for word in ("lights_on", "lights_off"):
        (root / word).mkdir(parents=True)
        (root / word / "a.wav").touch()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").touch()  # no audio: not a word
    (root / "_scratch").mkdir()
    (root / "_scratch" / "x.wav").touch()
    assert default_words([root]) == ["lights_off", "lights_on"]
    index = build_index([root])
    assert index.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "lights_off", "lights_on"]
    assert index.noise_files == []


def test_custom_takes_get_a_validation_example_per_word(tmp_path):
    training_names = [n for n in (f"take_{i:02d}.wav" for i in range(200)) if which_set(n) == "training"]
    names = training_names[:5]
    root = tmp_path / "custom"
    for word in ("open_door", "close_door", "lamp"):
        (root / word).mkdir(parents=True)
        for name in names:
            (root / word / name).touch()
    (root / "single").mkdir()
    (root / "single" / training_names[5]).touch()  # one take cannot be split
    index = build_index([root])
    counts = index.counts()
    for word in ("open_door", "close_door", "lamp"):
        assert counts["validation"][word] >= 1, word
        assert counts["training"][word] == len(names) - counts["validation"][word] >= 3, word
    assert counts["validation"]["single"] == 0 and counts["training"]["single"] == 1
    assert counts["validation"][SILENCE_LABEL] >= 1  # validation now has wanted clips, so silence too


def test_words_with_validation_speakers_are_left_alone(tmp_path):
    root, speakers = _big_index_dataset(tmp_path)
    index = build_index([root], ["yes", "no", "up"])
    for e in index.examples:
        if e.path:
            assert e.split == which_set(e.path)


def test_missing_words_raise_value_error_naming_them(tmp_path):
    root, _ = _big_index_dataset(tmp_path)
    with pytest.raises(ValueError) as info:
        build_index([root], ["yes", "sheila", "marvin"])
    message = str(info.value)
    assert "sheila" in message and "marvin" in message and "yes," not in message
    index = build_index([root], ["yes", "sheila"], allow_missing=True)
    assert index.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "yes", "sheila"]


def test_default_words_of_speech_commands_are_the_ten_commands(tmp_path):
    root, _ = _big_index_dataset(tmp_path)
    with pytest.raises(ValueError, match="down"):  # the tiny layout lacks most of the ten
        build_index([root])


def test_missing_data_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_index([tmp_path / "nowhere"], ["yes"])


def test_several_data_folders_are_merged(tmp_path):
    a = _touch_dataset(tmp_path / "a", {"yes": ["11111111_nohash_0.wav"], "no": ["22222222_nohash_0.wav"]})
    b = tmp_path / "b"
    (b / "yes").mkdir(parents=True)
    (b / "yes" / "mine.wav").touch()
    index = build_index([a, b], ["yes", "no"])
    paths = {e.path for e in index.examples if e.label == "yes"}
    assert paths == {str(a / "yes" / "11111111_nohash_0.wav"), str(b / "yes" / "mine.wav")}


def test_tiny_fixture_dataset_has_every_word_in_every_split(tiny_dataset):
    index = build_index([tiny_dataset.root], ["yes", "no", "up"])
    counts = index.counts()
    for split in SPLITS:
        for word in ("yes", "no", "up", SILENCE_LABEL, UNKNOWN_LABEL):
            assert counts[split][word] > 0, (split, word)


def test_testing_speakers_take_every_clip_of_theirs_out_of_training(tmp_path):
    root, speakers = _big_index_dataset(tmp_path)
    trained = [s for s in speakers if which_set(f"{s}_nohash_0.wav") == "training"][:3]
    list_file = tmp_path / "devtest.txt"
    list_file.write_text(f"# a development test\nyes/{trained[0]}_nohash_0.wav\ncat/{trained[1]}_nohash_1.wav\n")
    listed = read_speaker_list(list_file)
    assert listed == {trained[0], trained[1]}
    index = build_index([root], ["yes", "no", "up"], testing_speakers=listed, unknown_percent=1000)
    for e in index.examples:
        if e.path is not None and speaker_of(e.path) in listed:
            assert e.split == "testing", e  # every word of theirs, not only the listed clip
    assert any(speaker_of(e.path) == trained[2] and e.split == "training" for e in index.examples if e.path)


def test_even_unknown_spreads_the_draw_over_the_other_words(tmp_path):
    speakers = _random_speakers(300, seed=3)
    layout = {"yes": [f"{s}_nohash_0.wav" for s in speakers], "rare": [f"{s}_nohash_0.wav" for s in speakers[:12]]}
    layout.update({w: [f"{s}_nohash_0.wav" for s in speakers] for w in ("bed", "cat")})
    root = _touch_dataset(tmp_path / "sc", layout)
    train_of = lambda index: Counter(e.word for e in index.split("training") if e.label == UNKNOWN_LABEL)  # noqa: E731
    plain = train_of(build_index([root], ["yes"], unknown_percent=40))
    even = train_of(build_index([root], ["yes"], unknown_percent=40, even_unknown=True))
    n_rare = sum(which_set(f"{s}_nohash_0.wav") == "training" for s in speakers[:12])
    assert even["rare"] == n_rare  # a scarce word gives every clip it has ...
    assert abs(even["bed"] - even["cat"]) <= 1 and even["bed"] > n_rare  # ... and the rest share alike
    assert sum(even.values()) <= sum(plain.values()) <= sum(even.values()) + 2
    assert plain["rare"] < n_rare  # drawn in proportion, the scarce word is mostly left out


def test_noise_files_are_the_recordings_not_the_readme(tmp_path):
    from speech_app.data.dataset import BACKGROUND_NOISE_DIR, noise_files_of

    folder = tmp_path / BACKGROUND_NOISE_DIR
    folder.mkdir()
    (folder / "README.md").write_text("the official archive ships one beside the recordings")
    sf.write(folder / "white_noise.wav", np.zeros(1600, np.float32), 16_000)
    assert noise_files_of(tmp_path) == [folder / "white_noise.wav"]
    assert noise_files_of(tmp_path / "elsewhere") == []
