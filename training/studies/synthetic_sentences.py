"""Synthetic conversation for issue 21's lever 2: public-domain sentences spoken by the offline engines.

    python training/studies/synthetic_sentences.py --out runs/synth_sentences [--voices 3] [--seed 0]

Writes `<out>/speech/`: the package's learn-side conversation speech (links to
speech_app/data/conversation_data/train) and, beside it, every sentence of public_domain_sentences.txt
spoken by `--voices` voices drawn from the installed engines (commercial-use voices only, as the recipe's
synthetic words), each at a random speed and pitch. Train with it as the conversation speech:

    python benchmarks/bench_conversation.py --run-dir runs/synth_sentences --conditions 0 --seeds 0 \
        --recipe '{"conversation_speech": "<abs path>/runs/synth_sentences/speech"}'

The windows of both are then drawn from the recipe's conversation share (synthetic talk about as many
minutes as the real speech: the share is not raised, only its content widened).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from speech_app.audio import write_wav  # noqa: E402
from speech_app.synth.engines import SynthesisError, available_engines  # noqa: E402
from speech_app.synth.generator import VoicePool, speak  # noqa: E402
from speech_app.training.conversation import TRAIN_SPEECH, speech_files  # noqa: E402

SENTENCES = Path(__file__).with_name("public_domain_sentences.txt")
SPEED_RANGE = (0.85, 1.15)  # as the recipe's synthetic words
PITCH_SEMITONES = 2.0


def sentences(path: Path = SENTENCES) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def speak_sentences(out: Path, voices: int, seed: int) -> list[Path]:
    pool = VoicePool.from_engines(available_engines(), commercial_only=True)
    written = []
    for i, text in enumerate(sentences()):
        for k in range(voices):
            rng = np.random.default_rng([seed, i, k])
            engine, voice = pool.pick(rng)
            path = out / f"synthetic_{engine.name}_{voice.replace('/', '-')}_{i:03d}_{k}.wav"
            if not path.is_file():
                try:
                    audio = speak(engine, voice, text, rng.uniform(*SPEED_RANGE),
                                  rng.uniform(-PITCH_SEMITONES, PITCH_SEMITONES))
                except SynthesisError as err:
                    print(f"skipped: {err}", file=sys.stderr)
                    continue
                write_wav(path, audio.astype(np.float32))
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--voices", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    speech = args.out / "speech"
    (speech / "package").mkdir(parents=True, exist_ok=True)
    for path in speech_files(TRAIN_SPEECH):
        link = speech / "package" / path.name
        if not link.exists():
            link.symlink_to(path)
    written = speak_sentences(speech / "synthetic", args.voices, args.seed)
    from speech_app.audio import load_audio

    seconds = sum(len(load_audio(p)) for p in written) / 16000
    real = sum(len(load_audio(p)) for p in speech_files(speech / "package")) / 16000
    print(f"{len(written)} synthetic utterances, {seconds / 60:.1f} min; real speech {real / 60:.1f} min")


if __name__ == "__main__":
    main()
