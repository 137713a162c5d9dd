"""The command model left listening to people talk: detections per hour of continuous speech.

    python benchmarks/bench_conversation_commands.py [--model M] [--json out.json] [--plot curve.png]
                                                     [--cache runs/conversation_commands]

Plays the measuring speakers of ../shared/data/continuous_speech (training/conversation_split.json:
the side no recipe trains on; LibriSpeech read books and vctk_p239's read newspaper sentences) end to
end as one stream through `StreamingRecognizer`, as `speech-app listen --file` runs it. No command is
said to the app in it, so every detection counts: a command word inside a sentence is not a command
either (issue 22). Reported: detections per hour of speech at the model's settings (all, by word, by
source), the curve against the threshold, and other decision rules (averaging, hold, the pause before the
word: `pause_ms`, speech_app/levels.py). The model's settings are those `speech-app listen` uses for it
(decision.settings_of_file: RecognizerSettings' defaults, or the file's own `streaming` metadata). The model's
evaluations and the stream's 10 ms levels are recorded once (cached by the model file's hash) and each setting replays them
(`StreamingRecognizer.replay`, the decisions a run at that setting makes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_conversation import split_files  # noqa: E402

from speech_app.audio import SAMPLE_RATE, decode_files  # noqa: E402
from speech_app.decision import settings_of_file  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.levels import Evaluations  # noqa: E402
from speech_app.modelfile import load_model  # noqa: E402
from speech_app.streaming import AVERAGING_MS, BACKGROUND_LABELS, HOLD_MS, LIVE_PRECISION, PAUSE_MS  # noqa: E402
from speech_app.training.conversation import decider, record_evaluations  # noqa: E402

DEFAULT_MODEL = ROOT / "model" / "speech_commands_12.safetensors"
THRESHOLDS = tuple(float(round(t, 2)) for t in np.arange(0.50, 0.976, 0.05))
# decision rules replayed besides the default (averaging ms, hold ms, pause ms): a longer average or a hold asks a
# word's score to stay high for longer than the brief peaks that words inside a sentence give; a pause asks for
# quiet just before the word, which a command has and a word inside a sentence mostly lacks
RULES = tuple(dict.fromkeys(((AVERAGING_MS, HOLD_MS, PAUSE_MS), (500.0, 0.0, 0.0), (750.0, 0.0, 0.0),
                            (1000.0, 0.0, 0.0), (500.0, 250.0, 0.0), (500.0, 500.0, 0.0), (750.0, 250.0, 0.0),
                            *((AVERAGING_MS, HOLD_MS, p) for p in (0.0, 200.0, 400.0, 500.0, 600.0, 800.0)))))
TARGET_PER_HOUR = 20.0  # issue 22: detections per hour of continuous speech, any command


def measuring_speech() -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """The measuring side's utterances end to end (file order), with (start, end, source) of each."""
    files = split_files("measure")
    audio = decode_files([p for p, _ in files], progress=False)
    spans, pieces, at = [], [], 0
    for clip, (_, source) in zip(audio, files):
        if not isinstance(clip, np.ndarray):
            raise ValueError(f"{clip}: could not be decoded")
        pieces.append(clip.astype(np.float32))
        spans.append((at, at + len(clip), source))
        at += len(clip)
    return np.concatenate(pieces), spans


def evaluations_of(model: Path, samples: np.ndarray, cache: Path) -> Evaluations:
    """Every evaluation of the default recognizer over the stream and the stream's levels (recorded once per
    model file; a cache from before the levels were kept is recorded again)."""
    digest = hashlib.sha1(model.read_bytes()).hexdigest()[:16]
    path = cache / f"{digest}_{len(samples)}.npz"
    cached = Evaluations.load(path)
    if cached is not None:
        return cached
    recorded = record_evaluations(CommandClassifier.from_file(model, "cpu", LIVE_PRECISION), samples)
    cache.mkdir(parents=True, exist_ok=True)
    recorded.save(path)
    return recorded


def tally(detections, spans, hours: float) -> dict:
    """Detections per hour, by word and by the source of the speech they fell in."""
    ends = np.array([end for _, end, _ in spans])
    by_word, by_source = {}, {}
    for d in detections:
        by_word[d.label] = by_word.get(d.label, 0) + 1
        k = min(int(np.searchsorted(ends, int(d.time_s * SAMPLE_RATE), side="left")), len(spans) - 1)
        by_source[spans[k][2]] = by_source.get(spans[k][2], 0) + 1
    return {"detections": len(detections), "per_hour": len(detections) / hours,
            "by_word": dict(sorted(by_word.items(), key=lambda kv: -kv[1])), "by_source": by_source}


def run(model: Path, cache: Path) -> dict:
    samples, spans = measuring_speech()
    hours = len(samples) / SAMPLE_RATE / 3600.0
    labels = load_model(model).labels
    evaluations = evaluations_of(model, samples, cache)
    base = settings_of_file(model)  # what `listen` uses for this file: the defaults unless it names its own
    default = tally(decider(labels, base).replay(evaluations), spans, hours)
    plain = tally(decider(labels, replace(base, recent_weighting=0.0)).replay(evaluations), spans, hours)
    rules = []
    for averaging, hold, pause in RULES:
        for threshold in THRESHOLDS:
            settings = replace(base, averaging_ms=averaging, hold_ms=hold, pause_ms=pause, threshold=threshold)
            row = tally(decider(labels, settings).replay(evaluations), spans, hours)
            rules.append({"averaging_ms": averaging, "hold_ms": hold, "pause_ms": pause, "threshold": threshold,
                          "detections": row["detections"], "per_hour": row["per_hour"]})
    minutes = {}
    for start, end, source in spans:
        minutes[source] = minutes.get(source, 0.0) + (end - start) / SAMPLE_RATE / 60
    return {"model": str(model), "minutes": round(hours * 60, 2),
            "minutes_by_source": {k: round(v, 2) for k, v in minutes.items()},
            "words": [w for w in labels if w not in BACKGROUND_LABELS],
            "default": {"threshold": base.threshold, "averaging_ms": base.averaging_ms, "hold_ms": base.hold_ms,
                        "pause_ms": base.pause_ms, **default},
            "plain_mean": plain,  # the model's settings on a plain mean of the evaluations (before recent_weighting)
            "curve": rules}


def rule_rows(result: dict, averaging: float, hold: float, pause: float) -> list[dict]:
    return [r for r in result["curve"] if (r["averaging_ms"], r["hold_ms"], r.get("pause_ms", 0.0)) == (averaging, hold, pause)]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for averaging, hold, pause in RULES:
        rows = rule_rows(result, averaging, hold, pause)
        ax.plot([r["threshold"] for r in rows], [r["per_hour"] for r in rows], marker=".",
                label=f"averaging {averaging:g} ms, hold {hold:g} ms" + (f", pause {pause:g} ms" if pause else ""))
    d = result["default"]
    ax.plot(d["threshold"], d["per_hour"], "k*", markersize=12, label="default settings")
    ax.axhline(TARGET_PER_HOUR, color="grey", linestyle="--", linewidth=1, label=f"target {TARGET_PER_HOUR:g}/h")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("threshold")
    ax.set_ylabel("detections per hour of continuous speech")
    ax.set_title(f"Continuous speech ({result['minutes']:.0f} min, speakers never trained on)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path, help="write the detections-per-hour curve here (PNG)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "conversation_commands")
    # one window per hop is too small to share between threads: on a busy machine a second thread spun 30x the
    # CPU of the work itself (13 s against 0.4 s for 30 s of audio)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.model, args.cache)
    d = result["default"]
    print(f"{args.model}: {result['minutes']:.1f} min of continuous speech ({result['minutes_by_source']})")
    print(f"the model's settings (threshold {d['threshold']:g}, pause {d['pause_ms']:g} ms): {d['detections']} "
          f"detections, {d['per_hour']:.1f} per hour; by word "
          + ", ".join(f"{w} {n / (result['minutes'] / 60):.1f}" for w, n in d["by_word"].items())
          + "; by source " + ", ".join(f"{s} {n}" for s, n in d["by_source"].items()))
    print(f"the same on a plain mean of the evaluations (before recent_weighting): {result['plain_mean']['detections']} "
          f"detections, {result['plain_mean']['per_hour']:.1f} per hour")
    print("averaging  hold  pause  " + "  ".join(f"{t:>5.2f}" for t in THRESHOLDS))
    for averaging, hold, pause in RULES:
        rows = rule_rows(result, averaging, hold, pause)
        print(f"{averaging:>9g}  {hold:>4g}  {pause:>5g}  " + "  ".join(f"{r['per_hour']:>5.0f}" for r in rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
