"""Screened `listen --file` against every window scored and against the live path, on the long recording.

    python benchmarks/check_screening.py MODEL MINUTES [listen options, e.g. --pause-ms 0 --threshold 0.6]

Scans MINUTES of bench_file_scan's recording (made first by `benchmarks/bench_file_scan.py`) with the recognizer
`listen --file` builds, screened and not (alternated twice: CPU per audio minute, windows left unscored), then
feeds the same audio in 20 ms blocks to the recognizer `listen` builds for a microphone; prints whether the
detections (label, time) agree and the largest confidence difference.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench_file_scan import RECORDING

from speech_app.audio import load_audio
from speech_app.audio_blocks import AudioBlockReader
from speech_app.cli import listen
from speech_app.streaming import recognize_blocks, recognize_samples

MIC_BLOCK_SAMPLES = 320  # 20 ms


def main() -> None:
    model, minutes, options = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    args = parser.parse_args(["--file", str(RECORDING), "--model", model, *options])

    def scan(screen: bool):
        recognizer = listen._make_recognizer(args)
        recognizer.screen = screen
        cpu = time.process_time()
        with AudioBlockReader(args.file, minutes * 60, listen.FILE_BLOCK_SECONDS) as reader:
            found = list(recognize_blocks(recognizer, reader))
        cpu = time.process_time() - cpu
        recognizer.close()
        print(f"screen={screen}: {len(found)} detections, {cpu / minutes:.3f} s CPU per audio min, "
              f"unscored {recognizer.unscored}/{recognizer.evaluations}", flush=True)
        return found

    runs = {screen: scan(screen) for _ in range(2) for screen in (False, True)}
    live = recognize_samples(listen._make_recognizer(parser.parse_args(["--model", model, *options])),
                             load_audio(RECORDING)[: int(minutes * 60 * 16000)], MIC_BLOCK_SAMPLES)
    for name, found in (("every window scored", runs[False]), ("live path", live)):
        same = [(d.label, round(d.time_s, 3)) for d in found] == \
            [(d.label, round(d.time_s, 3)) for d in runs[True]]
        worst = max([abs(a.confidence - b.confidence) for a, b in zip(found, runs[True])] or [0.0])
        print(f"screened against {name}: {len(found)} detections, same: {same}, largest confidence difference {worst:.2g}")


if __name__ == "__main__":
    main()
