"""One Festival process that speaks utterance after utterance, instead of one `text2wave` per utterance.

Festival spends most of a short utterance starting up: loading its Scheme library, lexicon and voice
(about 0.3 s of CPU against a few ms of synthesis). A session starts `festival --pipe` once and
sends it, per utterance, the same `-eval` forms text2wave would evaluate and then the steps of
text2wave's own main (tts_file with a hook that saves the wave as RIFF), so the samples are the same.
After each utterance Festival prints a marker line; the session waits for it with a deadline, so a
hung engine is killed and reported in one line, and a dead one is reported and started again on the
next utterance. A session belongs to the process that started it: a forked worker starts its own.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
from pathlib import Path

DONE_MARKER = "speech-app-festival-done"
STDERR_TAIL_CHARS = 200  # of Festival's error output quoted in a SynthesisError
READ_CHUNK_BYTES = 4096

# text2wave's main, per call: a RIFF file written by a tts hook, its header updated with the total
# number of samples at the end. (Defined once per process; globals, as text2wave's are.)
SETUP = r"""
(gc-status nil)
(defvar speech_app_fp nil)
(defvar speech_app_samples 0)
(defvar speech_app_utt nil)
(define (speech_app_save utt)
  (if (eq? speech_app_samples 0)
      (wave.save.header speech_app_fp (utt.wave utt) 'riff nil (list (list "numsamples" 0))))
  (set! speech_app_samples (+ speech_app_samples (get_param 'num_samples (wave.info (utt.wave utt)) 0)))
  (wave.save.data.fp (utt.wave utt) speech_app_fp 'riff nil)
  (set! speech_app_utt utt))
(define (speech_app_text2wave textfile outfile)
  (set! tts_hooks (list utt.synth speech_app_save))
  (set! speech_app_samples 0)
  (set! speech_app_utt nil)
  (set! speech_app_fp (fopen outfile "wb"))
  (tts_file textfile (tts_find_text_mode textfile auto-text-mode-alist))
  (fseek speech_app_fp 0 0)
  (wave.save.header speech_app_fp (utt.wave speech_app_utt) 'riff nil (list (list "numsamples" speech_app_samples)))
  (fclose speech_app_fp))
"""


class SessionError(Exception):
    """Festival gave no result: it stopped, hung past the deadline, or reported an error."""


def scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalSession:
    """A `festival --pipe` process of this process, started on first use."""

    def __init__(self, timeout_seconds: float, command: tuple[str, ...] = ("festival", "--pipe")):
        self.timeout_seconds = timeout_seconds
        self.command = command
        self._process: subprocess.Popen | None = None
        self._owner = 0  # the pid that started the process: a forked child must not share its pipes
        self._folder: tempfile.TemporaryDirectory | None = None
        self._count = 0

    def synthesize(self, evals: list[str], text: str, wav_path: Path) -> None:
        """Evaluate `evals` (text2wave's -eval forms), then speak `text` into `wav_path` as text2wave would."""
        setup = self._start()
        self._count += 1
        text_path = Path(self._folder.name) / "text"
        text_path.write_text(text, encoding="utf-8")
        stderr_start = self._stderr_path().stat().st_size
        marker = f"{DONE_MARKER} {self._count}"
        forms = [*evals, f"(speech_app_text2wave {scheme_string(str(text_path))} {scheme_string(str(wav_path))})",
                 f'(begin (format t "{marker}\\n") (fflush nil))']
        try:
            self._process.stdin.write((setup + "\n".join(forms) + "\n").encode("utf-8"))
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SessionError(self._stopped()) from None
        self._wait_for(marker)
        errors = self._stderr_since(stderr_start)
        if "ERROR" in errors:  # SIOD reports an error and goes on with the next form
            raise SessionError(errors[-STDERR_TAIL_CHARS:])

    def close(self) -> None:
        """End the process (if this process started it): stdin closed, then killed if it lingers."""
        if self._process is not None and self._owner == os.getpid():
            try:
                self._process.stdin.close()
                self._process.wait(timeout=self.timeout_seconds)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
        if self._folder is not None and self._owner == os.getpid():
            self._folder.cleanup()
        self._process, self._folder, self._owner = None, None, 0

    def _start(self) -> str:
        """Start the process unless it runs; what to send it first (the set-up, or nothing)."""
        if self._owner != os.getpid():  # a fresh process, or a fork of the one that started it
            self._process, self._folder = None, None
        if self._process is not None and self._process.poll() is None:
            return ""
        if self._process is not None:
            self.close()
        self._folder = tempfile.TemporaryDirectory(prefix="speech-app-festival-")
        with open(self._stderr_path(), "wb") as stderr:
            try:
                self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=stderr)
            except OSError as err:
                self._folder.cleanup()
                self._folder = None
                raise SessionError(f"cannot run {self.command[0]} ({err})") from None
        self._owner = os.getpid()
        self._buffer = b""
        return SETUP

    def _stderr_path(self) -> Path:
        return Path(self._folder.name) / "stderr"

    def _stderr_since(self, offset: int) -> str:
        with open(self._stderr_path(), "rb") as stderr:
            stderr.seek(offset)
            return " ".join(stderr.read().decode("utf-8", "replace").split())

    def _stopped(self) -> str:
        """Why the process ended, in one line; the next utterance starts another."""
        status = self._process.wait()
        detail = self._stderr_since(0)[-STDERR_TAIL_CHARS:] or f"exit status {status}"
        self.close()
        return f"the engine stopped: {detail}"

    def _wait_for(self, marker: str) -> None:
        """Read stdout until the marker line; kill the process when the deadline passes first."""
        stdout = self._process.stdout.fileno()
        deadline = _now() + self.timeout_seconds
        while (marker + "\n").encode() not in self._buffer:
            left = deadline - _now()
            ready = select.select([stdout], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self._process.kill()
                self.close()
                raise SessionError(f"no result after {self.timeout_seconds:.0f} s")
            chunk = os.read(stdout, READ_CHUNK_BYTES)
            if not chunk:
                raise SessionError(self._stopped())
            self._buffer += chunk
        self._buffer = self._buffer.split((marker + "\n").encode(), 1)[1]


def _now() -> float:
    import time

    return time.monotonic()
