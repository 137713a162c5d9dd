"""`speech-app listen`: the live recognizer in a terminal, one line per detected command.

    speech-app listen --format jsonl
    {"time": 3.2, "label": "yes", "confidence": 0.93}

Status goes to standard error, detections to standard output (flushed at once), so scripts and
tests can read them as they happen. Ctrl-C ends it cleanly with status 0.

The model runs on ONNX Runtime when it can (onnx_runtime.py: no PyTorch in the process, a tenth of
the memory), else on PyTorch; `--runtime` chooses. `--file` reads the recording a block at a time and
scores the windows of many hops per model call, on every core: the detections are the live path's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .exit_status import EXIT_NO_AUDIO, EXIT_OK, EXIT_USAGE
from .options import add_model_option, add_setting_option, given

if TYPE_CHECKING:  # the streaming module is imported when listen runs, not for every command
    from ..streaming import Detection, RecognizerSettings, StreamingRecognizer

HELP = "recognize commands live from a microphone, one line per detection"
SETTING_OPTIONS = {"threshold": "P", "suppression_ms": "MS"}  # RecognizerSettings fields -> metavar
# the decision settings a model file may choose for itself (decision.MODEL_FIELDS): the option, given, wins
DECISION_OPTIONS = {"averaging_ms": ("MS", "evaluations averaged into one smoothed score"),
                    "hold_ms": ("MS", "how long the smoothed score must stay at or above the threshold"),
                    "pause_ms": ("MS", "relative quiet a word needs before it (0: none)")}
READ_TIMEOUT_S = 0.15  # longest a read waits for the next hop's audio (125 ms): also how quickly Ctrl-C is noticed
FILE_BLOCK_SECONDS = 20.0  # audio read per block scanning a file: 160 hops, whose windows are scored together
FILE_BATCH_WINDOWS = 40  # windows per model call scanning a file (live: streaming.MAX_BATCH_WINDOWS): four
# batches a block for the workers to share. 5 min of speech, torch, alternated on a loaded 2-core machine: 20 s
# blocks of 40-window batches took 3% less CPU than 10 s blocks of 20 (benchmarks/bench_listen.py)
FILE_WORKERS = os.cpu_count() or 1  # threads running the model on a file's batches, each on one intra-op thread,
# while the main thread makes the next batch's features. Live: one. (Two intra-op threads of one torch call on
# a busy two-core machine took 17x longer for a file: the cores are shared by whole batches instead.)
PROGRESS_MIN_SECONDS = 300.0  # shorter files are scanned before a progress bar would tell anything
PROGRESS_INTERVAL_S = 1.0  # redraws of the bar at most this often (a log file gets a line per redraw)
PRECISIONS = ("auto", "float32", "bfloat16", "int8")  # inference.PRECISIONS (importing it imports torch)
PROGRESS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]"
RUNTIME_NAMES = {"OnnxClassifier": "ONNX Runtime", "CommandClassifier": "PyTorch"}
OVERFLOW_REPORT_S = 5.0  # a busy machine overflows in bursts: one line per burst, not per block


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..onnx_runtime import RUNTIMES
    from ..streaming import LIVE_PRECISION, RecognizerSettings

    add_model_option(parser)
    parser.add_argument("--device", help="input device: its number or part of its name (default: the system's)")
    parser.add_argument("--format", choices=("text", "jsonl"), default="text",
                        help="text: 'time  label  confidence'; jsonl: one JSON object per detection")
    from ..decision import MODEL_FIELDS

    defaults = RecognizerSettings()
    own = "; a custom model file's own setting where it has one (see `speech-app card`), unless this is given"
    for name, metavar in SETTING_OPTIONS.items():
        default_text = f"default {getattr(defaults, name):g}{own if name in MODEL_FIELDS else ''}"
        add_setting_option(parser, RecognizerSettings, name, metavar=metavar, default_text=default_text)
    for name, (metavar, text) in DECISION_OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, metavar=metavar, default=None,
                            help=f"{text} (default {getattr(defaults, name):g}{own})")
    parser.add_argument("--file", type=Path, metavar="AUDIO",
                        help="recognize a recording through the same streaming path, instead of the microphone")
    parser.add_argument("--list-devices", action="store_true", help="print the input devices and exit")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    parser.add_argument("--precision", default=LIVE_PRECISION, choices=PRECISIONS,
                        help="auto: bfloat16 where the CPU runs it faster, else float32 (PyTorch only)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto: ONNX Runtime when it is installed and the precision is float32 (no PyTorch in "
                             "memory; a model without an ONNX copy gets one made, once), else PyTorch")


def format_detection(detection: Detection, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps(detection.to_dict())
    return f"{detection.time_s:8.2f}  {detection.label:<12} {detection.confidence:.2f}"


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run `speech-app listen`; detections go to `out` (standard output by default)."""
    from ..capture import NoInputDeviceError, list_input_devices

    if args.list_devices:
        try:
            return _print_devices(list_input_devices())
        except NoInputDeviceError as err:  # PortAudio missing, or an audio server that does not answer
            return _fail(str(err), EXIT_NO_AUDIO)
    settings = recognizer_settings(args)
    if not 0.0 < settings.threshold <= 1.0 or min(settings.suppression_ms, settings.averaging_ms, settings.hold_ms,
                                                   settings.pause_ms) < 0:
        return _fail("--threshold must be in (0, 1] and --suppression-ms, --averaging-ms, --hold-ms and --pause-ms "
                     "at least 0", EXIT_USAGE)
    from ..onnx_runtime import RuntimeUnavailableError

    try:
        recognizer = _make_recognizer(args)
    except (RuntimeUnavailableError, ValueError) as err:  # an unusable model file is a ValueError here
        return _fail(str(err), EXIT_USAGE)
    out = out or sys.stdout
    if args.file is not None:
        return _listen_to_file(recognizer, args, out)
    try:
        return _listen_to_microphone(recognizer, args, out)
    except NoInputDeviceError as err:
        return _fail(str(err), EXIT_NO_AUDIO)


def _make_recognizer(args) -> StreamingRecognizer:
    """The recognizer on the runtime `--runtime` and `--precision` allow; scanning a file, it scores
    FILE_BATCH_WINDOWS windows per call on FILE_WORKERS threads (the same scores as one at a time), and only
    the windows whose scores can change a detection (streaming.py's screening: the same detections)."""
    from ..onnx_runtime import choose_runtime, limit_numpy_threads
    from ..streaming import MAX_BATCH_WINDOWS, StreamingRecognizer

    scanning = args.file is not None
    choice = choose_runtime(args.model, args.runtime, args.precision)
    if choice.note:
        print(f"speech-app listen: {choice.note}" + ("; running on PyTorch" if choice.runtime == "torch" else ""),
              file=sys.stderr, flush=True)
    if choice.runtime == "onnx":
        limit_numpy_threads()  # the front end's NumPy
        classifier = choice.classifier
    else:
        classifier = _torch_classifier(args)
    return StreamingRecognizer(classifier, recognizer_settings(args),
                               batch_windows=FILE_BATCH_WINDOWS if scanning else MAX_BATCH_WINDOWS,
                               model_workers=FILE_WORKERS if scanning else 1, screen=scanning)


def _torch_classifier(args):
    import torch

    from ..inference import CommandClassifier
    from ..streaming import LIVE_TORCH_THREADS

    from ..modelfile import ModelFileError

    torch.set_num_threads(LIVE_TORCH_THREADS)
    try:
        return CommandClassifier.from_file(args.model, "cpu", args.precision)
    except ModelFileError as err:  # caught in run() as a ValueError: naming it there would import torch
        raise ValueError(str(err)) from None


def runtime_name(recognizer: StreamingRecognizer) -> str:
    kind = type(recognizer.classifier).__name__
    return RUNTIME_NAMES.get(kind, kind)


def recognizer_settings(args) -> RecognizerSettings:
    """The streaming settings: the options given, then the model file's own (decision.py), then
    RecognizerSettings' defaults."""
    from ..decision import settings_of_file

    return settings_of_file(args.model, given(args, {name: name for name in (*SETTING_OPTIONS, *DECISION_OPTIONS)}))


def settings_text(args, settings: RecognizerSettings) -> str:
    """The decision settings in use and where they come from, for the status line."""
    from ..decision import describe, file_metadata, recorded_settings

    own = recorded_settings(file_metadata(args.model))
    return describe(settings) + (" (the model file's own settings, where not given)" if own else "")


def _listen_to_file(recognizer: StreamingRecognizer, args, out) -> int:
    """The recording a block at a time (constant memory, `--duration` reads no further), through the
    live path; a progress bar on standard error for long ones."""
    from tqdm import tqdm

    from ..audio import SAMPLE_RATE, AudioDecodeError
    from ..audio_blocks import AudioBlockReader
    from ..streaming import recognize_blocks

    try:
        with AudioBlockReader(args.file, args.duration or None, FILE_BLOCK_SECONDS) as reader:
            bar = tqdm(total=round(reader.seconds), unit="s", desc="listening", file=sys.stderr, leave=False,
                       disable=reader.seconds < PROGRESS_MIN_SECONDS, bar_format=PROGRESS_FORMAT,
                       mininterval=PROGRESS_INTERVAL_S)

            def blocks():
                for block in reader:
                    yield block
                    bar.update(min(bar.total - bar.n, len(block) / SAMPLE_RATE))

            with bar:
                for detection in recognize_blocks(recognizer, blocks()):
                    bar.clear()
                    print(format_detection(detection, args.format), file=out, flush=True)
    except AudioDecodeError as err:
        return _fail(str(err), EXIT_USAGE)
    finally:
        recognizer.close()
    return EXIT_OK


def _listen_to_microphone(recognizer: StreamingRecognizer, args, out) -> int:
    from ..capture import MicrophoneCapture

    capture = MicrophoneCapture(args.device)
    stop = threading.Event()
    restore_signal = _stop_on_terminate(stop)
    capture.start()
    stats = capture.stats()
    print(f"listening on {stats.device_name} ({stats.device_rate_hz} Hz, latency {stats.latency_s * 1000:.0f} ms); "
          f"words: {', '.join(w for w in recognizer.labels if not w.startswith('_'))}; "
          f"model on {runtime_name(recognizer)}; {settings_text(args, recognizer.settings)}; Ctrl-C to stop",
          file=sys.stderr, flush=True)
    overflows = OverflowReporter()
    try:
        while not stop.is_set():
            # woken when the next hop's audio is in, not at every 20 ms block: the same evaluations, at the same time
            for detection in recognizer.feed(capture.read(READ_TIMEOUT_S, recognizer.samples_until_evaluation)):
                print(format_detection(detection, args.format), file=out, flush=True)
            # the overflow count alone: stats() asks PortAudio for the latency and builds a record each time
            for notice in capture.pop_notices() + overflows.check(capture.overflows):
                print(f"speech-app listen: {notice}", file=sys.stderr, flush=True)
            if args.duration and recognizer.fed_seconds >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        capture.stop()
        restore_signal()
    dropped = capture.stats().dropped_s
    if dropped > 0:
        print(f"dropped {dropped:.2f} s of audio (the computer was too busy)", file=sys.stderr)
    return EXIT_OK


class OverflowReporter:
    """Says when the audio system reports lost input, at most once per OVERFLOW_REPORT_S."""

    def __init__(self):
        self.reported, self.next_report = 0, 0.0

    def check(self, overflows: int) -> list[str]:
        now = time.monotonic()
        if overflows <= self.reported or now < self.next_report:
            return []
        new, self.reported, self.next_report = overflows - self.reported, overflows, now + OVERFLOW_REPORT_S
        return [f"audio input overflowed {new} time(s) ({overflows} in all): some audio was lost; "
                f"the computer is too busy"]


def _stop_on_terminate(stop: threading.Event):
    """Ctrl-C (SIGINT) and SIGTERM set `stop`; the loop then ends within one read timeout.

    Not a KeyboardInterrupt: raised at an arbitrary point, it can leave the ring buffer's lock held,
    and PortAudio's callback then blocks on it, so stopping the stream never returns. A second
    Ctrl-C still interrupts at once. Returns the function that puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum, _frame):
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def _print_devices(devices) -> int:
    if not devices:
        print("no audio input devices", file=sys.stderr)
        return EXIT_NO_AUDIO
    for device in devices:
        print(("* " if device.is_default else "  ") + device.describe())
    return EXIT_OK


def _fail(message: str, status: int) -> int:
    print(f"speech-app listen: {message}", file=sys.stderr)
    return status
