"""Your voice: adapt a model's commands to one person from a few takes of each (`speech-app adapt`,
the GUI's "Adapt to your voice").

A speaker whose accent the model handles badly loses commands that other voices never lose. Two
takes of each command cannot train a model, but they can move one a little toward that voice while
everything else stays where it was. The recipe:
- starts from the base model (the shipped one by default) and keeps its labels, feature and model
  settings, its output layer and its streaming defaults: the result is the same model, nudged;
- trains on the user's takes of their commands, and replays bundled real clips (data/negatives.py)
  of every command under its own label, of other words as `_unknown_`, and noise as `_silence_`, so
  that the commands with no takes and the rejection of other speech stay as they were;
- for a small fixed budget of steps at a small learning rate (seconds on a laptop's CPU).
Options the study measured and left off by default: learning the base model's own probabilities on
every draw (distillation from the base, `distill_weight`), a pull toward the base's weights (L2-SP,
`anchor_weight`), only the top of the network trainable (`trainable`); each kept fewer of the errors
away than the plain replay (ADAPT_STUDY.md, round 2).
One TrainingPlan (plan.py) of one run, executed by the Trainer on the clips it decoded once.
The study behind the settings: training/studies/ADAPT_STUDY.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.augment import AugmentConfig
from ..data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, DatasetIndex, Example, word_folders
from ..data.negatives import bundled_noise, bundled_speech
from .draws import ClassDraw, share_weights
from .plan import RunSpec, StepSchedule, TrainingPlan

REPLAY_CREDIT = ("Replay: real clips and background noise from Speech Commands: A Dataset for "
                 "Limited-Vocabulary Speech Recognition, P. Warden, 2018 (CC BY 4.0)")
SILENCE_ROWS = 40  # noise windows drawn for `_silence_` (each draw is augmented anew)
TAKES_SUGGESTED = 2  # takes a command the GUI asks for; one works too, less well (the study)
# what `trainable` leaves free to move: every weight, the last LSTM layer (both directions) with attention and
# output, or attention and output alone
TRAINABLE_CHOICES = ("all", "top", "head")
HEAD_PREFIXES = ("attention.", "head.")
# what each draw is: a class's share is split among these groups
TAKE, REPLAY, SILENCE = range(3)
# metadata keys of the base model that say how to use it, not how it was trained: an adapted model keeps them
USAGE_KEYS = ("streaming",)


class AdaptError(ValueError):
    """Takes that cannot adapt the base model; the message is one line naming the folder."""


@dataclass(frozen=True)
class AdaptRecipe:
    """The recipe's settings. A field with `help` metadata is a `speech-app adapt` option (cli/adapt.py)."""

    steps: int = field(default=60, metadata={"help": "training batches"})
    batch_size: int = 32
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    warmup_steps: int = 6
    take_share: float = 0.5  # of a command's draws when it has takes; the rest replay bundled clips of it
    silence_share: float = 0.08  # of all draws
    unknown_share: float = 0.3  # of all draws; the commands share the rest equally
    replay_per_word: int | None = None  # bundled clips replayed per word (None: all, at most 24)
    # share of the loss that follows the base model's probabilities: 0.25 and 0.5 left more errors than 0 on the
    # voice the base misses most, rejection and other speakers' commands alike (ADAPT_STUDY.md, round 2)
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    trainable: str = field(default="all", metadata={
        "help": f"which weights move: {', '.join(TRAINABLE_CHOICES)} (top: the last LSTM layer, attention "
                "and output; head: attention and output)"})
    anchor_weight: float = 0.0  # L2-SP: pull of the summed squared distance from the base's weights (TrainConfig)
    # augmentation of every draw, the takes included (AugmentConfig)
    speed: float = 0.1  # each draw is played at a random speed in [1 - this, 1 + this]
    time_shift_ms: float = AugmentConfig.time_shift_ms  # the word moves up to this much inside its window
    noise_probability: float = AugmentConfig.noise_probability  # share of speech draws that get background noise
    seed: int = field(default=0, metadata={"help": "seed of the draws and augmentation"})
    device: str = field(default="cpu", metadata={"help": "where to adapt (a few seconds on a CPU)"})
    precision: str = "auto"  # see TrainConfig.precision


@dataclass
class AdaptResult:
    model_path: Path
    takes: dict[str, int]  # command -> takes used
    base_on_takes: list[int]  # [takes the base model got right, takes]
    adapted_on_takes: list[int]  # the same for the adapted model (it trained on them: an upper bound)
    seconds: float


def commands_of(labels: list[str]) -> list[str]:
    """The labels a user can say: not `_silence_` or `_unknown_`."""
    return [label for label in labels if not label.startswith("_")]


def collect_takes(takes_dir: Path, labels: list[str], model_name: str = "the base model") -> dict[str, list[Path]]:
    """The takes of each command of `labels` in `takes_dir` (a folder per command, any file names).
    A folder named for no command of the model stops here: adaptation cannot add words."""
    takes_dir = Path(takes_dir)
    if not takes_dir.is_dir():
        raise AdaptError(f"{takes_dir}: no such folder of takes")
    commands = commands_of(labels)
    for folder in sorted(p for p in takes_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name not in commands:  # `_unknown_` too: word_folders below would skip it without a word
            raise AdaptError(f"{folder}: {folder.name!r} is not a command of {model_name} ({', '.join(commands)}); "
                             f"adapting keeps a model's words: train a model for new words with `speech-app train`")
    takes = word_folders(takes_dir)
    if not takes:
        raise AdaptError(f"{takes_dir}: no takes (give a folder per command, such as {takes_dir / commands[0]}/, "
                         f"holding recordings of it)")
    return takes


def build_adapt_index(takes: dict[str, list[Path]], labels: list[str],
                      replay_per_word: int | None = None) -> tuple[DatasetIndex, np.ndarray]:
    """Every clip the recipe trains on, labelled by the base model's labels, and the group of each
    (TAKE, REPLAY, SILENCE): the takes, bundled clips of the commands (their label) and of other
    words (`_unknown_`), and noise windows (`_silence_`)."""
    examples: list[Example] = []
    groups: list[int] = []

    def add(path, label, word, group):
        examples.append(Example(str(path) if path else None, label, "training", word, "real"))
        groups.append(group)

    for word, files in takes.items():
        for path in files:
            add(path, word, word, TAKE)
    has_unknown = UNKNOWN_LABEL in labels
    for word, files in bundled_speech().items():
        label = word if word in labels else UNKNOWN_LABEL
        if label == UNKNOWN_LABEL and not has_unknown:
            continue
        for path in files[:replay_per_word]:
            add(path, label, word, REPLAY)
    if SILENCE_LABEL in labels:
        for _ in range(SILENCE_ROWS):
            add(None, SILENCE_LABEL, SILENCE_LABEL, SILENCE)
    return DatasetIndex(list(labels), examples, bundled_noise()), np.array(groups)


def class_draws(recipe: AdaptRecipe, labels: list[str]) -> dict[int, ClassDraw]:
    """`_silence_` and `_unknown_` get their shares, the commands share the rest equally; a command's
    share goes `take_share` to its takes (when it has some) and the rest to replayed clips of it."""
    commands = commands_of(labels)
    background = (recipe.silence_share if SILENCE_LABEL in labels else 0.0) + (
        recipe.unknown_share if UNKNOWN_LABEL in labels else 0.0)
    command = ClassDraw((1.0 - background) / max(1, len(commands)),
                        {TAKE: recipe.take_share, REPLAY: 1.0 - recipe.take_share})
    draws = {}
    for class_id, label in enumerate(labels):
        if label == SILENCE_LABEL:
            draws[class_id] = ClassDraw(recipe.silence_share, {SILENCE: 1.0})
        elif label == UNKNOWN_LABEL:
            draws[class_id] = ClassDraw(recipe.unknown_share, {REPLAY: 1.0})
        else:
            draws[class_id] = command
    return draws


def adapt_plan(recipe: AdaptRecipe, labels: np.ndarray, groups: np.ndarray, label_names: list[str]) -> TrainingPlan:
    """One run of the recipe's steps, drawing by its shares."""
    weights = share_weights(labels, groups, class_draws(recipe, label_names))
    schedule = StepSchedule(recipe.steps, recipe.batch_size, recipe.learning_rate, recipe.warmup_steps)
    return TrainingPlan(schedule, (RunSpec(weights, recipe.seed, stage="adapting"),))


def moves(name: str, trainable: str, num_layers: int) -> bool:
    """Whether the parameter `name` trains under `trainable` (TRAINABLE_CHOICES)."""
    if trainable == "all" or name.startswith(HEAD_PREFIXES):
        return True
    # nn.LSTM names a layer's weights weight_ih_l{k}, bias_hh_l{k}_reverse, ...
    layer = name.split(".")[-1].split("_")[2:3] if name.startswith("lstm.") else []
    return trainable == "top" and layer == [f"l{num_layers - 1}"]


def left_out(model, trainable: str) -> set[str]:
    """The names of the weights `trainable` (TRAINABLE_CHOICES) leaves out."""
    if trainable not in TRAINABLE_CHOICES:
        raise AdaptError(f"trainable: {trainable!r}; one of {', '.join(TRAINABLE_CHOICES)}")
    return {name for name, _ in model.named_parameters() if not moves(name, trainable, model.config.num_layers)}


def freeze(model, trainable: str) -> None:
    """Only the weights `trainable` names move (TRAINABLE_CHOICES); a frozen batch norm keeps its statistics."""
    import torch

    kept = left_out(model, trainable)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name not in kept)  # AdamW skips a weight with no gradient
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            # a frozen one normalises training batches by their own statistics and never updates its running ones
            module.track_running_stats = any(p.requires_grad for p in module.parameters())


def rate_shares(model, trainable: str, share: float) -> dict[str, float]:
    """The learning-rate share of each weight `trainable` leaves out, for Trainer.rate_shares: those weights move
    slowly instead of not at all."""
    return dict.fromkeys(left_out(model, trainable), share)


def train_config(recipe: AdaptRecipe, window_seconds: float):
    """The Trainer's settings: device, augmentation, distillation; the plan says how long and how fast."""
    from .trainer import TrainConfig

    return TrainConfig(epochs=1, steps_per_epoch=recipe.steps, batch_size=recipe.batch_size,
                       learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps, patience=1,
                       seed=recipe.seed, device=recipe.device, precision=recipe.precision,
                       window_seconds=window_seconds,
                       augment=AugmentConfig(speed=recipe.speed, time_shift_ms=recipe.time_shift_ms,
                                             noise_probability=recipe.noise_probability),
                       distill_weight=recipe.distill_weight, distill_temperature=recipe.distill_temperature,
                       anchor_weight=recipe.anchor_weight)


def adapted_trainer(base, takes: dict[str, list[Path]], recipe: AdaptRecipe, progress: bool = False, hooks=None):
    """The Trainer, its clips decoded, starting from `base` (a ModelBundle) with `base` as the teacher;
    and the group of each training clip (undecodable takes left out)."""
    from .trainer import Trainer

    index, groups = build_adapt_index(takes, base.labels, recipe.replay_per_word)
    built = list(index.examples)
    teachers = [base] if recipe.distill_weight > 0 else []
    trainer = Trainer(index, train_config(recipe, base.features.clip_seconds), None, base, progress, hooks,
                      teachers=teachers)
    kept = {id(e) for e in trainer.index.examples}
    groups = groups[np.array([id(e) in kept for e in built], dtype=bool)]
    freeze(trainer.model, recipe.trainable)
    return trainer, groups


def right_on(trainer, rows: np.ndarray, model=None) -> int:
    """How many of the training clips `rows` the model (the trainer's, or `model`) labels right."""
    from .evaluate import evaluate_clips

    clips, labels = trainer.splits["training"]
    matrix = evaluate_clips(model or trainer.model, trainer.frontend, clips[rows], labels[rows],
                            len(trainer.index.labels))[1]
    return int(np.trace(matrix))


def adapt(takes_dir: Path, out_path: Path, recipe: AdaptRecipe | None = None, *, base=None, progress: bool = False,
          hooks=None, on_stage: Callable[[str], None] | None = None) -> AdaptResult:
    """Adapt `base` (a ModelBundle; default: the shipped model) to the takes in `takes_dir` (a folder
    per command) and write the adapted model to `out_path` (checked before any work, written atomically)."""
    from ..atomic_files import check_writable, output_lock

    recipe = recipe or AdaptRecipe()
    check_writable(out_path, "file")
    with output_lock(out_path):
        return _adapt_locked(takes_dir, Path(out_path), recipe, base, progress, hooks, on_stage)


def _adapt_locked(takes_dir, out_path: Path, recipe: AdaptRecipe, base, progress, hooks, on_stage) -> AdaptResult:
    from ..modelfile import load_model

    started = time.monotonic()
    base = base or load_model(None)
    base_name = base.path.name if base.path else "the base model"
    takes = collect_takes(takes_dir, base.labels, base_name)
    if on_stage:
        on_stage("preparing the takes")
    trainer, groups = adapted_trainer(base, takes, recipe, progress, hooks)
    take_rows = np.flatnonzero(groups == TAKE)
    if len(take_rows) == 0:
        raise AdaptError(f"{takes_dir}: none of the takes could be read")
    base_right = right_on(trainer, take_rows, base.model.to(trainer.device))
    trainer.execute(adapt_plan(recipe, trainer.training_labels, groups, trainer.index.labels), on_stage)
    adapted_right = right_on(trainer, take_rows)
    used = {label: int(((trainer.training_labels[take_rows]) == i).sum())
            for i, label in enumerate(trainer.index.labels) if label in takes}
    result = AdaptResult(out_path, used, [base_right, len(take_rows)], [adapted_right, len(take_rows)],
                         time.monotonic() - started)
    write_adapted(trainer, base, takes_dir, recipe, result, int((groups == REPLAY).sum()))
    result.seconds = time.monotonic() - started
    return result


def write_adapted(trainer, base, takes_dir: Path, recipe: AdaptRecipe, result: AdaptResult, replay_clips: int) -> None:
    """The model file: the base's labels, feature and model settings and usage keys, and what adapting did."""
    from ..model import count_parameters, flops_per_clip
    from ..modelfile import ModelBundle, save_model

    info = {key: base.info[key] for key in USAGE_KEYS if key in base.info}
    info["adapted"] = {
        "base": base.path.name if base.path else None, "takes_dir": str(takes_dir), "takes": result.takes,
        "steps": recipe.steps, "base_on_takes": result.base_on_takes, "adapted_on_takes": result.adapted_on_takes,
        "replay_clips": replay_clips, "seconds": round(result.seconds, 1),
        "recipe": {"name": "adapt", **asdict(recipe)}, "credit": REPLAY_CREDIT}
    info["parameters"] = count_parameters(trainer.model)
    info["flops_per_clip"] = flops_per_clip(trainer.model_config, trainer.features.n_frames)
    for parameter in trainer.model.parameters():
        parameter.requires_grad_(True)
    save_model(result.model_path, ModelBundle(trainer.model.cpu().eval(), list(base.labels), base.features, info))


def card_lines(meta: dict) -> list[str]:
    """Model-card Markdown for an adapted model: from what, to how many takes of which commands."""
    adapted = meta.get("adapted")
    if not isinstance(adapted, dict):
        return []
    takes = adapted.get("takes", {})
    total = sum(takes.values())
    lines = [f"**Adapted to one voice** from {adapted.get('base') or 'a base model'}: {total} take"
             f"{'s' * (total != 1)} ({', '.join(f'{w} {n}' for w, n in takes.items())}), "
             f"{adapted.get('steps', '?')} steps; the other commands and other speech kept by replaying "
             f"{adapted.get('replay_clips', '?')} bundled clips{following(adapted)}.", ""]
    base_right, n = adapted.get("base_on_takes", [0, 0])
    if n:
        lines += [f"**Your takes:** the base model recognized {base_right} of {n}; the adapted model "
                  f"{adapted.get('adapted_on_takes', [0, 0])[0]} of {n} (it learned from them)", ""]
    credit = adapted.get("credit")
    return lines + ([f"*{credit}.*", ""] if credit else [])


def following(adapted: dict) -> str:
    """What else kept the base model's knowledge, as the card says it (nothing by default)."""
    recipe = adapted.get("recipe", {})
    kept = [text for key, text in (("distill_weight", "following the base model's probabilities"),
                                   ("anchor_weight", "a pull toward the base model's weights"))
            if recipe.get(key, 0) > 0]
    return "".join(f" and {text}" for text in kept)


def summary_lines(result: AdaptResult) -> list[str]:
    """What `speech-app adapt` prints when done."""
    right, n = result.base_on_takes
    return [f"wrote {result.model_path} in {result.seconds:.0f} s: adapted to {n} takes "
            f"({', '.join(f'{w} {k}' for w, k in result.takes.items())})",
            f"the base model recognized {right} of your {n} takes; the adapted model {result.adapted_on_takes[0]} "
            f"(it learned from them: try it on new takes)"]
