"""Choosing how soon a sure word is detected (`RecognizerSettings.sure_score`, issue 24 item 4) on data that
does not measure it.

    python training/studies/latency_rule.py [--model M] [--cache runs/pause_rule] [--json out.json]

The hold (a word's smoothed score at or above the threshold for two evaluations in a row) costs one hop of
delay on every word; it is there for the brief peaks of words inside running speech. `sure_score` waives it
for a score the model is sure of. Replayed on the learn side that chose the pause rule
(training/studies/pause_rule.py: streams of training speakers' commands, quiet and noisy, and the learn side
of the continuous speech, every detection there a false one), with the recorded evaluations it caches.
Training speakers' words score higher than other speakers' do, so this side flatters a score rule: the
choice is then measured once on the held-out speakers (benchmarks/bench_streaming.py,
benchmarks/bench_conversation_commands.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
import pause_rule  # noqa: E402

from speech_app.streaming import AVERAGING_MS, HOLD_MS, RecognizerSettings  # noqa: E402

SURE_SCORES = (None, 0.99, 0.97, 0.95, 0.92, 0.90, 0.85)
RULES_MS = ((AVERAGING_MS, HOLD_MS), (AVERAGING_MS, 0.0), (125.0, HOLD_MS))  # (averaging, hold)


def main() -> None:
    args = pause_rule.parse_args(__doc__.splitlines()[0])
    labels, talk, hours, scored = pause_rule.learn_side(args)
    rows = []
    for averaging, hold in RULES_MS:
        for sure in SURE_SCORES if hold else (None,):
            # on a plain mean, as SURE_SCORE_STUDY.md ran it (before recent_weighting, LATENCY_STUDY.md)
            settings = RecognizerSettings(averaging_ms=averaging, hold_ms=hold, sure_score=sure, recent_weighting=0.0)
            row = {"averaging_ms": averaging, "hold_ms": hold, "sure_score": sure,
                   **pause_rule.replayed(settings, labels, talk, hours, scored)}
            rows.append(row)
            quiet, noisy = row["quiet"], row["noisy"]
            print(f"averaging {averaging:>4g} hold {hold:>4g} sure {sure!s:>5}: learn talk {row['learn_per_hour']:5.1f}/h; "
                  f"quiet recall {quiet['recall']:.3f} precision {quiet['precision']:.3f} FA/h "
                  f"{quiet['false_alarms_per_hour_other_speech']:5.1f} latency {quiet['latency_median_ms']:4.0f}/"
                  f"{quiet['latency_p90_ms']:4.0f} ms; noisy recall {noisy['recall']:.3f} precision "
                  f"{noisy['precision']:.3f} latency {noisy['latency_median_ms']:4.0f}/{noisy['latency_p90_ms']:4.0f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
