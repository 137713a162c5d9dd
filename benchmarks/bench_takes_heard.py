"""What the share of the words heard adds to a custom training: CPU seconds, beside the conversation check.

    python benchmarks/bench_takes_heard.py [--words computer,jarvis,marvin,sheila] [--takes 20]

The custom recipe's estimate run streams its held-out takes (a third of them: ONE_RUN_FOLDS) through the
recognizer as `listen` would (conversation.record_takes) and the conversation check replays them at every
curve threshold (conversation.heard_curve). This times that work on a model of a custom model's size (the
shipped model's network, with the window the recipe would choose for the takes), `--takes` real takes of each
word drawn from ../shared/data (wake_words, then speech_commands), and, side by side in the same process,
the conversation check itself (which every custom training already runs). CPU seconds: time.process_time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from speech_app.audio import decode_files, is_audio_file
from speech_app.inference import CommandClassifier
from speech_app.modelfile import ModelBundle, load_model
from speech_app.training.conversation import CURVE_THRESHOLDS, check_conversation, heard_curve, record_takes, takes_heard
from speech_app.training.custom_words import ONE_RUN_FOLDS, custom_window_seconds

DATA = Path("/work/shared/data")  # as bench_conversation.py


def take_files(word: str, n: int, seed: int = 0) -> list[Path]:
    folder = next(d for d in (DATA / "wake_words" / word, DATA / "speech_commands" / word) if d.is_dir())
    files = sorted(p for p in folder.iterdir() if is_audio_file(p))
    return [files[i] for i in np.random.default_rng(seed).permutation(len(files))[:n]]


def timed(work):
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="computer,jarvis,marvin,sheila")
    parser.add_argument("--takes", type=int, default=20)
    args = parser.parse_args()
    words = args.words.split(",")
    takes = {word: take_files(word, args.takes) for word in words}
    shipped = load_model(None)
    window = custom_window_seconds(takes, shipped.features.clip_seconds)
    labels = ["_silence_", "_unknown_", *words]
    # the shipped network with a custom model's labels and window (the values do not change the cost)
    model = type(shipped.model)(replace(shipped.model.config, n_classes=len(labels)))
    state = {k: v for k, v in shipped.model.state_dict().items() if v.shape == model.state_dict()[k].shape}
    model.load_state_dict({**model.state_dict(), **state})
    bundle = ModelBundle(model, labels, replace(shipped.features, clip_seconds=window))
    classifier = CommandClassifier(bundle, "cpu", "float32")
    held_out = [(w, f) for w in words for i, f in enumerate(takes[w]) if i % ONE_RUN_FOLDS == 0]

    def stream():
        audio = decode_files([f for _, f in held_out])
        return record_takes(classifier, [(w, a) for (w, _), a in zip(held_out, audio)])

    recorded, stream_cpu, stream_wall = timed(stream)

    def replay():
        heard_curve(labels, recorded)
        return sum(takes_heard(labels, recorded))

    _, replay_cpu, replay_wall = timed(replay)
    _, check_cpu, check_wall = timed(lambda: check_conversation(bundle))
    added = stream_cpu + replay_cpu
    print(f"{len(words)} words x {args.takes} takes, window {window:.2f} s, torch {torch.get_num_threads()} threads: "
          f"{len(held_out)} held-out takes streamed ({sum(len(e) for _, e in recorded)} evaluations)")
    print(f"  streaming the held-out takes: {stream_cpu:.2f} CPU s ({stream_wall:.2f} s wall)")
    print(f"  replaying them at {len(CURVE_THRESHOLDS)} thresholds and the default: "
          f"{replay_cpu:.2f} CPU s ({replay_wall:.2f} s wall)")
    print(f"  added: {added:.2f} CPU s; the conversation check it joins: {check_cpu:.2f} CPU s ({check_wall:.2f} s wall), "
          f"ratio {added / check_cpu:.2f}")


if __name__ == "__main__":
    main()
