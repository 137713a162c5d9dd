"""Build the negatives the package carries (speech_app/data/negatives_data/): real clips of many words, and
short background noise, from Speech Commands (CC BY 4.0).

    python training/make_negatives.py /work/shared/data/speech_commands

Only speakers that the dataset's speaker hash puts in *training* are taken. The custom-words study
(training/studies/custom_words_study.py) measures false accepts on speakers of the other splits, so the
bundled negatives never flatter that figure. Clips are trimmed to their spoken part and stored as
Ogg Vorbis at 16 kHz: about 4 KB each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speech_app.audio import SAMPLE_RATE, load_audio  # noqa: E402
from speech_app.data.dataset import BACKGROUND_NOISE_DIR, speaker_of, which_set, word_folders  # noqa: E402
from speech_app.data.negatives import NEGATIVES_DIR, NOISE_DIR, SPEECH_DIR  # noqa: E402

CLIPS_PER_WORD = 24  # 35 words: about 800 clips, a few MB
NOISE_SECONDS = 8.0  # excerpt kept from each background-noise recording
TRIM_TOP_DB = 35.0
MARGIN_SECONDS = 0.08  # kept around the spoken part
MAX_SECONDS = 1.0


def trimmed(audio: np.ndarray) -> np.ndarray:
    import librosa

    _, (start, end) = librosa.effects.trim(audio, top_db=TRIM_TOP_DB)
    margin = int(MARGIN_SECONDS * SAMPLE_RATE)
    clip = audio[max(0, start - margin) : end + margin]
    return clip[: int(MAX_SECONDS * SAMPLE_RATE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech_commands", type=Path)
    parser.add_argument("--per-word", type=int, default=CLIPS_PER_WORD)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    speech_out, noise_out = NEGATIVES_DIR / SPEECH_DIR, NEGATIVES_DIR / NOISE_DIR
    for folder in (speech_out, noise_out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    total = 0
    for word, files in word_folders(args.speech_commands).items():
        by_speaker = {}
        for path in files:  # one clip per speaker, training speakers only
            if which_set(path) == "training":
                by_speaker.setdefault(speaker_of(path), path)
        chosen = rng.permutation(sorted(by_speaker))[: args.per_word]
        (speech_out / word).mkdir()
        for speaker in chosen:
            sf.write(str(speech_out / word / f"{speaker}_nohash_0.ogg"), trimmed(load_audio(by_speaker[speaker])),
                     SAMPLE_RATE, format="OGG", subtype="VORBIS")
        total += len(chosen)
    for path in sorted((args.speech_commands / BACKGROUND_NOISE_DIR).iterdir()):
        audio = load_audio(path)
        start = int(rng.integers(0, max(1, len(audio) - int(NOISE_SECONDS * SAMPLE_RATE))))
        sf.write(str(noise_out / f"{path.stem}.ogg"), audio[start : start + int(NOISE_SECONDS * SAMPLE_RATE)],
                 SAMPLE_RATE, format="OGG", subtype="VORBIS")
    print(f"{total} speech clips in {speech_out}, noise in {noise_out}")


if __name__ == "__main__":
    main()
