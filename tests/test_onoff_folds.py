"""training/studies/onoff_folds.py: the two folds of the scarce on/off speakers that the sixth step of the
default-model study is measured on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    before = list(sys.path)
    try:  # the script puts training/ on the path to import the development test, devtest.py
        spec = importlib.util.spec_from_file_location("onoff_folds", ROOT / "training" / "studies" / "onoff_folds.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = before


def _fake_data(root: Path) -> dict[str, list[str]]:
    """Empty clip files in the Speech Commands layout: 7 speakers of on/off (some say both), one word more."""
    names = {"on": [f"{s}_nohash_{i}.flac" for s, n in (("aa11", 2), ("bb22", 1), ("cc33", 1), ("dd44", 3), ("ee55", 2))
                    for i in range(n)],
             "off": [f"{s}_nohash_0.flac" for s in ("aa11", "ff66", "gg77", "cc33", "ee55")],
             "up": ["aa11_nohash_0.flac", "hh88_nohash_0.flac"]}
    for word, files in names.items():
        (root / word).mkdir(parents=True)
        for name in files:
            (root / word / name).touch()
    return names


def test_folds_split_the_speakers_keep_the_devtest_out_and_link_everything_else(tmp_path):
    folds_script = _load_script()
    data = tmp_path / "speech_commands"
    names = _fake_data(data)
    devtest = tmp_path / "list.txt"
    devtest.write_text("on/ee55_nohash_0.flac\noff/ee55_nohash_0.flac\n")  # ee55_nohash_1 (on) is not listed
    dev_clips = {"on": {"ee55_nohash_0.flac"}, "off": {"ee55_nohash_0.flac"}}
    folds_script.make(data, devtest, tmp_path / "folds")

    kept = {k: {w: {p.name for p in (tmp_path / "folds" / f"fold{k}" / "speech_commands" / w).iterdir()}
                for w in ("on", "off")} for k in (0, 1)}
    for word in ("on", "off"):
        dev = dev_clips[word]
        others = set(names[word]) - dev
        left_out = [others - kept[k][word] for k in (0, 1)]
        # each fold leaves out its own speakers' clips and keeps the other fold's
        assert left_out[0] | left_out[1] == others and not left_out[0] & left_out[1]
        assert kept[0][word] | kept[1][word] == others  # development-test clips never linked
    speakers = [{n.split("_")[0] for w in ("on", "off") for n in set(names[w]) - kept[k][w] - dev_clips[w]}
                for k in (0, 1)]
    assert speakers[0] and speakers[1] and not speakers[0] & speakers[1]  # a speaker is in one fold, whole
    assert (tmp_path / "folds" / "fold0" / "speech_commands" / "up").resolve() == (data / "up").resolve()


def test_make_refuses_a_folder_that_holds_folds_already(tmp_path):
    folds_script = _load_script()
    data = tmp_path / "speech_commands"
    _fake_data(data)
    devtest = tmp_path / "list.txt"
    devtest.write_text("")
    folds_script.make(data, devtest, tmp_path / "folds")
    with pytest.raises(SystemExit, match="not empty"):  # another split into the same folder would mix the two
        folds_script.make(data, devtest, tmp_path / "folds")


def test_each_clip_gets_only_the_models_that_did_not_train_on_it():
    folds_script = _load_script()
    fold0_model, fold1_model = np.array([[1.0, 0.0]] * 3), np.array([[0.0, 1.0]] * 3)
    trained = [{"b.flac"}, {"a.flac"}]  # fold 0's model heard b, fold 1's heard a; nobody heard c
    mean, kept = folds_script.held_out_mean([fold0_model, fold1_model], trained, ["a.flac", "b.flac", "c.flac"])
    assert kept == [0, 1, 2]
    assert mean.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    mean, kept = folds_script.held_out_mean([fold0_model], [{"b.flac"}], ["a.flac", "b.flac"])
    assert kept == [0] and mean.tolist() == [[1.0, 0.0]]  # a clip its only model heard is left out
