"""The decoded-clip cache kept per folder (load_split_clips(by_folder=True), the custom recipe's):
the same clips as the per-split cache, and a change in one folder decodes that folder alone."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from conftest import WANTED_WORDS
from speech_app.data import clips
from speech_app.data.dataset import Example, build_index
from speech_app.data.noise import NoiseBank


@pytest.fixture
def dataset(tiny_dataset, tmp_path, monkeypatch):
    """A copy of the tiny dataset that a test may change, with its own cache; decode_files records what it decodes."""
    root = shutil.copytree(tiny_dataset.root, tmp_path / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    decoded, real_decode = [], clips.decode_files

    def recording(paths, progress=False):
        decoded.append(sorted(os.path.basename(os.path.dirname(p)) for p in paths))
        return real_decode(paths, progress)

    monkeypatch.setattr(clips, "decode_files", recording)
    return root, decoded


def load(root, extra=(), window=1.0, **kwargs):
    """The training split of the dataset (and `extra` takes of "yes"), decoded: (examples, (clips, errors))."""
    index = build_index([root], list(WANTED_WORDS))
    examples = index.split("training") + [Example(str(path), "yes", "training", "yes") for path in extra]
    return examples, clips.load_split_clips(examples, window, NoiseBank.from_files(index.noise_files), seed=3,
                                            progress=False, **kwargs)


def test_the_folder_cache_gives_the_clips_of_the_split_cache(dataset):
    root, _ = dataset
    examples, (by_split, errors) = load(root, use_cache=False)
    assert not errors and any(e.path is None for e in examples)  # silence rows too
    for _ in range(2):  # decoded, then read back from the cache
        _, (by_folder, errors) = load(root, by_folder=True)
        assert not errors and np.array_equal(by_folder, by_split)


def test_a_changed_folder_is_decoded_again_and_the_others_are_not(dataset):
    root, decoded = dataset
    load(root, by_folder=True)
    first = decoded.pop()
    assert {"yes", "no", "up"} <= set(first)
    load(root, by_folder=True)
    assert decoded == []  # every folder from the cache
    yes_file = sorted((root / "yes").iterdir())[0]
    (root.parent / "takes" / "yes").mkdir(parents=True)
    new_take = shutil.copy(yes_file, root.parent / "takes" / "yes" / yes_file.name)  # a new folder of takes
    _, (again, _) = load(root, [new_take], by_folder=True)
    assert decoded == [["yes"]]  # that folder alone
    assert np.array_equal(again, load(root, [new_take], use_cache=False)[1][0])
    changed = sorted(p for p in (root / "no").iterdir())[0]
    os.utime(changed, ns=(1, 1))  # a file changed in place
    _, (fresh, _) = load(root, [new_take], by_folder=True)
    assert set(decoded[2]) == {"no"}
    assert np.array_equal(fresh, load(root, [new_take], use_cache=False)[1][0])
    load(root, [new_take], window=1.5, by_folder=True)  # another window: another entry for every folder
    assert set(decoded[-1]) == set(first)
