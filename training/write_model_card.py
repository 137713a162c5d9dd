"""Write a model card from a model file's own metadata plus a rejection measurement.

    python training/write_model_card.py model/speech_commands_12.safetensors DATA_DIR \
        --recipe training/train_speech_commands_12.sh --notes training/notes_speech_commands_12.md \
        > model/MODEL_CARD.md

Every figure in the card comes from the model file (its validation metrics, written by training)
or from running it now (rejection of other words and noise), so the card cannot drift from the model.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from speech_app.evaluate import measure_rejection
from speech_app.inference import CommandClassifier
from speech_app.modelfile import read_metadata
from speech_app.synth.engines import ALL_ENGINES
from speech_app.synth.generator import engine_and_voice

ENGINES = {engine.name: engine for engine in ALL_ENGINES}


def class_table(metrics: dict, counts: dict) -> str:
    lines = ["| class | precision | recall | validation clips | training clips (real and synthetic) |", "|---|---|---|---|---|"]
    for label, recall in metrics["recall"].items():
        lines.append(f"| {label} | {metrics['precision'][label]:.3f} | {recall:.3f} | "
                     f"{counts.get('validation', {}).get(label, 0)} | {counts.get('training', {}).get(label, 0)} |")
    return "\n".join(lines)


def synthetic_voices(dirs: list[str], words: list[str]) -> Counter:
    """Clips per (engine, voice) in the word folders the model trained on, read from the names that
    `speech-app synth` gives its clips."""
    return Counter(voice for folder in map(Path, dirs) for word in words
                   for voice in map(engine_and_voice, (folder / word).glob("*.wav")) if voice)


def voices_table(counts: Counter) -> str:
    lines = ["| engine | voices | clips | licence of the voice data |", "|---|---|---|---|"]
    for engine in sorted({e for e, _ in counts}):
        voices = sorted(v for e, v in counts if e == engine)
        listed = ", ".join(voices) if len(voices) <= 8 else f"{len(voices)} variants ({', '.join(voices[:3])}, ...)"
        licences = sorted({ENGINES[engine].voice_licence(v) for v in voices})
        lines.append(f"| {engine} | {listed} | {sum(counts[(engine, v)] for v in voices)} | {'; '.join(licences)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data_dir", type=Path, help="the real data the model was validated on")
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--notes", type=Path, help="markdown with the model's known limits and history")
    args = parser.parse_args()
    meta = read_metadata(args.model)
    classifier = CommandClassifier.from_file(args.model)
    rejection = measure_rejection(classifier, [args.data_dir], progress=False)
    trained, training = meta.get("trained_on", {}), meta.get("training", {})
    counts = trained.get("clips", {})
    validation = meta["metrics"]["validation"]
    features, model = meta["features"], meta["model"]
    print(f"# Model card: {args.model.name}\n")
    print(f"Labels: {', '.join(meta['labels'])}.\n")
    print(f"- Architecture: MFCC ({features['n_mfcc']} coefficients, {features['n_mels']} mel bands, "
          f"{features['window_ms']:g} ms window, {features['hop_ms']:g} ms hop, {features['clip_seconds']:g} s input) "
          f"-> Conv1d ({model.get('conv_channels', 0)} channels, stride {model.get('frame_stride', 1)}) -> "
          f"BiLSTM ({model['num_layers']} layers x {model['hidden_size']} units per direction) -> attention pooling -> linear.")
    print(f"- Size: {meta['parameters']:,} parameters; {meta['flops_per_clip'] / 1e6:.1f} MFLOPs per one-second clip.")
    print(f"- Trained on: {', '.join(trained.get('data', []) + trained.get('synthetic', []))} "
          f"(sources: {', '.join(trained.get('sources', []))}); best epoch {training.get('best_epoch')} "
          f"of {training.get('epochs_run')}; package {meta.get('package_version')}.")
    print(f"- Reproduce: `{args.recipe}` (the exact command is in that file).\n")
    print(f"## Validation on real speech\n\nAccuracy **{validation['accuracy']:.4f}** on {validation['clips']} "
          "validation clips (speakers never seen in training; standard speaker-hash split).\n")
    print(class_table(validation, counts) + "\n")
    for name, figures in meta["metrics"].items():
        if name != "validation":
            print(f"{name}: accuracy {figures['accuracy']:.4f} on {figures['clips']} clips.\n")
    print("## Rejecting what is not a command\n")
    print(f"Measured on real clips of the other words of the data folder, from validation/testing "
          f"speakers only, and on one-second windows (every {0.5:g} s, at full and 30% volume) of the "
          f"six background-noise recordings.\n\n- {rejection.summary()}")
    worst = sorted(rejection.per_word.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:6]
    print("- Most often taken for a command: " + ", ".join(f"{w} {h}/{n}" for w, (h, n) in worst) + "\n")
    voices = synthetic_voices(trained.get("synthetic", []), meta["labels"])
    if voices:
        restricted = sorted(f"{e} {v}" for e, v in voices if not ENGINES[e].commercial_use(v))
        verdict = ("every voice's licence allows shipping a model trained on it" if not restricted else
                   f"**not for commercial use**: trained on {', '.join(restricted)}")
        print(f"## Synthetic voices\n\nSynthetic training clips per engine (from the folders named above, as "
              f"`speech-app synth` named them); {verdict}.\n")
        print(voices_table(voices) + "\n")
    if args.notes and args.notes.is_file():
        print(args.notes.read_text().strip() + "\n")
    print("## Licence\n\nTrained on Speech Commands by Pete Warden / Google (CC BY 4.0): \"Speech Commands: "
          "A Dataset for Limited-Vocabulary Speech Recognition\", P. Warden, 2018.")


if __name__ == "__main__":
    main()
