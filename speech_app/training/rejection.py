"""The rejection study: how often a model takes speech that is no command, or background noise,
for one of its commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import fit_to_window
from ..data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, build_index
from ..inference import CommandClassifier

NOISE_WINDOW_HOP_SECONDS = 0.5  # noise files are cut into overlapping one-window clips
NOISE_VOLUMES = (1.0, 0.3)  # the recordings as they are, and quieter, as a room's noise would be


@dataclass
class RejectionResult:
    speech_clips: int
    speech_false_accepts: int
    per_word: dict[str, tuple[int, int]]  # word -> (false accepts, clips)
    noise_windows: int
    noise_false_accepts: int

    def summary(self) -> str:
        speech = self.speech_false_accepts / max(self.speech_clips, 1)
        noise = self.noise_false_accepts / max(self.noise_windows, 1)
        return (f"non-command speech taken for a command: {self.speech_false_accepts}/{self.speech_clips} "
                f"({speech:.1%}); noise windows taken for a command: {self.noise_false_accepts}/"
                f"{self.noise_windows} ({noise:.1%})")


def measure_rejection(classifier: CommandClassifier, data_dirs: list[Path], seed: int = 0,
                      splits: tuple[str, ...] = ("validation", "testing"), progress: bool = True) -> RejectionResult:
    """How often real non-command speech (every clip of the other words, from speakers of `splits`,
    i.e. not heard in training) and background noise are taken for one of the model's commands."""
    from ..audio import load_audio, seconds_to_samples
    from ..data.dataset import word_folders, which_set

    commands = {i for i, label in enumerate(classifier.labels) if label not in (SILENCE_LABEL, UNKNOWN_LABEL)}
    index = build_index(data_dirs, [classifier.labels[i] for i in sorted(commands)], seed=seed, allow_missing=True)
    other = [(w, p) for d in data_dirs for w, files in word_folders(Path(d)).items()
             if w not in classifier.labels for p in files if which_set(p) in splits]
    per_word: dict[str, list[int]] = {}
    accepted = 0
    if other:
        from ..audio import decode_files

        window = classifier.window_samples
        decoded = decode_files([str(p) for _, p in other], progress)
        rows = [(w, fit_to_window(a, window)) for (w, _), a in zip(other, decoded) if isinstance(a, np.ndarray)]
        predicted = classifier.probabilities(np.stack([r for _, r in rows])).argmax(axis=1)
        for (word, _), label in zip(rows, predicted):
            hit = int(label in commands)
            accepted += hit
            per_word.setdefault(word, [0, 0])
            per_word[word][0] += hit
            per_word[word][1] += 1
    hop = seconds_to_samples(NOISE_WINDOW_HOP_SECONDS)
    windows = []
    for path in index.noise_files:
        audio = load_audio(path)
        for start in range(0, len(audio) - classifier.window_samples + 1, hop):
            windows += [audio[start : start + classifier.window_samples] * v for v in NOISE_VOLUMES]
    noise_hits = int(np.isin(classifier.probabilities(np.stack(windows)).argmax(axis=1), list(commands)).sum()) if windows else 0
    return RejectionResult(sum(v[1] for v in per_word.values()), accepted,
                           {w: tuple(v) for w, v in sorted(per_word.items())}, len(windows), noise_hits)
