"""Live recognition, measured: detection latency and CPU use, through the PulseAudio virtual microphone.

    python benchmarks/bench_live.py [--model M] [--rounds 3] [--held-out N] [--json out.json]

Plays clips into a private PulseAudio server (see tests/virtual_mic.py) while the live path of
`speech-app listen` runs in this process: MicrophoneCapture (sounddevice) -> ring buffer ->
StreamingRecognizer -> detections. The clips: the sample clips of the reliable words, `--rounds` times
each; or, with `--held-out N`, N clips of each of the ten commands from held-out speakers (the
development test's, as benchmarks/bench_streaming.py draws them), each played once. Six recordings
played five times measure six words: the p90 of those 30 trials is mostly one clip, "up"
(training/studies/LATENCY_STUDY.md); the held-out clips are as many speakers as words.

Latency of a word: from the end of the word, as played, to its detection.
- wall: detection time minus (paplay start + the word's end inside the clip); includes paplay's
  start-up and PulseAudio's buffers, so it errs on the long side.
- clip end: detection time minus the end of the whole clip (its last sample, silence included) as
  played: an upper bound that needs no estimate of where the word ends.
- stream: in audio time: the detection's sample position minus the word end's sample position,
  found by locating the clip in the captured stream (cross-correlation). What the recognizer's hop,
  averaging and threshold cost, without the audio system.
CPU: user + system time of this process (capture callback, ring buffer, model, smoothing) per second
of wall time, in percent of one core, while the clips play (two recognizers: the default settings and,
beside them on the same blocks, the previous defaults, PREVIOUS_DEFAULTS). Goals: median latency under 300 ms;
CPU under 15% of one core.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the virtual microphone lives with the tests

from virtual_mic import VirtualMicrophone  # noqa: E402

from speech_app.audio import SAMPLE_RATE, load_audio  # noqa: E402

SAMPLES_DIR = REPO / "datasets" / "samples"
WORDS = ("yes", "no", "up", "left", "right", "go")  # sample clips the shipped model streams right (tests/conftest.py: reliable_words)
GAP_S = 1.5  # silence between clips: longer than the suppression time and the release
FRAME_MS = 10.0  # frames for finding where the word ends in its clip
WORD_END_DB = 30.0  # the word ends at the last frame within this many dB of the loudest frame...
ABOVE_NOISE_DB = 10.0  # ...and this much above the clip's background (its 10th-percentile frame)
SEARCH_S = 1.0  # how far after paplay's start the clip is looked for in the captured stream
WARM_UP_S = 1.0  # audio that must have flowed before the first clip is played
STREAM_START_TIMEOUT_S = 10.0
LATENCY_GOAL_MS = 300.0
CPU_GOAL_PERCENT = 15.0


@dataclass
class Trial:
    word: str
    path: Path  # the clip played
    played_at: float  # perf_counter() just before paplay started
    word_end_s: float  # where the word ends inside its clip
    clip_s: float  # the clip's length
    detected: list  # [(label, wall time, stream seconds, confidence)]
    onset_sample: int | None = None  # where the clip starts in the captured stream


def word_end_seconds(samples: np.ndarray) -> float:
    """The end of the spoken part: the last 10 ms frame that is both within WORD_END_DB of the
    loudest frame and ABOVE_NOISE_DB over the background noise of the recording."""
    frame = int(SAMPLE_RATE * FRAME_MS / 1000)
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    level_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    floor_db = min(level_db.max(), max(level_db.max() - WORD_END_DB, np.percentile(level_db, 10) + ABOVE_NOISE_DB))
    loud = np.nonzero(level_db >= floor_db)[0]
    return (loud[-1] + 1) * frame / SAMPLE_RATE


class LiveLoop:
    """The listen loop, run in a thread; notes every detection with its wall-clock time. Each recognizer
    (the default settings', the previous defaults') gets the same blocks, first in turn."""

    def __init__(self, recognizers: dict, capture):
        self.recognizers, self.capture = recognizers, capture
        self.recognizer = next(iter(recognizers.values()))
        self.detections: dict[str, list[tuple[str, float, float, float]]] = {name: [] for name in recognizers}
        self.stream: list[np.ndarray] = []  # everything captured, for locating the clips
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        order = list(self.recognizers)
        while not self.stop.is_set():
            block = self.capture.read(0.05)
            self.stream.append(block)
            order.reverse()  # neither waits for the other's model every time
            for name in order:
                for detection in self.recognizers[name].feed(block):
                    self.detections[name].append((detection.label, time.perf_counter(), detection.time_s,
                                                  detection.confidence))


def locate(stream: np.ndarray, clip: np.ndarray, start: int, search_s: float = SEARCH_S,
           normalized: bool = False) -> int | None:
    """Sample index in `stream` where `clip` begins, searching `search_s` from `start` (FFT cross-correlation).
    normalized: divided by the energy of the stretch it is matched against, so that a quiet clip (noise between
    words) is found where it lies, not where the stream is loudest."""
    region = stream[start : start + int(search_s * SAMPLE_RATE) + len(clip)]
    if len(region) < len(clip):
        return None
    n = 1 << (len(region) + len(clip)).bit_length()
    scores = np.fft.irfft(np.fft.rfft(region, n) * np.conj(np.fft.rfft(clip, n)), n)[: len(region) - len(clip) + 1]
    if normalized:
        energy = np.concatenate([[0.0], np.cumsum(region.astype(np.float64) ** 2)])
        scores = scores / np.sqrt(energy[len(clip):] - energy[: -len(clip)] + 1e-12)
    return start + int(np.argmax(scores))


PREVIOUS_DEFAULTS = {"averaging_ms": 500.0, "threshold": 0.70, "hold_ms": 0.0,
                     "recent_weighting": 0.0}  # bench_streaming.PREVIOUS_DEFAULTS


def sample_playlist(rounds: int) -> list[tuple[str, Path]]:
    """The sample clip of each of WORDS, `rounds` times over."""
    clips = [(w, next(SAMPLES_DIR.glob(f"{w}_*"))) for w in WORDS]
    return clips * rounds


def held_out_playlist(per_word: int, folder: Path, data_dir: Path) -> list[tuple[str, Path]]:
    """`per_word` clips of each command from held-out speakers of `data_dir` (bench_streaming's draw), as WAV files
    in `folder` (what paplay plays), in an order that mixes the words."""
    import soundfile as sf
    from bench_streaming import SEED, held_out_clips

    if not data_dir.is_dir():
        raise SystemExit(f"bench_live: {data_dir}: no such folder (Speech Commands clips for --held-out; --data-dir)")
    commands, _ = held_out_clips(data_dir, np.random.default_rng(SEED))
    by_word: dict[str, list[Path]] = {}
    for word, path in commands:
        by_word.setdefault(word, []).append(path)
    chosen = [(word, path) for word, paths in by_word.items() for path in paths[:per_word]]
    playlist = []
    for index in np.random.default_rng(SEED).permutation(len(chosen)):
        word, source = chosen[index]
        wav = folder / f"{len(playlist):03d}_{word}.wav"
        sf.write(wav, load_audio(source), SAMPLE_RATE, subtype="PCM_16")
        playlist.append((word, wav))
    return playlist


def run(model: Path | None, rounds: int, held_out: int = 0, data_dir: Path | None = None) -> dict:
    import copy
    import tempfile

    import torch

    from speech_app.capture import MicrophoneCapture
    from speech_app.inference import CommandClassifier
    from speech_app.streaming import LIVE_TORCH_THREADS, RecognizerSettings, StreamingRecognizer

    torch.set_num_threads(LIVE_TORCH_THREADS)
    tmp_dir = tempfile.TemporaryDirectory()
    from bench_streaming import DEFAULT_DATA

    playlist = (held_out_playlist(held_out, Path(tmp_dir.name), data_dir or DEFAULT_DATA) if held_out
                else sample_playlist(rounds))
    audio = {path: load_audio(path) for _, path in playlist}  # each clip decoded once (the samples repeat)
    timing = {path: (word_end_seconds(samples), len(samples) / SAMPLE_RATE) for path, samples in audio.items()}
    mic = VirtualMicrophone().start()
    try:
        classifier = CommandClassifier.from_file(model, "cpu")
        recognizers = {"default": StreamingRecognizer(classifier),
                       "previous": StreamingRecognizer(classifier, RecognizerSettings(**PREVIOUS_DEFAULTS))}
        recognizer = recognizers["default"]
        capture = MicrophoneCapture(None)
        loop = LiveLoop(recognizers, capture)
        capture.start()
        loop.thread.start()
        _wait_for_steady_stream(recognizer)
        trials, cpu_start, wall_start = [], _cpu_seconds(), time.perf_counter()
        stream_start_wall = wall_start - recognizer.fed_seconds
        for word, path in playlist:
            trial = Trial(word, path, time.perf_counter(), *timing[path], [])
            mic.play(path)
            time.sleep(GAP_S)
            trials.append(trial)
        cpu_used, wall = _cpu_seconds() - cpu_start, time.perf_counter() - wall_start
        loop.stop.set()
        loop.thread.join()
        capture.stop()
        stats = capture.stats()
        stream = np.concatenate(loop.stream)
        for trial in trials:
            guess = int((trial.played_at - stream_start_wall) * SAMPLE_RATE)
            trial.onset_sample = locate(stream, audio[trial.path], max(0, guess - SAMPLE_RATE // 4))
    finally:
        mic.stop()
        tmp_dir.cleanup()
    results = {}
    for name, detections in loop.detections.items():
        own = copy.deepcopy(trials)
        assign(own, detections)
        results[name] = summarize(own, cpu_used, wall, stats, model)
    result = results["default"]
    result["clips"] = "held-out" if held_out else "samples"
    result["recordings"] = len({str(p) for _, p in playlist})
    result["previous_defaults"] = {"settings": PREVIOUS_DEFAULTS, **results["previous"]}
    return result


def _wait_for_steady_stream(recognizer) -> None:
    """A new capture from the null sink may stall, then deliver its first second in a burst: wait
    until audio flows, then a little longer, so that stream time and wall time run together."""
    deadline = time.monotonic() + STREAM_START_TIMEOUT_S
    while recognizer.fed_seconds < WARM_UP_S and time.monotonic() < deadline:
        time.sleep(0.05)
    if recognizer.fed_seconds < WARM_UP_S:
        raise RuntimeError(f"the virtual microphone delivered no audio in {STREAM_START_TIMEOUT_S:.0f} s")
    time.sleep(WARM_UP_S)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def assign(trials: list[Trial], detections: list) -> None:
    """Each detection belongs to the trial whose clip was playing (or had just played) at the time."""
    for label, wall, stream_s, confidence in detections:
        owner = [t for t in trials if t.played_at <= wall]
        if owner:
            owner[-1].detected.append((label, wall, stream_s, confidence))


def summarize(trials: list[Trial], cpu_used: float, wall: float, stats, model) -> dict:
    wall_ms, clip_ms, stream_ms, rows = [], [], [], []
    for t in trials:
        right = [d for d in t.detected if d[0] == t.word]
        row = {"word": t.word, "detections": [d[0] for d in t.detected]}
        if right:
            row["wall_latency_ms"] = 1000 * (right[0][1] - (t.played_at + t.word_end_s))
            wall_ms.append(row["wall_latency_ms"])
            row["clip_end_latency_ms"] = 1000 * (right[0][1] - (t.played_at + t.clip_s))
            clip_ms.append(row["clip_end_latency_ms"])
            if t.onset_sample is not None:
                row["stream_latency_ms"] = 1000 * (right[0][2] - (t.onset_sample / SAMPLE_RATE + t.word_end_s))
                stream_ms.append(row["stream_latency_ms"])
        rows.append(row)
    correct_once = sum(r["detections"] == [r["word"]] for r in rows)
    return {
        "model": str(model or "shipped"), "trials": len(rows), "correct_once": correct_once,
        "latency_ms": {"wall_median": _median(wall_ms), "wall_p90": _p90(wall_ms),
                       "clip_end_median": _median(clip_ms), "clip_end_p90": _p90(clip_ms),
                       "stream_median": _median(stream_ms), "stream_p90": _p90(stream_ms)},
        "cpu_percent_of_one_core": 100 * cpu_used / wall, "seconds": wall,
        "dropped_s": stats.dropped_s, "overflows": stats.overflows, "rows": rows,
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    return float(np.percentile(values, 90)) if values else None


def report(result: dict) -> str:
    lat = result["latency_ms"]
    fmt = lambda v: "n/a" if v is None else f"{v:.0f} ms"  # noqa: E731
    lines = [f"model: {result['model']}; {result.get('recordings', '?')} recordings ({result.get('clips', 'samples')})",
             f"words detected correctly, exactly once: {result['correct_once']} of {result['trials']}",
             f"latency, end of word to detection (wall): median {fmt(lat['wall_median'])}, p90 {fmt(lat['wall_p90'])} "
             f"(goal: median under {LATENCY_GOAL_MS:.0f} ms)",
             f"from the end of the whole clip (bound): median {fmt(lat['clip_end_median'])}, p90 {fmt(lat['clip_end_p90'])}",
             f"latency in audio time (stream):        median {fmt(lat['stream_median'])}, p90 {fmt(lat['stream_p90'])}",
             f"CPU: {result['cpu_percent_of_one_core']:.1f}% of one core over {result['seconds']:.0f} s "
             f"(goal: under {CPU_GOAL_PERCENT:.0f}%)",
             f"dropped audio: {result['dropped_s']:.2f} s, overflows: {result['overflows']}", ""]
    for row in result["rows"]:
        keys = ("wall_latency_ms", "clip_end_latency_ms", "stream_latency_ms")
        extra = "".join(f"  {k.rsplit('_', 2)[0]} {row[k]:.0f} ms" for k in keys if k in row)
        lines.append(f"  {row['word']:<6} -> {', '.join(row['detections']) or '(nothing)'}{extra}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("--rounds", type=int, default=3, help="times each sample clip is played")
    parser.add_argument("--held-out", type=int, default=0, metavar="N",
                        help="play N clips of each command from held-out speakers instead of the sample clips")
    parser.add_argument("--data-dir", type=Path, help="Speech Commands layout for --held-out (default: the data "
                        "folder next to the checkout)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = run(args.model, args.rounds, args.held_out, args.data_dir)
    print(report(result))
    previous = result["previous_defaults"]
    print(f"\nthe previous defaults ({previous['settings']}), fed the same blocks in the same run:")
    print("\n".join(report(previous).splitlines()[1:5]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
