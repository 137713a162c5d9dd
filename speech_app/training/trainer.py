"""Training: data folders in, a self-describing model file and a report out.

The Trainer decodes the data and builds the model once, then trains in one of two ways: `fit()`
runs epochs with validation, early stopping and a checkpoint after each (`--resume` continues from
it): the dataset recipe, `train()` below; `execute(plan)` runs a recipe's TrainingPlan (plan.py),
runs of a fixed budget of steps from the same start: the custom-word recipe (custom_words.py).
Runs on one device, or on several processes under `torchrun` (distributed.py).

The rest of a run lives beside this module: the learning-rate schedule (schedule.py), the draw
weights (draws.py), the settings a fine-tune or a resumed run starts with (start_settings.py), the
checkpoint file (checkpoints.py), and the model file and report it writes (outputs.py).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..atomic_files import output_lock, write_bytes
from ..audio import decode_files
from ..data.augment import AugmentConfig, WaveformAugmenter
from ..data.clips import choose_window_seconds, failed_rows, load_split_clips, to_float
from ..data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, DatasetIndex, build_index
from ..data.noise import NoiseBank
from ..device import autocast_for, pick_device, training_precision
from ..features import FeatureConfig, MfccFrontend, SpecAugment
from ..model import BiLstmClassifier, ModelConfig, average_weights
from ..modelfile import ModelBundle
# checkpoint_path, check_outputs, default_report_dir, finish, MODEL_SETTING_FLAGS and starting_settings are
# also imported from here by the CLI and the GUI: this module is training's front door
from .checkpoints import checkpoint_path, read_checkpoint
from .conversation import CONVERSATION_SOURCE, CONVERSATION_WINDOW_SECONDS, with_conversation
from .distill import TeacherEnsemble, check_teachers, distillation_loss
from .distributed import Distributed, log
from .draws import epoch_order, sampling_weights
from .evaluate import evaluate_clips
from .outputs import check_outputs, default_report_dir, describe, finish
from .plan import RunOutcome, RunSpec, StepSchedule, TrainingPlan
from .report import accuracy
from .schedule import FINAL_LR_FRACTION, WARMUP_FRACTION, learning_rate_at
from .start_settings import MODEL_SETTING_FLAGS, resumed_settings, starting_settings

WINDOW_SAMPLE_CLIPS = 300  # training takes decoded to choose the window length from the data
FEATURE_STATS_CLIPS = 2000  # clips used to measure the mean and spread of each MFCC coefficient
KEEP_CHOICES = ("best", "last")  # which epoch's weights a run writes (TrainConfig.keep)


@dataclass
class TrainConfig:
    """A training run's settings (the dataset recipe). A field with `help` metadata is a `speech-app
    train` option, built from the field (cli/train.py); `default_text` says what a None default means."""

    epochs: int = field(default=40, metadata={"help": "passes over the training data, at most"})
    batch_size: int = field(default=128, metadata={"help": "clips per training batch"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    patience: int = field(default=8, metadata={"help": "epochs without improvement before stopping"})
    balance_power: float = 0.5  # sampling weight per class ~ count**-power: rare words are seen more
    synthetic_share: float = field(default=0.5, metadata={
        "help": "at most this share of a word's training draws are synthetic when it has real clips"})
    conversation_share: float = field(default=0.3, metadata={
        "help": "with --conversation: share of the _unknown_ draws that are windows of continuous speech"})
    max_clip_norm: float = 5.0
    seed: int = field(default=0, metadata={"help": "seed of the random draws (data order, augmentation, initial weights)"})
    device: str = field(default="auto", metadata={"help": "where to train"})
    precision: str = field(default="auto", metadata={
        "help": "arithmetic of the forward and backward passes, the weights staying float32 (autocast): auto is "
                "bfloat16 on a CPU where it is faster (AMX, or AVX-512 BF16 where a short probe finds it faster), float16 "
                "on CUDA, float32 elsewhere"})
    window_seconds: float | None = field(default=None, metadata={
        "help": "input window in seconds", "default_text": "chosen from the data"})
    spec_augment: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps_per_epoch: int | None = field(default=None, metadata={
        "help": "batches per epoch", "default_text": "one pass over the data"})
    warmup_steps: int | None = field(default=None, metadata={
        "help": f"batches of linear learning-rate warm-up, then a cosine decay to {FINAL_LR_FRACTION:g} x the peak "
                "at the last batch", "default_text": f"one in {round(1 / WARMUP_FRACTION)} of the run's batches"})
    final_lr_fraction: float = FINAL_LR_FRACTION
    # decoded clips cached per folder, not per split (load_split_clips): the custom recipe's takes change
    # from run to run while its negatives and synthetic speech stay, and only the takes are decoded again
    cache_by_folder: bool = False
    keep: str = field(default="best", metadata={
        "help": "the epoch whose weights are written: the best on validation, or the last (a decayed run has settled)"})
    distill_weight: float = field(default=0.5, metadata={
        "help": "with --teacher: share of the loss that follows the teachers' averaged probabilities "
                "(the rest follows the labels)"})
    distill_temperature: float = field(default=2.0, metadata={
        "help": "with --teacher: temperature that softens the teachers' and the student's probabilities"})
    # L2-SP (Li et al., 2018): anchor_weight * the summed squared distance of the trainable weights from those
    # the run started with, added to the loss; 0 leaves the loss as it was. Fine-tuning from few clips (adapt.py)
    anchor_weight: float = 0.0
    # fine-tuning with other labels than the starting model's: the new output layer's `_silence_` and `_unknown_`
    # rows start from the starting model's rows of those labels (weights and bias), the words' rows at zero;
    # False: every row at zero
    head_from_start: bool = False


# Training from text alone (`train --words ... --synth`, no recordings, dataset recipe): a few
# hundred synthetic clips per word converge fast, and the run must finish in minutes on a laptop
TEXT_ONLY_SETTINGS = {"epochs": 15, "patience": 5}


class TrainingCancelled(Exception):
    """Raised inside training when its `should_stop` hook says so; nothing is written."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the weights are garbage, so no model is written."""


@dataclass
class TrainHooks:
    """How a caller (the GUI's worker thread) follows and stops a run; all optional.

    on_batch gets {"epoch", "batch", "batches", "loss", "accuracy"}; on_epoch gets the history entry;
    on_log gets each line the run would otherwise print to stderr (a GUI shows its own progress).
    """

    on_batch: Callable[[dict], None] | None = None
    on_epoch: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] | None = None
    on_log: Callable[[str], None] | None = None


@dataclass
class TrainResult:
    model_path: Path
    report_dir: Path
    best_epoch: int
    val_accuracy: float
    history: list[dict]


def prepare_data(index: DatasetIndex, config: TrainConfig, progress: bool, hooks: TrainHooks | None = None):
    """Decoded clips per split (int16), label ids, the noise bank and the chosen window length."""
    noise = NoiseBank.from_files(index.noise_files, seed=config.seed)
    window = config.window_seconds
    if window is None:
        train_paths = [e.path for e in index.split("training") if e.path]
        rng = np.random.default_rng(config.seed)
        sample = list(rng.choice(train_paths, min(len(train_paths), WINDOW_SAMPLE_CLIPS), replace=False))
        window = choose_window_seconds([a for a in decode_files(sample, progress) if isinstance(a, np.ndarray)])
    label_ids = {label: i for i, label in enumerate(index.labels)}
    splits, left_out = {}, set()
    for split_seed, name in enumerate(("training", "validation", "testing")):
        examples = index.split(name)
        clips, errors = load_split_clips(examples, window, noise, seed=config.seed + split_seed, progress=progress,
                                         by_folder=config.cache_by_folder)
        for error in errors:
            log(f"left out: {error}", hooks=hooks)
        # an undecodable take is left out: kept as a silent row it would teach silence as its word
        bad = failed_rows(examples, errors)
        left_out.update(id(examples[row]) for row in bad)
        keep = np.setdiff1d(np.arange(len(examples)), bad)
        labels = np.array([label_ids[e.label] for e in examples], dtype=np.int64)
        splits[name] = (clips[keep], labels[keep])
    if left_out:
        index.examples = [e for e in index.examples if id(e) not in left_out]
    return splits, noise, window


def feature_statistics(frontend: MfccFrontend, clips: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(clips), min(len(clips), FEATURE_STATS_CLIPS), replace=False)
    with torch.no_grad():
        feats = torch.cat([frontend(torch.from_numpy(to_float(clips[rows[i : i + 256]])))
                           for i in range(0, len(rows), 256)])  # (N, F, T)
    return feats.mean(dim=(0, 2)), feats.std(dim=(0, 2))


class Trainer:
    """The data, model and optimiser of a training run, decoded and built once. Two ways to train:
    `fit()` runs epochs with validation, early stopping and a checkpoint after each (the dataset
    recipe); `execute(plan)` runs a TrainingPlan, runs of a fixed budget of steps that each start
    over from the weights the Trainer began with (the custom-word recipe, see plan.py)."""

    def __init__(self, index: DatasetIndex, config: TrainConfig, model_config: ModelConfig | None = None,
                 init_from: ModelBundle | None = None, progress: bool = True, hooks: TrainHooks | None = None,
                 *, features: FeatureConfig | None = None, teachers: list[ModelBundle] = ()):
        self.config, self.index, self.progress = config, index, progress
        self.hooks = hooks or TrainHooks()
        # weight name -> its share of the learning rate (1.0 where absent); a recipe sets it, runs after that use it
        self.rate_shares: dict[str, float] = {}
        self.device = pick_device(config.device)
        training_precision(config.precision, self.device)  # a precision this device cannot run: before any work
        self.dist = Distributed(self.device)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(config.seed)  # the initial weights of a model trained from scratch
        self.splits, self.noise, window = prepare_data(index, config, progress and self.dist.is_main, self.hooks)
        self.features = replace(features or FeatureConfig(), clip_seconds=window)  # MFCC settings: a resumed run's
        self.frontend = MfccFrontend(self.features).to(self.device)
        self.masking = SpecAugment().to(self.device) if config.spec_augment else None
        self._build_model(model_config, init_from)
        self.teachers = (TeacherEnsemble(list(teachers), index.labels, self.features.clip_samples, self.device)
                         if teachers else None)
        self.train_model = self.model
        if self.dist.world > 1:
            ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = self._new_optimizer()
        float16 = self.device.type == "cuda" and training_precision(config.precision, self.device) == "float16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=float16)  # float16 gradients underflow
        self.silence_id = index.labels.index(SILENCE_LABEL) if SILENCE_LABEL in index.labels else -1
        self.augmenter = WaveformAugmenter(config.augment, self.noise, seed=config.seed * 1000 + self.dist.rank)
        # the epochs' draw (fit); a plan's runs bring their own
        synthetic = np.array([e.source == "synthetic" for e in index.split("training")], dtype=bool)
        talk = np.array([e.source == CONVERSATION_SOURCE for e in index.split("training")], dtype=bool)
        self.weights = sampling_weights(self.splits["training"][1], synthetic, config.balance_power,
                                        config.synthetic_share, talk, config.conversation_share)
        n_train = len(self.splits["training"][1])
        self.draws = (config.steps_per_epoch * config.batch_size) if config.steps_per_epoch else n_train
        self.steps_per_epoch = math.ceil(self.draws / self.dist.world / config.batch_size)
        self._reset_progress()
        self.initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _build_model(self, model_config: ModelConfig | None, init_from: ModelBundle | None) -> None:
        """The network: the starting model's (its settings and weights), or a new one whose feature
        normalisation is measured on the training clips."""
        base = model_config or ModelConfig()
        if init_from is not None:
            base = starting_settings(init_from, model_config)
        self.model_config = replace(base, n_features=self.features.n_mfcc, n_classes=len(self.index.labels))
        self.model = BiLstmClassifier(self.model_config)
        if init_from is not None:
            self._init_from(init_from)
        else:
            stats = feature_statistics(self.frontend.cpu(), self.splits["training"][0], self.config.seed)
            self.model.set_feature_statistics(*stats)
            self.frontend.to(self.device)
        self.model.to(self.device)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over the weights, in groups by their share of the learning rate (`rate_shares`), the full-rate
        group first (the history logs the first group's rate)."""
        groups: dict[float, list] = {1.0: []}
        for name, parameter in self.model.named_parameters():
            groups.setdefault(self.rate_shares.get(name, 1.0), []).append(parameter)
        return torch.optim.AdamW([{"params": params, "rate_share": share} for share, params in groups.items() if params],
                                 lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def _reset_progress(self) -> None:
        self.step, self.epoch, self.best_accuracy, self.best_epoch = 0, 0, -1.0, 0
        self.best_state: dict | None = None
        self.history: list[dict] = []

    def _init_from(self, bundle: ModelBundle) -> None:
        """Fine-tune: take every encoder weight, and the head too when the labels are the same."""
        if bundle.features != self.features:
            # the encoder only knows the MFCC settings it was trained on; the window may be longer
            self.features = replace(bundle.features, clip_seconds=self.features.clip_seconds)
            self.frontend = MfccFrontend(self.features).to(self.device)
        own = self.model.state_dict()
        theirs = bundle.model.state_dict()
        if bundle.labels != self.index.labels:
            theirs = {k: v for k, v in theirs.items() if not k.startswith("head.")}
            # a new output layer starts at zero (every class alike), not at random: the random start moved
            # custom words from text alone by up to 3.6 points from seed to seed. Measured (the study, seeds
            # 0-5): 95.1% of real takes (94.0-96.0) against 94.8% (92.7-96.3); 5 takes 96.6% against 93.4%
            # (training/studies/CUSTOM_WORDS_STUDY.md)
            with torch.no_grad():
                for parameter in self.model.head.parameters():
                    parameter.zero_()
            if self.config.head_from_start:
                self._head_rows_from(bundle)
        misfits = [k for k, v in theirs.items() if k not in own or own[k].shape != v.shape]
        if misfits:  # starting_settings prevents this; a partial load would train the rest from scratch
            raise ValueError(f"the starting model's weights do not fit ({', '.join(misfits[:3])}...)")
        self.model.load_state_dict(theirs, strict=False)

    def _head_rows_from(self, bundle: ModelBundle) -> None:
        """Copy the starting model's `_silence_` and `_unknown_` output rows (weights and bias) into this one's
        rows of those labels; a word's row stays as it is, even a word the starting model knows."""
        own = dict(self.model.head.named_parameters())
        theirs = dict(bundle.model.head.named_parameters())
        if {k: v.shape[1:] for k, v in own.items()} != {k: v.shape[1:] for k, v in theirs.items()}:
            raise ValueError("the starting model's output layer does not fit this one's")
        with torch.no_grad():
            for row, label in enumerate(self.index.labels):
                if label in (SILENCE_LABEL, UNKNOWN_LABEL) and label in bundle.labels:
                    for name, parameter in own.items():
                        parameter[row] = theirs[name][bundle.labels.index(label)].to(parameter.device)

    @property
    def training_labels(self) -> np.ndarray:
        """The label id of each training clip (undecodable ones left out), in the index's order."""
        return self.splits["training"][1]

    # -- the step loop, shared by the epochs and the plans' runs
    def train_batches(self, order: np.ndarray, n_batches: int, batch_size: int, seed: int, epoch: int,
                      rate_at: Callable[[int], float], label: str) -> tuple[float, float]:
        """Train on the training clips of `order`, `batch_size` at a time, for at most `n_batches`
        batches; `rate_at(step)` is the learning rate of the run's step. Returns the mean loss and
        accuracy over every process. The random state comes from (seed, rank, epoch): a resumed run
        continues exactly as an unbroken one, and a plan's run is the same whatever ran before it."""
        self.augmenter.rng = np.random.default_rng([seed, self.dist.rank, epoch])
        torch.manual_seed(seed * 100_003 + epoch * 101 + self.dist.rank)
        self.train_model.train()
        precision = training_precision(self.config.precision, self.device)  # the config's now (a study may change it)
        sums = [0.0, 0.0, 0.0]  # loss * n, correct, n
        bar = tqdm(range(n_batches), desc=label, unit="batch", disable=not (self.progress and self.dist.is_main),
                   leave=False)
        for batch_no in bar:
            rows = order[batch_no * batch_size : (batch_no + 1) * batch_size]
            if len(rows) == 0:
                break
            loss, correct = self.train_step(rows, rate_at(self.step), precision)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"training diverged: the loss became {loss} in epoch {epoch + 1}; "
                                       f"no model written (too few clips per word, or try a lower --learning-rate)")
            sums[0] += loss * len(rows)
            sums[1] += correct
            sums[2] += len(rows)
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
            if self.hooks.on_batch:
                self.hooks.on_batch({"epoch": epoch + 1, "batch": batch_no + 1, "batches": n_batches,
                                     "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2]})
            if self.hooks.should_stop and self.hooks.should_stop():
                raise TrainingCancelled("training cancelled")
        loss_sum, correct, seen = self.dist.all_sum(sums)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def train_step(self, rows: np.ndarray, learning_rate: float, precision: str) -> tuple[float, int]:
        """One optimiser step on the training clips `rows`, augmented; returns (loss, clips right)."""
        clips, labels = self.splits["training"]
        waves = self.augmenter(to_float(clips[rows]), labels[rows] == self.silence_id).to(self.device)
        targets = torch.from_numpy(labels[rows]).to(self.device)
        features = self.frontend(waves)  # float32 always: a loud frame's power overflows float16
        if self.masking is not None:
            features = self.masking(features)
        with autocast_for(self.device, precision):  # float16 on CUDA (loss scaled below), bfloat16 on AMX CPUs
            logits = self.train_model(features)
            loss = self.loss(logits, targets, waves) + self.anchor_penalty()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate * group.get("rate_share", 1.0)  # a checkpoint of before has no share
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        return loss.item(), int((logits.argmax(dim=1) == targets).sum().item())

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, waves: torch.Tensor) -> torch.Tensor:
        """The label loss, mixed with the distillation loss when the run has teachers (they see the same
        augmented clips, without the student's spectrogram masking)."""
        cfg = self.config
        hard = F.cross_entropy(logits.float(), targets, label_smoothing=cfg.label_smoothing)
        if self.teachers is None:
            return hard
        soft = distillation_loss(logits, self.teachers.probabilities(waves, cfg.distill_temperature),
                                 cfg.distill_temperature)
        return (1.0 - cfg.distill_weight) * hard + cfg.distill_weight * soft

    def anchor_penalty(self) -> torch.Tensor | float:
        """The L2-SP pull toward the starting weights (TrainConfig.anchor_weight) on the weights that train."""
        if not self.config.anchor_weight:
            return 0.0
        start = self.initial_state
        distance = sum(((p.float() - start[name].float()) ** 2).sum()
                       for name, p in self.model.named_parameters() if p.requires_grad)
        return self.config.anchor_weight * distance

    # -- the dataset recipe: epochs, validation, early stopping, checkpoints
    def run_epoch(self) -> tuple[float, float]:
        """One epoch: `steps_per_epoch` batches drawn by the class-balanced weights."""
        cfg = self.config
        order = epoch_order(self.weights, self.epoch, cfg.seed, self.draws)[self.dist.rank :: self.dist.world]
        return self.train_batches(order, self.steps_per_epoch, cfg.batch_size, cfg.seed, self.epoch,
                                  lambda step: learning_rate_at(cfg, step, self.steps_per_epoch),
                                  f"epoch {self.epoch + 1}/{cfg.epochs}")

    def validate(self) -> tuple[float, np.ndarray]:
        clips, labels = self.splits["validation"]
        return evaluate_clips(self.model, self.frontend, clips, labels, len(self.index.labels))

    def fit(self, checkpoint: Path) -> None:
        cfg = self.config
        while self.epoch < cfg.epochs and self.epoch - self.best_epoch < cfg.patience:
            started = time.monotonic()
            train_loss, train_acc = self.run_epoch()
            val_loss, matrix = self.validate()
            self.epoch += 1
            val_acc = accuracy(matrix)
            self.history.append({"epoch": self.epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                                 "val_loss": val_loss, "val_accuracy": val_acc, "seconds": time.monotonic() - started,
                                 "learning_rate": self.optimizer.param_groups[0]["lr"]})
            if val_acc > self.best_accuracy:
                self.best_accuracy, self.best_epoch = val_acc, self.epoch
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            log(f"epoch {self.epoch}: loss {train_loss:.4f} acc {train_acc:.4f} | val loss {val_loss:.4f} "
                f"acc {val_acc:.4f} | best {self.best_accuracy:.4f} (epoch {self.best_epoch}) | lr {self.history[-1]['learning_rate']:.2e} "
                f"| {time.monotonic() - started:.0f} s", self.dist, self.hooks)
            self.save_checkpoint(checkpoint)
            if self.hooks.on_epoch:
                self.hooks.on_epoch(self.history[-1])
        if self.best_state is not None and cfg.keep != "last":
            self.model.load_state_dict(self.best_state)

    @property
    def kept_epoch(self) -> int:
        return self.epoch if self.config.keep == "last" else self.best_epoch

    def checkpoint_state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "epoch": self.epoch, "best_accuracy": self.best_accuracy,
                "best_epoch": self.best_epoch, "best_state": self.best_state, "history": self.history,
                "labels": list(self.index.labels), "clip_seconds": self.features.clip_seconds,
                "model_config": self.model_config.to_dict(), "features": self.features.to_dict()}

    def save_checkpoint(self, path: Path) -> None:
        if self.dist.is_main:  # serialized in memory: a full disk is then an OSError naming the file
            buffer = io.BytesIO()
            torch.save(self.checkpoint_state(), buffer)
            write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Path) -> None:
        state = read_checkpoint(path, self.device)
        if state["labels"] != list(self.index.labels) or state["clip_seconds"] != self.features.clip_seconds:
            raise ValueError(f"{path}: checkpoint is for other labels or another window; delete it or drop --resume")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.best_accuracy, self.best_epoch = state["best_accuracy"], state["best_epoch"]
        self.best_state, self.history = state["best_state"], state["history"]

    # -- a recipe's plan: runs of a fixed budget from the same start (plan.py)
    def execute(self, plan: TrainingPlan, on_stage: Callable[[str], None] | None = None,
                beside: bool = False) -> list[RunOutcome]:
        """Run every run of `plan`, each from the weights this Trainer began with; the model ends with
        the last run's weights or, with `plan.average`, the mean of every run's. The history then
        holds the plan as one epoch (its first run's loss and accuracy), as the report shows it.
        beside: where side processes can run (side_process.py), the runs after the first train in them
        while this process trains the first, every process on one torch thread (the same weights as
        one after the other on one thread: a run's randomness comes from its seed)."""
        from .side_process import SIDE_THREADS, SideCall, side_process_possible, torch_threads

        started = time.monotonic()
        outcomes, states = [], []
        sides = []
        if beside and len(plan.runs) > 1 and side_process_possible(self.device):
            sides = [SideCall(self._run_aside, spec, plan.schedule) for spec in plan.runs[1:]]
        here = plan.runs[:1] if sides else plan.runs
        threads = torch_threads(SIDE_THREADS) if sides else None
        try:
            for spec in here:
                if on_stage and spec.stage:  # each run its own stage: the GUI's progress bar and loss chart start over
                    on_stage(spec.stage + (f", with {len(sides)} more at once" if sides else ""))
                outcomes.append(self._run(spec, plan.schedule))
                if plan.average:
                    states.append({name: t.detach().clone() for name, t in self.model.state_dict().items()})
            for side in sides:
                outcome, state = side.result()
                outcomes.append(outcome)
                if plan.average:
                    states.append({name: torch.from_numpy(array) for name, array in state.items()})
        except BaseException:
            for side in sides:
                side.cancel()
            raise
        finally:
            if threads is not None:
                torch_threads(threads)
        if sides and not plan.average:  # the model ends with the last run's weights
            self.model.load_state_dict({name: torch.from_numpy(array) for name, array in state.items()})
        if len(states) > 1:
            self.model.load_state_dict(average_weights(states, [1.0 / len(states)] * len(states)))
        self.epoch = 1
        self.history = [{"epoch": 1, "train_loss": outcomes[0].loss, "train_accuracy": outcomes[0].accuracy,
                         "val_loss": math.nan, "val_accuracy": math.nan, "seconds": time.monotonic() - started}]
        return outcomes

    def _run_aside(self, spec: RunSpec, schedule: StepSchedule) -> tuple[RunOutcome, dict]:
        """`_run` in a side process, reporting to no one (the hooks and progress bars are the parent's); the
        run's weights as numpy arrays (pickled whole: a tensor would travel as shared memory the exiting
        child takes with it)."""
        self.hooks, self.progress = TrainHooks(), False
        outcome = self._run(spec, schedule)
        state = {name: t.detach().cpu().numpy().copy() for name, t in self.model.state_dict().items()}
        return outcome, state

    def _run(self, spec: RunSpec, schedule: StepSchedule) -> RunOutcome:
        """One run of a plan: start over (weights, optimiser, loss scale, step count), train, measure."""
        self.model.load_state_dict(self.initial_state)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.scaler.is_enabled())  # not the last run's scale
        self.optimizer = self._new_optimizer()
        self._reset_progress()
        draws = schedule.steps * schedule.batch_size
        n_batches = math.ceil(draws / self.dist.world / schedule.batch_size)
        order = epoch_order(spec.weights, 0, spec.seed, draws)[self.dist.rank :: self.dist.world]
        loss, acc = self.train_batches(order, n_batches, schedule.batch_size, spec.seed, 0,
                                         lambda step: schedule.learning_rate_at(step, n_batches), spec.stage or "run")
        confusion = None
        if spec.measure is not None:
            rows = np.flatnonzero(spec.measure)
            clips, labels = self.splits["training"]
            confusion = evaluate_clips(self.model, self.frontend, clips[rows], labels[rows], len(self.index.labels))[1]
        return RunOutcome(loss, acc, confusion, spec.inspect(self) if spec.inspect else None)


def train(data_dirs: list[Path], out_path: Path, words: list[str] | None = None, config: TrainConfig | None = None,
          model_config: ModelConfig | None = None, *, resume: bool = False, init_from: ModelBundle | None = None,
          report_dir: Path | None = None, progress: bool = True, index: DatasetIndex | None = None,
          hooks: TrainHooks | None = None, synthetic_dirs: list[Path] = (),
          holdout_real: tuple[str, ...] = (), split_options: dict | None = None,
          teachers: list[ModelBundle] = (), conversation_dirs: list[Path] = ()) -> TrainResult:
    config = config or TrainConfig()
    out_path = Path(out_path)
    report_dir = Path(report_dir) if report_dir else default_report_dir(out_path)
    check_outputs(out_path, report_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 writes (and locks)
    with output_lock(out_path) if is_main else _no_lock(), output_lock(report_dir) if is_main else _no_lock():
        return _train_locked(data_dirs, out_path, report_dir, words, config, model_config, resume, init_from,
                             progress, index, hooks, synthetic_dirs, holdout_real, split_options, teachers,
                             conversation_dirs)


def _no_lock():
    return contextlib.nullcontext()


def _train_locked(data_dirs, out_path: Path, report_dir: Path, words, config: TrainConfig, model_config, resume: bool,
                  init_from, progress: bool, index, hooks, synthetic_dirs, holdout_real,
                  split_options: dict | None, teachers: list[ModelBundle] = (),
                  conversation_dirs: list[Path] = ()) -> TrainResult:
    if init_from is not None:
        config = replace(config, window_seconds=init_from.features.clip_seconds)
    checkpoint = checkpoint_path(out_path)
    features = None
    if resume and checkpoint.is_file():  # the window it was trained with: no decoding to choose it again
        state = read_checkpoint(checkpoint)
        config = replace(config, window_seconds=state["clip_seconds"])
        if init_from is None:  # fine-tuning: the starting model's settings, checked against the checkpoint's
            model_config, features = resumed_settings(state, checkpoint, model_config)
    elif resume:
        log(f"--resume: no checkpoint at {checkpoint}; starting from the beginning", hooks=hooks)
    index = index or build_index(data_dirs, words, seed=config.seed, synthetic_dirs=synthetic_dirs,
                                 holdout_real=tuple(holdout_real), **(split_options or {}))
    if conversation_dirs:
        index = with_conversation(index, conversation_dirs, config.window_seconds or CONVERSATION_WINDOW_SECONDS)
    if not any(e.path for e in index.split("training")):
        raise ValueError(f"no training clips in {', '.join(map(str, list(data_dirs) + list(synthetic_dirs)))}")
    if not any(e.path for e in index.split("validation")):  # nothing to measure: val loss NaN, best epoch a guess
        raise ValueError("too few recordings: no clip is left to check the model on; give every word takes "
                         "from at least 2 speakers (or sessions), or more clips")
    check_teachers(teachers, index.labels)  # now, not after decoding the data
    trainer = Trainer(index, config, model_config, init_from, progress, hooks, features=features, teachers=teachers)
    log(describe(trainer), trainer.dist, trainer.hooks)
    if resume and checkpoint.is_file():
        trainer.load_checkpoint(checkpoint)
        log(f"resumed from {checkpoint} after epoch {trainer.epoch}", trainer.dist, trainer.hooks)
    trainer.fit(checkpoint)
    if trainer.dist.is_main:
        talk = sum(e.source == CONVERSATION_SOURCE for e in index.examples)
        extra = ({"conversation_speech": {"folders": [str(d) for d in conversation_dirs], "windows": talk,
                                          "unknown_share": config.conversation_share}} if conversation_dirs else None)
        finish(trainer, data_dirs, synthetic_dirs, out_path, report_dir, extra)
    trainer.dist.barrier()
    trainer.dist.close()
    return TrainResult(out_path, report_dir, trainer.best_epoch, trainer.best_accuracy, trainer.history)
