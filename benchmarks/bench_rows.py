"""The issue-24 rows that `benchmarks/bench.py` (`make bench`) measures besides its own sections, each
through the project's public entry points, so that the figures follow whatever code is checked out:

- listen_memory: `speech-app listen` (auto runtime, then `--runtime torch`) as its own process on the
  virtual PulseAudio microphone (tests/virtual_mic.py) while sample clips play: resident memory and
  CPU of that process, read from /proc; then (auto runtime) while only quiet-room noise plays
  (bench_listen.quiet_room_stream): most of an always-on day.
- custom_takes / custom_text / custom_8k: `speech-app train` with the custom recipe, each with an
  empty cache folder (XDG_CACHE_HOME), as a first training is: 4 words x 20 takes; the same words from
  text alone; 10 words x 10 takes resampled to 8 kHz. Wall and CPU seconds (children included: the
  synthesis engines) and the CPU split by stage.
- listen_file: `speech-app listen --file` on the continuous speech of /work/shared/data concatenated,
  with the 4-word model of custom_takes; its detections against the live path's on the same audio.
- latency: benchmarks/bench_live.py (the virtual microphone again), shipped model.
Each function returns a JSON-able dict; bench.py runs each in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO / "datasets" / "samples"
DATA = Path("/work/shared/data")
CONTINUOUS_SPEECH = DATA / "continuous_speech"
FOUR_WORDS = ("computer", "jarvis", "sheila", "marvin")  # as benchmarks/bench_custom_words.py
TEN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")  # >= 10 clips each
LOW_RATE_HZ = 8_000
MIC_BLOCK_SAMPLES = 320  # 20 ms: what the microphone callback hands over (capture.BLOCK_MS)
LISTEN_READY_TIMEOUT_S = 120.0  # the first start may make the model's ONNX copy
LISTEN_SETTLE_S = 2.0  # after "listening on": imports done, the stream flowing
CLIP_GAP_S = 1.0


def cpu_seconds() -> float:
    """This process and its waited-for children (synthesis workers, engines, exports)."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def speech_app(*args: str) -> list[str]:
    return [sys.executable, "-m", "speech_app", *args]


def child_env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


# --- resident memory and CPU of `speech-app listen` ------------------------------------------------

def proc_figures(pid: int) -> tuple[float, float, float]:
    """(VmRSS MB, VmHWM MB, CPU seconds of all its threads) of a running process."""
    status = Path(f"/proc/{pid}/status").read_text()
    field = lambda name: int(status.split(f"{name}:")[1].split()[0]) / 1024  # noqa: E731
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return field("VmRSS"), field("VmHWM"), (int(stat[11]) + int(stat[12])) / ticks  # utime, stime


def listen_once(mic, runtime_args: list[str], seconds: float, room: Path | None = None) -> dict:
    """One `speech-app listen` process: wait until it listens, play clips for `seconds` (or, given `room`, that
    recording of room noise alone, started before the process and playing throughout), read /proc."""
    clips = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    player = mic.play(room, wait=False) if room is not None else None
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(speech_app("listen", "--format", "jsonl", *runtime_args), stdout=subprocess.PIPE,
                                stderr=err, text=True, env=child_env(), cwd=REPO)
        try:
            runtime = wait_until_listening(proc, err)
            time.sleep(LISTEN_SETTLE_S)
            _, _, cpu_start = proc_figures(proc.pid)
            started = time.perf_counter()
            while player is not None and time.perf_counter() - started < seconds:
                time.sleep(CLIP_GAP_S)
            while player is None and time.perf_counter() - started < seconds:
                for clip in clips:
                    mic.play(clip)
                    time.sleep(CLIP_GAP_S)
                    if time.perf_counter() - started >= seconds:
                        break
            rss, peak, cpu_end = proc_figures(proc.pid)
            wall = time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGINT)  # listen stops cleanly on Ctrl-C
            out, _ = proc.communicate(timeout=30)
            if player is not None:
                mic.silence_players()
    return {"runtime": runtime, "rss_mb": rss, "peak_rss_mb": peak, "cpu_percent": 100 * (cpu_end - cpu_start) / wall,
            "seconds": wall, "detections": sum(1 for line in out.splitlines() if line.startswith("{"))}


def wait_until_listening(proc, err) -> str:
    """The runtime named in listen's "listening on ...; model on X; Ctrl-C to stop" line."""
    deadline = time.monotonic() + LISTEN_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        err.seek(0)
        text = err.read()
        if "model on " in text:
            return text.split("model on ", 1)[1].split(";", 1)[0].strip()
        if proc.poll() is not None:
            raise RuntimeError(f"speech-app listen ended (status {proc.returncode}): {text.strip()[-500:]}")
        time.sleep(0.1)
    raise RuntimeError("speech-app listen did not start listening in time")


def measure_listen_memory(seconds: float) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from virtual_mic import VirtualMicrophone

    # the ONNX copy of the shipped model is made once per model file: made here, before timing
    subprocess.run(speech_app("listen", "--file", str(next(SAMPLES_DIR.glob("yes_*"))), "--format", "jsonl"),
                   env=child_env(), cwd=REPO, capture_output=True, check=True)
    sys.path.insert(0, str(REPO / "benchmarks"))
    import soundfile as sf
    from bench_listen import DEFAULT_DATA, quiet_room_stream

    mic = VirtualMicrophone().start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            room = Path(folder) / "quiet_room.wav"  # long enough to play through the start-up and the measurement
            sf.write(room, quiet_room_stream(seconds + LISTEN_READY_TIMEOUT_S, DEFAULT_DATA), 16_000, subtype="PCM_16")
            return {"auto": listen_once(mic, [], seconds), "torch": listen_once(mic, ["--runtime", "torch"], seconds),
                    "auto_quiet_room": listen_once(mic, [], seconds, room)}
    finally:
        mic.stop()


# --- first custom training --------------------------------------------------------------------------

class StageSplit:
    """CPU seconds by stage, by wrapping the functions that do each stage (as bench_custom_words.py):
    a stage whose function was renamed is simply not split out (it falls into "other")."""

    def __init__(self):
        from speech_app.cli import train as train_cli
        from speech_app.training import custom_words, outputs, side_process, trainer

        self.seconds: dict[str, float] = {}
        self._undo = []
        for owner, name, stage in ((train_cli, "synthesize_custom", "synthesis"),
                                   (train_cli, "synthesize_for", "synthesis"),
                                   (custom_words, "custom_window_seconds", "choosing the window"),
                                   (trainer, "prepare_data", "decoding"),
                                   (custom_words, "conversation_check", "conversation check"),
                                   (outputs, "finish", "report and model file")):
            self._wrap(owner, name, lambda args, stage=stage: stage)
        self._wrap(trainer.Trainer, "execute",
                   lambda args: "estimate" if args[1].runs[0].measure is not None else "training")
        # the estimate in a side process beside the training (side_process.py): its CPU counts once it is waited
        # for; a side process of the training's other runs is counted in the training around it
        self._wrap(side_process.SideCall, "result",
                   lambda args: "estimate" if getattr(args[0], "name", "") == "estimate_aside" else None)

    def _wrap(self, owner, name, stage_of) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        def wrapped(*args, **kwargs):
            if stage_of(args) is None:
                return original(*args, **kwargs)
            started = cpu_seconds()
            try:
                return original(*args, **kwargs)
            finally:
                stage = stage_of(args)
                self.seconds[stage] = self.seconds.get(stage, 0.0) + cpu_seconds() - started

        setattr(owner, name, wrapped)


CUSTOM_ROWS = {  # section -> (words, takes per word (0: from text alone), sample rate of the takes)
    "custom_takes": (FOUR_WORDS, 20, None),
    "custom_text": (FOUR_WORDS, 0, None),
    "custom_8k": (TEN_WORDS, 10, LOW_RATE_HZ),
}


def custom_command(section: str, takes_dir: Path, out: Path, quick_options: list[str]) -> list[str]:
    words, takes, _ = CUSTOM_ROWS[section]
    data = [str(takes_dir)] if takes else ["--synth"]
    return ["train", *data, "--words", ",".join(words), "--out", str(out), "--quiet", *quick_options]


def measure_custom(section: str, work_dir: Path, takes: int | None, quick_options: list[str],
                   fresh_cache: bool = True) -> dict:
    """One training through `speech-app train` (its main(), in this process, so that the stages can be
    timed), by default with an empty cache as a first training has; the model stays in work_dir for the
    listen --file row."""
    from speech_app.cli import main

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_custom_words import take_folder  # real takes, linked or resampled as a phone records them

    words, default_takes, rate = CUSTOM_ROWS[section]
    takes = default_takes if takes is None or not default_takes else takes
    with tempfile.TemporaryDirectory() as tmp:
        if fresh_cache:
            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # a first training: nothing cached
        takes_dir = take_folder(words, takes, Path(tmp) / "takes", rate) if takes else Path(tmp)
        out = work_dir / f"{section}.safetensors"
        command = custom_command(section, takes_dir, out, quick_options)
        split = StageSplit()
        load = os.getloadavg()[0]
        started, started_cpu = time.perf_counter(), cpu_seconds()
        status = main(command)
        wall, cpu = time.perf_counter() - started, cpu_seconds() - started_cpu
    if status != 0:
        raise RuntimeError(f"speech-app {' '.join(command)}: exit status {status}")
    split.seconds["other (imports, index, model set-up)"] = cpu - sum(split.seconds.values())
    shown = " ".join(["speech-app", *command]).replace(str(takes_dir), "TAKES").replace(str(out), "M.safetensors")
    return {"words": list(words), "takes_per_word": takes, "sample_rate_hz": rate or 16_000, "wall_s": wall,
            "cpu_s": cpu, "split_cpu_s": split.seconds, "load_before": load, "model": str(out),
            "command": shown, "cache": "empty" if fresh_cache else "the user's"}


# --- listen --file on a long recording ------------------------------------------------------------

def long_recording(path: Path, max_minutes: float | None) -> tuple[Path, str]:
    """The continuous speech files, sorted and concatenated (at most max_minutes) as 16 kHz 16-bit WAV."""
    import soundfile as sf

    from speech_app.audio import SAMPLE_RATE, load_audio

    files = sorted(p for p in CONTINUOUS_SPEECH.rglob("*") if p.suffix in (".flac", ".wav"))
    limit = int(max_minutes * 60 * SAMPLE_RATE) if max_minutes else None
    written = 0
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as out:
        for file in files:
            samples = load_audio(file)
            if limit is not None:
                samples = samples[: limit - written]
            out.write(samples)
            written += len(samples)
            if limit is not None and written >= limit:
                break
    return path, f"{CONTINUOUS_SPEECH}: {len(files)} files, sorted, concatenated"


def live_detections(model: Path, audio: Path) -> list[tuple[str, float]]:
    """The live path: the recognizer `listen` builds for a microphone, fed 20 ms blocks of the audio."""
    from speech_app.audio import load_audio
    from speech_app.cli import listen
    from speech_app.streaming import iter_blocks

    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    recognizer = listen._make_recognizer(parser.parse_args(["--model", str(model)]))
    found = []
    for block in iter_blocks(load_audio(audio), MIC_BLOCK_SAMPLES):
        found += [(d.label, round(d.time_s, 3)) for d in recognizer.feed(block)]
    found += [(d.label, round(d.time_s, 3)) for d in recognizer.feed(np.zeros(16_000, np.float32))]  # the tail
    return found


def measure_listen_file(model: Path, max_minutes: float | None) -> dict:
    import soundfile as sf

    sys.path.insert(0, str(Path(__file__).parent))
    from bench import run_child  # wall, CPU (rusage of the child and its children), peak

    with tempfile.TemporaryDirectory() as tmp:
        audio, source = long_recording(Path(tmp) / "long.wav", max_minutes)
        audio_s = sf.info(str(audio)).duration
        command = speech_app("listen", "--file", str(audio), "--model", str(model), "--format", "jsonl")
        warm = subprocess.run([*command, "--duration", "1"], env=child_env(), cwd=REPO, capture_output=True, text=True)
        if warm.returncode != 0:  # makes the ONNX copy of the model, once, untimed
            raise RuntimeError(f"listen --file: {warm.stderr.strip()[-500:]}")
        wall, cpu, peak, status, out = run_child(command, {"PYTHONPATH": str(REPO)})
        if status != 0:
            raise RuntimeError(f"listen --file: exit status {status}")
        scanned = [(r["label"], round(r["time"], 3)) for r in map(json.loads, (x for x in out.splitlines() if x.startswith("{")))]
        live = live_detections(model, audio)
    runtime = "PyTorch" if "running on PyTorch" in warm.stderr else "ONNX Runtime"  # listen's note when it falls back
    return {"audio_s": audio_s, "source": source, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak,
            "x_real_time": audio_s / wall, "detections": len(scanned), "live_detections": len(live),
            "same_detections": _same(scanned, live), "runtime": runtime}


def _same(a: list, b: list) -> bool:
    """The same labels at the same times (to the millisecond; the file's JSON rounds its times)."""
    return len(a) == len(b) and all(x[0] == y[0] and abs(x[1] - y[1]) < 0.0015 for x, y in zip(a, b))


# --- live latency ---------------------------------------------------------------------------------

def measure_latency(rounds: int, held_out: int = 0, data_dir: Path | None = None) -> dict:
    """bench_live.py on the sample clips (`rounds` times each); with `held_out` > 0 and a `data_dir` of Speech
    Commands clips, also on that many clips of each command from its held-out speakers (one recording a trial: the
    sample clips' p90 is mostly one clip)."""
    figures = _live_latency(["--rounds", str(rounds)])
    if held_out > 0 and data_dir is not None and data_dir.is_dir():
        figures["held_out"] = _live_latency(["--held-out", str(held_out), "--data-dir", str(data_dir)])
    return figures


def _live_latency(options: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "live.json"
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_live.py"), *options, "--json", str(out)],
                       env=child_env(), cwd=REPO, check=True, capture_output=True)
        result = json.loads(out.read_text())
    latency = result["latency_ms"]
    return {"trials": result["trials"], "correct_once": result["correct_once"], "cpu_percent": result["cpu_percent_of_one_core"],
            "recordings": result.get("recordings"),
            **{k: latency[k] for k in ("wall_median", "wall_p90", "stream_median", "stream_p90", "clip_end_median",
                                       "clip_end_p90")}}
