"""The Trainer's seam with a recipe: a TrainingPlan says what each run draws, for how many steps at
which learning rate, with which seed, what it is measured on and what the model keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN
from speech_app.data.dataset import build_index
from speech_app.modelfile import load_model
from speech_app.training.draws import ClassDraw, share_weights
from speech_app.training.plan import RunSpec, StepSchedule, TrainingPlan
from speech_app.training.trainer import TrainConfig, Trainer, TrainHooks

SCHEDULE = StepSchedule(steps=4, batch_size=6, learning_rate=3e-4, warmup_steps=2)


@pytest.fixture
def make_trainer(tiny_model, tiny_dataset):
    def make(hooks: TrainHooks | None = None) -> Trainer:
        index = build_index([tiny_dataset.root], ["yes", "no"], seed=0)
        return Trainer(index, TrainConfig(**TINY_TRAIN, precision="float32"), None, load_model(tiny_model),
                       False, hooks)

    return make


def weights_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_a_run_trains_only_on_the_clips_it_draws_and_measures_the_held_out_ones(make_trainer):
    trainer = make_trainer()
    labels = trainer.training_labels
    held_out = np.arange(len(labels)) % 3 == 0
    drawn = []
    train_step = trainer.train_step
    trainer.train_step = lambda rows, *rest: drawn.append(rows.copy()) or train_step(rows, *rest)
    run = RunSpec(np.where(held_out, 0.0, 1.0), seed=5, measure=held_out)
    outcome, = trainer.execute(TrainingPlan(SCHEDULE, (run,)))
    drawn = np.concatenate(drawn)
    assert len(drawn) == SCHEDULE.steps * SCHEDULE.batch_size and not held_out[drawn].any()
    n_classes = len(trainer.index.labels)
    assert outcome.confusion.sum(axis=1).tolist() == np.bincount(labels[held_out], minlength=n_classes).tolist()


def test_the_plan_not_the_config_sets_the_steps_the_learning_rate_and_the_stages(make_trainer):
    batches, stages = [], []
    trainer = make_trainer(TrainHooks(on_batch=lambda info: batches.append((info["batch"], info["batches"]))))
    runs = tuple(RunSpec(np.ones(len(trainer.training_labels)), seed, stage=f"run {seed}") for seed in (1, 2))
    outcomes = trainer.execute(TrainingPlan(SCHEDULE, runs), stages.append)
    assert stages == ["run 1", "run 2"]
    assert batches == [(b, SCHEDULE.steps) for b in range(1, SCHEDULE.steps + 1)] * 2  # not TINY_TRAIN's 3
    final = trainer.optimizer.param_groups[0]["lr"]
    assert final == pytest.approx(SCHEDULE.learning_rate * SCHEDULE.final_lr_fraction)  # the plan's decay, ended
    assert final == pytest.approx(SCHEDULE.learning_rate_at(SCHEDULE.steps - 1, SCHEDULE.steps))
    # what the report and the model file show: the plan as one epoch, with its first run's figures
    assert [h["epoch"] for h in trainer.history] == [1] and trainer.epoch == 1
    assert trainer.history[0]["train_loss"] == outcomes[0].loss


def test_each_run_starts_over_so_it_does_not_depend_on_the_runs_before_it(make_trainer):
    trainer = make_trainer()
    everything = np.ones(len(trainer.training_labels))
    first, second = RunSpec(everything, seed=3), RunSpec(everything, seed=4)
    trainer.execute(TrainingPlan(SCHEDULE, (second,)))
    alone = weights_of(trainer)
    trainer.execute(TrainingPlan(SCHEDULE, (first, second)))  # the model keeps the last run's weights
    after_another = weights_of(trainer)
    assert all(torch.equal(alone[k], after_another[k]) for k in alone)
    trainer.execute(TrainingPlan(SCHEDULE, (first,)))
    assert any(not torch.equal(alone[k], v) for k, v in weights_of(trainer).items())  # the seed matters


def test_a_plan_needs_a_run():
    with pytest.raises(ValueError, match="at least one run"):
        TrainingPlan(SCHEDULE, ())


def test_class_shares_split_among_the_groups_present_and_every_class_needs_one():
    labels = np.array([0, 0, 0, 1, 1, 1])
    groups = np.array([7, 7, 8, 7, 7, 7])  # class 1 has no clip of group 8: group 7 gets its share
    draws = {0: ClassDraw(0.25, {7: 0.5, 8: 0.5}), 1: ClassDraw(0.75, {7: 0.4, 8: 0.6})}
    weights = share_weights(labels, groups, draws, held_out=np.array([False, True, False, False, False, False]))
    assert weights.tolist() == pytest.approx([0.125, 0.0, 0.125, 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="class 1"):
        share_weights(labels, groups, {0: draws[0]})
