"""training/devtest.py: the development test's second data folder (on_off_extra, issue 22) and the
speaker-counted uncertainty of its per-class recall."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from speech_app.data.dataset import build_index, read_speaker_list, which_set

ROOT = Path(__file__).resolve().parent.parent


def _load_devtest():
    spec = importlib.util.spec_from_file_location("devtest", ROOT / "training" / "devtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


devtest = _load_devtest()


def _extra_folder(root: Path, n_single: int = 40) -> tuple[Path, list[str]]:
    """on/off of one-clip pseudo-speakers plus one person's many takes, as on_off_extra holds them."""
    extra = root / "on_off_extra"
    singles = [f"{i:08x}" for i in range(n_single)]
    for word in ("on", "off"):
        (extra / word).mkdir(parents=True)
        for s in singles:
            (extra / word / f"{s}{word}_nohash_0.flac").touch()
        for take in range(devtest.PERSON_MIN_TAKES):
            (extra / word / f"8c741735_nohash_{take}.flac").touch()
    return extra, singles


def test_the_second_folder_gives_its_lower_hash_half_of_one_clip_speakers_and_never_a_person(tmp_path):
    extra, _ = _extra_folder(tmp_path)
    lines = devtest.make_extra_list(extra)
    files = [p for p in extra.rglob("*.flac")]
    expected = sorted(f"on_off_extra/{p.relative_to(extra).as_posix()}" for p in files
                      if not p.name.startswith("8c741735") and which_set(p, devtest.EXTRA_HELD_OUT_PERCENT, 0) == "validation")
    assert sorted(lines) == expected
    assert 0 < len(lines) < len(files) - 2 * devtest.PERSON_MIN_TAKES  # some, not all, of the one-clip speakers
    assert not any("8c741735" in line for line in lines)


def test_list_lines_resolve_to_their_folder_and_word(tmp_path):
    main, extra = tmp_path / "speech_commands", tmp_path / "on_off_extra"
    assert devtest.resolve("go/ab_nohash_0.flac", main, [extra]) == (main / "go" / "ab_nohash_0.flac", "go")
    assert devtest.resolve("on_off_extra/off/cd_nohash_0.flac", main, [extra]) == (extra / "off" / "cd_nohash_0.flac", "off")
    with pytest.raises(SystemExit, match="on_off_extra"):  # a listed clip of a folder not given
        devtest.resolve("on_off_extra/off/cd_nohash_0.flac", main, [])


def test_training_keeps_the_listed_second_folder_speakers_out(tmp_path):
    extra, _ = _extra_folder(tmp_path)
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(devtest.make_extra_list(extra)) + "\n")
    index = build_index([extra], ["on", "off"], testing_speakers=read_speaker_list(listed), unknown_percent=0)
    tested = {Path(e.path).name for e in index.examples if e.path and e.split == "testing"}
    assert tested == {Path(line).name for line in listed.read_text().split()}


def test_standard_error_counts_a_speakers_takes_together():
    # four clips of one speaker, all wrong or all right, are one draw: a larger error than four speakers
    by_speaker = devtest.clustered_standard_error([True] * 4 + [False] * 4, ["a"] * 4 + ["b"] * 4)
    by_clip = devtest.clustered_standard_error([True] * 4 + [False] * 4, list("abcdefgh"))
    assert by_clip == pytest.approx((0.5 * 0.5 / 8) ** 0.5)
    assert by_speaker == pytest.approx(2 * by_clip)
