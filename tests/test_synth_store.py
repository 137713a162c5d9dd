"""The synthetic-speech store: each word's clips are made once per request and shared by every set
that needs them (text_training.synthesize_training_set)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from speech_app.synth import text_training
from speech_app.synth.generator import DEFAULT_VARIETY, clip_file_name


VOICES = ["espeak-ng 1000 1: en", "flite 2000 2: slt"]  # the engines the fake store speaks with


class CallLog(list):
    """The words of each batch asked for, in order; `pools`: the batches of each call (one pool each)."""

    def __init__(self):
        super().__init__()
        self.pools: list[int] = []


@pytest.fixture
def fake_synth(monkeypatch):
    """synthesize_batches that writes tiny files named as the real one does and records what each batch
    asked for (the batches of one call in order; pools: how many calls)."""
    from speech_app.synth import generator

    calls = CallLog()
    pools = calls.pools

    def synthesize_batches(batches, engines, jobs, noise_files, progress, commercial_only, variety):
        pools.append(len(batches))
        summaries = []
        for batch in batches:
            calls.append(sorted(batch.words))
            files = []
            for word in batch.words:
                for index in range(batch.per_word):
                    path = batch.out_dir / word / clip_file_name("espeak-ng", "en", index)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(f"{word} {batch.seed} {index} {commercial_only} {variety.clip_seconds}".encode())
                    files.append(path)
            summaries.append(SimpleNamespace(files=files))
        return summaries

    monkeypatch.setattr(generator, "synthesize_batches", synthesize_batches)
    monkeypatch.setattr(text_training, "voices_key", lambda engines, commercial_only: list(VOICES))
    monkeypatch.setattr(text_training, "FILLER_WORDS", ("hello", "water"))
    monkeypatch.setattr(text_training, "FILLER_CLIPS_PER_WORD", 1)
    return calls


def make(words, tmp_path, **kwargs):
    return text_training.synthesize_training_set(words, **{"per_word": 2, "progress": False,
                                                          "cache_root": tmp_path, **kwargs})


def test_a_new_set_synthesizes_only_the_words_no_earlier_set_had(fake_synth, tmp_path):
    first = make(["alpha"], tmp_path)
    assert fake_synth == [["alpha"], ["hello", "water"]]
    assert fake_synth.pools == [2]  # the words and the filler words in one pool of workers
    second = make(["beta"], tmp_path)
    assert fake_synth[2:] == [["beta"]]  # the filler words come from the store
    assert second != first
    for folder, word in ((first, "alpha"), (second, "beta")):
        assert sorted(p.parent.name for p in folder.glob("*/*.wav")) == [word, word, "hello", "water"]
        assert json.loads((folder / ".complete.json").read_text())["clips_per_engine"] == {"espeak-ng": 4}
    assert (second / "hello" / clip_file_name("espeak-ng", "en", 0)).read_bytes() == b"hello 1 0 False 1.0"
    assert make(["beta"], tmp_path) == second and len(fake_synth) == 3  # the whole set is cached too


@pytest.mark.parametrize("change", ["seed", "commercial_only", "variety", "per_word", "voices", "engine", "version"])
def test_a_stored_word_is_made_again_when_what_it_depends_on_changes(fake_synth, tmp_path, change, monkeypatch):
    make(["alpha"], tmp_path)
    if change == "voices":  # a voice installed
        VOICES_NOW = [*VOICES[:1], "flite 2000 2: awb slt"]
    elif change == "engine":  # an engine upgraded: its executable changed
        VOICES_NOW = ["espeak-ng 1040 7: en", *VOICES[1:]]
    if change in ("voices", "engine"):
        monkeypatch.setattr(text_training, "voices_key", lambda engines, commercial_only: VOICES_NOW)
    if change == "version":  # the making of a clip changed
        monkeypatch.setattr(text_training, "STORE_VERSION", text_training.STORE_VERSION + 1)
    other = {"seed": {"seed": 5}, "commercial_only": {"commercial_only": True}, "per_word": {"per_word": 3},
             "variety": {"variety": replace(DEFAULT_VARIETY, clip_seconds=1.5)}}.get(change, {})
    folder = make(["alpha"], tmp_path, **other)
    made_again = [word for call in fake_synth[2:] for word in call]
    # the number of a word's clips is no concern of the filler words' (their own count is fixed)
    assert made_again == (["alpha"] if change == "per_word" else ["alpha", "hello", "water"])
    clip = (folder / "alpha" / clip_file_name("espeak-ng", "en", 0)).read_bytes().decode()
    assert clip == {"seed": "alpha 5 0 False 1.0", "commercial_only": "alpha 0 0 True 1.0",
                    "variety": "alpha 0 0 False 1.5"}.get(change, "alpha 0 0 False 1.0")


def test_a_store_entry_left_unfinished_is_made_again(fake_synth, tmp_path):
    make(["alpha"], tmp_path)
    (marker,) = [p for p in (tmp_path / text_training.WORD_STORE).glob("*/.complete.json")
                 if json.loads(p.read_text())["word"] == "hello"]
    marker.unlink()  # as an interrupted run leaves it
    make(["beta"], tmp_path)
    assert fake_synth[2:] == [["beta"], ["hello"]]


@pytest.mark.parametrize("damage", [b"", b'{"word": "hel', b"[]"])
def test_a_damaged_store_entry_or_set_record_is_made_again_not_trusted(fake_synth, tmp_path, damage):
    first = make(["alpha"], tmp_path)
    (marker,) = [p for p in (tmp_path / text_training.WORD_STORE).glob("*/.complete.json")
                 if json.loads(p.read_text())["word"] == "hello"]
    marker.write_bytes(damage)  # truncated by a crash, emptied, or not a record
    (first / text_training.SET_DONE).write_bytes(damage)
    again = make(["alpha"], tmp_path)
    assert again == first and fake_synth[2:] == [["hello"]]  # only the damaged word is made again
    assert json.loads(marker.read_text())["word"] == "hello"
    assert json.loads((again / text_training.SET_DONE).read_text())["clips_per_engine"] == {"espeak-ng": 4}
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".") and "tmp" in p.name]  # no temporaries left


def test_a_word_another_process_stores_meanwhile_stays_whole(tmp_path, monkeypatch):
    """Two processes that make the same word (the GUI and the CLI training at once): the other one finishes its
    entry while this one is storing. The entry in the store must be one process's clips with that process's
    record, and neither process fails."""
    place = tmp_path / text_training.WORD_STORE / "key"

    def made(name: str, clips: int) -> Path:
        folder = tmp_path / name / "alpha"
        folder.mkdir(parents=True)
        for index in range(clips):
            (folder / clip_file_name("espeak-ng", "en", index)).write_bytes(name.encode())
        return folder

    write_text, interrupted = text_training.write_text, []

    def other_process_first(path, text):
        if path.name == text_training.WORD_DONE and not interrupted:  # this process's record, not yet in place
            interrupted.append(path)
            text_training.store_word(made("other", 3), place, {"word": "alpha", "clips_per_engine": {"espeak-ng": 3}})
        write_text(path, text)

    monkeypatch.setattr(text_training, "write_text", other_process_first)
    text_training.store_word(made("this", 2), place, {"word": "alpha", "clips_per_engine": {"espeak-ng": 2}})
    assert interrupted
    record = text_training.read_marker(place / text_training.WORD_DONE)
    clips = sorted((place / "alpha").iterdir())
    assert len(clips) == record["clips_per_engine"]["espeak-ng"]
    assert {clip.read_bytes() for clip in clips} == {b"other"}  # the first whole entry is kept
    assert sorted(p.name for p in place.parent.iterdir()) == ["key"]  # no half-made entry left beside it


def test_an_engines_fingerprint_changes_with_its_executable(tmp_path, monkeypatch):
    from speech_app.synth.engines import FliteEngine

    program = tmp_path / "flite"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    before = FliteEngine().fingerprint()
    assert before.startswith("flite ") and FliteEngine().fingerprint() == before
    program.write_text("#!/bin/sh\n# version 2\n")  # an upgrade
    assert FliteEngine().fingerprint() != before
    program.unlink()
    assert FliteEngine().fingerprint() == "flite missing"


@pytest.mark.parametrize("engines", ["auto", "espeak-ng,flite"])
def test_a_set_names_its_engines_and_suggests_none(fake_synth, tmp_path, capsys, engines):
    """With the lower layers kept from text alone, pico made text-only models no better (CONVERSATION_STUDY.md,
    fourteenth session): a set, made or from the cache, says only which engines spoke."""
    for cached in (False, True):
        make(["yes"], tmp_path, engines=engines, progress=True)
        # "yes" twice, the two filler words once
        assert capsys.readouterr().err.splitlines() == [f"synthetic speech{' (cached)' if cached else ''}: "
                                                        "espeak-ng 4 clips"]
