"""training/onoff_folds.py: the two folds of the scarce on/off speakers that the sixth step of the
default-model study is measured on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    sys.path.insert(0, str(ROOT / "training"))  # the script imports its neighbour devtest.py
    try:
        spec = importlib.util.spec_from_file_location("onoff_folds", ROOT / "training" / "onoff_folds.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "training"))


def _fake_data(root: Path) -> dict[str, list[str]]:
    """Empty clip files in the Speech Commands layout: 7 speakers of on/off (some say both), one word more."""
    names = {"on": [f"{s}_nohash_{i}.flac" for s, n in (("aa11", 2), ("bb22", 1), ("cc33", 1), ("dd44", 3), ("ee55", 1))
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
    devtest.write_text("on/ee55_nohash_0.flac\noff/ee55_nohash_0.flac\n")
    folds_script.make(data, devtest, tmp_path / "folds")

    kept = {k: {w: {p.name for p in (tmp_path / "folds" / f"fold{k}" / "speech_commands" / w).iterdir()}
                for w in ("on", "off")} for k in (0, 1)}
    for word in ("on", "off"):
        dev = {n for n in names[word] if n.startswith("ee55")}
        others = set(names[word]) - dev
        left_out = [others - kept[k][word] for k in (0, 1)]
        # each fold leaves out its own speakers' clips and keeps the other fold's
        assert left_out[0] | left_out[1] == others and not left_out[0] & left_out[1]
        assert kept[0][word] | kept[1][word] == others  # development-test clips never linked
    speakers = [{n.split("_")[0] for w in ("on", "off") for n in set(names[w]) - kept[k][w] if not n.startswith("ee55")}
                for k in (0, 1)]
    assert speakers[0] and speakers[1] and not speakers[0] & speakers[1]  # a speaker is in one fold, whole
    assert (tmp_path / "folds" / "fold0" / "speech_commands" / "up").resolve() == (data / "up").resolve()
