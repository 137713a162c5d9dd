"""Continuous speech as negatives of the custom-word recipe: windows of people talking.

Every other negative the recipe has is one word between pauses, so a model learns "a word alone is
not mine" but has never heard speech that runs on: left listening to a conversation, it took a third
of all windows for "computer" (benchmarks/CONVERSATION.md). Here recordings of ordinary speech are cut
into windows of the model's length at every half window, whatever they cut (words cut mid-way
included), and written once to a cache the trainer decodes like any clip.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioDecodeError, is_audio_file, load_audio, seconds_to_samples, write_wav
from ..cache import cache_folder
from ..streaming import DETECTION_THRESHOLD

WINDOW_HOP_FRACTION = 0.5  # windows start every half window: each stretch of speech is seen twice, cut two ways
QUIET_RMS = 0.003  # windows quieter than this (about -50 dBFS) are pauses, which `_silence_` covers


def conversation_cache_root() -> Path:
    return cache_folder("conversation")


def speech_files(folder: Path | None) -> list[Path]:
    """The recordings of continuous speech in `folder` (any depth), sorted; none for None or no folder."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_audio_file(p))


def conversation_windows(files: list[Path], window_seconds: float, cache_root: Path | None = None) -> list[Path]:
    """Window-long clips of the recordings (cut at every half window, pauses left out), written once:
    the cache is keyed by the files' names and sizes and the window."""
    request = {"files": [f"{Path(f).name} {Path(f).stat().st_size}" for f in files], "window": window_seconds}
    key = hashlib.sha1(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    folder = (cache_root or conversation_cache_root()) / key
    done = folder / ".complete.json"
    if done.is_file():
        return [folder / name for name in json.loads(done.read_text())["clips"]]
    window = seconds_to_samples(window_seconds)
    hop = max(1, int(window * WINDOW_HOP_FRACTION))
    names = []
    for n, path in enumerate(files):
        try:
            audio = load_audio(path)
        except AudioDecodeError:
            continue  # a damaged bundled file costs its windows, not the training
        for start in range(0, max(1, len(audio) - window + 1), hop):
            clip = audio[start : start + window]
            if np.sqrt(np.mean(clip.astype(np.float64) ** 2)) < QUIET_RMS:
                continue
            names.append(f"{n:04d}_{start // SAMPLE_RATE:05d}_{start % SAMPLE_RATE:05d}.wav")
            write_wav(folder / names[-1], clip)
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps({**request, "clips": names}))
    return [folder / name for name in names]


# ---------------------------------------------------------------------------------------- the dataset recipe

CONVERSATION_SOURCE = "conversation"  # Example.source of the windows: drawn by their own share (draws.sampling_weights)
CONVERSATION_WINDOW_SECONDS = 1.0  # a run from scratch chooses its window later: Speech Commands' length


def with_conversation(index, folders: list[Path], window_seconds: float):
    """The index with windows of the recordings in `folders` added as `_unknown_` training clips
    (`speech-app train --conversation`): a word said inside a sentence is not a command either."""
    from dataclasses import replace

    from ..data.dataset import UNKNOWN_LABEL, Example

    files = [f for folder in folders for f in speech_files(Path(folder))]
    if not files:
        raise ValueError(f"no recordings of speech in {', '.join(map(str, folders))}")
    windows = conversation_windows(files, window_seconds)
    added = [Example(str(path), UNKNOWN_LABEL, "training", "conversation", CONVERSATION_SOURCE) for path in windows]
    return replace(index, examples=list(index.examples) + added)


# ---------------------------------------------------------------------------------------- calibration

CALIBRATION_BUDGET_PER_HOUR = 0.5  # false alarms per hour of conversation a word's own threshold allows
# a calibrated threshold never goes below the default one: a few minutes without a false alarm say too little to
# lower it (measured: with a floor of 0.5, "jarvis" went down to 0.5 after 4 min and the model gave 61.8 false
# alarms per hour on the benchmark's speakers against 49.5 at 0.70; training/studies/CONVERSATION_STUDY.md)
CALIBRATION_FLOOR = DETECTION_THRESHOLD
CALIBRATION_STEPS = 10  # bisection steps: the threshold to within (1 - floor) / 2**10
NEVER = 1.01  # a threshold no probability reaches: the word is silenced in a calibration replay
CURVE_THRESHOLDS = tuple(float(round(t, 2)) for t in (*np.arange(0.5, 0.851, 0.05), *np.arange(0.86, 0.975, 0.01)))


class _Labels:
    """What a recognizer needs of a classifier to decide on recorded evaluations: the labels."""

    window_samples = 1

    def __init__(self, labels: list[str]):
        self.labels = list(labels)

    def probabilities(self, waves):
        raise AssertionError("a replay runs no model")


def decider(labels: list[str], settings=None):
    """A StreamingRecognizer that only decides (`replay`) on evaluations recorded from a model with `labels`."""
    from ..streaming import RecognizerSettings, StreamingRecognizer

    return StreamingRecognizer(_Labels(labels), settings or RecognizerSettings())


def record_evaluations(classifier, audio: np.ndarray, settings=None) -> list[tuple[int, np.ndarray]]:
    """Every evaluation of the streaming recognizer over `audio`, as `speech-app listen --file` makes them."""
    from ..levels import Evaluations
    from ..streaming import StreamingRecognizer, recognize_samples

    recognizer = StreamingRecognizer(classifier, settings)
    recognizer.recorded = Evaluations()  # with the stream's levels: the pause rule replays too
    recognize_samples(recognizer, audio, block_samples=10 * SAMPLE_RATE)  # the block size changes nothing
    return recognizer.recorded


@contextmanager
def listening_copy(trainer):
    """The trainer's model as `listen` runs it (CPU, float32, eval mode); on exit the model is back on the
    trainer's device (training goes on after it, or the model file is written from it)."""
    from ..inference import CommandClassifier
    from ..modelfile import ModelBundle

    device = next(trainer.model.parameters()).device
    try:
        yield CommandClassifier(ModelBundle(trainer.model, list(trainer.index.labels), trainer.features), "cpu", "float32")
    finally:
        trainer.model.to(device)


# ---------------------------------------------------------------------------------------- the words heard

TAKE_LEAD_SECONDS = 0.5  # silence before each held-out take, as before a word said to a listening app


def record_takes(classifier, takes: list[tuple[str, np.ndarray]], settings=None) -> list[tuple[str, list]]:
    """(word, every evaluation of the streaming recognizer) for each take alone, padded with silence: the
    lead before it and FILE_TAIL_SECONDS after it (`recognize_samples`), as `listen` would hear it."""
    lead = np.zeros(seconds_to_samples(TAKE_LEAD_SECONDS), dtype=np.float32)
    return [(word, record_evaluations(classifier, np.concatenate([lead, audio]), settings)) for word, audio in takes]


def heard_curve(labels: list[str], takes: list[tuple[str, list]], settings=None,
                thresholds=CURVE_THRESHOLDS) -> list[tuple[float, float]]:
    """(threshold, share of the takes heard) with every word at that threshold, from the evaluations of
    `record_takes`. A take is heard when its own word is detected. It counts at a threshold only if it is
    heard there and at every lower one of `thresholds`: a wrong word detected first at a low threshold can
    hold the right one back (the suppression time), so the share could rise with the threshold; counted
    so, it never does, and it is never more than the replay at that threshold gives."""
    from ..streaming import RecognizerSettings

    if not takes:
        return []
    settings, thresholds = settings or RecognizerSettings(), sorted(thresholds)
    heard = np.array([takes_heard(labels, takes, one_threshold(settings, t)) for t in thresholds])
    heard = np.logical_and.accumulate(heard, axis=0)  # thresholds ascending: heard at every lower one too
    return [(t, float(row.mean())) for t, row in zip(thresholds, heard)]


def calibrate_thresholds(labels: list[str], evaluations, hours: float, settings=None,
                         budget_per_hour: float = CALIBRATION_BUDGET_PER_HOUR,
                         floor: float = CALIBRATION_FLOOR) -> dict[str, float]:
    """Each word's lowest threshold (not under `floor`) whose detections in the recorded conversation (all
    false alarms), with the other words silenced, stay within its share of the budget (budget / words)."""
    from dataclasses import replace

    from ..streaming import BACKGROUND_LABELS, RecognizerSettings

    settings = settings or RecognizerSettings()
    words = [label for label in labels if label not in BACKGROUND_LABELS]
    allowed = budget_per_hour * hours / len(words)
    thresholds = {}
    for word in words:
        silenced = {w: NEVER for w in words if w != word}

        def fires(threshold: float) -> int:
            chosen = replace(settings, word_thresholds={**silenced, word: threshold})
            return len(decider(labels, chosen).replay(evaluations))

        low, high = floor, 1.0
        if fires(low) <= allowed:
            thresholds[word] = low
            continue
        for _ in range(CALIBRATION_STEPS):
            middle = (low + high) / 2
            low, high = (low, middle) if fires(middle) <= allowed else (middle, high)
        thresholds[word] = min(1.0, math.ceil(high * 1000) / 1000)  # rounded up: never under a value that passed
    return thresholds


def false_alarm_curve(labels: list[str], evaluations, hours: float, settings=None,
                      thresholds=CURVE_THRESHOLDS) -> list[tuple[float, float]]:
    """(threshold, false alarms per hour) with every word at that threshold, from recorded evaluations."""
    from ..streaming import RecognizerSettings

    settings = settings or RecognizerSettings()
    return [(t, len(decider(labels, one_threshold(settings, t)).replay(evaluations)) / hours) for t in thresholds]


def one_threshold(settings, threshold: float):
    """The settings with every word at `threshold` (a curve's point: no word's own threshold)."""
    from dataclasses import replace

    return replace(settings, threshold=threshold, word_thresholds={})


def takes_heard(labels: list[str], takes: list[tuple[str, list]], settings=None) -> list[bool]:
    """For each (word, recorded evaluations) of `record_takes`: whether its own word is detected."""
    return [word in {d.label for d in decider(labels, settings).replay(evaluations)} for word, evaluations in takes]


# ---------------------------------------------------------------------------------------- the recipe's check

BUNDLED_SPEECH = Path(__file__).resolve().parents[1] / "data" / "conversation_data"
TRAIN_SPEECH = BUNDLED_SPEECH / "train"  # cut into `_unknown_` windows
CALIBRATION_SPEECH = BUNDLED_SPEECH / "calibrate"  # never trained on: the check after training
POISSON_BOUND_Z = 2.3  # events: the one-sided 90% upper bound of a Poisson rate after 0 events (-ln 0.1)


HEARD_METHOD = {
    True: "the curve's third value: the share of the estimate's held-out takes (never trained on by the run "
          "that heard them, half the batches, no second pass) whose word the streaming recognizer detects, each "
          "take alone with silence around it, counted at a threshold only if also heard at every lower one",
    False: "no share of the words heard: the model has no held-out takes of the user's (from text alone, "
           "synthetic voices would say how well it hears synthetic voices, or the estimate was skipped)"}


@dataclass
class ConversationCheck:
    """What a custom model does while people talk: measured on continuous speech it never trained on."""

    minutes: float  # of speech listened to
    budget_per_hour: float  # the false alarms per hour the words' own thresholds were set for
    thresholds: dict[str, float]  # each word's own threshold (the lowest within its share of the budget)
    false_alarms: int  # at the model's own decision settings (`settings`: what `listen` and the Live tab use)
    # [threshold, false alarms per hour, share of held-out takes heard] with every word at that threshold;
    # without held-out takes (from text alone, or no estimate) only the first two
    curve: list[list[float]]
    heard: list[int] | None = None  # [held-out takes heard at `settings`, held-out takes]; None: none
    # the decision settings of `false_alarms`, `heard` and the curve (its threshold varies): decision.MODEL_FIELDS
    # of the settings the model is listened with; None: a model file from before they were recorded (the defaults)
    settings: dict | None = None

    @property
    def per_hour(self) -> float:
        return self.false_alarms / (self.minutes / 60.0)

    @property
    def per_hour_bound(self) -> float:
        """How high the rate may really be: a 90% upper bound (after no false alarm, 2.3 per listened time)."""
        hours = self.minutes / 60.0
        return (self.false_alarms + POISSON_BOUND_Z * math.sqrt(self.false_alarms + 1)) / hours

    def lines(self) -> list[str]:
        words = ", ".join(f"{w} {t:.2f}" for w, t in self.thresholds.items())
        heard = (f"; {self.heard[0]} of {self.heard[1]} held-out takes heard at them" if self.heard else "")
        return [f"False alarms while people talk: {self.false_alarms} in {self.minutes:.1f} min of conversation at "
                f"{self.settings_text()} ({self.per_hour:.1f} per hour; likely under {self.per_hour_bound:.0f} per "
                f"hour{heard}); {self.budget_per_hour:g} per hour needs at least: {words}"]

    def settings_text(self) -> str:
        from ..decision import describe, settings_for

        if not self.settings:
            return "the default settings"
        return f"its listening settings ({describe(settings_for({'streaming': self.settings}))})"

    def to_dict(self) -> dict:
        return {**asdict(self), "per_hour": self.per_hour, "per_hour_bound": self.per_hour_bound,
                "method": "the streaming recognizer at the model's own decision settings (`settings`) on the "
                          "package's calibration speech "
                          "(speakers never trained on); thresholds: each word's lowest for the budget, not under "
                          f"{CALIBRATION_FLOOR}; curve: every word at one threshold; " + HEARD_METHOD[self.heard is not None]}


def check_conversation(bundle, files: list[Path] | None = None,
                       budget_per_hour: float = CALIBRATION_BUDGET_PER_HOUR,
                       takes: list[tuple[str, list]] = (), settings=None) -> ConversationCheck | None:
    """Listen to continuous speech (default: the package's calibration speech) as `listen` would with
    `settings` (default: the model's own, decision.settings_for its metadata), set each word's threshold to
    the budget and say how many false alarms remain; None without speech. With `takes` (`record_takes` of
    held-out takes), the curve also says the share of them heard at each threshold."""
    from ..decision import MODEL_FIELDS, settings_for
    from ..inference import CommandClassifier

    files = speech_files(CALIBRATION_SPEECH) if files is None else files
    audio = [load_audio(f) for f in files]
    if not audio:
        return None
    speech = np.concatenate(audio)
    hours = len(speech) / SAMPLE_RATE / 3600.0
    classifier = CommandClassifier(bundle, "cpu", "float32")
    settings = settings or settings_for(bundle.info)  # what `listen` and the Live tab use
    evaluations = record_evaluations(classifier, speech, settings)
    thresholds = calibrate_thresholds(bundle.labels, evaluations, hours, settings, budget_per_hour=budget_per_hour)
    left = decider(bundle.labels, settings).replay(evaluations)
    curve = [[t, round(r, 2)] for t, r in false_alarm_curve(bundle.labels, evaluations, hours, settings)]
    heard = None
    if takes:
        curve = [row + [round(share, 4)] for row, (_, share) in zip(curve, heard_curve(bundle.labels, takes, settings))]
        heard = [sum(takes_heard(bundle.labels, takes, settings)), len(takes)]
    return ConversationCheck(round(hours * 60, 2), budget_per_hour, thresholds, len(left), curve, heard,
                             {name: getattr(settings, name) for name in MODEL_FIELDS})
