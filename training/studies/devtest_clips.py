"""How a word's development-test clips differ from the rest of its clips (training/DEVTEST.md, "go").

    python training/studies/devtest_clips.py WORD [WORD ...] [--model MODEL] [--data DIR]

For each word: the development test's clips against the word's other clips (the speakers the
recipes train on), by speakers and takes per speaker, length of the file, level (peak and the RMS
of the loudest 100 ms), speech length (`speech_seconds`: above -30 dB of the peak), the share of
speakers who also said one of the five words only version 0.02 of the dataset has (the one sign of
a clip's version the files carry), and what the model makes of them: recall per group and per
level/length tercile, and the guesses when wrong. The model heard the training group, so its
recall there is not a test; the level and length comparisons are what show a bias.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtest import DEFAULT_DATA, DEFAULT_LIST, read_list  # noqa: E402  (training/ is not a package)

from speech_app.audio import decode_files, fit_to_window, speech_seconds  # noqa: E402
from speech_app.data.dataset import speaker_of, word_folders  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
V002_ONLY_WORDS = ("backward", "follow", "forward", "learn", "visual")  # added in version 0.02
LOUD_FRAME = 1600  # 100 ms at 16 kHz: the frame whose RMS is the clip's speech level


def db(x: float) -> float:
    return 20.0 * np.log10(max(x, 1e-6))


def features(audio: np.ndarray) -> dict:
    frames = audio[: len(audio) // LOUD_FRAME * LOUD_FRAME].reshape(-1, LOUD_FRAME)
    return {"samples": len(audio), "peak_db": db(np.abs(audio).max()),
            "loud_rms_db": db(np.sqrt((frames ** 2).mean(axis=1)).max()), "speech_s": speech_seconds(audio)}


def describe(name: str, rows: list[dict], v002_speakers: set[str]) -> None:
    speakers = Counter(r["speaker"] for r in rows)
    right = [r["guess"] == r["word"] for r in rows]
    wrong = Counter(r["guess"] for r in rows if r["guess"] != r["word"])

    def q(key):
        return "/".join(f"{np.percentile([r[key] for r in rows], p):.2f}" for p in (10, 50, 90))
    print(f"  {name}: {len(rows)} clips, {len(speakers)} speakers ({len(rows) / len(speakers):.2f} clips each; "
          f"takes _nohash_0: {np.mean([r['take'] == 0 for r in rows]):.0%}), "
          f"shorter than 1 s: {np.mean([r['samples'] < 16000 for r in rows]):.0%}, "
          f"v0.02-only-word speakers {np.mean([s in v002_speakers for s in speakers]):.0%}")
    print(f"    p10/median/p90: peak dB {q('peak_db')}, loudest 100 ms RMS dB {q('loud_rms_db')}, speech s {q('speech_s')}")
    print(f"    model: recall {np.mean(right):.3f}, mean p(right) {np.mean([r['p_right'] for r in rows]):.3f}; "
          f"wrong as: {dict(wrong.most_common(6))}")


def by_tercile(rows: list[dict], key: str, edges: np.ndarray) -> str:
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = [r for r in rows if lo <= r[key] < hi]
        if part:
            out.append(f"[{lo:.2f},{hi:.2f}) {np.mean([r['guess'] == r['word'] for r in part]):.2f} ({len(part)})")
    return "; ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="+")
    parser.add_argument("--model", type=Path, default=PROJECT / "model" / "speech_commands_12.safetensors")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    args = parser.parse_args()
    folders = word_folders(args.data)
    listed = set(read_list(args.list))
    v002_speakers = {speaker_of(p) for w in V002_ONLY_WORDS for p in folders.get(w, [])}
    classifier = CommandClassifier.from_file(args.model)
    for word in args.words:
        paths = folders[word]
        audio = decode_files([str(p) for p in paths], progress=False)
        probs = classifier.probabilities(np.stack([fit_to_window(a, classifier.window_samples) for a in audio]))
        rows = defaultdict(list)
        for path, a, p in zip(paths, audio, probs):
            group = "development test" if f"{word}/{path.name}" in listed else "the others (training speakers)"
            rows[group].append({"word": word, "speaker": speaker_of(path), "take": int(path.stem.rsplit("_", 1)[1]),
                                "guess": classifier.labels[int(p.argmax())],
                                "p_right": float(p[classifier.labels.index(word)]), **features(a)})
        print(f"## {word}")
        for group in sorted(rows):
            describe(group, rows[group], v002_speakers)
        everything = [r for group in rows.values() for r in group]
        for key in ("loud_rms_db", "speech_s"):
            edges = np.percentile([r[key] for r in everything], [0, 33.3, 66.7, 100]) + [0, 0, 0, 1e-6]
            for group in sorted(rows):
                print(f"    recall by {key} tercile, {group}: {by_tercile(rows[group], key, edges)}")


if __name__ == "__main__":
    main()
