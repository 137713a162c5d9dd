"""On/off recall of models on each part of ../shared/data/on_off_extra (DEFAULT_MODEL_STUDY.md, seventh step).

    python training/studies/onoff_extra_parts.py MODEL [MODEL ...] [--extra DIR]

Parts: the one-clip speakers the development test holds (`training/devtest_list.txt`), the other
one-clip speakers (which the on/off fine-tune trains on), and each self-recorded person (a speaker
with PERSON_MIN_TAKES or more clips; one of them validates in the fine-tune, so it never hears that
person). Per part and word: recognized / clips, and the most frequent wrong guesses.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/: the development test, devtest.py
from devtest import DEFAULT_EXTRA, DEFAULT_LIST, PERSON_MIN_TAKES, read_list  # noqa: E402

from speech_app.audio import decode_files, fit_to_window  # noqa: E402
from speech_app.data.dataset import speaker_of, word_folders  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402


def parts(extra_dir: Path, list_file: Path) -> dict[str, list[tuple[Path, str]]]:
    """part name -> (clip, word) of the extra folder."""
    listed = {Path(line).name for line in read_list(list_file) if line.startswith(f"{extra_dir.name}/")}
    folders = word_folders(extra_dir)
    takes = Counter(speaker_of(p) for files in folders.values() for p in files)
    grouped = defaultdict(list)
    for word, files in folders.items():
        for p in files:
            speaker = speaker_of(p)
            part = (f"person {speaker}" if takes[speaker] >= PERSON_MIN_TAKES
                    else "one-clip, development test" if p.name in listed else "one-clip, trains")
            grouped[part].append((p, word))
    return dict(sorted(grouped.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--extra", type=Path, default=DEFAULT_EXTRA)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    args = parser.parse_args()
    grouped = parts(args.extra, args.list)
    clips = [c for items in grouped.values() for c in items]
    audio = decode_files([str(p) for p, _ in clips], progress=False)
    print("| model | " + " | ".join(f"{part}: on | off" for part in grouped) + " |")
    for model in args.models:
        classifier = CommandClassifier.from_file(model)
        guesses = classifier.probabilities(np.stack([fit_to_window(a, classifier.window_samples) for a in audio])).argmax(axis=1)
        guess_of = {p: classifier.labels[g] for (p, _), g in zip(clips, guesses)}
        cells, wrong = [], Counter()
        for part, items in grouped.items():
            for word in ("on", "off"):
                mine = [guess_of[p] for p, w in items if w == word]
                wrong.update(f"{word}->{g}" for g in mine if g != word)
                cells.append(f"{sum(g == word for g in mine)}/{len(mine)}")
        print(f"| {model} | " + " | ".join(cells) + " |")
        print(f"  wrong: {dict(wrong.most_common(6))}")


if __name__ == "__main__":
    main()
