"""The learn side of decision_settings.py JSONs at false-alarm budgets (issue 21, fourteenth session): for each
run, pooled over its seeds, the most learn-side takes heard by any rule (threshold, average, hold) whose learn-side
false alarms an hour stay within each budget; and the same at the rule the model files name. Compares recipe
levers at matched false alarms, where their thresholds differ.

    python training/studies/learn_budget.py runs/s14_base/dec.json runs/s14_top/dec.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decision_settings import heard, rate  # noqa: E402  (the learn side's pooled figures, as that study reports them)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from speech_app.training.custom_words import CustomWordsRecipe, listening_for_takes, listening_settings  # noqa: E402

BUDGETS = (0.0, 1.0, 2.0, 4.0)  # learn-side false alarms an hour


def text_only_rule() -> str:
    """The rule today's recipe gives a model from text alone, as --rule takes it."""
    settings = listening_settings(listening_for_takes({"word": 0}, CustomWordsRecipe()))
    return f"{settings.threshold:g},{settings.averaging_ms:g},{settings.hold_ms:g}"


def pooled(rows: list[dict]) -> dict[tuple, tuple[float, float]]:
    """(threshold, averaging, hold) -> (learn false alarms an hour, learn takes heard), over the seeds."""
    by_rule: dict[tuple, list[dict]] = {}
    for row in rows:
        by_rule.setdefault((row["threshold"], row["averaging_ms"], row["hold_ms"]), []).append(row)
    return {key: (rate(group, "learn"), heard(group, "learn")) for key, group in by_rule.items()}


def best_within(table: dict, budget: float) -> tuple[tuple, tuple] | None:
    inside = [(v[1], -k[0], k, v) for k, v in table.items() if v[0] <= budget + 1e-9]
    if not inside:
        return None
    _, _, key, value = max(inside)
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="decision_settings.py JSONs (--out)")
    parser.add_argument("--rule", default=text_only_rule(),
                        help="the models' own rule: threshold,average,hold (default: today's from text alone)")
    args = parser.parse_args()
    rule = tuple(float(x) for x in args.rule.split(","))
    print("| run | seeds | at the rule: FA/h, heard | " + " | ".join(f"best within {b:g}/h" for b in BUDGETS) + " |")
    print("|---|---|---|" + "---|" * len(BUDGETS))
    for path in args.runs:
        rows = json.loads(path.read_text())
        table = pooled(rows)
        seeds = sorted({r["seed"] for r in rows})
        at = table.get(rule)
        cells = []
        for budget in BUDGETS:
            best = best_within(table, budget)
            cells.append("-" if best is None else
                         f"{best[1][1]:.1%} ({best[1][0]:.1f}/h; {best[0][0]:g}, {best[0][1]:g}, {best[0][2]:g} ms)")
        rule_cell = "-" if at is None else f"{at[0]:.1f}, {at[1]:.1%}"
        print(f"| {path.parent.name} | {','.join(map(str, seeds))} | {rule_cell} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
