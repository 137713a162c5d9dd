"""Text only: does averaging the weights of runs with other training seeds (a "model soup") beat one run?

    python training/studies/custom_words_soup.py --out runs/soup MODEL_A.safetensors MODEL_B.safetensors [MODEL_C ...]

Averages the models equally (training/average_models.py, pairwise with running weights) and measures
the average as training/studies/custom_words_study.py measures a text-only row: every wake-word take and the
1,608 clips of other speech from unseen speakers. The models must be fine-tunes of the same shipped
model for the same words (the study's `--takes 0 --train-seed S` rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the study beside it, average_models.py in training/
import custom_words_study as study  # noqa: E402
from average_models import average  # noqa: E402

from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.training.rejection import measure_rejection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="folder for the average and its result.json")
    parser.add_argument("--wake-words", type=Path, default=Path("/work/shared/data/wake_words"))
    parser.add_argument("--speech-commands", type=Path, default=Path("/work/shared/data/speech_commands"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    soup = args.out / "model.safetensors"
    average(args.models[0], args.models[1], 1 / 2, soup)
    for k, other in enumerate(args.models[2:], start=3):  # running mean: the k-th model weighs 1/k
        average(soup, other, 1 / k, soup)
    classifier = CommandClassifier.from_file(soup)
    per_word = study.takes_right(classifier, {w: sorted((args.wake_words / w).iterdir()) for w in study.WORDS})
    rejection = measure_rejection(classifier, [args.speech_commands], progress=False)
    row = {"takes": 0, "seed": 0, "train_seed": None, "seconds": 0.0, "averaged": [str(m) for m in args.models],
           "per_word": per_word,
           "takes_right": sum(v[0] for v in per_word.values()) / sum(v[1] for v in per_word.values()),
           "other_speech": [rejection.speech_clips - rejection.speech_false_accepts, rejection.speech_clips],
           "rejected": 1 - rejection.speech_false_accepts / rejection.speech_clips, "estimate": None}
    (args.out / "result.json").write_text(json.dumps(row, indent=2))
    print(study.format_row(row), flush=True)


if __name__ == "__main__":
    main()
