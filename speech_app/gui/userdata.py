"""The user's data folder: recorded takes, synthetic clips and custom models. No Qt.

    <data>/recordings/<word>/take-<date>-<time>_nohash_0.wav    one file per take
    <data>/synthetic/<request>/<word>/...                          synthetic speech (and filler words), if used
    <data>/models/<name>.safetensors  (+ <name>_report/)         trained in the Custom words tab

Every take is its own "speaker" for the dataset's hash split (`<speaker>_nohash_<n>`), so one
person's takes still spread over training and validation.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..audio import is_audio_file
from ..modelfile import ModelFileError, shipped_model_path
from ..words import check_words

MODEL_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    name: str
    shipped: bool


def clean_words(text: str) -> list[str]:
    """'Lights on, lights  off, yes, Yes' -> ['lights on', 'lights off', 'yes']: lower case and single
    spaces, so words that differ only in those are merged; checked as every word is (speech_app.words),
    a bad word raises WordError (a ValueError) naming it."""
    return check_words(" ".join(part.lower().split()) for part in text.split(",") if part.strip())


class DataFolder:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def recordings_dir(self) -> Path:
        return self.root / "recordings"

    @property
    def synthetic_dir(self) -> Path:
        return self.root / "synthetic"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def takes(self, word: str) -> list[Path]:
        folder = self.recordings_dir / word
        return sorted(p for p in folder.iterdir() if p.is_file() and is_audio_file(p)) if folder.is_dir() else []

    def new_take_path(self, word: str, now: datetime | None = None) -> Path:
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
        return self.recordings_dir / word / f"take-{stamp}_nohash_0.wav"

    def delete_take(self, path: Path) -> None:
        path = Path(path)
        if self.recordings_dir.resolve() not in path.resolve().parents:
            raise ValueError(f"{path}: not a take in {self.recordings_dir}")
        path.unlink(missing_ok=True)

    def training_dirs(self) -> list[Path]:
        """The folders of real recordings to train on (none before the first take)."""
        return [self.recordings_dir] if self.recordings_dir.is_dir() else []

    def new_model_path(self, words: list[str], now: datetime | None = None) -> Path:
        slug = "-".join(re.sub(r"\W+", "_", w) for w in words)[:40] or "model"
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        return self.models_dir / f"{slug}-{stamp}{MODEL_SUFFIX}"

    def models(self) -> list[ModelEntry]:
        """The shipped model first, then the user's, newest first."""
        entries = []
        try:
            entries.append(ModelEntry(shipped_model_path(), "Shipped: Speech Commands (12 classes)", True))
        except ModelFileError:
            pass
        if self.models_dir.is_dir():
            mine = sorted(self.models_dir.glob(f"*{MODEL_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
            entries += [ModelEntry(p, p.stem, False) for p in mine if not p.name.startswith(".")]
        return entries


def merge_into(old: Path, new: Path) -> list[Path]:
    """Move every file under `old` to the same place under `new`, then remove the folders left
    empty; `new` may hold `old` (an earlier version kept its data one folder too deep). A file that
    exists in both places is not touched, so nothing is overwritten or lost. Returns the moved files
    (their new paths)."""
    old, new = Path(old), Path(new)
    if not old.is_dir() or old.resolve() == new.resolve():
        return []
    moved = []
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        target = new / path.relative_to(old)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved.append(target)
    for folder in sorted((p for p in old.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(old.iterdir()):
        old.rmdir()
    return moved
