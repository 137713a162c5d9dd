"""The BiLSTM classifier: shapes, parameter and FLOP counts, gradients, feature normalisation."""

from __future__ import annotations

import pytest
import torch

from speech_app.model import BiLstmClassifier, ModelConfig, count_parameters, flops_per_clip

SMALL = ModelConfig(n_features=40, n_classes=7, hidden_size=16, num_layers=2, dropout=0.1)


@pytest.mark.parametrize("config, batch, frames", [
    (SMALL, 3, 101),
    (ModelConfig(n_features=20, n_classes=4, hidden_size=8, num_layers=1), 1, 51),
    (ModelConfig(n_classes=12, hidden_size=16), 2, 201),
])
def test_logits_shape(config, batch, frames):
    model = BiLstmClassifier(config).eval()
    logits = model(torch.randn(batch, config.n_features, frames))
    assert logits.shape == (batch, config.n_classes)
    assert torch.isfinite(logits).all()


def test_count_parameters_is_the_sum_of_numel():
    model = BiLstmClassifier(SMALL)
    expected = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == expected
    # the LSTM alone: per layer and direction 4H x (in + H) weights and two 4H biases
    h = SMALL.hidden_size
    lstm_input = model.lstm.input_size
    lstm = 2 * (4 * h * (lstm_input + h) + 8 * h) + 2 * (4 * h * (2 * h + h) + 8 * h)
    assert count_parameters(model.lstm) == lstm
    assert count_parameters(model) > lstm
    # the feature statistics are buffers, not parameters
    assert "feature_mean" in dict(model.named_buffers())
    assert count_parameters(torch.nn.Linear(3, 5)) == 20


NO_CONV = ModelConfig(n_features=40, n_classes=7, hidden_size=16, num_layers=2, dropout=0.1,
                      **({"conv_channels": 0} if "conv_channels" in ModelConfig.__dataclass_fields__ else {}))


def _frame_stride(config: ModelConfig) -> int:
    return getattr(config, "frame_stride", 1) if getattr(config, "conv_channels", 0) else 1


@pytest.mark.parametrize("config", [SMALL, NO_CONV], ids=["default", "no_conv"])
def test_flops_grow_linearly_with_frames(config):
    stride = _frame_stride(config)
    values = {frames: flops_per_clip(config, frames) for frames in (10, 50, 100, 200, 400)}
    assert all(v > 0 for v in values.values())
    ordered = [values[f] for f in sorted(values)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)
    # equal steps in frames give equal steps in FLOPs (steps that are whole multiples of the stride)
    assert values[400] - values[200] == 2 * (values[200] - values[100]) == 4 * (values[100] - values[50])
    assert values[400] / values[200] == pytest.approx(2.0, rel=0.02)
    assert (flops_per_clip(config, 100 + stride) - values[100]) * (100 // stride) == values[200] - values[100]


@pytest.mark.parametrize("config", [SMALL, NO_CONV], ids=["default", "no_conv"])
def test_flops_per_frame_match_the_weight_matrices(config):
    """One multiply-add per weight of every matrix applied per (LSTM) frame, plus the pooling."""
    model = BiLstmClassifier(config)
    per_step = sum(p.numel() for name, p in model.lstm.named_parameters() if name.startswith("weight"))
    per_step += model.attention[0].weight.numel() + model.attention[2].weight.numel()
    per_step += 2 * config.hidden_size  # the attention-weighted sum
    conv = getattr(model, "conv", None)
    if conv is not None:
        per_step += conv[0].weight.numel()
    stride = _frame_stride(config)
    assert flops_per_clip(config, 100 + stride) - flops_per_clip(config, 100) == 2 * per_step


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(0)
    model = BiLstmClassifier(SMALL).train()
    features = torch.randn(4, SMALL.n_features, 30)
    targets = torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(model(features), targets)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    # and a few optimiser steps reduce the loss on a fixed batch
    model.eval()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(12):
        optimizer.zero_grad()
        step_loss = torch.nn.functional.cross_entropy(model(features), targets)
        first = first if first is not None else step_loss.item()
        step_loss.backward()
        optimizer.step()
    assert step_loss.item() < 0.5 * first


def test_feature_statistics_normalise_the_input():
    torch.manual_seed(1)
    model = BiLstmClassifier(SMALL).eval()
    features = torch.randn(2, SMALL.n_features, 20)
    mean = torch.linspace(-50, 50, SMALL.n_features)
    std = torch.linspace(1, 30, SMALL.n_features)
    reference = model(features)
    model.set_feature_statistics(mean, std)
    torch.testing.assert_close(model(features * std[:, None] + mean[:, None]), reference, atol=1e-5, rtol=1e-4)


def test_feature_std_is_clamped_away_from_zero():
    model = BiLstmClassifier(SMALL)
    model.set_feature_statistics(torch.zeros(SMALL.n_features), torch.zeros(SMALL.n_features))
    assert (model.feature_std >= 1e-3).all()
    assert torch.isfinite(model.eval()(torch.randn(1, SMALL.n_features, 10))).all()


def test_eval_mode_is_deterministic_and_batch_independent():
    torch.manual_seed(2)
    model = BiLstmClassifier(SMALL).eval()
    features = torch.randn(3, SMALL.n_features, 40)
    together = model(features)
    torch.testing.assert_close(model(features), together)
    torch.testing.assert_close(model(features[1:2]), together[1:2], atol=1e-5, rtol=1e-4)


def test_model_config_round_trips_through_dict():
    assert ModelConfig.from_dict(SMALL.to_dict()) == SMALL
    assert ModelConfig.from_dict({**SMALL.to_dict(), "unknown": 3}) == SMALL
