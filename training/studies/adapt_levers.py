"""Your voice: the figures of `benchmarks/bench_adapt.py --json` runs side by side, each speaker's test
clips split in two fixed halves, so that a lever is chosen on one half and confirmed on the other.

    python training/studies/adapt_levers.py RUN.json ... [--per-speaker] [--unheard]

A test clip is in half A (to choose on) or B (to confirm on) by the CRC-32 of its word/file name, a
split that no recipe can shift. Per run: errors before -> after (all, A, B), accuracy averaged over
speakers, rejection of other speech, other speakers' commands, median CPU seconds per adaptation.
--unheard: only the voices the shipped model never trained on (bench_adapt.heard).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_adapt import TAKE_SEED, heard, speaker_clips, split_takes, voices  # noqa: E402


def half_of(name: str) -> str:
    return "A" if zlib.crc32(name.encode()) % 2 == 0 else "B"


def tested(row: dict) -> list[str]:
    """The speaker's test clips (word/file) of a row: the benchmark's own split of takes and the rest."""
    found = {v[0]: v for v in voices()}
    speaker, root, words = found[row["speaker"]]
    _, rest = split_takes(speaker_clips(root, speaker, words), row["takes"], row.get("seed", TAKE_SEED))
    return [f"{p.parent.name}/{p.name}" for w in words for p in rest[w]]


def scores(row: dict, when: str) -> dict[str, tuple[int, int]]:
    """(errors, clips) on all test clips and on each half."""
    names = tested(row)
    assert len(names) == row[when]["clips"], row["speaker"]
    wrong = set(row[when]["wrong"])
    out = {}
    for part in ("all", "A", "B"):
        mine = [n for n in names if part == "all" or half_of(n) == part]
        out[part] = (sum(n in wrong for n in mine), len(mine))
    return out


def summarize(rows: list[dict]) -> dict:
    before = [scores(r, "before") for r in rows]
    after = [scores(r, "after") for r in rows]
    line = {}
    for part in ("all", "A", "B"):
        line[part] = (sum(b[part][0] for b in before), sum(a[part][0] for a in after),
                      float(np.mean([1 - b[part][0] / max(b[part][1], 1) for b in before])),
                      float(np.mean([1 - a[part][0] / max(a[part][1], 1) for a in after])))
    for key in ("rejection", "other_commands"):
        line[key] = (float(np.mean([r["before"][key] for r in rows])), float(np.mean([r["after"][key] for r in rows])))
    line["cpu"] = float(np.median([r["cpu_seconds"] for r in rows]))
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--per-speaker", action="store_true")
    parser.add_argument("--unheard", action="store_true", help="leave out the voices the shipped model trained on")
    args = parser.parse_args()
    print("| run | takes | voices | errors (all) | errors half A | errors half B | accuracy A | accuracy B "
          "| rejection | other commands | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in args.runs:
        rows = json.loads(path.read_text())["rows"]
        if args.unheard:
            found = {v[0]: v for v in voices()}
            rows = [r for r in rows if not heard(r["speaker"], found[r["speaker"]][1])]
        for k in sorted({r["takes"] for r in rows}, reverse=True):
            mine = [r for r in rows if r["takes"] == k]
            s = summarize(mine)
            a, b = s["A"], s["B"]
            print(f"| {path.stem} | {k} | {len(mine)} | {s['all'][0]} -> {s['all'][1]} | {a[0]} -> {a[1]} | "
                  f"{b[0]} -> {b[1]} | {a[2]:.1%} -> {a[3]:.1%} | {b[2]:.1%} -> {b[3]:.1%} | "
                  f"{s['rejection'][0]:.1%} -> {s['rejection'][1]:.1%} | "
                  f"{s['other_commands'][0]:.1%} -> {s['other_commands'][1]:.1%} | {s['cpu']:.1f} |")
            if args.per_speaker:
                for r in mine:
                    sc_b, sc_a = scores(r, "before"), scores(r, "after")
                    print(f"|  {r['speaker']} | {k} | | {sc_b['all'][0]} -> {sc_a['all'][0]} of {sc_a['all'][1]} | "
                          f"{sc_b['A'][0]} -> {sc_a['A'][0]} | {sc_b['B'][0]} -> {sc_a['B'][0]} | | | "
                          f"{r['before']['rejection']:.1%} -> {r['after']['rejection']:.1%} | "
                          f"{r['before']['other_commands']:.1%} -> {r['after']['other_commands']:.1%} | "
                          f"{r['cpu_seconds']} |")


if __name__ == "__main__":
    main()
