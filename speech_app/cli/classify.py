"""`speech-app classify`: label audio files, as CSV, JSON lines or a table."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from pathlib import Path

from .exit_status import EXIT_OK, EXIT_SOME_FAILED, UsageError
from .options import add_model_option

HELP = "label audio files (WAV, FLAC, OGG)"
PROGRESS_MIN_FILES = 50  # smaller batches finish before a progress bar would tell anything


def add_arguments(p) -> None:
    from ..device import DEVICE_CHOICES
    from ..inference import DEFAULT_BATCH_SIZE, PRECISIONS

    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    p.add_argument("--recursive", "-r", action="store_true", help="look inside subfolders too")
    add_model_option(p)
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="also print the next K-1 labels")
    p.add_argument("--format", choices=("csv", "jsonl", "table"), default="csv")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of standard output")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N")
    p.add_argument("--device", default="cpu", choices=DEVICE_CHOICES)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bfloat16 where the CPU runs it faster (same labels; AMX 2x) for more than one "
                        "batch of files, else float32")


def run(args) -> int:
    from ..atomic_files import check_writable
    from ..audio import expand_paths
    from ..inference import CommandClassifier, batch_precision, batch_threads
    from ..modelfile import ModelFileError

    if args.top_k < 1 or args.batch_size < 1:
        raise UsageError("--top-k and --batch-size must be at least 1")
    if args.output is not None:
        check_writable(args.output)  # before any file is decoded
    paths = expand_paths(args.paths, args.recursive)
    if not paths:
        raise UsageError(f"no audio files in {' '.join(map(os.fsdecode, args.paths))} (use --recursive for subfolders)")
    try:
        precision = batch_precision(args.precision, len(paths), args.batch_size)
        classifier = CommandClassifier.from_file(args.model, args.device, precision)
    except (ModelFileError, ValueError) as err:
        raise UsageError(str(err)) from None
    top_k = min(args.top_k, len(classifier.labels))
    from tqdm import tqdm

    threads = batch_threads(len(paths), args.batch_size)
    from ..memory import keep_freed_memory

    keep_freed_memory()  # this process is ours: each batch reuses the last one's memory instead of faulting in new
    results = tqdm(classifier.classify_files(paths, top_k, args.batch_size, threads), total=len(paths), unit="file",
                   desc="classifying", disable=len(paths) < PROGRESS_MIN_FILES, file=sys.stderr)
    failed = 0
    with open_output(args.output) as out:
        writer = ResultWriter(out, args.format, top_k)
        for result in results:
            failed += result.error is not None
            writer.write(result)
        writer.close()
    if failed:
        print(f"{failed} of {len(paths)} files could not be classified", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


@contextlib.contextmanager
def open_output(path: Path | None):
    """Standard output, or a file that appears only when complete (see atomic_files), locked against
    a second run writing it. File names that are not UTF-8 are written as their original bytes."""
    if path is None:
        if hasattr(sys.stdout, "reconfigure"):  # print a name that is not UTF-8 as its own bytes
            sys.stdout.reconfigure(errors="surrogateescape")
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as err:  # `> /dev/full`, a full disk behind a redirection
            from ..atomic_files import OutputError, describe_os_error

            raise OutputError(describe_os_error("standard output", err)) from None
        return
    from ..atomic_files import atomic_write, output_lock

    with output_lock(path), atomic_write(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as out:
        yield out


class ResultWriter:
    """Writes classification results as CSV, JSON lines, or an aligned table."""

    def __init__(self, out, fmt: str, top_k: int):
        self.out, self.fmt, self.top_k = out, fmt, top_k
        self.rows: list[list[str]] = []
        self.header = ["path", "label", "confidence", "error"]
        for k in range(2, top_k + 1):
            self.header += [f"label_{k}", f"confidence_{k}"]
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(self.header)

    def row(self, result) -> list[str]:
        conf = [f"{c:.4f}" for c in result.confidences]
        cells = [str(result.path), result.label, conf[0] if conf else "", result.error or ""]
        for k in range(1, self.top_k):
            has = k < len(result.labels)
            cells += [result.labels[k] if has else "", conf[k] if has else ""]
        return cells

    def write(self, result) -> None:
        if self.fmt == "csv":
            self.csv.writerow(self.row(result))
        elif self.fmt == "jsonl":
            record = {"path": str(result.path), "label": result.label or None, "confidence": result.confidence,
                      "error": result.error}
            if self.top_k > 1:
                record["top"] = [{"label": l, "confidence": c} for l, c in zip(result.labels, result.confidences)]
            self.out.write(json.dumps(record) + "\n")
        else:
            self.rows.append(self.row(result))

    def close(self) -> None:
        if self.fmt != "table":
            return
        table = [self.header] + self.rows
        widths = [max(len(r[i]) for r in table) for i in range(len(self.header))]
        for r in table:
            self.out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n")
