"""Choosing the "pause before the word" rule (levels.py, `RecognizerSettings.pause_ms`) on data that does not measure it.

    python training/studies/pause_rule.py [--model M] [--cache runs/pause_rule] [--json out.json]
                                          [--thresholds 0.72,0.75] [--pauses 600,700,800]

False detections: the learn side of ../shared/data/continuous_speech (training/conversation_split.json), end
to end as one stream, every detection a false one (no command is said to the app in it). Recall: streams of
Speech Commands clips from *training* speakers (never the held-out speakers bench_streaming.py measures on),
built as bench_streaming.py builds its streams (commands and as many other words, 1.5-2.5 s apart, over
background noise at its volume), and the same clips over louder noise (NOISY_VOLUME): a noisy stream of
isolated commands must still pass. The model's evaluations and the streams' levels are recorded once
(cached) and every rule setting replays them (`StreamingRecognizer.replay`). The rule's constants are
module globals of speech_app.levels, set here per setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "training"))
import bench_streaming  # noqa: E402
from bench_conversation import split_files  # noqa: E402
from bench_conversation_commands import evaluations_of  # noqa: E402
from devtest import DEFAULT_DATA  # noqa: E402

from speech_app import levels  # noqa: E402
from speech_app.audio import SAMPLE_RATE, decode_files, load_audio  # noqa: E402
from speech_app.data.dataset import BACKGROUND_NOISE_DIR  # noqa: E402
from speech_app.levels import Evaluations  # noqa: E402
from speech_app.streaming import RecognizerSettings  # noqa: E402
from speech_app.training.conversation import decider  # noqa: E402

DEFAULT_MODEL = ROOT / "model" / "speech_commands_12.safetensors"
SEED = 11  # not bench_streaming's 7: other clips
NOISY_VOLUME = 0.5  # ten times bench_streaming's background: speech over a loud room
PAUSES_MS = (0.0, 400.0, 500.0, 600.0, 700.0, 800.0)
OVER_FLOOR_DB = (6.0,)
UNDER_PEAK_DB = (30.0,)
ONSET_SPANS_MS = (1200.0,)
BLIPS_MS = (30.0,)
MIN_WORDS_MS = (250.0,)


def command_streams(data_dir: Path) -> dict:
    rng = np.random.default_rng(SEED)
    commands, others = bench_streaming.held_out_clips(data_dir, rng, training=True)
    decoded = decode_files([str(p) for _, p in commands + others], progress=False)
    clips = [(w, a.astype(np.float32)) for (w, _), a in zip(commands + others, decoded) if isinstance(a, np.ndarray)]
    clips = [clips[i] for i in rng.permutation(len(clips))]
    noise = load_audio(sorted(p for p in (data_dir / BACKGROUND_NOISE_DIR).iterdir() if p.is_file())[0])
    quiet = bench_streaming.build_stream(clips, noise, np.random.default_rng(SEED))
    volume, bench_streaming.BACKGROUND_VOLUME = bench_streaming.BACKGROUND_VOLUME, NOISY_VOLUME
    try:
        noisy = bench_streaming.build_stream(clips, noise, np.random.default_rng(SEED))
    finally:
        bench_streaming.BACKGROUND_VOLUME = volume
    return {"quiet": quiet, "noisy": noisy}


def learn_speech() -> np.ndarray:
    files = split_files("learn")
    return np.concatenate([a.astype(np.float32) for a in decode_files([p for p, _ in files], progress=False)])


def recorded(model: Path, samples: np.ndarray, cache: Path, name: str) -> Evaluations:
    """The model's evaluations of the stream called `name`, recorded once (bench_conversation_commands' cache)."""
    return evaluations_of(model, samples, cache / name)


def parse_args(description: str, grid: bool = False) -> argparse.Namespace:
    """The options of the studies that replay the learn side (this one, latency_rule.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "pause_rule")
    parser.add_argument("--json", type=Path)
    if grid:  # this study's settings replayed
        parser.add_argument("--thresholds", type=floats, default=(RecognizerSettings().threshold,),
                            help="comma-separated thresholds replayed at each pause (default: the default threshold)")
        parser.add_argument("--pauses", type=floats, default=PAUSES_MS, help="comma-separated pause lengths (ms)")
    return parser.parse_args()


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(","))


def learn_side(args: argparse.Namespace):
    """(labels, the learn side's recorded evaluations, its hours, {stream name: (stream, its evaluations)})."""
    torch.set_num_threads(1)
    from speech_app.modelfile import load_model

    labels = load_model(args.model).labels
    speech = learn_speech()
    hours = len(speech) / SAMPLE_RATE / 3600
    talk = recorded(args.model, speech, args.cache, "learn")
    streams = command_streams(args.data)
    scored = {name: (s, recorded(args.model, s.samples, args.cache, f"commands_{name}")) for name, s in streams.items()}
    return labels, talk, hours, scored


def replayed(settings: RecognizerSettings, labels, talk, hours: float, scored: dict) -> dict:
    """One setting replayed on the learn side: detections an hour of talk, and each command stream's scores."""
    row = {"learn_per_hour": len(decider(labels, settings).replay(talk)) / hours}
    for name, (stream, evaluations) in scored.items():
        s = bench_streaming.score_detections(stream, decider(labels, settings).replay(evaluations))
        row[name] = {k: s[k] for k in ("recall", "precision", "false_alarms_per_hour_other_speech",
                                       "latency_median_ms", "latency_p90_ms")}
    return row


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], grid=True)
    labels, talk, hours, scored = learn_side(args)
    quiet = scored["quiet"][0]
    print(f"learn side {hours * 60:.1f} min; command streams {len(quiet.words)} clips, "
          f"{len(quiet.samples) / SAMPLE_RATE / 60:.1f} min each")
    rows = []
    grid = itertools.product(OVER_FLOOR_DB, UNDER_PEAK_DB, ONSET_SPANS_MS, BLIPS_MS, MIN_WORDS_MS)
    for n, (over, under, onset, blip, min_word) in enumerate(grid):
        levels.QUIET_OVER_FLOOR_DB, levels.QUIET_UNDER_PEAK_DB, levels.ONSET_SPAN_MS = over, under, onset
        levels.BLIP_MS, levels.MIN_WORD_MS = blip, min_word
        for pause, threshold in itertools.product(args.pauses if n == 0 else [p for p in args.pauses if p > 0],
                                                  args.thresholds):  # the rule off: once
            settings = RecognizerSettings(pause_ms=pause, threshold=threshold)
            row = {"pause_ms": pause, "threshold": threshold, "over_floor_db": over, "under_peak_db": under,
                   "onset_span_ms": onset,
                   "blip_ms": blip, "min_word_ms": min_word, **replayed(settings, labels, talk, hours, scored)}
            rows.append(row)
            print(f"pause {pause:>3g} threshold {threshold:.2f} over {over:>2g} under {under:>2g} onset {onset:>4g} "
                  f"blip {blip:>2g} "
                  f"min_word {min_word:>3g}: learn "
                  f"{row['learn_per_hour']:6.1f}/h; quiet recall {row['quiet']['recall']:.3f} precision "
                  f"{row['quiet']['precision']:.3f}; noisy recall {row['noisy']['recall']:.3f} precision "
                  f"{row['noisy']['precision']:.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
