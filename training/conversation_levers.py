"""Decision rules on the stream, measured on the conversation benchmark's models without retraining.

    python training/conversation_levers.py [--run-dir runs/conversation] [--budget 0.5]

For every model benchmarks/bench_conversation.py trained and listened with (its run folder), the
recorded evaluations of the measuring stream are decided again (`StreamingRecognizer.replay`) under
each variant of the decision rules: the averaging window, how long a score must stay above the
threshold (`hold_ms`), and a threshold per word calibrated on the learn side of the conversation split
(speech the models never trained on) to a false-alarm budget. The learn-side stream is listened to once
per model and cached (learn_evaluations.npz). Prints one Markdown table: false alarms per hour and takes
heard on the measuring stream, per condition, means over seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_conversation import CONDITIONS, Stream, decider, listen, score, split_files  # noqa: E402

from speech_app.audio import decode_files  # noqa: E402
from speech_app.modelfile import load_model  # noqa: E402
from speech_app.streaming import BACKGROUND_LABELS, RecognizerSettings  # noqa: E402

NEVER = 1.01  # a threshold no probability reaches: the word is left out of a calibration replay
CALIBRATION_FLOOR = 0.5  # a calibrated threshold never goes below this
CALIBRATION_STEPS = 12  # bisection steps: the threshold to within 0.5 / 2**12


def learn_stream() -> Stream:
    """The learn side of the split, each utterance once, in a fixed order."""
    files = split_files("learn")
    audio = decode_files([p for p, _ in files])
    pieces, spans, at = [], [], 0
    for k in np.random.default_rng(0).permutation(len(files)):
        pieces.append(audio[k])
        spans.append((at, at + len(audio[k]), files[k][1]))
        at += len(audio[k])
    return Stream(np.concatenate(pieces), [], spans)


def false_alarms(labels, evaluations, stream: Stream, settings: RecognizerSettings) -> int:
    return sum(score(decider(labels, settings).replay(evaluations), stream)["false_alarms"].values())


def calibrate(labels, evaluations, stream: Stream, settings: RecognizerSettings, budget_per_hour: float,
              floor: float = CALIBRATION_FLOOR) -> dict[str, float]:
    """Each word's lowest threshold (not under `floor`) whose false alarms on the stream, with the other
    words silenced, stay within its share of the budget: budget_per_hour / words."""
    words = [label for label in labels if label not in BACKGROUND_LABELS]
    hours = sum(stream.speech_seconds.values()) / 3600.0
    allowed = budget_per_hour * hours / len(words)
    thresholds = {}
    for word in words:
        silenced = {w: NEVER for w in words if w != word}

        def fires(t: float) -> int:
            return false_alarms(labels, evaluations, stream, replace(settings, word_thresholds={**silenced, word: t}))

        low, high = floor, 1.0
        if fires(low) <= allowed:
            thresholds[word] = low
            continue
        for _ in range(CALIBRATION_STEPS):
            middle = (low + high) / 2
            low, high = (low, middle) if fires(middle) <= allowed else (middle, high)
        thresholds[word] = round(high, 4)
    return thresholds


def load_run(folder: Path):
    data = np.load(folder / "evaluations.npz")
    layout = json.loads((folder / "stream.json").read_text())
    stream = Stream(np.zeros(0, np.float32), [tuple(t) for t in layout["takes"]], [tuple(s) for s in layout["spans"]])
    return list(zip(data["at"].tolist(), data["rows"])), stream


VARIANTS = {  # name -> (settings, calibration budget per hour or None)
    "default (0.70, 500 ms)": (RecognizerSettings(), None),
    "averaging 250 ms": (RecognizerSettings(averaging_ms=250.0), None),
    "averaging 1000 ms": (RecognizerSettings(averaging_ms=1000.0), None),
    "hold 250 ms": (RecognizerSettings(hold_ms=250.0), None),
    "hold 500 ms": (RecognizerSettings(hold_ms=500.0), None),
    "threshold 0.90": (RecognizerSettings(threshold=0.90), None),
    "threshold 0.95": (RecognizerSettings(threshold=0.95), None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "conversation")
    parser.add_argument("--budgets", default="0.5,2", help="calibration budgets, false alarms per hour")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    variants = dict(VARIANTS)
    for budget in (float(b) for b in args.budgets.split(",")):
        variants[f"calibrated to {budget:g}/h on learn speech"] = (RecognizerSettings(), budget)
        variants[f"calibrated to {budget:g}/h, hold 250 ms"] = (RecognizerSettings(hold_ms=250.0), budget)
    learn = None
    rows: dict[str, dict[str, list]] = {name: {} for name in variants}
    for folder in sorted(p for p in args.run_dir.iterdir() if (p / "stream.json").is_file()):
        condition = folder.name.split("_seed")[0]
        labels = load_model(folder / "model.safetensors").labels
        evaluations, stream = load_run(folder)
        learn = learn or learn_stream()
        learn_evaluations = listen(folder / "model.safetensors", learn, folder / "learn_evaluations.npz")
        for name, (settings, budget) in variants.items():
            if budget is not None:
                settings = replace(settings, word_thresholds=calibrate(labels, learn_evaluations, learn, settings, budget))
            result = score(decider(labels, settings).replay(evaluations), stream)
            result["word_thresholds"] = settings.word_thresholds
            rows[name].setdefault(condition, []).append(result)
            print(folder.name, name, f"{result['per_hour']:.1f}/h", f"{result['heard_share']:.1%}",
                  settings.word_thresholds or "", flush=True)
    conditions = [c for c in CONDITIONS if any(c in r for r in rows.values())]
    print("\n| decision rule | " + " | ".join(f"{c}: false alarms / h, takes heard" for c in conditions) + " |")
    print("|---|" + "---|" * len(conditions))
    for name, by_condition in rows.items():
        cells = []
        for c in conditions:
            results = by_condition.get(c, [])
            cells.append(f"{np.mean([r['per_hour'] for r in results]):.1f}, "
                         f"{np.mean([r['heard_share'] for r in results]):.1%}" if results else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
