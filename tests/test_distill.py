"""Distillation: the loss that pulls a student towards its teachers, and `train --teacher` end to end."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_MODEL, TINY_TRAIN, WANTED_WORDS
from speech_app.model import ModelConfig
from speech_app.modelfile import load_model, read_metadata
from speech_app.training.distill import distillation_loss
from speech_app.training.trainer import TrainConfig, train

TEMPERATURE = 2.0


def test_distillation_loss_is_zero_only_when_the_student_matches_the_teachers():
    teacher = torch.softmax(torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]) / TEMPERATURE, dim=-1)
    matching = torch.log(teacher) * TEMPERATURE  # logits whose softened probabilities are the teacher's
    assert distillation_loss(matching, teacher, TEMPERATURE).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(torch.zeros(2, 3), teacher, TEMPERATURE).item() > 0.01


def test_following_the_distillation_loss_takes_the_teachers_ranking():
    teacher = torch.softmax(torch.tensor([[0.0, 4.0, 1.0]]) / TEMPERATURE, dim=-1)
    student = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)  # sure of the wrong class
    optimizer = torch.optim.SGD([student], lr=1.0)
    losses = []
    for _ in range(50):
        loss = distillation_loss(student, teacher, TEMPERATURE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
    assert student.detach().argsort(dim=-1).tolist() == teacher.argsort(dim=-1).tolist()


def test_train_with_a_teacher_records_it(tiny_dataset, tiny_model, tmp_path):
    out = tmp_path / "student.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "distill_weight": 0.8})
    teacher = load_model(tiny_model)
    before = {name: t.clone() for name, t in teacher.model.state_dict().items()}
    result = train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False,
                   teachers=[teacher])
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
    after = teacher.model.state_dict()  # the student learns from the teacher; the teacher learns nothing
    assert all(torch.equal(before[name], after[name]) for name in before)
    metadata = read_metadata(out)
    assert metadata["distilled_from"] == [str(tiny_model)]
    assert metadata["training"]["distill_weight"] == 0.8


def test_a_teacher_with_other_labels_is_a_one_line_usage_error(tiny_dataset, tiny_model, tmp_path, capsys):
    from speech_app.cli import main

    other = tmp_path / "other.safetensors"
    train([tiny_dataset.root], other, ["yes", "no"], TrainConfig(**TINY_TRAIN), ModelConfig(**TINY_MODEL),
          progress=False)
    capsys.readouterr()  # that run's log
    status = main(["train", str(tiny_dataset.root), "--words", ",".join(WANTED_WORDS), "--out",
                   str(tmp_path / "m.safetensors"), "--teacher", f"{tiny_model},{other}", "--quiet",
                   "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8"])
    assert status == 2
    err = capsys.readouterr().err
    assert "other.safetensors" in err and "labels" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()

