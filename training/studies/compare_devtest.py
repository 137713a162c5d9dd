"""Development-test figures of several models side by side, as the study's markdown table.

    python training/devtest.py score A.safetensors B.safetensors --json runs/scores/ab.json
    python training/studies/compare_devtest.py runs/scores/ab.json [more.json ...] [--rejection]

Rows: recall per class (clips in brackets), `_unknown_` word-balanced, other words of the test taken
for something else than `_unknown_`, predicted official accuracy (also without on and off, which the
test holds 6 and 8 clips of) and plain accuracy. `--rejection` adds the
model card's measurement (every held-out clip of the other words and the noise windows;
speech_app.training.rejection.measure_rejection), which runs each model again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/: the development test, devtest.py

from devtest import DEFAULT_DATA, OFFICIAL_COUNTS  # noqa: E402

from speech_app.training.rejection import measure_rejection  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402


def load_scores(paths: list[Path]) -> dict[str, dict]:
    scores: dict[str, dict] = {}
    for path in paths:
        scores.update(json.loads(path.read_text()))
    return scores


def table(scores: dict[str, dict], rejection: dict[str, str] | None = None) -> str:
    names = list(scores)
    first = scores[names[0]]
    lines = ["| class (clips) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, count in first["counts"].items():
        lines.append(f"| {label} ({count}) | " + " | ".join(f"{100 * s['recall'][label]:.1f}" for s in scores.values()) + " |")
    rows = {
        "_unknown_ word-balanced": lambda s: f"{100 * s['unknown_word_balanced']:.1f}",
        "other words not rejected (of the test's 166)": lambda s: str(round((1 - s["recall"]["_unknown_"]) * s["counts"]["_unknown_"])),
        "**predicted official**": lambda s: f"**{100 * s['predicted_official_accuracy']:.2f}**",
        "predicted official without on/off": lambda s: f"{100 * without_on_off(s):.2f}",
        "plain accuracy": lambda s: f"{100 * s['accuracy']:.2f}",
    }
    for name, cell in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(s) for s in scores.values()) + " |")
    if rejection:
        lines.append("| rejection (card): other words / noise taken for a command | "
                     + " | ".join(rejection[n] for n in names) + " |")
    return "\n".join(lines)


SCARCE_CLASSES = ("on", "off")  # 6 and 8 clips in the test: one clip moves the predicted figure by a point


def without_on_off(score: dict) -> float:
    """The predicted official accuracy over the ten classes the test measures with 52+ clips: on and off's
    handful of clips decide the full figure's ranking between close models (DEFAULT_MODEL_STUDY.md)."""
    weighted = {**score["recall"], "_unknown_": score["unknown_word_balanced"]}
    counts = {c: n for c, n in OFFICIAL_COUNTS.items() if c not in SCARCE_CLASSES}
    return sum(weighted[c] * n for c, n in counts.items()) / sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", type=Path, nargs="+", help="`training/devtest.py score --json` outputs")
    parser.add_argument("--rejection", action="store_true")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    scores = load_scores(args.scores)
    rejection = None
    if args.rejection:
        rejection = {}
        for name in scores:
            result = measure_rejection(CommandClassifier.from_file(Path(name)), [args.data], progress=False)
            rejection[name] = (f"{result.speech_false_accepts}/{result.speech_clips}, "
                               f"{result.noise_false_accepts}/{result.noise_windows}")
    print(table(scores, rejection))


if __name__ == "__main__":
    main()
