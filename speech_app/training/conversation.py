"""Continuous speech as negatives of the custom-word recipe: windows of people talking.

Every other negative the recipe has is one word between pauses, so a model learns "a word alone is
not mine" but has never heard speech that runs on: left listening to a conversation, it took a third
of all windows for "computer" (benchmarks/CONVERSATION.md). Here recordings of ordinary speech are cut
into windows of the model's length at every half window, whatever they cut (words cut mid-way
included), and written once to a cache the trainer decodes like any clip.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioDecodeError, is_audio_file, load_audio, seconds_to_samples, write_wav

WINDOW_HOP_FRACTION = 0.5  # windows start every half window: each stretch of speech is seen twice, cut two ways
QUIET_RMS = 0.003  # windows quieter than this (about -50 dBFS) are pauses, which `_silence_` covers


def conversation_cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "speech-app" / "conversation"


def speech_files(folder: Path | None) -> list[Path]:
    """The recordings of continuous speech in `folder` (any depth), sorted; none for None or no folder."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_audio_file(p))


def conversation_windows(files: list[Path], window_seconds: float, cache_root: Path | None = None) -> list[Path]:
    """Window-long clips of the recordings (cut at every half window, pauses left out), written once:
    the cache is keyed by the files' names and sizes and the window."""
    request = {"files": [f"{Path(f).name} {Path(f).stat().st_size}" for f in files], "window": window_seconds}
    key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    folder = (cache_root or conversation_cache_root()) / key
    done = folder / ".complete.json"
    if done.is_file():
        return [folder / name for name in json.loads(done.read_text())["clips"]]
    window = seconds_to_samples(window_seconds)
    hop = max(1, int(window * WINDOW_HOP_FRACTION))
    names = []
    for n, path in enumerate(files):
        try:
            audio = load_audio(path)
        except AudioDecodeError:
            continue  # a damaged bundled file costs its windows, not the training
        for start in range(0, max(1, len(audio) - window + 1), hop):
            clip = audio[start : start + window]
            if np.sqrt(np.mean(clip.astype(np.float64) ** 2)) < QUIET_RMS:
                continue
            names.append(f"{n:04d}_{start // SAMPLE_RATE:05d}_{start % SAMPLE_RATE:05d}.wav")
            write_wav(folder / names[-1], clip)
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps({**request, "clips": names}))
    return [folder / name for name in names]
