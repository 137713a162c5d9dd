"""Custom words from a few takes: the one recipe behind `speech-app train` on folders of takes (or
`--words ... --synth` alone) and the GUI's Custom words tab.

A handful of takes cannot train a speech model, but they can steer one that already knows real
voices. The recipe:
- starts from the shipped model (its encoder, its feature and model settings);
- trains on the takes, synthetic speech of the same words, and negatives: the bundled real clips
  of other words, synthetic filler words and near misses of each word (`_unknown_`), and noise
  (`_silence_`), with every draw augmented (speed, shift, gain, noise, SpecAugment);
- for a fixed budget of steps, with no early stopping: 1-3 validation clips would decide nothing;
- then a short second pass on the windows of conversation speech the model fires on (hard_negatives.py);
- and estimates what the user will get from held-out clips: a third of the takes and of the bundled
  negative speakers are held out while a run of half the budget trains on the rest (or, with K runs,
  each take and each negative speaker is held out once by rotation).
Both are TrainingPlans (plan.py) that the Trainer executes on the clips it decoded once:
`estimate_plan` and `final_plan`, drawing by the recipe's class and group shares (`class_draws`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio import is_audio_file
from ..data.augment import AugmentConfig
from ..data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, DatasetIndex, Example, speaker_of, word_folders
from ..data.negatives import bundled_noise, bundled_speech
from ..decision import settings_record
from ..synth.generator import SynthVariety
from .adapt import freeze, rate_shares
from .draws import ClassDraw, share_weights
from .plan import RunOutcome, RunSpec, StepSchedule, TrainingPlan

NEGATIVES_CREDIT = ("Negatives: real clips and background noise from Speech Commands: A Dataset for "
                    "Limited-Vocabulary Speech Recognition, P. Warden, 2018 (CC BY 4.0)")
TAKES_MINIMUM = 5  # per word: fewer and the warning says the model will be unreliable
TAKES_ENOUGH = 20  # per word: more takes still help, but little
TEXT_ONLY_WINDOW_SECONDS = 1.5  # room for a long word or a short phrase when no take says how long it is
WINDOW_SAMPLE_TAKES = 200  # takes decoded to choose the window
# The fewer the takes, the more of each batch is synthetic speech and negatives, and the longer the
# model needs to learn them: measured on another draw of takes than the study's, 5 takes per word
# went from 90.7% to 94.1% of other takes (rejection 96.8% -> 99.3%) with 320 batches instead of 160.
# With no takes at all, the words are synthetic voices only, and a longer run fits those voices
# rather than speech: text only, 320 batches recognized 85.3% of real takes, 160 batches 87.7%. That was with every
# weight training; with the lower layers kept as they were (text_only_trainable), they cannot learn the synthetic
# voices, and 320 batches let the top layer learn the words and reject conversation (CONVERSATION_STUDY.md,
# fourteenth session: learn-side estimate of bundled negatives rejected 84.7% with 160 batches, 93.2% with 320)
STEPS_ENOUGH_TAKES = 160  # batches when every word has TAKES_ENOUGH takes or more
STEPS_FEW_TAKES = 320  # batches when a word has TAKES_MINIMUM takes or fewer
STEPS_TEXT_ONLY = 320  # batches when no word has takes
ESTIMATE_SEED_OFFSET = 7919  # the estimate's runs draw other batches than the final run
ONE_RUN_FOLDS = 3  # a single estimate run holds out one fold of this many
ESTIMATE_STEP_FRACTION = 0.5  # of the final run's batches, per estimate run (when not set)
# why a custom model names its own decision settings (the model file's `streaming.why`)
LISTENING_WHY = ("the custom-word recipe's listening settings (listen_threshold, listen_averaging_ms, listen_hold_ms, "
                 "listen_pause_ms)")
# the estimate also says how low the true figure may be: the Wilson score bound at about 90%
# one-sided confidence (z = 1.28). 10 of 10 held-out takes only says "at least 86%", not "100%"
# (measured: a 5-take model whose 10 held-out takes were all right recognized 84.8% of 290 others)
LOWER_BOUND_Z = 1.28


def lower_bound(right: int, total: int, z: float = LOWER_BOUND_Z) -> float:
    """The Wilson score lower bound of a proportion: what `right` of `total` rules out as too good."""
    if total == 0:
        return 0.0
    p = right / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (centre - spread) / (1 + z * z / total))

# what each training draw is: a class's share of the draws is split among these groups
TAKE, SYNTH_WORD, SILENCE, REAL_NEGATIVE, FILLER, NEAR_MISS, CONVERSATION, HARD_NEGATIVE = range(8)


@dataclass(frozen=True)
class CustomWordsRecipe:
    """The recipe's settings. A field with `help` metadata is a `speech-app train` option, built from
    the field (cli/train.py); the dataset recipe's TrainConfig shares some of those options."""

    # batches of the final model; None: by the takes (see `step_budget`)
    steps: int | None = field(default=None, metadata={
        "help": "training batches",
        "default_text": f"{STEPS_FEW_TAKES} with {TAKES_MINIMUM} takes a word or fewer, down to "
                        f"{STEPS_ENOUGH_TAKES} with {TAKES_ENOUGH} or more; {STEPS_TEXT_ONLY} from text alone"})
    batch_size: int = 48
    learning_rate: float = 1e-3  # fine-tuning: half the rate of training from scratch
    warmup_steps: int = 16
    speed: float = 0.15  # each draw is played at a random speed in [1 - this, 1 + this]
    # from text alone (no word has takes), unless `speed` is set to another value: the synthetic
    # voices need more variety. Measured (variants, text only, seeds 1 and 2): 0.25 recognized
    # 90.7% / 95.7% of real takes against 90.0% / 94.0% with 0.15, rejection 99.2% / 98.9% (was 99.5% / 99.2%)
    text_only_speed: float = 0.25
    synth_per_word: int = field(default=150, metadata={"help": "synthetic clips of each word"})  # 0: none
    near_miss_clips: int = 12  # synthetic clips of each near miss of each word
    silence_share: float = 0.10  # of all draws
    unknown_share: float = 0.45  # of all draws; the words share the rest equally
    synthetic_share: float = 0.4  # of a word's draws, when it has takes (all of them when it has none)
    # with TAKES_MINIMUM takes or fewer of a word (the word with the fewest decides), this share instead, moving in a
    # straight line to synthetic_share at TAKES_ENOUGH (`synthetic_share_for_takes`; None: synthetic_share always):
    # five takes are five voices, and a model that draws 60% of a word from them calls other people's takes
    # `_unknown_`. Chosen on the learn side (CONVERSATION_STUDY.md, thirteenth session: 5 takes, seeds 0-2, isolated
    # spare takes 89.2% -> 90.8%, takes heard the same). Measured, five seeds: isolated takes 90.1% -> 91.0%, takes
    # heard 90.0% both, false alarms 0.5 -> 0.2 an hour
    few_takes_synthetic_share: float | None = 0.6
    # of the `_unknown_` draws: near misses cost real takes at 0.2 (see negatives.py); the study used 0.1
    near_miss_share: float = 0.1
    # synthetic voices: only those whose licence lets the user ship the model (as `synth --commercial-voices`;
    # `train --all-voices` adds the others). Measured free (variants, text only, seeds 1 and 2): 93.7% / 94.0%
    # of real takes without RHVoice's two non-commercial voices against 92.3% / 94.7% with them
    commercial_voices: bool = True
    # prosody, room and noise, espeak-ng's share; clips as long as the text-only window, so that a slow
    # word is not squeezed into one second and the room and noise fill the model's whole window.
    # Measured (variants, text only, seeds 1 and 2): 94.0% / 95.0% of real takes against 93.7% / 94.0% with
    # one-second clips; with text_only_filler_share too, seeds 1-3: 95.0% / 97.0% / 98.0% (93.7% / 94.0% / 94.7%).
    # Not confirmed by the study's four training seeds: 93.9% on average against 94.2%
    # (training/studies/CUSTOM_WORDS_STUDY.md)
    synth_variety: SynthVariety = SynthVariety(clip_seconds=TEXT_ONLY_WINDOW_SECONDS)
    filler_share: float = 0.3  # of the `_unknown_` draws: synthetic filler words; the rest are real clips
    # from text alone, unless `filler_share` is set to another value: every word draw is synthetic and most
    # `_unknown_` draws real, so "sounds recorded" alone would say `_unknown_`; more synthetic filler words
    # make the model listen to the word instead. Measured (variants, text only, seeds 1 and 2, with commercial
    # voices): 93.3% / 95.7% of real takes against 93.7% / 94.0% at 0.3; rejection 98.5% / 98.7% (was 99.2% / 98.9%)
    text_only_filler_share: float = 0.5
    negatives_per_word: int | None = None  # bundled real clips used per other word (None: all)
    # of the `_unknown_` draws: windows of continuous speech (training/conversation.py), from
    # `conversation_speech` (a folder of recordings of people talking; None: the package's). Taken from the real share.
    # Measured (benchmarks/bench_conversation.py, seed 0, training/studies/CONVERSATION_STUDY.md): 20 takes, false alarms per
    # hour of conversation 813.6 -> 61.8 (0.3) -> 49.5 (0.5), takes heard 100%, isolated other words rejected
    # 98.7% -> 98.3% -> 95.9%; text only at 0.3: 473.6 -> 19.8, but isolated takes recognized 95.7% -> 89.0%
    conversation_share: float = 0.5
    # from text alone, unless `conversation_share` is set to another value: half the `_unknown_` draws are already
    # synthetic filler words there, and the shares must leave room for near misses (measured at 0.3, above)
    text_only_conversation_share: float = 0.3
    conversation_speech: str | None = None
    # after training, a second pass of this many batches (never more than the first pass's) on the windows of the
    # conversation speech the model fires on (hard_negatives.py; 0: none), which take `hard_negative_share` of
    # the conversation draws. Measured (benchmarks/bench_conversation.py, seed 0, CONVERSATION_STUDY.md):
    # 20 takes, false alarms per hour of conversation 47.0 -> 2.5, takes heard 100% -> 97.7%, isolated takes
    # recognized 99.6% -> 96.9%, other words rejected 96.2% -> 98.3%
    hard_negative_steps: int = 60
    hard_negative_share: float = 0.5
    # after training, listen to the package's calibration speech (never trained on), give each word its own
    # threshold for this many false alarms per hour of conversation and record what is left (0: no check)
    conversation_budget: float = 0.5
    # the decision settings the model file names for itself (`streaming` in its metadata, decision.py): what
    # `speech-app listen` and the Live tab listen with unless the user says otherwise, and what the conversation
    # check above measures. None: the streaming default (RecognizerSettings', chosen for the 12 commands' speed).
    # A wake word waits for a score held 375 ms (two evaluations more than the 12 commands' 125 ms) at the same
    # threshold and average. Chosen on the learn side (training/studies/decision_settings.py, seeds 0 and 1 of 20,
    # 5 and 0 takes; CONVERSATION_STUDY.md): of 16 averages and holds losing at most 5 points of learn-side takes,
    # the fewest false alarms in the learn speakers' speech at a stress threshold of 0.40 (0.4 an hour; the
    # defaults 12.0; at 0.72 no pair gave any there). Measured on the other speakers (bench_conversation.py,
    # seeds 0-2, means): 20 takes 5.0 -> 0.4 false alarms an hour, takes heard 97.0% -> 94.7%; 5 takes 1.2 -> 0.0,
    # 86.4% -> 81.0%; text only 8.7 -> 3.3, 83.4% -> 79.5%; 250 ms more delay from a word's end (median 0.16 -> 0.41 s).
    # The threshold with enough takes (TAKES_ENOUGH of each word: two runs averaged, `takes_runs`): chosen again on
    # the learn side for the two-run models by the rule the few-take and text-only settings below were chosen by
    # (decision_settings.py `choose_for_condition`, seeds 0 and 1; CONVERSATION_STUDY.md, thirteenth session):
    # 0.60 held 375 ms, learn-side takes heard 92.4% -> 96.2%, no learn false alarm at 0.60 nor at the stress
    # threshold 0.25. Measured on the other speakers (bench_conversation.py, seeds 0-2, means): 0.0 -> 0.4 false
    # alarms an hour (one in 2.4 h), takes heard 94.7% -> 96.2%; seeds 3-4, trained after the choice, bring five seeds
    # to 0.5 -> 1.0 an hour, 95.5% -> 97.3% heard. None here would be the streaming default, 0.72
    listen_threshold: float | None = 0.60
    listen_averaging_ms: float | None = None
    listen_hold_ms: float | None = 375.0
    # the pause before a word (streaming.PAUSE_MS, on for the 12 commands) is off for wake words: with the 375 ms
    # hold as well, bench_conversation.py (seeds 0-2, measuring speakers, takes inserted right after an
    # utterance) gave 20 takes 0.4 false alarms an hour with 86.3% of takes heard (5 takes 75.0%, text only
    # 65.9%); the pause alone at the 125 ms hold, 1.6 an hour, 94.7% (5 takes 0.0, 84.8%; text 2.9, 75.8%);
    # the hold alone 0.4, 94.7% (above). A wake word may follow speech closely; the hold already does the work
    listen_pause_ms: float | None = 0.0
    # with few takes and from text alone a model is less sure of its own words (fewer of its takes reach the
    # threshold): these replace listen_threshold and listen_hold_ms (where those are left at their defaults) for a
    # model whose word with the fewest takes has TAKES_MINIMUM or fewer, and for a model from text alone; between
    # TAKES_MINIMUM and TAKES_ENOUGH takes they move in a straight line to listen_*, as the batches do
    # (`step_budget`). None: listen_threshold, listen_hold_ms themselves. See `listening_for_takes`. Chosen on the
    # learn side (training/studies/decision_settings.py `choose_for_condition`, seeds 0 and 1; CONVERSATION_STUDY.md):
    # each condition's most learn-side takes heard among 224 rules whose learn-side false alarms 0.32 below their
    # threshold stay within the fixed rule's at 0.40 plus the condition's target (2 an hour). 20 takes (one run then)
    # kept the fixed rule; 5 takes: learn-side takes heard 86.4% -> 88.6%; text only 78.8% -> 80.3%. Measured on the other
    # speakers (bench_conversation.py, seeds 0-2, means; seed 2 trained after the choice): 5 takes 0.0 false alarms an
    # hour before and after, takes heard 83.3% -> 90.2%; text only 3.7 -> 2.1 an hour, 73.5% -> 74.2%
    few_takes_listen_threshold: float | None = 0.55
    few_takes_listen_hold_ms: float | None = 375.0
    # From text alone, chosen again for the models whose lower layers stay (text_only_trainable; fourteenth session,
    # learn_budget.py, seeds 0-2): of the rules that keep the 250 ms average (the best at 1 s averaged doubled the
    # delay for one point), the most learn-side takes heard at no learn-side false alarm: 0.80 held 375 ms, 90.9%
    # heard (0.65 held 500 ms: 91.4% at 2.3 an hour), delay from a word's end 0.40 s (p90 0.63 s)
    text_only_listen_threshold: float | None = 0.80
    text_only_listen_hold_ms: float | None = 375.0
    # 1: one run that holds out a third of the takes and negative speakers (ONE_RUN_FOLDS), about half
    # the cost of three; K >= 2: K-fold rotation, every take held out once
    estimate_folds: int = field(default=1, metadata={
        "help": "short runs that hold out part of the takes and negatives to estimate what to expect "
                f"(1: one run holding out 1/{ONE_RUN_FOLDS}; K: K-fold rotation)",
        "default_note": "0: no estimate, faster"})
    # None: ESTIMATE_STEP_FRACTION of the final run. Runs of 40 batches were too short to say much
    # (three words of 20 takes: 65% of held-out takes, jarvis 9/20), and three of them cost 89 s of CPU
    # against 53 s for the retraining alone
    estimate_steps: int | None = field(default=None, metadata={
        "help": "batches per estimate run", "default_text": "half the training batches"})
    # from text alone: the final model averages the weights of this many runs from the same start (the
    # same synthetic set and initial output rows) with seeds seed, seed + 1, ...: the draws and augmentation
    # move a text-only run by several points. Measured (the study, seeds 0-3): with the zero output layer,
    # 2 runs recognized 95.2% of real takes (95.0-95.7%) against one run's 94.9% (93.0-96.0%); with the
    # earlier random one, 94.6% against 94.0% (92.7-96.3% against 91.3-95.7%), rejection 98.1% (98.2%)
    text_only_runs: int = 2
    # with takes, the same average: `takes_runs` runs when every word has TAKES_ENOUGH takes or more, `few_takes_runs`
    # when one has fewer (the runs after the first train in side processes where they can; see `final_runs`).
    # Measured (benchmarks/bench_conversation.py, seeds 0-2, means; CONVERSATION_STUDY.md, twelfth session): 20 takes,
    # 2 runs against 1: learn-side takes heard 89.4% -> 91.9% (worst seed 81.8% -> 89.4%); measuring side 0.0 false
    # alarms an hour both, takes heard 93.9% -> 95.5% (seed 2: 86.4% -> 95.5%), isolated takes 94.0% -> 96.7%, other
    # words rejected 98.7% -> 98.4%, for 57 -> 75 s of training CPU. 5 takes: learn side 88.9% -> 86.9%, measuring
    # 0.0 -> 0.4 an hour, 90.2% heard both, isolated 89.8% -> 89.0%, for 96 -> 146 s: one run
    takes_runs: int = 2
    few_takes_runs: int = 1
    # the new output layer's `_silence_` and `_unknown_` rows start from the starting model's (weights and bias;
    # TrainConfig.head_from_start), the new words' rows at zero; False: every row at zero. Measured (seeds 0-2,
    # means, CONVERSATION_STUDY.md, twelfth session): worse with takes as from text alone (CUSTOM_WORDS_STUDY.md):
    # 20 takes 0.0 -> 4.5 false alarms an hour, takes heard 93.9% -> 87.1%, other words rejected 98.7% -> 91.5%
    head_from_start: bool = False
    # which weights move (adapt.TRAINABLE_CHOICES): all; top (the last LSTM layer, attention and output); head
    # (attention and output). The rest keep the starting model's, learned from thousands of real speakers
    trainable: str = "all"
    others_rate: float = 0.0  # the learning rate of the weights `trainable` leaves out, as a share (0: they stay)
    # from text alone, unless `trainable` or `others_rate` is set to another value: every word draw is a synthetic
    # voice, and a model whose every weight trains learns those voices, not the words (real takes then say
    # `_unknown_`). With the convolution and the first LSTM layer kept as the starting model learned them from
    # thousands of real speakers, only the last LSTM layer, attention and output learn the words. Chosen on the
    # learn side (CONVERSATION_STUDY.md, fourteenth session; seeds 0-2; learn_budget.py): takes heard within one
    # learn-side false alarm an hour 82.3% -> 91.9% (with STEPS_TEXT_ONLY; 88.4% with 160 batches), isolated spare
    # takes 84.5% -> 92.6%; "head" (the LSTM kept too) heard 48.5% at 9.3 false alarms an hour; the kept weights at
    # a tenth of the rate (others_rate 0.1) 86.9%. Measured on the other speakers (bench_conversation.py, seeds 0-2,
    # each at its own rule): false alarms 2.1 -> 3.3 an hour, takes heard 74.2% -> 84.1%, isolated takes 83.2% ->
    # 92.2%, isolated other words rejected 97.1% -> 95.7%; five seeds 4.2 an hour, 86.8%, 92.8%, 95.7%. At matched
    # false alarms the measuring curves hear 8-10 more takes in 100. A second pass of 120 batches (not 60) halved
    # the false alarms of seeds 0-2 and did not hold up blind on seeds 3-4 (6.2 an hour against 5.6): not kept
    text_only_trainable: str = "top"
    text_only_others_rate: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # see TrainConfig.precision


DEFAULT_SPEED = CustomWordsRecipe.speed  # a recipe with this speed gets text_only_speed from text alone
DEFAULT_SYNTHETIC_SHARE = CustomWordsRecipe.synthetic_share  # likewise few_takes_synthetic_share with few takes
DEFAULT_FILLER_SHARE = CustomWordsRecipe.filler_share  # likewise text_only_filler_share
DEFAULT_CONVERSATION_SHARE = CustomWordsRecipe.conversation_share  # likewise text_only_conversation_share
DEFAULT_TRAINABLE = (CustomWordsRecipe.trainable, CustomWordsRecipe.others_rate)  # likewise text_only_trainable
DEFAULT_LISTEN_THRESHOLD = CustomWordsRecipe.listen_threshold  # likewise the few-take and text-only listening
DEFAULT_LISTEN_HOLD_MS = CustomWordsRecipe.listen_hold_ms


@dataclass
class Estimate:
    """What the user can expect, measured on takes and real negatives held out by rotation."""

    per_word: dict[str, list[int]]  # word -> [held-out takes recognized, held-out takes]
    false_accepts: list[int]  # [held-out real clips of other words taken for a word, such clips]
    folds: int
    steps: int
    runs: int | None = None  # of the folds held out in turn; None (older models): all of them
    # every held-out clip (takes and real negatives), true label (rows) by the label given (columns),
    # summed over the runs; None in models trained before it was kept
    labels: list[str] | None = None
    confusion: list[list[int]] | None = None

    @property
    def word_accuracy(self) -> float | None:
        right, total = (sum(v[i] for v in self.per_word.values()) for i in (0, 1))
        return right / total if total else None

    @property
    def rejection(self) -> float | None:
        accepted, total = self.false_accepts
        return 1.0 - accepted / total if total else None

    def lines(self) -> list[str]:
        """The estimate in words, one line per figure."""
        lines = []
        if self.word_accuracy is None:
            lines.append("Takes recognized: unknown (no takes to hold out; record some to measure it)")
        else:
            right, total = (sum(v[i] for v in self.per_word.values()) for i in (0, 1))
            lines.append(f"Takes recognized: {self.word_accuracy:.0%} of held-out takes ({right} of {total}; "
                         f"likely at least {lower_bound(right, total):.0%})")
            lines += [f"  {word}: {right}/{total}" for word, (right, total) in self.per_word.items() if total]
        if self.rejection is not None:
            accepted, total = self.false_accepts
            lines.append(f"Other speech ignored: {self.rejection:.0%} ({accepted} of {total} clips of other words "
                         f"from unseen speakers were taken for one of the words; likely at least "
                         f"{lower_bound(total - accepted, total):.0%})")
        return lines

    def to_dict(self) -> dict:
        return {**asdict(self), "word_accuracy": self.word_accuracy, "rejection": self.rejection,
                "method": f"{self.runs or self.folds} run(s) of a {self.folds}-fold rotation over takes and "
                          f"bundled negative speakers, {self.steps} steps per run"}


@dataclass
class CustomWordsResult:
    model_path: Path
    report_dir: Path
    estimate: Estimate | None
    warnings: list[str]
    seconds: float
    history: list[dict] = field(default_factory=list)
    conversation: object = None  # conversation.ConversationCheck: false alarms while people talk


def collect_takes(take_dirs: list[Path], words: list[str]) -> dict[str, list[Path]]:
    """The takes of each word in `take_dirs` (folders named for the words; any file names)."""
    takes: dict[str, list[Path]] = {word: [] for word in words}
    for folder in take_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such data folder")
        for word, files in word_folders(folder).items():
            if word in takes:
                takes[word] += [f for f in files if is_audio_file(f)]
    return takes


def take_warnings(counts: dict[str, int], synthetic: bool) -> list[str]:
    """What to tell a user before training on too few takes."""
    warnings = []
    for word, n in counts.items():
        if n == 0 and not synthetic:
            warnings.append(f"{word!r} has no takes and no synthetic speech: it cannot be learned")
        elif n == 0:
            warnings.append(f"{word!r} has no takes: learned from synthetic speech only; record "
                            f"{TAKES_MINIMUM}-{TAKES_ENOUGH} takes to make it reliable and to measure it")
        elif n < TAKES_MINIMUM:
            warnings.append(f"{word!r} has {n} take{'s' * (n != 1)}: expect mistakes; {TAKES_MINIMUM} is the "
                            f"minimum, {TAKES_ENOUGH} from a few voices is enough")
    return warnings


def takes_position(counts: dict[str, int]) -> float | None:
    """Where the word with the fewest takes stands from TAKES_MINIMUM takes or fewer (0) to TAKES_ENOUGH or more
    (1); None from text alone (no word has takes)."""
    recorded = [n for n in counts.values() if n > 0]
    if not recorded:
        return None
    return min(1.0, max(0.0, (min(recorded) - TAKES_MINIMUM) / (TAKES_ENOUGH - TAKES_MINIMUM)))


def step_budget(counts: dict[str, int]) -> int:
    """Batches of the final run: from STEPS_FEW_TAKES down to STEPS_ENOUGH_TAKES as the word with
    the fewest takes goes from TAKES_MINIMUM to TAKES_ENOUGH takes; STEPS_TEXT_ONLY from text alone."""
    position = takes_position(counts)
    if position is None:
        return STEPS_TEXT_ONLY
    return round(STEPS_FEW_TAKES + position * (STEPS_ENOUGH_TAKES - STEPS_FEW_TAKES))


def listening_why(counts: dict[str, int]) -> str:
    """The model file's `streaming.why`: the recipe's listening settings, and which of them its takes chose."""
    position = takes_position(counts)
    if position is None:
        which = "from text alone: text_only_listen_threshold, text_only_listen_hold_ms"
    elif position == 0.0:
        which = f"few takes ({TAKES_MINIMUM} or fewer of a word): few_takes_listen_threshold, few_takes_listen_hold_ms"
    elif position < 1.0:
        which = (f"{min(n for n in counts.values() if n > 0)} takes of a word: between the few takes' settings and "
                 f"listen_threshold, listen_hold_ms")
    else:
        which = f"enough takes ({TAKES_ENOUGH} or more of each word): listen_threshold, listen_hold_ms"
    return f"{LISTENING_WHY}; {which}, unless the recipe sets listen_threshold or listen_hold_ms"


def listening_for_takes(counts: dict[str, int], recipe: CustomWordsRecipe) -> CustomWordsRecipe:
    """The recipe with the listening threshold and hold for the takes it trains on: from text alone,
    text_only_listen_*; with TAKES_MINIMUM takes or fewer (the word with the fewest decides), few_takes_listen_*,
    moving in a straight line to listen_* at TAKES_ENOUGH; each only where listen_* is left at its default and the
    condition's own value is not None."""
    from .. import streaming

    position = takes_position(counts)
    changed = {}
    for name, default, few, text in (
            ("listen_threshold", DEFAULT_LISTEN_THRESHOLD, recipe.few_takes_listen_threshold,
             recipe.text_only_listen_threshold),
            ("listen_hold_ms", DEFAULT_LISTEN_HOLD_MS, recipe.few_takes_listen_hold_ms, recipe.text_only_listen_hold_ms)):
        current = getattr(recipe, name)
        if current != default:
            continue  # set by the user
        own = text if position is None else few
        if own is None:
            continue
        if position is None:
            changed[name] = float(own)
        else:
            enough = current if current is not None else getattr(streaming.RecognizerSettings(), name.removeprefix("listen_"))
            value = own + position * (enough - own)
            changed[name] = float(round(value, 3)) if position < 1.0 else current
    return replace(recipe, **changed)


def augment_speed(counts: dict[str, int], recipe: CustomWordsRecipe) -> float:
    """The speed perturbation: text_only_speed when no word has takes and `speed` is the default."""
    if not any(counts.values()) and recipe.speed == DEFAULT_SPEED:
        return recipe.text_only_speed
    return recipe.speed


def text_only_settings(counts: dict[str, int], recipe: CustomWordsRecipe) -> CustomWordsRecipe:
    """The recipe as it trains: from text alone (no word has takes), the speed perturbation, the filler and
    conversation shares and the weights that train (with their rate) left at their defaults take their text-only
    values."""
    if any(counts.values()):
        return recipe
    filler = recipe.text_only_filler_share if recipe.filler_share == DEFAULT_FILLER_SHARE else recipe.filler_share
    conversation = (recipe.text_only_conversation_share if recipe.conversation_share == DEFAULT_CONVERSATION_SHARE
                    else recipe.conversation_share)
    trainable, others = ((recipe.text_only_trainable, recipe.text_only_others_rate)
                         if (recipe.trainable, recipe.others_rate) == DEFAULT_TRAINABLE else
                         (recipe.trainable, recipe.others_rate))
    return replace(recipe, speed=augment_speed(counts, recipe), filler_share=filler, conversation_share=conversation,
                   trainable=trainable, others_rate=others)


def synthetic_share_for_takes(counts: dict[str, int], recipe: CustomWordsRecipe) -> CustomWordsRecipe:
    """The recipe with the synthetic share of the word draws for the takes it trains on: few_takes_synthetic_share
    with TAKES_MINIMUM takes or fewer, in a straight line to synthetic_share at TAKES_ENOUGH; only where
    synthetic_share is left at its default. From text alone every word draw is synthetic anyway."""
    position = takes_position(counts)
    few = recipe.few_takes_synthetic_share
    if position is None or few is None or recipe.synthetic_share != DEFAULT_SYNTHETIC_SHARE:
        return recipe
    return replace(recipe, synthetic_share=round(few + position * (recipe.synthetic_share - few), 3))


def build_custom_index(takes: dict[str, list[Path]], synthetic_dir: Path | None,
                       negatives_per_word: int | None = None) -> tuple[DatasetIndex, np.ndarray]:
    """Every clip the recipe trains on, all in the training split, and the group of each
    (TAKE, SYNTH_WORD, ...). Validation stays empty: the estimate holds clips out instead."""
    words = list(takes)
    examples: list[Example] = []
    groups: list[int] = []

    def add(path, label, word, source, group):
        examples.append(Example(str(path) if path else None, label, "training", word, source))
        groups.append(group)

    for word, files in takes.items():
        for path in files:
            add(path, word, word, "real", TAKE)
    if synthetic_dir is not None:
        from ..synth.text_training import filler_words

        fillers = set(filler_words(words))
        for folder, files in word_folders(Path(synthetic_dir)).items():
            label = folder if folder in takes else UNKNOWN_LABEL
            group = SYNTH_WORD if folder in takes else (FILLER if folder in fillers else NEAR_MISS)
            for path in files:
                add(path, label, folder, "synthetic", group)
    for word, files in bundled_speech(exclude_words=words).items():
        for path in files[:negatives_per_word]:
            add(path, UNKNOWN_LABEL, word, "real", REAL_NEGATIVE)
    n_silence = max(20, max((len(f) for f in takes.values()), default=0))
    for _ in range(n_silence):
        add(None, SILENCE_LABEL, SILENCE_LABEL, "real", SILENCE)
    labels = [SILENCE_LABEL, UNKNOWN_LABEL] + words
    return DatasetIndex(labels, examples, bundled_noise()), np.array(groups)


def add_conversation(index: DatasetIndex, groups: np.ndarray, recipe: CustomWordsRecipe,
                     window_seconds: float) -> tuple[DatasetIndex, np.ndarray]:
    """The index with windows of continuous speech added as `_unknown_` (group CONVERSATION), when the
    recipe draws any and has speech to cut them from."""
    from .conversation import TRAIN_SPEECH, conversation_windows, speech_files

    files = speech_files(Path(recipe.conversation_speech) if recipe.conversation_speech else TRAIN_SPEECH)
    if recipe.conversation_share <= 0 or not files:
        return index, groups
    windows = conversation_windows(files, window_seconds)
    added = [Example(str(path), UNKNOWN_LABEL, "training", "conversation", "real") for path in windows]
    index = DatasetIndex(index.labels, list(index.examples) + added, index.noise_files)
    return index, np.concatenate([groups, np.full(len(added), CONVERSATION)])


def class_draws(recipe: CustomWordsRecipe, n_words: int) -> dict[int, ClassDraw]:
    """The recipe's draw: `_silence_` (class 0) and `_unknown_` (class 1) get their shares of the
    draws, the words share the rest; inside a class, each group of clips gets its share."""
    negatives = recipe.near_miss_share + recipe.filler_share + recipe.conversation_share
    if negatives > 1.0 + 1e-9:
        raise ValueError(f"the _unknown_ shares add up to {negatives:.2f} (near misses {recipe.near_miss_share}, "
                         f"filler words {recipe.filler_share}, conversation {recipe.conversation_share}): at most 1")
    word_share = (1.0 - recipe.silence_share - recipe.unknown_share) / max(1, n_words)
    unknown_groups = {NEAR_MISS: recipe.near_miss_share, FILLER: recipe.filler_share,
                      CONVERSATION: recipe.conversation_share, REAL_NEGATIVE: 1.0 - negatives}
    word = ClassDraw(word_share, {TAKE: 1.0 - recipe.synthetic_share, SYNTH_WORD: recipe.synthetic_share})
    return {0: ClassDraw(recipe.silence_share, {SILENCE: 1.0}), 1: ClassDraw(recipe.unknown_share, unknown_groups),
            **{class_id: word for class_id in range(2, 2 + n_words)}}


def draw_weights(labels: np.ndarray, groups: np.ndarray, n_words: int, recipe: CustomWordsRecipe,
                 held_out: np.ndarray | None = None) -> np.ndarray:
    """Draw weight of each clip by the recipe's shares (`class_draws`), split evenly among a group's
    clips. Held-out clips get no weight (a group left empty passes its share to the others)."""
    return share_weights(labels, groups, class_draws(recipe, n_words), held_out)


def fold_of(examples: list[Example], groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) in which each take and each bundled negative is held out; -1: never.

    Takes of a word go round-robin in a shuffled order; negatives by speaker, so a speaker's clips
    of several words are held out together."""
    fold = np.full(len(examples), -1)
    rng = np.random.default_rng(seed)
    by_word: dict[str, list[int]] = {}
    for row, (e, group) in enumerate(zip(examples, groups)):
        if group == TAKE:
            by_word.setdefault(e.word, []).append(row)
    for rows in by_word.values():
        for i, row in enumerate(rng.permutation(rows)):
            fold[row] = i % folds
    speakers = sorted({speaker_of(e.path) for e, g in zip(examples, groups) if g == REAL_NEGATIVE})
    speaker_fold = {s: i % folds for i, s in enumerate(rng.permutation(speakers))}
    for row, (e, group) in enumerate(zip(examples, groups)):
        if group == REAL_NEGATIVE:
            fold[row] = speaker_fold[speaker_of(e.path)]
    return fold


def custom_window_seconds(takes: dict[str, list[Path]], start_seconds: float) -> float:
    """The input window: long enough for nearly every take's spoken part (a cropped word is missed:
    measured, "computer" takes over 0.85 s were the misses of a 1 s window), never shorter than the
    starting model's. The encoder reads any length: only the window changes, not the MFCC settings."""
    from ..audio import decode_files
    from ..data.clips import choose_window_seconds

    paths = [p for files in takes.values() for p in files][:WINDOW_SAMPLE_TAKES]
    if not paths:
        return max(start_seconds, TEXT_ONLY_WINDOW_SECONDS)
    audio = [a for a in decode_files(paths) if isinstance(a, np.ndarray)]
    return max(start_seconds, choose_window_seconds(audio))


def train_config(recipe: CustomWordsRecipe, window_seconds: float):
    """The Trainer's settings: the data, device and augmentation; the plans say how it trains."""
    from .trainer import TrainConfig

    return TrainConfig(epochs=1, steps_per_epoch=recipe.steps, batch_size=recipe.batch_size,
                       learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps, patience=1,
                       seed=recipe.seed, device=recipe.device, precision=recipe.precision, window_seconds=window_seconds,
                       augment=AugmentConfig(speed=recipe.speed), cache_by_folder=True,
                       head_from_start=recipe.head_from_start)


def step_schedule(recipe: CustomWordsRecipe, steps: int) -> StepSchedule:
    return StepSchedule(steps, recipe.batch_size, recipe.learning_rate, recipe.warmup_steps)


def estimate_budget(recipe: CustomWordsRecipe) -> tuple[int, int, int]:
    """(folds, runs, batches per run) of the estimate: one run holds out one fold of ONE_RUN_FOLDS;
    K >= 2 runs rotate over K folds."""
    runs = recipe.estimate_folds
    folds = ONE_RUN_FOLDS if runs == 1 else runs
    steps = recipe.estimate_steps or max(1, round(ESTIMATE_STEP_FRACTION * recipe.steps))
    return folds, runs, steps


def estimate_plan(recipe: CustomWordsRecipe, examples: list[Example], labels: np.ndarray,
                  groups: np.ndarray, n_words: int) -> TrainingPlan:
    """The estimate's runs: run k holds out fold k of the takes and negative speakers (no draws),
    trains a short run on the rest with other seeds than the final model's, and is measured on fold k."""
    folds, runs, steps = estimate_budget(recipe)
    fold = fold_of(examples, groups, folds, recipe.seed)
    return TrainingPlan(step_schedule(recipe, steps), tuple(
        RunSpec(draw_weights(labels, groups, n_words, recipe, fold == k), recipe.seed + ESTIMATE_SEED_OFFSET + k,
                measure=fold == k, stage=f"estimating: run {k + 1} of {runs}") for k in range(runs)))


def tally_estimate(outcomes: list[RunOutcome], labels: list[str], recipe: CustomWordsRecipe) -> Estimate:
    """The estimate from the held-out clips' confusion matrices (labels: `_silence_`, `_unknown_`,
    then the words): takes recognized per word, and other speech taken for a word."""
    folds, runs, steps = estimate_budget(recipe)
    per_word = {word: [0, 0] for word in labels[2:]}
    false_accepts = [0, 0]
    confusion = np.zeros((len(labels),) * 2, dtype=np.int64)
    for outcome in outcomes:
        matrix = outcome.confusion
        confusion += np.asarray(matrix, dtype=np.int64)
        for i, word in enumerate(labels[2:], start=2):
            per_word[word][0] += int(matrix[i, i])
            per_word[word][1] += int(matrix[i].sum())
        false_accepts[0] += int(matrix[1, 2:].sum())
        false_accepts[1] += int(matrix[1].sum())
    return Estimate(per_word, false_accepts, folds, steps, runs, list(labels), confusion.tolist())


def estimate(trainer, groups: np.ndarray, recipe: CustomWordsRecipe,
             on_stage: Callable[[str], None] | None = None, takes_heard: list | None = None) -> Estimate:
    """Hold out one fold of takes and negative speakers, train a short run on the rest, count what
    the held-out clips are taken for; once per run (the clips are decoded once for every run).
    With `takes_heard` (a list), each run also streams its held-out takes as `listen` would and adds
    them to it (conversation.record_takes): the conversation check's share of the words heard."""
    labels = trainer.index.labels
    examples = trainer.index.split("training")
    plan = estimate_plan(recipe, examples, trainer.training_labels, groups, len(labels) - 2)
    if takes_heard is not None:
        plan = replace(plan, runs=tuple(replace(run, inspect=stream_takes(examples, run.measure & (groups == TAKE)))
                                        for run in plan.runs))
    outcomes = trainer.execute(plan, on_stage)
    if takes_heard is not None:
        takes_heard.extend(take for outcome in outcomes for take in outcome.inspected)
    return tally_estimate(outcomes, labels, recipe)


def estimate_and_train(trainer, groups: np.ndarray, recipe: CustomWordsRecipe, plan: TrainingPlan,
                       on_stage: Callable[[str], None] | None = None) -> tuple[Estimate | None, list]:
    """The estimate (None when the recipe runs none) and its held-out takes as streamed (for the conversation
    check), and the final `plan` executed on the trainer. Where side processes can run (side_process.py), the
    estimate runs in one while this process trains (and the final plan's other runs, from text alone, in
    another), each on one torch thread; else one after the other."""
    from .side_process import SIDE_THREADS, SideCall, side_process_possible, torch_threads

    want_takes = recipe.conversation_budget > 0
    if recipe.estimate_folds < 1:
        trainer.execute(plan, on_stage, beside=True)
        return None, []
    if not side_process_possible(trainer.device):
        takes_heard = []
        result = estimate(trainer, groups, recipe, on_stage, takes_heard if want_takes else None)
        trainer.execute(plan, on_stage)
        return result, takes_heard
    side = SideCall(estimate_aside, trainer, groups, recipe, want_takes)
    threads = torch_threads(SIDE_THREADS)
    try:
        trainer.execute(plan, on_stage, beside=True)  # from text alone, the second averaged run in another side
    except BaseException:
        side.cancel()
        raise
    finally:
        torch_threads(threads)
    if on_stage:
        on_stage("estimating")  # shown only while the estimate, begun with the training, finishes
    result, takes_heard = side.result()
    return result, takes_heard


def estimate_aside(trainer, groups: np.ndarray, recipe: CustomWordsRecipe, want_takes: bool) -> tuple[Estimate, list]:
    """`estimate` in the side process: its own copy of the trainer, which reports to no one (the hooks and
    progress bars belong to the parent, which trains the final model meanwhile)."""
    from .trainer import TrainHooks

    trainer.hooks, trainer.progress = TrainHooks(), False
    takes_heard = [] if want_takes else None
    return estimate(trainer, groups, recipe, None, takes_heard), takes_heard or []


def stream_takes(examples: list[Example], rows: np.ndarray) -> Callable:
    """What an estimate run does with its model: record the streaming evaluations of the takes in `rows`
    (held out of that run), each whole take as recorded, alone between silences."""
    from ..audio import decode_files
    from .conversation import listening_copy, record_takes

    chosen = [examples[row] for row in np.flatnonzero(rows)]

    def inspect(trainer) -> list:
        audio = decode_files([e.path for e in chosen])
        with listening_copy(trainer) as classifier:
            return record_takes(classifier, [(e.label, a) for e, a in zip(chosen, audio) if isinstance(a, np.ndarray)])
    return inspect


def final_runs(counts: dict[str, int], recipe: CustomWordsRecipe) -> int:
    """How many runs the final model averages: text_only_runs from text alone, takes_runs when every word has
    TAKES_ENOUGH takes or more, few_takes_runs when one has fewer."""
    position = takes_position(counts)
    if position is None:
        return recipe.text_only_runs
    return recipe.takes_runs if position >= 1.0 else recipe.few_takes_runs


def final_plan(recipe: CustomWordsRecipe, weights: np.ndarray, runs: int) -> TrainingPlan:
    """The final model: `runs` runs of the recipe's steps from the same start with seeds seed,
    seed + 1, ..., keeping the average of their weights."""
    if runs < 1:
        raise ValueError(f"final runs: {runs}; at least one")
    return TrainingPlan(step_schedule(recipe, recipe.steps), tuple(
        RunSpec(weights, recipe.seed + k, stage="training" if runs == 1 else f"training: run {k + 1} of {runs}")
        for k in range(runs)), average=True)


def train_custom_words(take_dirs: list[Path], words: list[str], out_path: Path,
                       recipe: CustomWordsRecipe | None = None, *, init_from=None, synthetic_dir: Path | None = None,
                       report_dir: Path | None = None, progress: bool = True, hooks=None,
                       on_stage: Callable[[str], None] | None = None) -> CustomWordsResult:
    """Train a model for `words` from the takes in `take_dirs` (may be none) and the synthetic
    clips in `synthetic_dir` (see `synthesize_for_words`); write it with its estimate inside.

    init_from: the ModelBundle to start from (default: the shipped model).
    """
    from ..modelfile import load_model
    from .outputs import default_report_dir, finish
    from .trainer import Trainer, log

    started = time.monotonic()
    recipe = recipe or CustomWordsRecipe()
    init_from = init_from or load_model(None)
    takes = collect_takes(take_dirs, words)
    counts = {w: len(t) for w, t in takes.items()}
    if recipe.steps is None:
        recipe = replace(recipe, steps=step_budget(counts))
    recipe = synthetic_share_for_takes(counts, listening_for_takes(counts, text_only_settings(counts, recipe)))
    warnings = take_warnings(counts, synthetic_dir is not None)
    for warning in warnings:
        log(f"warning: {warning}", None, hooks)
    if any("cannot be learned" in w for w in warnings):
        raise ValueError(f"no takes for: {', '.join(w for w, t in takes.items() if not t)} "
                         f"(record some, or add synthetic speech)")
    index, groups = build_custom_index(takes, synthetic_dir, recipe.negatives_per_word)
    if on_stage:
        on_stage("preparing the data")
    window = custom_window_seconds(takes, init_from.features.clip_seconds)
    index, groups = add_conversation(index, groups, recipe, window)
    built = list(index.examples)
    trainer = Trainer(index, train_config(recipe, window), None, init_from, progress, hooks)
    if recipe.others_rate > 0:
        trainer.rate_shares = rate_shares(trainer.model, recipe.trainable, recipe.others_rate)
    else:
        freeze(trainer.model, recipe.trainable)  # side processes fork with it
    kept = {id(e) for e in trainer.index.examples}  # undecodable takes were left out
    groups = groups[np.array([id(e) in kept for e in built], dtype=bool)]
    runs = final_runs(counts, recipe)
    weights = draw_weights(trainer.training_labels, groups, len(words), recipe)
    result_estimate, takes_heard = estimate_and_train(trainer, groups, recipe, final_plan(recipe, weights, runs),
                                                      on_stage)
    second_pass_started = time.monotonic()
    hard = hard_negatives(trainer, groups, recipe, on_stage)
    second_pass_seconds = time.monotonic() - second_pass_started
    out_path = Path(out_path)
    report_dir = Path(report_dir) if report_dir else default_report_dir(out_path)
    info = {"recipe": {"name": "custom words", **asdict(recipe)}, "final_runs": runs, "warnings": warnings,
            "takes": counts,
            "negatives": {"clips": int((groups == REAL_NEGATIVE).sum()), "credit": NEGATIVES_CREDIT}}
    if result_estimate is not None:
        info["estimate"] = result_estimate.to_dict()
    if hard is not None:
        info["hard_negatives"] = {"windows": len(hard.clips), "steps": min(recipe.hard_negative_steps, recipe.steps),
                                  "seconds": round(second_pass_seconds, 1)}
    settings = listening_settings(recipe)
    info["streaming"] = settings_record(settings, listening_why(counts))
    check = conversation_check(trainer, recipe, on_stage, takes_heard, settings)
    if check is not None:
        info["conversation"] = check.to_dict()
    finish(trainer, [Path(d) for d in take_dirs], [synthetic_dir] if synthetic_dir else [], out_path, report_dir,
           extra_info=info)
    return CustomWordsResult(out_path, report_dir, result_estimate, warnings, time.monotonic() - started,
                             trainer.history, check)


def hard_negatives(trainer, groups: np.ndarray, recipe: CustomWordsRecipe,
                   on_stage: Callable[[str], None] | None = None):
    """The second pass on the conversation windows the trained model fires on (hard_negatives.py), from the
    speech the recipe trains on; None when the recipe runs none or has no such speech."""
    from .conversation import TRAIN_SPEECH, speech_files
    from .hard_negatives import hard_negative_pass

    files = speech_files(Path(recipe.conversation_speech) if recipe.conversation_speech else TRAIN_SPEECH)
    if recipe.hard_negative_steps <= 0 or recipe.conversation_share <= 0 or not files:
        return None
    return hard_negative_pass(trainer, groups, recipe, files, HARD_NEGATIVE, CONVERSATION, on_stage)[1]


def listening_settings(recipe: CustomWordsRecipe):
    """The decision settings the recipe's model is listened with (decision.settings_for: the streaming defaults
    where the recipe leaves one at None)."""
    from ..decision import settings_for

    return settings_for(None, {"threshold": recipe.listen_threshold, "averaging_ms": recipe.listen_averaging_ms,
                               "hold_ms": recipe.listen_hold_ms, "pause_ms": recipe.listen_pause_ms,
                               # the recipe's settings were chosen on a plain mean (CONVERSATION_STUDY.md)
                               "recent_weighting": 0.0})


def conversation_check(trainer, recipe: CustomWordsRecipe, on_stage: Callable[[str], None] | None = None,
                       takes_heard: list = (), settings=None):
    """The trained model's false alarms on the package's calibration speech and each word's own threshold
    (conversation.check_conversation), with the share of the estimate's held-out takes heard (`takes_heard`,
    from `estimate`); None when the recipe skips it or there is no such speech."""
    from .conversation import check_conversation, listening_copy

    if recipe.conversation_budget <= 0:
        return None
    if on_stage:
        on_stage("listening to conversation")
    with listening_copy(trainer) as classifier:
        return check_conversation(classifier.bundle, budget_per_hour=recipe.conversation_budget, takes=takes_heard,
                                  settings=settings or listening_settings(recipe))


def card_lines(meta: dict) -> list[str]:
    """Model-card Markdown for a model of this recipe: the estimate, the takes, the credit."""
    if meta.get("recipe", {}).get("name") != "custom words":
        return []
    lines = []
    if "estimate" in meta:
        estimate = Estimate(**{k: meta["estimate"][k] for k in ("per_word", "false_accepts", "folds", "steps", "runs")
                              if k in meta["estimate"]})
        lines += ["**What to expect** (held out by rotation):", ""] + [f"- {line.strip()}" for line in estimate.lines()]
        lines.append("")
    if "conversation" in meta:
        lines += [f"- {line}" for line in conversation_lines(meta["conversation"])] + [""]
    if "streaming" in meta:
        from ..decision import describe, settings_for

        lines += [f"**Listened with:** {describe(settings_for(meta))} (the model's own decision settings; "
                  "`speech-app listen --threshold/--averaging-ms/--hold-ms` override them)", ""]
    takes = meta.get("takes", {})
    lines += [f"**Takes:** {', '.join(f'{w} {n}' for w, n in takes.items())}", ""] if takes else []
    lines += [f"**Warning:** {w}" for w in meta.get("warnings", [])]
    credit = meta.get("negatives", {}).get("credit")
    return lines + ([f"*{credit}.*", ""] if credit else [])


def conversation_lines(recorded: dict) -> list[str]:
    """The conversation check of a model file's metadata, in words."""
    from .conversation import ConversationCheck

    fields = ("minutes", "budget_per_hour", "thresholds", "false_alarms", "curve", "heard", "settings")
    return ConversationCheck(**{k: recorded[k] for k in fields if k in recorded}).lines()


def summary_lines(result: CustomWordsResult) -> list[str]:
    """What `speech-app train` prints when the custom recipe is done."""
    lines = [f"wrote {result.model_path} in {result.seconds:.0f} s"]
    if result.estimate is not None:
        lines.append("What to expect (estimated on takes and other speech held out by rotation):")
        lines += ["  " + line for line in result.estimate.lines()]
    if result.conversation is not None:
        lines += ["  " + line for line in result.conversation.lines()]
    return lines + [f"warning: {warning}" for warning in result.warnings]


def synthesize_for_words(words: list[str], recipe: CustomWordsRecipe | None = None, *, engines: str = "auto",
                         progress: bool = True, cache_root: Path | None = None, jobs: int | None = None) -> Path:
    """Synthetic speech of the words, filler words and near misses, with the bundled noise (cached)."""
    from ..synth.text_training import synthesize_training_set

    recipe = recipe or CustomWordsRecipe()
    return synthesize_training_set(words, per_word=max(1, recipe.synth_per_word), seed=recipe.seed, engines=engines,
                                   noise_files=bundled_noise(), progress=progress, cache_root=cache_root,
                                   near_miss_clips=recipe.near_miss_clips, jobs=jobs,
                                   commercial_only=recipe.commercial_voices, variety=recipe.synth_variety)
