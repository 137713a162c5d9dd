"""Training: data folders in, a self-describing model file and a report out.

Runs on one device, or on several processes under `torchrun` (PyTorch DDP: NCCL on CUDA, gloo on
the CPU). Each epoch ends with validation, a checkpoint (`--resume` continues from it) and early
stopping on validation accuracy.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from ..atomic_files import atomic_write, check_writable, output_lock, staged_folder, swap_in_folder, write_bytes
from ..data.augment import AugmentConfig, WaveformAugmenter
from ..audio import decode_files
from ..data.clips import choose_window_seconds, failed_rows, load_split_clips, to_float
from ..data.dataset import SILENCE_LABEL, DatasetIndex, build_index
from ..features import FeatureConfig, MfccFrontend, SpecAugment
from ..device import autocast_for, pick_device, training_precision
from ..inference import predict_logits
from ..model import BiLstmClassifier, ModelConfig, count_parameters, flops_per_clip
from ..modelfile import ModelBundle, model_file_bytes
from ..data.noise import NoiseBank
from .distill import TeacherEnsemble, check_teachers, distillation_loss
from .report import REPORT_FILE_PATTERNS, accuracy, confusion_matrix, write_report

WINDOW_SAMPLE_CLIPS = 300  # training takes decoded to choose the window length from the data
FEATURE_STATS_CLIPS = 2000  # clips used to measure the mean and spread of each MFCC coefficient
WARMUP_FRACTION = 0.05  # share of the run's steps spent warming up: a fine-tune of a few epochs still decays
KEEP_CHOICES = ("best", "last")  # which epoch's weights a run writes (TrainConfig.keep)
FINAL_LR_FRACTION = 0.02  # the cosine decay ends at this share of the peak learning rate, not at zero


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
    max_clip_norm: float = 5.0
    seed: int = field(default=0, metadata={"help": "seed of the random draws (data order, augmentation, initial weights)"})
    device: str = field(default="auto", metadata={"help": "where to train"})
    precision: str = field(default="auto", metadata={
        "help": "arithmetic of the forward and backward passes, the weights staying float32 (autocast): auto is "
                "bfloat16 on a CPU that has it in hardware (AMX or AVX-512 BF16; 1.5-1.8x as fast here), float16 "
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
    keep: str = field(default="best", metadata={
        "help": "the epoch whose weights are written: the best on validation, or the last (a decayed run has settled)"})
    distill_weight: float = field(default=0.5, metadata={
        "help": "with --teacher: share of the loss that follows the teachers' averaged probabilities "
                "(the rest follows the labels)"})
    distill_temperature: float = field(default=2.0, metadata={
        "help": "with --teacher: temperature that softens the teachers' and the student's probabilities"})


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


class Distributed:
    """Rank and world size under torchrun; a single process otherwise."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def log(message: str, dist_info: Distributed | None = None, hooks: TrainHooks | None = None) -> None:
    if dist_info is not None and not dist_info.is_main:
        return
    if hooks is not None and hooks.on_log is not None:
        hooks.on_log(message)
    else:
        print(message, file=sys.stderr, flush=True)


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
        clips, errors = load_split_clips(examples, window, noise, seed=config.seed + split_seed, progress=progress)
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


def sampling_weights(labels: np.ndarray, synthetic: np.ndarray, power: float, synthetic_share: float) -> np.ndarray:
    """Draw weight per training clip.

    Class c gets a share of the draws proportional to count_c**(1 - power) (power 0: as in the
    data; 1: every class equally). Inside a class with real clips, synthetic ones get their share
    of the clips, but at most `synthetic_share` of the class's draws: real voices stay the majority.
    """
    weights = np.zeros(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        in_class = labels == c
        n_synth = int((in_class & synthetic).sum())
        n_real = int(in_class.sum()) - n_synth
        mass = float(in_class.sum()) ** (1.0 - power)
        share = 1.0 if n_real == 0 else min(n_synth / (n_real + n_synth), synthetic_share)
        if n_real:
            weights[in_class & ~synthetic] = mass * (1.0 - share) / n_real
        if n_synth:
            weights[in_class & synthetic] = mass * share / n_synth
    return weights


def epoch_order(weights: np.ndarray, epoch: int, seed: int, n_draws: int) -> np.ndarray:
    """Indices for one epoch, drawn with replacement by weight; the same for every DDP rank."""
    rng = np.random.default_rng([seed, epoch])
    return rng.choice(len(weights), size=n_draws, replace=True, p=weights / weights.sum())


def lr_factor(step: int, total_steps: int, warmup_steps: int, final_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to `final_fraction` of the peak at the run's last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_steps_for(config: TrainConfig, total_steps: int) -> int:
    """The configured warm-up, or WARMUP_FRACTION of the run (at least one step)."""
    if config.warmup_steps is not None:
        return config.warmup_steps
    return max(1, round(WARMUP_FRACTION * total_steps))


def learning_rate_at(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of one step of a run of `config.epochs` epochs: the schedule spans the whole
    budget, so it depends on --epochs (a resumed run must keep the same --epochs to continue it)."""
    total_steps = config.epochs * steps_per_epoch
    warmup = warmup_steps_for(config, total_steps)
    return config.learning_rate * lr_factor(step, total_steps, warmup, config.final_lr_fraction)


def evaluate_clips(model, frontend, clips: np.ndarray, labels: np.ndarray, n_classes: int):
    """(mean loss, confusion matrix) of the model on decoded clips."""
    model.eval()
    logits = predict_logits(model, frontend, to_float(clips)) if len(clips) else torch.zeros(0, n_classes)
    targets = torch.from_numpy(labels)
    loss = F.cross_entropy(logits, targets).item() if len(labels) else float("nan")
    return loss, confusion_matrix(labels, logits.argmax(dim=1).numpy(), n_classes)


class Trainer:
    """Holds the model, optimiser and data of one training run; `fit()` runs the epochs."""

    def __init__(self, index: DatasetIndex, config: TrainConfig, model_config: ModelConfig | None = None,
                 init_from: ModelBundle | None = None, progress: bool = True, hooks: TrainHooks | None = None,
                 *, features: FeatureConfig | None = None, teachers: list[ModelBundle] = ()):
        self.config, self.index, self.progress = config, index, progress
        self.hooks = hooks or TrainHooks()
        self.device = pick_device(config.device)
        training_precision(config.precision, self.device)  # a precision this device cannot run: before any work
        self.dist = Distributed(self.device)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(config.seed)
        self.splits, self.noise, window = prepare_data(index, config, progress and self.dist.is_main, self.hooks)
        self.features = replace(features or FeatureConfig(), clip_seconds=window)  # MFCC settings: a resumed run's
        self.frontend = MfccFrontend(self.features).to(self.device)
        self.masking = SpecAugment().to(self.device) if config.spec_augment else None
        base = model_config or ModelConfig()
        if init_from is not None:
            base = starting_settings(init_from, model_config)
        self.model_config = replace(base, n_features=self.features.n_mfcc, n_classes=len(index.labels))
        self.model = BiLstmClassifier(self.model_config)
        if init_from is not None:
            self._init_from(init_from)
        else:
            self.model.set_feature_statistics(*feature_statistics(self.frontend.cpu(), self.splits["training"][0], config.seed))
            self.frontend.to(self.device)
        self.model.to(self.device)
        self.teachers = (TeacherEnsemble(list(teachers), index.labels, self.features.clip_samples, self.device)
                         if teachers else None)
        self.train_model = self.model
        if self.dist.world > 1:
            ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        float16 = self.device.type == "cuda" and training_precision(config.precision, self.device) == "float16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=float16)  # float16 gradients underflow
        silence_id = index.labels.index(SILENCE_LABEL) if SILENCE_LABEL in index.labels else -1
        self.silence_id = silence_id
        self.augmenter = WaveformAugmenter(config.augment, self.noise, seed=config.seed * 1000 + self.dist.rank)
        synthetic = np.array([e.source == "synthetic" for e in index.split("training")], dtype=bool)
        self.weights = sampling_weights(self.splits["training"][1], synthetic, config.balance_power,
                                        config.synthetic_share)
        n_train = len(self.splits["training"][1])
        self.draws = (config.steps_per_epoch * config.batch_size) if config.steps_per_epoch else n_train
        self.steps_per_epoch = math.ceil(self.draws / self.dist.world / config.batch_size)
        self.step, self.epoch, self.best_accuracy, self.best_epoch = 0, 0, -1.0, 0
        self.best_state: dict | None = None
        self.history: list[dict] = []
        self.initial_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restart(self, steps: int, weights: np.ndarray) -> None:
        """Start over from the weights the run began with, for one epoch of `steps` batches drawn by
        `weights` (zero: never drawn). The custom-word recipe trains several models on one decoded set."""
        self.model.load_state_dict(self.initial_state)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.scaler.is_enabled())  # not the last run's scale
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate,
                                           weight_decay=self.config.weight_decay)
        self.weights, self.draws = weights, steps * self.config.batch_size
        self.steps_per_epoch = math.ceil(self.draws / self.dist.world / self.config.batch_size)
        self.step, self.epoch, self.best_accuracy, self.best_epoch = 0, 0, -1.0, 0
        self.best_state, self.history = None, []

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
        misfits = [k for k, v in theirs.items() if k not in own or own[k].shape != v.shape]
        if misfits:  # starting_settings prevents this; a partial load would train the rest from scratch
            raise ValueError(f"the starting model's weights do not fit ({', '.join(misfits[:3])}...)")
        self.model.load_state_dict(theirs, strict=False)

    def run_epoch(self) -> tuple[float, float]:
        cfg = self.config
        clips, labels = self.splits["training"]
        order = epoch_order(self.weights, self.epoch, cfg.seed, self.draws)[self.dist.rank :: self.dist.world]
        # random state from (seed, rank, epoch): a resumed run continues exactly as an unbroken one
        self.augmenter.rng = np.random.default_rng([cfg.seed, self.dist.rank, self.epoch])
        torch.manual_seed(cfg.seed * 100_003 + self.epoch * 101 + self.dist.rank)
        self.train_model.train()
        precision = training_precision(cfg.precision, self.device)  # from the config of this epoch (see restart)
        sums = [0.0, 0.0, 0.0]  # loss * n, correct, n
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not (self.progress and self.dist.is_main), leave=False)
        for batch_no in bar:
            rows = order[batch_no * cfg.batch_size : (batch_no + 1) * cfg.batch_size]
            if len(rows) == 0:
                break
            waves = self.augmenter(to_float(clips[rows]), labels[rows] == self.silence_id).to(self.device)
            targets = torch.from_numpy(labels[rows]).to(self.device)
            features = self.frontend(waves)  # float32 always: a loud frame's power overflows float16
            if self.masking is not None:
                features = self.masking(features)
            with autocast_for(self.device, precision):  # float16 on CUDA (loss scaled below), bfloat16 on AMX CPUs
                logits = self.train_model(features)
                loss = self.loss(logits, targets, waves)
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate_at(cfg, self.step, self.steps_per_epoch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            if not math.isfinite(loss.item()):
                raise TrainingDiverged(f"training diverged: the loss became {loss.item()} in epoch {self.epoch + 1}; "
                                       f"no model written (too few clips per word, or try a lower --learning-rate)")
            sums[0] += loss.item() * len(rows)
            sums[1] += (logits.argmax(dim=1) == targets).sum().item()
            sums[2] += len(rows)
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
            if self.hooks.on_batch:
                self.hooks.on_batch({"epoch": self.epoch + 1, "batch": batch_no + 1, "batches": self.steps_per_epoch,
                                     "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2]})
            if self.hooks.should_stop and self.hooks.should_stop():
                raise TrainingCancelled("training cancelled")
        loss_sum, correct, seen = self.dist.all_sum(sums)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

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

    def validate(self) -> tuple[float, np.ndarray]:
        clips, labels = self.splits["validation"]
        return evaluate_clips(self.model, self.frontend, clips, labels, len(self.index.labels))

    # -- checkpoints: plain tensors and numbers, loaded with weights_only=True (no unpickling of code)
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


MODEL_SETTING_FLAGS = {"hidden_size": "--hidden-size", "num_layers": "--layers"}  # the `train` options of
# ModelConfig fields: built from them (cli/train.py), and named when one does not match


def starting_settings(init_from: ModelBundle, wanted: ModelConfig | dict | None = None) -> ModelConfig:
    """The model settings of a fine-tuning run: those of the model it starts from.

    `wanted` holds settings the user asked for (a dict of explicit ones, or a whole ModelConfig);
    one that differs from the starting model's raises ValueError, since loading the weights into
    another shape would silently train most of the model from scratch.
    """
    source = init_from.path.name if init_from.path else "the starting model"
    return matching_settings(init_from.model.config, wanted, source, "when fine-tuning, model settings come from "
                             "the model it starts from; leave {flag} out or use --init-from none")


def resumed_settings(state: dict, checkpoint: Path,
                     wanted: ModelConfig | dict | None) -> tuple[ModelConfig | dict | None, FeatureConfig | None]:
    """The model and MFCC settings of a resumed run: those it started with, from its checkpoint
    (one written before they were saved there: the caller's, as before). A different model setting
    in `wanted` raises ValueError rather than failing to load the weights."""
    if "model_config" not in state:
        return wanted, None
    theirs = matching_settings(ModelConfig.from_dict(state["model_config"]), wanted, checkpoint.name,
                               "a resumed run keeps the model settings it started with; leave {flag} out, "
                               "or delete the checkpoint to start over")
    return theirs, FeatureConfig.from_dict(state["features"])


def matching_settings(theirs: ModelConfig, wanted: ModelConfig | dict | None, source: str, advice: str) -> ModelConfig:
    """`theirs`, after checking that every setting in `wanted` (a dict of explicit ones, or a whole
    ModelConfig) agrees with it; the first that does not raises ValueError naming its option."""
    if isinstance(wanted, ModelConfig):
        wanted = {k: v for k, v in asdict(wanted).items() if k not in ("n_features", "n_classes", "dropout")}
    for name, value in (wanted or {}).items():
        if value is not None and getattr(theirs, name) != value:
            flag = MODEL_SETTING_FLAGS.get(name, name)
            raise ValueError(f"{flag} {value} does not match {source} ({getattr(theirs, name)}): "
                             + advice.format(flag=flag))
    return theirs


CHECKPOINT_KEYS = ("model", "optimizer", "step", "epoch", "best_accuracy", "best_epoch", "best_state", "history",
                   "labels", "clip_seconds")


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's state; a damaged one (truncated, not a checkpoint) is one ValueError naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # RuntimeError, UnpicklingError, EOFError, ...: their text is rarely readable
        raise ValueError(f"{path}: damaged checkpoint (cut short or not a checkpoint: {type(err).__name__}); "
                         f"delete it or drop --resume") from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise ValueError(f"{path}: not a speech-app checkpoint; delete it or drop --resume")
    return state


def check_outputs(out_path: Path, report_dir: Path) -> None:
    """Refuse now, not after hours of training, an output that could not be written."""
    check_writable(out_path, "file")
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    check_writable(report_dir, "folder")


def checkpoint_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".ckpt")


def default_report_dir(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + "_report")


def train(data_dirs: list[Path], out_path: Path, words: list[str] | None = None, config: TrainConfig | None = None,
          model_config: ModelConfig | None = None, *, resume: bool = False, init_from: ModelBundle | None = None,
          report_dir: Path | None = None, progress: bool = True, index: DatasetIndex | None = None,
          hooks: TrainHooks | None = None, synthetic_dirs: list[Path] = (),
          holdout_real: tuple[str, ...] = (), split_options: dict | None = None,
          teachers: list[ModelBundle] = ()) -> TrainResult:
    config = config or TrainConfig()
    out_path = Path(out_path)
    report_dir = Path(report_dir) if report_dir else default_report_dir(out_path)
    check_outputs(out_path, report_dir)
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 writes (and locks)
    with output_lock(out_path) if is_main else _no_lock(), output_lock(report_dir) if is_main else _no_lock():
        return _train_locked(data_dirs, out_path, report_dir, words, config, model_config, resume, init_from,
                             progress, index, hooks, synthetic_dirs, holdout_real, split_options, teachers)


def _no_lock():
    import contextlib

    return contextlib.nullcontext()


def _train_locked(data_dirs, out_path: Path, report_dir: Path, words, config: TrainConfig, model_config, resume: bool,
                  init_from, progress: bool, index, hooks, synthetic_dirs, holdout_real,
                  split_options: dict | None, teachers: list[ModelBundle] = ()) -> TrainResult:
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
        finish(trainer, data_dirs, synthetic_dirs, out_path, report_dir)
    trainer.dist.barrier()
    trainer.dist.close()
    return TrainResult(out_path, report_dir, trainer.best_epoch, trainer.best_accuracy, trainer.history)


def describe(trainer: Trainer) -> str:
    counts = trainer.index.counts()
    lines = [f"device {trainer.device} x{trainer.dist.world}; window {trainer.features.clip_seconds:.2f} s; "
             f"{count_parameters(trainer.model):,} parameters; "
             f"{flops_per_clip(trainer.model_config, trainer.features.n_frames) / 1e6:.1f} MFLOPs per clip"]
    for label in trainer.index.labels:
        lines.append(f"  {label:<12} " + "  ".join(f"{split[:5]} {counts[split][label]:>5}" for split in counts))
    return "\n".join(lines)


def evaluation_matrices(trainer: Trainer) -> dict[str, np.ndarray]:
    """Confusion matrices on real speech, and separately on synthetic speech where some is held out
    (only for words with no real clips): synthetic figures flatter a model and never mix in."""
    n_classes, matrices = len(trainer.index.labels), {}
    for split in ("validation", "testing"):
        clips, labels = trainer.splits[split]
        examples = trainer.index.split(split)
        synthetic = np.array([e.source == "synthetic" for e in examples], dtype=bool)
        if not any(e.path and e.source == "real" for e in examples):
            synthetic[:] = True  # `_silence_` alone is no real-speech figure: it joins the synthetic one
        for name, rows in ((split, ~synthetic), (f"{split}_synthetic", synthetic)):
            if rows.any():
                matrices[name] = evaluate_clips(trainer.model, trainer.frontend, clips[rows], labels[rows], n_classes)[1]
    return matrices


def finish(trainer: Trainer, data_dirs: list[Path], synthetic_dirs: list[Path], out_path: Path, report_dir: Path,
           extra_info: dict | None = None) -> None:
    """Evaluate the best weights, write the report and the model file (with its metrics inside).

    Both are written under temporary names first and swapped in together at the end: a failure
    (a full disk) leaves the previous model and its report as they were, and matching."""
    matrices = evaluation_matrices(trainer)
    with staged_folder(report_dir) as staging:
        summary = write_report(staging, trainer.index.labels, matrices, trainer.history,
                               header=f"Training report: {out_path.name}")
        bundle = ModelBundle(trainer.model.cpu(), trainer.index.labels, trainer.features,
                             model_info(trainer, data_dirs, synthetic_dirs, summary, extra_info))
        with atomic_write(out_path, "wb") as handle:
            handle.write(model_file_bytes(out_path, bundle))
            handle.flush()
            os.fsync(handle.fileno())  # the model is safely on disk before its report replaces the old one
            swap_in_folder(staging, report_dir, REPORT_FILE_PATTERNS)
    validated = len(trainer.splits["validation"][1]) > 0
    log(f"wrote {out_path} and {report_dir}/" + (f" (best validation accuracy {trainer.best_accuracy:.4f} "
        f"at epoch {trainer.best_epoch}; kept epoch {trainer.kept_epoch})" if validated else ""), trainer.dist, trainer.hooks)


def model_info(trainer: Trainer, data_dirs: list[Path], synthetic_dirs: list[Path], summary: dict,
               extra_info: dict | None = None) -> dict:
    """What the model file says about its training: data, settings, metrics, size."""
    counts = trainer.index.counts()
    info = {
        "trained_on": {"data": [str(d) for d in data_dirs], "synthetic": [str(d) for d in synthetic_dirs],
                       "clips": {s: dict(c) for s, c in counts.items()},
                       "sources": sorted({e.source for e in trainer.index.examples if e.path})},
        "training": {**asdict(trainer.config), "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch,
                     "kept_epoch": trainer.kept_epoch},
        "metrics": {split: {"accuracy": v["accuracy"], "clips": v["clips"],
                            "recall": {r["label"]: r["recall"] for r in v["classes"]},
                            "precision": {r["label"]: r["precision"] for r in v["classes"]}}
                    for split, v in summary.items() if split != "history"},
        "parameters": count_parameters(trainer.model),
        "flops_per_clip": flops_per_clip(trainer.model_config, trainer.features.n_frames),
        **({"distilled_from": trainer.teachers.paths} if trainer.teachers else {}),
        **(extra_info or {}),
    }
    return info
