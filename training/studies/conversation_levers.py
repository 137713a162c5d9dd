"""Decision rules on the stream, measured on the conversation benchmark's models without retraining.

    python training/studies/conversation_levers.py [--run-dir runs/conversation] [--budget 0.5]

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
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_conversation import CONDITIONS, Stream, listen, score, split_files  # noqa: E402

from speech_app.audio import decode_files  # noqa: E402
from speech_app.modelfile import load_model  # noqa: E402
from speech_app.streaming import RecognizerSettings  # noqa: E402
from speech_app.training.conversation import calibrate_thresholds, decider  # noqa: E402

def learn_stream(side: str) -> Stream:
    """A learn side of the split (see bench_conversation.split_files), each utterance once, in a fixed order."""
    files = split_files(side)
    audio = decode_files([p for p, _ in files])
    pieces, spans, at = [], [], 0
    for k in np.random.default_rng(0).permutation(len(files)):
        pieces.append(audio[k])
        spans.append((at, at + len(audio[k]), files[k][1]))
        at += len(audio[k])
    return Stream(np.concatenate(pieces), [], spans)


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
    torch.set_num_threads(1)
    variants = dict(VARIANTS)
    for budget in (float(b) for b in args.budgets.split(",")):
        variants[f"calibrated to {budget:g}/h on learn speech"] = (RecognizerSettings(), budget)
        variants[f"calibrated to {budget:g}/h, hold 250 ms"] = (RecognizerSettings(hold_ms=250.0), budget)
    learn: dict[str, Stream] = {}
    rows: dict[str, dict[str, list]] = {name: {} for name in variants}
    for folder in sorted(p for p in args.run_dir.iterdir() if (p / "stream.json").is_file()):
        condition = folder.name.split("_seed")[0]
        bundle = load_model(folder / "model.safetensors")
        labels = bundle.labels
        evaluations, stream = load_run(folder)
        # a model that trained on conversation calibrates on the learn speakers it did not train on
        side = "learn-calibrate" if bundle.info.get("recipe", {}).get("conversation_share") else "learn"
        if side not in learn:
            learn[side] = learn_stream(side)
        learn_evaluations = listen(folder / "model.safetensors", learn[side], folder / f"{side}_evaluations.npz")
        for name, (settings, budget) in variants.items():
            if budget is not None:
                hours = sum(learn[side].speech_seconds.values()) / 3600.0
                thresholds = calibrate_thresholds(labels, learn_evaluations, hours, settings, budget)
                settings = replace(settings, word_thresholds=thresholds)
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
