"""The custom recipe's step budgets (final run, second pass) on the LEARN side (issue 24, item 3).

    python training/studies/step_budget.py [--run-dir runs/budget] [--budgets 160/60,100/30]
                                           [--conditions 20,0] [--seeds 0,1] [--report]

For each budget "S/H" (S batches of the final run, H of the second pass on hard negatives), condition and
seed, a model is trained exactly as benchmarks/bench_conversation.py trains it (its `train`, the recipe's
defaults with `steps` S, `hard_negative_steps` H), in --run-dir/S_H/<condition>_seed<seed>: the folder the
benchmark reuses with `--run-dir runs/budget/S_H --recipe '{"steps": S, "hard_negative_steps": H}'`.
The estimate is off (`estimate_folds` 0): it trains other runs with other seeds and changes neither the
model nor its decision settings, only what the model file reports. The process's CPU seconds of training
(children included, the synthesis cached beforehand) are recorded in cpu.json.

Measured on the learn side only, at the model file's own decision settings:
- a learn-side stream as training/studies/decision_settings.py builds it (the learn speakers of
  training/conversation_split.json twice, a held-out take the benchmark's measuring stream does not use after
  every 15 s of speech): false alarms per hour at the operating threshold and at lower stress thresholds
  (at the operating threshold the learn speech gives almost none), and the share of takes heard;
- the isolated figures the benchmark reports (its `isolated`, written to the folder's isolated.json, which the
  benchmark then reuses): held-out takes recognized, other words of unseen speakers rejected.
The measuring side's speech is only counted (its length says how many takes the benchmark inserts), never
listened to here.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training" / "studies"))
import bench_conversation as bench  # noqa: E402
from decision_settings import BENCH_TAKES_PER_WORD, learn_stream, score, spare_takes  # noqa: E402

from speech_app.audio import load_audio  # noqa: E402
from speech_app.decision import describe, settings_of_file  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.streaming import LIVE_PRECISION  # noqa: E402
from speech_app.training.conversation import decider  # noqa: E402

STRESS = (0.40, 0.50, 0.60)  # thresholds below the operating one, where the learn speech gives countable false alarms


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured_takes_per_word(held_out: dict[str, list[Path]], seed: int) -> dict[str, int]:
    """How many takes of each word bench_conversation.measure inserts in its measuring stream: build_stream's
    count, from the lengths of the measuring speech alone (nothing is decoded or listened to)."""
    lengths = [soundfile.info(str(p)).frames for p, _ in bench.split_files("measure")]
    takes = {w: [None] * min(len(files), BENCH_TAKES_PER_WORD)
             for w, files in held_out.items()}
    queue = [(w, i) for i in range(max(map(len, takes.values()))) for w in takes if i < len(takes[w])]
    inserted, since = [], 0.0
    for p in range(bench.PASSES):
        for k in np.random.default_rng(p).permutation(len(lengths)):
            since += lengths[k] / bench.SAMPLE_RATE
            if since >= bench.INSERT_EVERY_S and len(inserted) < len(queue):
                inserted.append(queue[len(inserted)][0])
                since = 0.0
    return {w: inserted.count(w) for w in takes}


def train_one(condition: str, seed: int, steps: int, hard: int, budget_dir: Path) -> tuple[Path, dict, float | None]:
    from speech_app.training.custom_words import synthesize_for_words

    folder = budget_dir / f"{condition}_seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    overrides = {"steps": steps, "hard_negative_steps": hard, "estimate_folds": 0}
    recipe = bench.recipe_for(seed, overrides, budget_dir)
    synthesize_for_words(list(bench.WORDS), recipe, progress=False)  # cached: not part of the training's CPU
    cpu_file = folder / "cpu.json"
    before, started = cpu_seconds(), time.monotonic()
    model, held_out, _ = bench.train(condition, seed, folder, recipe)
    cpu = cpu_seconds() - before
    if not cpu_file.is_file():
        if cpu < 5:  # the model was already there
            return model, held_out, None
        cpu_file.write_text(json.dumps({"cpu_s": round(cpu, 1), "wall_s": round(time.monotonic() - started, 1),
                                        "overrides": overrides}))
    return model, held_out, json.loads(cpu_file.read_text())["cpu_s"]


def learn_side(condition: str, seed: int, model: Path, held_out: dict[str, list[Path]]) -> dict:
    folder = model.parent
    result_file = folder / "learn.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    spare = spare_takes(condition, seed, measured_takes_per_word(held_out, seed))
    stream, ends = learn_stream({w: [load_audio(p) for p in files] for w, files in spare.items()})
    evaluations = bench.listen(model, stream, folder / "learn_stream_evaluations.npz")
    settings = settings_of_file(model, {})
    classifier = CommandClassifier.from_file(model, "cpu", LIVE_PRECISION)
    isolated_file = folder / "isolated.json"
    if not isolated_file.is_file():
        isolated_file.write_text(json.dumps(bench.isolated(classifier, held_out)))
    result = {"settings": describe(settings), "isolated": json.loads(isolated_file.read_text())}
    for threshold in (settings.threshold, *STRESS):
        s = score(decider(classifier.labels, replace(settings, threshold=threshold)).replay(evaluations), stream, ends)
        result[f"{threshold:.2f}"] = s
    result["operating"] = f"{settings.threshold:.2f}"
    result_file.write_text(json.dumps(result, indent=1))
    return result


def rate(rows: list[dict], key: str) -> float:
    return sum(sum(r[key]["false_alarms"].values()) for r in rows) / sum(sum(r[key]["hours"].values()) for r in rows)


def heard(rows: list[dict], key: str) -> float:
    return sum(r[key]["heard"][0] for r in rows) / sum(r[key]["heard"][1] for r in rows)


def report(run_dir: Path) -> None:
    rows = []
    for path in sorted(run_dir.glob("*/*_seed*/learn.json")):
        condition, seed = path.parent.name.split("_seed")
        cpu_file = path.parent / "cpu.json"
        rows.append({"budget": path.parent.parent.name, "condition": condition, "seed": int(seed),
                     "cpu": json.loads(cpu_file.read_text())["cpu_s"] if cpu_file.is_file() else None,
                     **json.loads(path.read_text())})
    print("| budget (final/second pass) | condition | seed | training CPU s | learn FA/h at operating, "
          + ", ".join(f"{t:.2f}" for t in STRESS) + " | learn takes heard | isolated takes | isolated rejected |")
    print("|---|---|---|---|---|---|---|---|")
    groups = {}
    for r in rows:
        groups.setdefault((r["budget"], r["condition"]), []).append(r)
        op = r["operating"]
        fa = ", ".join(f"{rate([r], k):.1f}" for k in (op, *(f"{t:.2f}" for t in STRESS)))
        print(f"| {r['budget'].replace('_', '/')} | {r['condition']} | {r['seed']} | {r['cpu']} | {fa} | "
              f"{heard([r], op):.1%} ({r[op]['heard'][0]}/{r[op]['heard'][1]}) | {r['isolated']['takes_share']:.1%} | "
              f"{r['isolated']['rejected_share']:.1%} |")
    print("\nMeans over seeds (false alarms pooled):\n")
    print("| budget | condition | seeds | training CPU s | learn FA/h at operating, "
          + ", ".join(f"{t:.2f}" for t in STRESS) + " | learn takes heard | isolated takes | isolated rejected |")
    print("|---|---|---|---|---|---|---|---|")
    for (budget, condition), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], -int(kv[0][0].split("_")[0]))):
        op = rs[0]["operating"]
        fa = ", ".join(f"{rate(rs, k):.1f}" for k in (op, *(f"{t:.2f}" for t in STRESS)))
        cpu = [r["cpu"] for r in rs if r["cpu"] is not None]
        print(f"| {budget.replace('_', '/')} | {condition} | {len(rs)} | {np.mean(cpu) if cpu else float('nan'):.1f} | "
              f"{fa} | {heard(rs, op):.1%} | {np.mean([r['isolated']['takes_share'] for r in rs]):.1%} | "
              f"{np.mean([r['isolated']['rejected_share'] for r in rs]):.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "budget")
    parser.add_argument("--budgets", default="160/60,100/30")
    parser.add_argument("--conditions", default="20,0")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--report", action="store_true", help="only report what the run dir holds")
    args = parser.parse_args()
    if not args.report:
        torch.set_num_threads(1)
        for seed in (int(s) for s in args.seeds.split(",")):
            for condition in args.conditions.split(","):
                for budget in args.budgets.split(","):
                    steps, hard = (int(x) for x in budget.split("/"))
                    model, held_out, cpu = train_one(condition, seed, steps, hard, args.run_dir / f"{steps}_{hard}")
                    learn_side(condition, seed, model, held_out)
                    print(f"{budget} {condition}_seed{seed}: trained ({cpu} s CPU), learn side measured", flush=True)
    report(args.run_dir)


if __name__ == "__main__":
    main()
