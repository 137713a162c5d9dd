"""Streaming recognition on long streams of real speech: recall, precision, false alarms per hour.

    python benchmarks/bench_streaming.py [--model M] [--data DIR] [--json out.json] [--plot curve.png]

Builds streams from real clips of speakers never heard in training (the held-out speakers of
training/devtest.py): commands interleaved with as many clips of other words, over quiet
background noise, and a stream of the six background-noise recordings alone. Each runs through
`StreamingRecognizer` faster than real time. The model's scores do not depend on the decision
settings, so it runs once per stream; every (threshold, averaging) setting then replays those
scores through the same recognizer.
The stand-in classifiers here take whole windows, so the recognizer scores each window in full
(its reference path), not with the frame-sharing MFCC path a `CommandClassifier` gets live.

- recall: commands detected once, as themselves, before the next clip starts (within
  ATTRIBUTION_S of the word's start);
- precision: right detections / all detections;
- false alarms per hour of other speech: detections during the other words' clips and the gaps
  after them, per hour of that audio; the same per hour of the noise-only stream;
- latency: from the end of the spoken word (bench_live.word_end_seconds, the last loud 10 ms frame of
  its clip) to its right detection, in audio time: what the hop, the averaging and the threshold cost,
  without the audio system's buffers (bench_live.py measures those through a virtual microphone).
The model's settings (those `speech-app listen` uses for it, decision.settings_of_file: RecognizerSettings'
defaults unless the file names its own in its `streaming` metadata; "default" below) are the base of every
replayed setting, and are scored beside the previous defaults (PREVIOUS_DEFAULTS), on the same scores, and
beside themselves with the pause before the word (`pause_ms`, speech_app/levels.py) at PAUSE_CHOICES_MS.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "training"))

from devtest import DEFAULT_DATA  # noqa: E402

from speech_app.audio import SAMPLE_RATE, decode_files, load_audio  # noqa: E402
from speech_app.data.dataset import BACKGROUND_NOISE_DIR, STANDARD_WORDS, which_set, word_folders  # noqa: E402
from speech_app.decision import settings_of_file  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.streaming import (AVERAGING_MS, DETECTION_THRESHOLD, HOLD_MS, RecognizerSettings,  # noqa: E402
                                  StreamingRecognizer, recognize_samples)

COMMANDS_PER_WORD = 20  # held-out clips of each command in the mixed stream (fewer where fewer exist)
GAP_RANGE_S = (1.5, 2.5)  # quiet between two clips: people pause between commands
BACKGROUND_VOLUME = 0.05  # noise under the speech stream (a quiet room)
NOISE_VOLUMES = (1.0,)  # the noise-only stream: the recordings as they are
ATTRIBUTION_S = 3.0  # a detection belongs to the latest clip started at most this long before it
BLOCK_SAMPLES = None  # the whole stream in one feed: the recognizer batches the model's windows, and
# its detections do not depend on how the stream is cut up (tests/test_streaming.py checks that)
THRESHOLDS = tuple(sorted({round(t, 2) for t in np.arange(0.30, 0.96, 0.05)} | {DETECTION_THRESHOLD}))
AVERAGING_CHOICES_MS = tuple(sorted({200.0, 300.0, 500.0, AVERAGING_MS}))
# (averaging ms, hold ms) replayed: the averaging choices without a hold, the defaults (their row is the model
# card's), and longer averages or holds, which ask a word's score to stay high for longer than the brief
# peaks of words inside a sentence (benchmarks/bench_conversation_commands.py replays the same rules)
DECISION_RULES = tuple(dict.fromkeys(
    [(a, 0.0) for a in AVERAGING_CHOICES_MS]
    + [(AVERAGING_MS, HOLD_MS), (750.0, 0.0), (1000.0, 0.0), (500.0, 250.0), (500.0, 500.0), (750.0, 250.0)]))
SEED = 7
PREVIOUS_DEFAULTS = {"averaging_ms": 500.0, "threshold": 0.70, "hold_ms": 0.0, "pause_ms": 0.0,
                     "recent_weighting": 0.0}  # before issue 24's latency cut (a plain mean)
# the defaults with the pause before the word at these lengths (0: the rule off); every clip here follows a gap of
# 1.5-2.5 s, so the rule should cost no command: what it may cost is a pause it does not see in the noise
PAUSE_CHOICES_MS = (0.0, 400.0, 600.0, 800.0)
# the defaults with the hold waived at these smoothed scores (None: never waived; training/studies/latency_rule.py)
SURE_CHOICES = (None, 0.92)


@dataclass
class Stream:
    samples: np.ndarray
    starts: list[float]  # seconds at which each clip starts
    words: list[str]  # the word of each clip
    seconds_after: list[float]  # clip plus the gap after it: the audio each clip "owns"
    word_ends: list[float]  # seconds at which each clip's spoken word ends


def held_out_clips(data_dir: Path, rng: np.random.Generator,
                   training: bool = False) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(commands, other words) from held-out speakers (`training`: from training speakers instead, for a
    study that chooses on them): as many other-word clips as commands, taken in turn from every other word
    (so the plentiful bed/cat/happy do not make up most of them)."""
    commands, others = [], {}
    for word, files in word_folders(data_dir).items():
        chosen = [p for p in files if (which_set(p) == "training") == training]
        if word in STANDARD_WORDS:
            picked = rng.permutation(len(chosen))[:COMMANDS_PER_WORD]
            commands += [(word, chosen[i]) for i in sorted(picked)]
        elif chosen:
            others[word] = [chosen[i] for i in rng.permutation(len(chosen))]
    in_turn = [(word, files[rank]) for rank in range(max(map(len, others.values())))
               for word, files in others.items() if rank < len(files)]
    return commands, in_turn[: len(commands)]


def build_stream(clips: list[tuple[str, np.ndarray]], noise: np.ndarray, rng: np.random.Generator) -> Stream:
    from bench_live import word_end_seconds  # next to this file

    pieces, starts, words, owned, at = [], [], [], [], 0.0
    for word, audio in clips:
        gap = np.zeros(int(rng.uniform(*GAP_RANGE_S) * SAMPLE_RATE), dtype=np.float32)
        starts.append(at)
        words.append(word)
        owned.append((len(audio) + len(gap)) / SAMPLE_RATE)
        pieces += [audio, gap]
        at += (len(audio) + len(gap)) / SAMPLE_RATE
    speech = np.concatenate([np.zeros(SAMPLE_RATE, dtype=np.float32)] + pieces)
    starts = [s + 1.0 for s in starts]  # one second of background first
    background = np.resize(noise, len(speech)) * BACKGROUND_VOLUME
    ends = [start + word_end_seconds(audio) for start, (_, audio) in zip(starts, clips)]
    return Stream(np.clip(speech + background, -1, 1).astype(np.float32), starts, words, owned, ends)


class RecordingClassifier:
    """Passes windows to the model and keeps its scores, in order, for replaying."""

    def __init__(self, classifier: CommandClassifier):
        self.classifier, self.labels, self.window_samples = classifier, classifier.labels, classifier.window_samples
        self.rows: list[np.ndarray] = []

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        scores = self.classifier.probabilities(waves)
        self.rows.append(scores)
        return scores


class ReplayClassifier:
    """Gives back recorded scores: the same windows come in the same order for the same stream."""

    def __init__(self, recording: RecordingClassifier):
        self.labels, self.window_samples = recording.labels, recording.window_samples
        self.rows, self.next = recording.rows, 0

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        scores = self.rows[self.next]
        assert len(scores) == len(waves), "replayed a stream differently from its recording"
        self.next += 1
        return scores


def score_detections(stream: Stream, detections) -> dict:
    hits, latencies_ms = set(), []
    right = wrong_on_commands = on_others = 0
    for d in detections:
        index = np.searchsorted(stream.starts, d.time_s, side="right") - 1
        if index < 0 or d.time_s - stream.starts[index] > ATTRIBUTION_S:
            on_others += 1  # in the background between clips: counts against the other speech
            continue
        word = stream.words[index]
        if word in STANDARD_WORDS:
            if d.label == word and index not in hits:
                hits.add(index)
                right += 1
                latencies_ms.append(1000.0 * (d.time_s - stream.word_ends[index]))
            else:
                wrong_on_commands += 1
        else:
            on_others += 1
    n_commands = sum(w in STANDARD_WORDS for w in stream.words)
    other_hours = sum(s for w, s in zip(stream.words, stream.seconds_after) if w not in STANDARD_WORDS) / 3600
    return {"recall": right / max(n_commands, 1), "precision": right / max(len(detections), 1),
            "detections": len(detections), "commands": n_commands, "right": right,
            "wrong_on_commands": wrong_on_commands, "false_alarms_other_speech": on_others,
            "false_alarms_per_hour_other_speech": on_others / other_hours if other_hours > 0 else None,
            "latency_median_ms": float(np.median(latencies_ms)) if latencies_ms else None,
            "latency_p90_ms": float(np.percentile(latencies_ms, 90)) if latencies_ms else None}


def replay(recording: RecordingClassifier, samples: np.ndarray, settings: RecognizerSettings):
    recognizer = StreamingRecognizer(ReplayClassifier(recording), settings)
    return recognize_samples(recognizer, samples, BLOCK_SAMPLES)


def record(classifier: CommandClassifier, samples: np.ndarray) -> RecordingClassifier:
    recording = RecordingClassifier(classifier)
    recognize_samples(StreamingRecognizer(recording), samples, BLOCK_SAMPLES)
    return recording


def run(model: Path | None, data_dir: Path) -> dict:
    rng = np.random.default_rng(SEED)
    classifier = CommandClassifier.from_file(model)
    commands, others = held_out_clips(data_dir, rng)
    decoded = decode_files([str(p) for _, p in commands + others], progress=False)
    clips = [(w, a.astype(np.float32)) for (w, _), a in zip(commands + others, decoded)
             if isinstance(a, np.ndarray)]
    clips = [clips[i] for i in rng.permutation(len(clips))]
    noise_files = sorted(p for p in (data_dir / BACKGROUND_NOISE_DIR).iterdir() if p.is_file())
    recordings = [load_audio(p) for p in noise_files]
    stream = build_stream(clips, recordings[0], rng)
    noise_stream = np.concatenate([r * v for v in NOISE_VOLUMES for r in recordings]).astype(np.float32)
    noise_hours = len(noise_stream) / SAMPLE_RATE / 3600
    speech_scores, noise_scores = record(classifier, stream.samples), record(classifier, noise_stream)
    side_by_side = {}
    base = settings_of_file(model)  # what `listen` uses for this file: the defaults unless it names its own
    compared = [("default", base), ("previous", RecognizerSettings(**PREVIOUS_DEFAULTS))]
    compared += [(f"pause {p:g} ms", replace(base, pause_ms=p)) for p in PAUSE_CHOICES_MS]
    compared += [(f"sure score {s}", replace(base, sure_score=s)) for s in SURE_CHOICES]
    # the model's settings on a plain mean of the evaluations, as before recent_weighting (LATENCY_STUDY.md)
    compared += [("plain mean", replace(base, recent_weighting=0.0))]
    for name, settings in compared:
        side_by_side[name] = {**score_detections(stream, replay(speech_scores, stream.samples, settings)),
                              "noise_false_alarms": len(replay(noise_scores, noise_stream, settings))}
    curve = []
    rules = tuple(dict.fromkeys(DECISION_RULES + ((base.averaging_ms, base.hold_ms),)))
    for averaging, hold in rules:
        for threshold in sorted(set(THRESHOLDS) | {base.threshold}):
            settings = replace(base, threshold=threshold, averaging_ms=averaging, hold_ms=hold)
            row = score_detections(stream, replay(speech_scores, stream.samples, settings))
            noise_alarms = len(replay(noise_scores, noise_stream, settings))
            curve.append({"threshold": threshold, "averaging_ms": averaging, "hold_ms": hold, **row,
                          "noise_false_alarms": noise_alarms, "false_alarms_per_hour_noise": noise_alarms / noise_hours})
    return {"model": str(model or "shipped"), "commands": len([c for c in clips if c[0] in STANDARD_WORDS]),
            "other_words": len([c for c in clips if c[0] not in STANDARD_WORDS]),
            "speech_stream_minutes": len(stream.samples) / SAMPLE_RATE / 60, "noise_stream_minutes": noise_hours * 60,
            "default": {"threshold": base.threshold, "averaging_ms": base.averaging_ms, "hold_ms": base.hold_ms,
                        "pause_ms": base.pause_ms},
            "curve": curve,
            "defaults_vs_previous": side_by_side}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for averaging, hold in DECISION_RULES:
        rows = [r for r in result["curve"] if r["averaging_ms"] == averaging and r.get("hold_ms", 0.0) == hold]
        ax.plot([r["false_alarms_per_hour_other_speech"] for r in rows], [100 * r["recall"] for r in rows],
                marker=".", label=f"averaging {averaging:g} ms" + (f", hold {hold:g} ms" if hold else ""))
    chosen = [r for r in result["curve"] if r["threshold"] == result["default"]["threshold"]
              and r["averaging_ms"] == result["default"]["averaging_ms"]
              and r.get("hold_ms", 0.0) == result["default"].get("hold_ms", 0.0)]
    if chosen:
        ax.plot(chosen[0]["false_alarms_per_hour_other_speech"], 100 * chosen[0]["recall"], "k*", markersize=12,
                label=f"default (threshold {result['default']['threshold']:g})")
    ax.set_xlabel("false alarms per hour of other speech (one word every ~3 s)")
    ax.set_ylabel("commands detected (%)")
    ax.set_title("Streaming: recall against false alarms, thresholds 0.30-0.95")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, help="write the recall / false-alarm curve here (PNG)")
    # one window at a time is too small to share: on a busy machine a second thread spun 30x the CPU of the work
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.model, args.data)
    print(f"{result['commands']} commands and {result['other_words']} other words from held-out speakers "
          f"({result['speech_stream_minutes']:.1f} min), noise alone {result['noise_stream_minutes']:.1f} min")
    print("averaging  hold  threshold  recall  precision  FA/h other speech  FA/h noise")
    for r in result["curve"]:
        print(f"{r['averaging_ms']:>9g}  {r['hold_ms']:>4g}  {r['threshold']:>9.2f}  {r['recall']:>6.3f}  {r['precision']:>9.3f}  "
              f"{r['false_alarms_per_hour_other_speech']:>17.1f}  {r['false_alarms_per_hour_noise']:>10.1f}")
    for name, r in result["defaults_vs_previous"].items():
        print(f"{name} settings: recall {r['recall']:.3f}, precision {r['precision']:.3f}, "
              f"{r['false_alarms_per_hour_other_speech']:.0f} false alarms per hour of other speech, "
              f"{r['noise_false_alarms']} on noise; latency from the end of the word: median "
              f"{r['latency_median_ms']:.0f} ms, 90th percentile {r['latency_p90_ms']:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
