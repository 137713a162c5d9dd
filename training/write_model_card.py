"""Write a model card from a model file's own metadata plus a rejection measurement.

    python training/write_model_card.py model/speech_commands_12.safetensors DATA_DIR \
        --recipe training/train_speech_commands_12_soup.sh --notes training/notes_speech_commands_12.md \
        [--streaming runs/streaming.json --streaming-plot model/streaming_curve.png] \
        [--conversation runs/conversation.json --conversation-plot model/conversation_curve.png] > model/MODEL_CARD.md

Every figure in the card comes from the model file (its validation metrics, written by training),
from running it now (the development test, rejection of other words and noise), or from the
streaming benchmark's output for it (benchmarks/bench_streaming.py --json), so the card cannot
drift from the model.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from devtest import DEFAULT_LIST, OFFICIAL_COUNTS, load_devtest, score

from speech_app.training.rejection import measure_rejection
from speech_app.inference import CommandClassifier
from speech_app.modelfile import read_metadata
from speech_app.streaming import PAUSE_MS
from speech_app.synth.engines import ALL_ENGINES
from speech_app.synth.generator import engine_and_voice

ENGINES = {engine.name: engine for engine in ALL_ENGINES}
PROJECT = Path(__file__).resolve().parent.parent


def data_name(folder: str, kind: str) -> str:
    """A training folder named by what it is, relative to the project when it lies inside it or
    next to it (never the absolute path of the machine that trained the model)."""
    path = Path(folder)
    if path.is_absolute():
        for root, prefix in ((PROJECT, ""), (PROJECT.parent, "../")):
            if path.is_relative_to(root):
                return f"{kind} (`{prefix}{path.relative_to(root).as_posix()}`)"
        shared = [i for i, part in enumerate(path.parts) if part == "shared"]
        if shared:  # the shared data folder of another checkout
            return f"{kind} (`../{Path(*path.parts[shared[-1]:]).as_posix()}`)"
        return f"{kind} (a folder `{path.name}`)"
    return f"{kind} (`{path.as_posix()}`)"


def class_table(metrics: dict, counts: dict) -> str:
    lines = ["| class | precision | recall | validation clips | training clips (real and synthetic) |", "|---|---|---|---|---|"]
    for label, recall in metrics["recall"].items():
        lines.append(f"| {label} | {metrics['precision'][label]:.3f} | {recall:.3f} | "
                     f"{counts.get('validation', {}).get(label, 0)} | {counts.get('training', {}).get(label, 0)} |")
    return "\n".join(lines)


def synthetic_voices(dirs: list[str]) -> Counter:
    """Clips per (engine, voice) in every word folder (commands and `_unknown_` words alike) the model
    trained on, read from the names that `speech-app synth` gives its clips."""
    return Counter(voice for folder in map(Path, dirs) if folder.is_dir() for word in folder.iterdir() if word.is_dir()
                   for voice in map(engine_and_voice, word.glob("*.wav")) if voice)


def voices_table(counts: Counter) -> str:
    lines = ["| engine | voices | clips | licence of the voice data |", "|---|---|---|---|"]
    for engine in sorted({e for e, _ in counts}):
        voices = sorted(v for e, v in counts if e == engine)
        listed = ", ".join(voices) if len(voices) <= 8 else f"{len(voices)} variants ({', '.join(voices[:3])}, ...)"
        licences = sorted({ENGINES[engine].voice_licence(v) for v in voices})
        lines.append(f"| {engine} | {listed} | {sum(counts[(engine, v)] for v in voices)} | {'; '.join(licences)} |")
    return "\n".join(lines)


def devtest_section(model: Path, data_dir: Path, classifier: CommandClassifier) -> str:
    result = score(classifier, *load_devtest(data_dir, DEFAULT_LIST, classifier.window_samples))
    lines = ["## Development test (speakers never heard in training)\n",
             f"The official test's composition where the data allows (`training/DEVTEST.md`): "
             f"{result['clips']} clips. **Predicted official accuracy {result['predicted_official_accuracy']:.1%}** "
             f"(per-class recall weighted by the official v0.02 test's class sizes); plain accuracy "
             f"{result['accuracy']:.1%}; `_unknown_` {result['unknown_word_balanced']:.1%} with every other "
             f"word weighted alike.\n", "| class | recall | clips |", "|---|---|---|"]
    for label in OFFICIAL_COUNTS:
        if label in result["recall"]:
            shown = f"{result['recall'][label]:.3f}"
            if label == "_unknown_":
                shown += f" ({result['unknown_word_balanced']:.3f} word-balanced)"
            lines.append(f"| {label} | {shown} | {result['counts'][label]} |")
    lines.append("\n`_unknown_` per word: " + ", ".join(f"{w} {c}/{n}" for w, (c, n) in result["unknown_per_word"].items())
                 + ".\n\nMost frequent confusions: " + ", ".join(f"{k} {v}" for k, v in result["confusions"].items()) + ".\n")
    return "\n".join(lines)


def averaged_line(averaged: dict) -> str:
    """What an average of two models (training/average_models.py) is made of."""
    parts = [f"{averaged[role]['weight']:g} x `{averaged[role]['file']}`" for role in ("main", "other")]
    return (f"- **A weight average** of two fine-tunes of one base: {' + '.join(parts)} ({averaged['rule']}); "
            "best epoch and package below are the first model's.")


def validation_section(meta: dict, counts: dict) -> str:
    validation = meta.get("metrics", {}).get("validation")
    if validation is None:  # an average: each ingredient's own validation run is not the average's
        ingredients = meta.get("averaged", {})
        scored = [f"`{ingredients[r]['file']}` {ingredients[r]['metrics']['validation']['accuracy']:.4f}"
                  for r in ("main", "other") if "validation" in ingredients.get(r, {}).get("metrics", {})]
        return ("## Validation on real speech\n\nAn average has no validation run of its own (the development "
                "test above is its figure); the averaged models' validation accuracy: " + ", ".join(scored) + ".\n")
    lines = [f"## Validation on real speech\n\nAccuracy **{validation['accuracy']:.4f}** on {validation['clips']} "
             "validation clips (what training chose its best epoch on: speakers this training run never saw; a fine-tuned "
             "model's base may have trained on them, so the development test above is the figure to trust).\n",
             class_table(validation, counts) + "\n"]
    lines += [f"{name}: accuracy {figures['accuracy']:.4f} on {figures['clips']} clips.\n"
              for name, figures in meta["metrics"].items() if name != "validation"]
    return "\n".join(lines)


def streaming_section(result: dict, plot: Path | None) -> str:
    default = result["default"]
    rows = [r for r in result["curve"] if r["averaging_ms"] == default["averaging_ms"]
            and r.get("hold_ms", 0.0) == default.get("hold_ms", 0.0)]
    chosen = next(r for r in rows if r["threshold"] == default["threshold"])
    lines = ["## Streaming (benchmarks/bench_streaming.py)\n",
             f"{result['commands']} commands and as many other words from held-out speakers, 1.5-2.5 s apart over "
             f"quiet noise ({result['speech_stream_minutes']:.0f} min), and {result['noise_stream_minutes']:.0f} min "
             f"of the background-noise recordings alone, through `StreamingRecognizer`. "
             f"Default settings (threshold {default['threshold']:g}, averaging {default['averaging_ms']:g} ms, "
             f"held {default.get('hold_ms', 0):g} ms, a pause of {default.get('pause_ms', PAUSE_MS):g} ms before the word): "
             f"**recall {chosen['recall']:.1%}, precision {chosen['precision']:.1%}**, "
             f"{chosen['false_alarms_per_hour_other_speech']:.0f} false alarms per hour of other speech "
             f"(one word every ~3 s), {chosen['false_alarms_per_hour_noise']:.0f} per hour of noise.\n"]
    if plot:
        lines.append(f"![recall against false alarms per hour]({plot.name})\n")
    lines += [f"| threshold | recall | precision | false alarms / h, other speech | false alarms / h, noise |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['threshold']:.2f} | {r['recall']:.3f} | {r['precision']:.3f} | "
              f"{r['false_alarms_per_hour_other_speech']:.0f} | {r['false_alarms_per_hour_noise']:.0f} |"
              for r in rows if r["threshold"] in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
    return "\n".join(lines) + "\n"


def conversation_section(result: dict, plot: Path | None) -> str:
    """Detections while people talk (benchmarks/bench_conversation_commands.py --json): none was a command."""
    d, hours = result["default"], result["minutes"] / 60
    by_word = ", ".join(f"{w} {n / hours:.0f}" for w, n in d["by_word"].items()) or "none"
    lines = ["## Continuous speech (benchmarks/bench_conversation_commands.py)\n",
             f"{result['minutes']:.0f} min of other people's ordinary speech (read books and newspaper sentences; "
             "the measuring speakers of training/conversation_split.json, never trained on) through "
             "`StreamingRecognizer`. No command is said to the app in it, so every detection is a false one. "
             f"Default settings (threshold {d['threshold']:g}, averaging {d['averaging_ms']:g} ms, "
             f"held {d.get('hold_ms', 0):g} ms, a pause of {d.get('pause_ms', 0):g} ms before the word): "
             f"**{d['per_hour']:.0f} detections per hour** (per hour by word: {by_word}).\n"]
    if plot:
        lines.append(f"![detections per hour against the threshold]({plot.name})\n")
    rule = lambda r: (r["averaging_ms"], r["hold_ms"], r.get("pause_ms", 0.0))  # noqa: E731
    rules = sorted({rule(r) for r in result["curve"]})
    thresholds = sorted({r["threshold"] for r in result["curve"]})
    lines += ["| averaging, hold, pause before (ms) | " + " | ".join(f"{t:.2f}" for t in thresholds) + " |",
              "|---|" + "---|" * len(thresholds)]
    for averaging, hold, pause in rules:
        rows = {r["threshold"]: r for r in result["curve"] if rule(r) == (averaging, hold, pause)}
        lines.append(f"| {averaging:g}, {hold:g}, {pause:g} | "
                     + " | ".join(f"{rows[t]['per_hour']:.0f}" if t in rows else "-" for t in thresholds) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data_dir", type=Path, help="the real data the model was validated on")
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--notes", type=Path, help="markdown with the model's known limits and history")
    parser.add_argument("--streaming", type=Path, help="benchmarks/bench_streaming.py --json output for this model")
    parser.add_argument("--streaming-plot", type=Path, help="its curve (PNG), linked from the card")
    parser.add_argument("--conversation", type=Path,
                        help="benchmarks/bench_conversation_commands.py --json output for this model")
    parser.add_argument("--conversation-plot", type=Path, help="its curve (PNG), linked from the card")
    args = parser.parse_args()
    meta = read_metadata(args.model)
    classifier = CommandClassifier.from_file(args.model)
    rejection = measure_rejection(classifier, [args.data_dir], progress=False)
    trained, training = meta.get("trained_on", {}), meta.get("training", {})
    counts = trained.get("clips", {})
    features, model = meta["features"], meta["model"]
    print(f"# Model card: {args.model.name}\n")
    print(f"Labels: {', '.join(meta['labels'])}.\n")
    print(f"- Architecture: MFCC ({features['n_mfcc']} coefficients, {features['n_mels']} mel bands, "
          f"{features['window_ms']:g} ms window, {features['hop_ms']:g} ms hop, {features['clip_seconds']:g} s input) "
          f"-> Conv1d ({model.get('conv_channels', 0)} channels, stride {model.get('frame_stride', 1)}) -> "
          f"BiLSTM ({model['num_layers']} layers x {model['hidden_size']} units per direction) -> attention pooling -> linear.")
    print(f"- Size: {meta['parameters']:,} parameters; {meta['flops_per_clip'] / 1e6:.1f} MFLOPs per one-second clip.")
    names = ([data_name(d, "Speech Commands clips (real)" if Path(d).name == "speech_commands" else "real recordings")
              for d in trained.get("data", [])]
             + [data_name(d, "synthetic speech") for d in trained.get("synthetic", [])]
             + [data_name(d, "continuous speech as `_unknown_`")
                for d in meta.get("conversation_speech", {}).get("folders", [])])
    print(f"- Trained on: {', '.join(names)}; best epoch {training.get('best_epoch')} "
          f"of {training.get('epochs_run')}; package {meta.get('package_version')}.")
    if "averaged" in meta:
        print(averaged_line(meta["averaged"]))
    print(f"- Reproduce: `{args.recipe}` (the exact command is in that file).\n")
    print(devtest_section(args.model, args.data_dir, classifier))
    if args.streaming:
        print(streaming_section(json.loads(args.streaming.read_text()), args.streaming_plot))
    if args.conversation:
        print(conversation_section(json.loads(args.conversation.read_text()), args.conversation_plot))
    print(validation_section(meta, counts))
    print("## Rejecting what is not a command\n")
    print(f"Measured on real clips of the other words of the data folder, from validation/testing "
          f"speakers only, and on one-second windows (every {0.5:g} s, at full and 30% volume) of the "
          f"six background-noise recordings.\n\n- {rejection.summary()}")
    worst = sorted(rejection.per_word.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:6]
    print("- Most often taken for a command: " + ", ".join(f"{w} {h}/{n}" for w, (h, n) in worst) + "\n")
    voices = synthetic_voices(trained.get("synthetic", []))
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
