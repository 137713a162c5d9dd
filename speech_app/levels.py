"""The loudness of a stream, 10 ms frame by frame, and the "pause before the word" rule of the recognizer.

Commands and wake words are said after a pause; a word inside running speech is not (issue 22: a command
said inside a sentence is not a command to the app either). When the streaming recognizer is about to
detect a word, `pause_before` asks whether the audio shows a stretch of relative quiet just before the
word's loud part. "Quiet" is relative, never an absolute level, so a faint microphone, a loud one and a
noisy room are judged alike:
- the noise floor: a low percentile of the frame levels of the last few seconds (the level the stream
  falls back to between words, whatever the room's noise is), and
- the word's own loudness: its loudest frame in the span the word may lie in.
A frame is quiet when it is near the floor or far below the word. The pause must lie before the last loud
frame of the span (so the silence after a word, while the recognizer is deciding, does not count) and end
inside the span (the word's onset is at most ONSET_SPAN_MS before its detection).

Everything is known when the word is detected: the rule adds no latency. The bookkeeping is one level per
10 ms of audio, the last KEEP_FRAMES of them kept; a recording of evaluations (`Evaluations`) keeps all of
them, so that `StreamingRecognizer.replay` decides exactly as the live run did.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE

FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms: finer than the shortest pause between words worth telling apart
SILENT_DB = -120.0  # the level of digital silence (power 1e-12): below any recorded noise floor
# frames at most this level are digital silence (exact zeros: padding, a muted input), not a room: they stay out of
# the noise floor, which would otherwise fall to SILENT_DB and leave only the word's loudness to judge by (16-bit
# audio's faintest non-zero frame is near -100 dB)
DIGITAL_SILENCE_DB = SILENT_DB + 1.0
FLOOR_SECONDS = 5.0  # the noise floor is taken over this much recent audio: several words and pauses
FLOOR_PERCENTILE = 10.0  # ... at this percentile: the level between words, not the words
QUIET_OVER_FLOOR_DB = 6.0  # a frame at most this far above the floor is quiet
QUIET_UNDER_PEAK_DB = 30.0  # ... and so is a frame this far below the word's loudest frame (a clean stream's floor
# may be digital silence, and a faint room tone between words still counts as a pause)
BLIP_MS = 30.0  # a louder stretch this short inside a pause does not end it (a click, a clatter of the room's noise)
MIN_WORD_MS = 250.0  # the pause ends at least this long before the detection: the word after it has been heard
MIN_CONTRAST_DB = 6.0  # a word is at least this much louder than a pause, whatever the floor (a word on digital
# silence is the only sound the floor sees)
ONSET_SPAN_MS = 1200.0  # the word's onset lies at most this long before its detection (the model's 1 s window,
# plus the latency of the averaging and hold)
KEEP_FRAMES = int((max(FLOOR_SECONDS, 2 * ONSET_SPAN_MS / 1000) + 2) * 100)  # levels kept by a live stream


def frame_levels(samples: np.ndarray) -> np.ndarray:
    """dB (re full scale, mean square) of each whole FRAME_SAMPLES frame of `samples`."""
    n = len(samples) // FRAME_SAMPLES
    frames = np.asarray(samples[: n * FRAME_SAMPLES], dtype=np.float64).reshape(n, FRAME_SAMPLES)
    return (10.0 * np.log10(np.mean(frames * frames, axis=1) + 10 ** (SILENT_DB / 10))).astype(np.float32)


class FrameLevels:
    """The level of every whole 10 ms frame fed so far (frame i covers samples [160 i, 160 (i + 1))); the last
    `keep_frames` of them before each block and the whole block are kept (None: all of them)."""

    def __init__(self, keep_frames: int | None = KEEP_FRAMES):
        self.keep_frames = keep_frames
        self.reset()

    def reset(self) -> None:
        self._db = np.zeros(0, dtype=np.float32)
        self._first = 0  # absolute index of self._db[0]
        self._partial = np.zeros(0, dtype=np.float32)  # samples of a frame not yet whole

    @classmethod
    def of(cls, db: np.ndarray) -> "FrameLevels":
        """Levels recorded earlier (`all`), whole: what a replay decides on."""
        levels = cls(None)
        levels._db = np.asarray(db, dtype=np.float32)
        return levels

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Take the next samples of the stream; the levels of the frames they complete."""
        joined = np.concatenate([self._partial, np.asarray(samples, dtype=np.float32)])
        new = frame_levels(joined)
        self._partial = joined[len(new) * FRAME_SAMPLES :]
        if self.keep_frames is not None and len(self._db) > self.keep_frames:
            drop = len(self._db) - self.keep_frames
            self._db, self._first = self._db[drop:], self._first + drop
        self._db = np.concatenate([self._db, new])
        return new

    def all(self) -> np.ndarray:
        return self._db

    def span(self, start: int, end: int) -> np.ndarray:
        """The levels of frames [start, end) (absolute); frames before the stream's start are silence: a word
        at the very start of a stream follows a pause (the app started listening)."""
        kept = self._db[max(0, start - self._first) : max(0, end - self._first)]
        return np.concatenate([np.full(max(0, -start), SILENT_DB, dtype=np.float32), kept]) if start < 0 else kept


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of True in `mask` (end exclusive)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def fill_blips(quiet: np.ndarray, blip_frames: int) -> np.ndarray:
    """`quiet` with every loud run of at most `blip_frames` between two quiet frames made quiet."""
    if blip_frames <= 0:
        return quiet
    starts, ends = runs(~quiet)
    filled = quiet.copy()
    for start, end in zip(starts, ends):
        if end - start <= blip_frames and start > 0 and end < len(quiet):
            filled[start:end] = True
    return filled


def pause_before(levels: FrameLevels, at_sample: int, pause_ms: float) -> bool:
    """Whether the audio up to `at_sample` shows at least `pause_ms` of quiet that ends (the word's onset) between
    ONSET_SPAN_MS and MIN_WORD_MS before it."""
    end = at_sample // FRAME_SAMPLES
    pause, onset_span = int(round(pause_ms / 10)), int(round(ONSET_SPAN_MS / 10))
    min_word = int(round(MIN_WORD_MS / 10))
    recent = levels.span(max(0, end - int(FLOOR_SECONDS * 100)), end)
    span = levels.span(end - onset_span - pause, end)
    if len(recent) == 0 or len(span) == 0:
        return True  # nothing heard yet: the stream's start is a pause
    sounding = recent[recent > DIGITAL_SILENCE_DB]
    floor = float(np.percentile(sounding, FLOOR_PERCENTILE)) if len(sounding) else SILENT_DB
    peak = float(span[-onset_span:].max())
    quiet_below = min(max(floor + QUIET_OVER_FLOOR_DB, peak - QUIET_UNDER_PEAK_DB), peak - MIN_CONTRAST_DB)
    quiet = fill_blips(span <= quiet_below, int(round(BLIP_MS / 10)))
    starts, ends = runs(quiet)  # a run ending at the span's end is the silence after a word, not before one
    onsets = len(span) - ends  # frames before the detection
    return bool(np.any((ends - starts >= pause) & (onsets >= min_word) & (onsets <= onset_span)))


class Evaluations(list):
    """The evaluations a recognizer recorded ((sample count at the hop's end, class probabilities), as a list)
    with the levels of the stream they were made on (one per 10 ms frame), so that a replay can apply the
    pause rule too. A plain list of evaluations replays without the rule only."""

    def __init__(self, rows=(), levels: np.ndarray | None = None):
        super().__init__(rows)
        self._chunks = [] if levels is None else [np.asarray(levels, dtype=np.float32)]

    def add_levels(self, db: np.ndarray) -> None:
        self._chunks.append(db)

    def save(self, path) -> None:
        """Into an .npz file (benchmarks cache a model's evaluations of a long stream and replay them)."""
        np.savez(path, at=np.array([a for a, _ in self], dtype=np.int64),
                 rows=np.stack([r for _, r in self]).astype(np.float32), levels=self.levels)

    @classmethod
    def load(cls, path) -> Evaluations | None:
        """What `save` wrote; None where there is no file or it is from before the levels were kept."""
        try:
            data = np.load(path)
        except FileNotFoundError:
            return None
        if "levels" not in data:
            return None
        return cls(zip(data["at"].tolist(), data["rows"]), data["levels"])

    @property
    def levels(self) -> np.ndarray:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate([np.zeros(0, np.float32), *self._chunks])]
        return self._chunks[0]
