"""The learn side of a recipe lever, per model (issue 21, twelfth session): what to choose a lever on before
the benchmark's measuring side is read.

    python training/studies/seed_spread_learn_side.py --run-dir runs/base [--only 20_seed0] [--out runs/base/learn.json]
    python training/studies/seed_spread_learn_side.py --table runs/base/learn.json runs/head/learn.json ...

For every model benchmarks/bench_conversation.py trained in --run-dir (a `<condition>_seed<S>` folder with a
result.json), without reading the result:
- the learn-side stream of training/studies/decision_settings.py (the learn speakers twice, a spare held-out take
  every 15 s: takes the benchmark's measuring stream does not use), listened to once (cached beside the model, the
  same file decision_settings.py writes) and replayed at the model's own decision settings (its file's `streaming`
  field) and STRESS_MARGIN below its threshold: takes heard, false alarms per hour;
- the same spare takes alone (isolated: argmax over the loudest window, as the benchmark's isolated figure);
- the model file's own estimate (held-out training takes recognized, held-out bundled negatives of training
  speakers rejected) and its training CPU seconds (trained.json).
--table prints per run directory and condition the per-seed figures and their means.
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
sys.path.insert(0, str(ROOT / "training" / "studies"))
from bench_conversation import listen, recognized_takes  # noqa: E402
from decision_settings import STRESS_MARGIN, learn_stream, score, spare_takes  # noqa: E402

from speech_app.audio import load_audio  # noqa: E402
from speech_app.decision import settings_of_file  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.modelfile import read_metadata  # noqa: E402
from speech_app.streaming import LIVE_PRECISION  # noqa: E402
from speech_app.training.conversation import decider  # noqa: E402


def learn_side(folder: Path) -> dict:
    condition, seed = folder.name.split("_seed")
    model = folder / "model.safetensors"
    meta = read_metadata(model)
    labels = meta["labels"]
    layout = json.loads((folder / "stream.json").read_text())  # which takes the measuring stream used (not its result)
    per_word: dict[str, int] = {}
    for _, _, word, _ in layout["takes"]:
        per_word[word] = per_word.get(word, 0) + 1
    spare = spare_takes(condition, int(seed), per_word)
    audio = {w: [load_audio(p) for p in files] for w, files in spare.items()}
    stream, ends = learn_stream(audio)
    learned = listen(model, stream, folder / "learn_stream_evaluations.npz")
    settings = settings_of_file(model, None)
    row = {"condition": condition, "seed": int(seed), "settings": [settings.threshold, settings.averaging_ms,
                                                                    settings.hold_ms]}
    for name, threshold in (("rule", settings.threshold), ("stress", round(settings.threshold - STRESS_MARGIN, 2))):
        row[name] = {"threshold": threshold,
                     **score(decider(labels, replace(settings, threshold=threshold)).replay(learned), stream, ends)}
    classifier = CommandClassifier.from_file(model, "cpu", LIVE_PRECISION)
    recognized = recognized_takes(classifier, audio)
    row["isolated_spare"] = sum(v[0] for v in recognized.values()) / sum(v[1] for v in recognized.values())
    estimate = meta.get("estimate") or {}
    row["estimate"] = {"takes": sum(v[0] for v in estimate.get("per_word", {}).values()),
                       "of": sum(v[1] for v in estimate.get("per_word", {}).values()),
                       "rejected": estimate.get("rejection")}
    row["final_runs"] = meta.get("final_runs")
    trained = json.loads((folder / "trained.json").read_text())
    row["train_seconds"], row["train_cpu_seconds"] = trained.get("seconds"), trained.get("cpu_seconds")
    return row


def per_hour(side: dict) -> float:
    return sum(side["false_alarms"].values()) / sum(side["hours"].values())


def table(paths: list[Path]) -> None:
    print("| run | condition | seeds | learn takes heard at the rule (per seed) | worst seed | learn FA/h at the rule "
          "| at the rule - 0.32 | isolated spare takes | estimate: held-out takes / negatives rejected | "
          "training CPU s (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in paths:
        rows = json.loads(path.read_text())
        for condition in sorted({r["condition"] for r in rows}, key=lambda c: -int(c)):
            mine = sorted((r for r in rows if r["condition"] == condition), key=lambda r: r["seed"])
            heard = [r["rule"]["heard"][0] / r["rule"]["heard"][1] for r in mine]
            fa = [per_hour(r["rule"]) for r in mine]
            stress = [per_hour(r["stress"]) for r in mine]
            iso = [r["isolated_spare"] for r in mine]
            est_t = [r["estimate"]["takes"] / r["estimate"]["of"] for r in mine if r["estimate"]["of"]]
            est_r = [r["estimate"]["rejected"] for r in mine if r["estimate"]["rejected"] is not None]
            cpu = [r["train_cpu_seconds"] or np.nan for r in mine]
            wall = [r["train_seconds"] or np.nan for r in mine]
            print(f"| {path.parent.name} | {condition} | {','.join(str(r['seed']) for r in mine)} | "
                  f"{np.mean(heard):.1%} ({' / '.join(f'{h:.1%}' for h in heard)}) | {min(heard):.1%} | "
                  f"{np.mean(fa):.1f} ({' / '.join(f'{x:.1f}' for x in fa)}) | "
                  f"{np.mean(stress):.1f} ({' / '.join(f'{x:.1f}' for x in stress)}) | "
                  f"{np.mean(iso):.1%} ({' / '.join(f'{x:.1%}' for x in iso)}) | "
                  f"{np.mean(est_t):.1%} / {np.mean(est_r):.1%} | {np.mean(cpu):.0f} ({np.mean(wall):.0f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--only", help="these run folders only, comma-separated (e.g. 20_seed0,5_seed1)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--table", type=Path, nargs="+", help="print the table of these JSONs of earlier runs")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    torch.set_num_threads(1)
    only = set(args.only.split(",")) if args.only else None
    done = json.loads(args.out.read_text()) if args.out and args.out.is_file() else []
    have = {(r["condition"], r["seed"]) for r in done}
    for folder in sorted(p for p in args.run_dir.iterdir() if (p / "result.json").is_file()
                         and (only is None or p.name in only)):
        condition, seed = folder.name.split("_seed")
        if (condition, int(seed)) in have:
            continue
        done.append(learn_side(folder))
        print(folder.name, "done", flush=True)
        if args.out:
            args.out.write_text(json.dumps(done))


if __name__ == "__main__":
    main()
