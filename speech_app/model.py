"""The classifier: a bidirectional LSTM with attention pooling over time. No I/O, no labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    n_features: int = 40  # MFCC coefficients per frame
    n_classes: int = 12
    hidden_size: int = field(default=128, metadata={"help": "LSTM units per direction"})
    num_layers: int = field(default=2, metadata={"help": "LSTM layers"})
    dropout: float = 0.25
    conv_channels: int = 96  # strided convolution before the LSTM; 0: none
    frame_stride: int = 2  # the convolution halves the frame rate: the LSTM, sequential on a CPU,
    # runs half as many steps (measured: about 1.8x fewer multiply-adds per clip)
    conv_kernel: int = 5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)

    def check(self) -> None:
        """Raise ValueError, naming the setting first, unless each setting is in its usable range. Sizes
        have no upper bound here: a model file's stored tensors bound them (modelfile.py)."""
        for name in ("n_features", "n_classes", "hidden_size", "num_layers", "conv_kernel", "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {getattr(self, name)}")
        if self.conv_channels < 0:
            raise ValueError(f"conv_channels must be >= 0 (0: no convolution), not {self.conv_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be at least 0 and below 1, not {self.dropout:g}")
        if self.frame_stride > self.conv_kernel:  # the stride would jump over frames no kernel position covers
            raise ValueError(f"frame_stride {self.frame_stride} must not exceed conv_kernel {self.conv_kernel}")


class BiLstmClassifier(nn.Module):
    """MFCC (batch, n_features, frames) -> logits (batch, n_classes)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # per-coefficient statistics of the training features, stored in the model file with the weights
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
        lstm_input = config.n_features
        self.conv = None
        if config.conv_channels:
            self.conv = nn.Sequential(
                nn.Conv1d(config.n_features, config.conv_channels, config.conv_kernel,
                          stride=config.frame_stride, padding=config.conv_kernel // 2),
                nn.BatchNorm1d(config.conv_channels),
                nn.GELU(),
            )
            lstm_input = config.conv_channels
        self.lstm = nn.LSTM(
            input_size=lstm_input,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        width = 2 * config.hidden_size
        self.attention = nn.Sequential(nn.Linear(width, width // 2), nn.Tanh(), nn.Linear(width // 2, 1))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, config.n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean[:, None]) / self.feature_std[:, None]  # (B, F, T)
        if self.conv is not None:
            x = self.conv(x)  # (B, C, T / stride)
        states, _ = self.lstm(x.transpose(1, 2))  # (B, T', 2H)
        weights = torch.softmax(self.attention(states), dim=1)  # (B, T, 1): which frames hold the word
        pooled = (weights * states).sum(dim=1)  # (B, 2H)
        return self.head(pooled)  # (B, C)

    def set_feature_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-3))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_clip(config: ModelConfig, n_frames: int) -> int:
    """Floating-point operations (a multiply-add counts as two) for one clip of `n_frames` frames.

    Counts the matrix products, which dominate: LSTM gates, attention and head; not the
    elementwise gate nonlinearities.
    """
    hidden, width = config.hidden_size, 2 * config.hidden_size
    macs = 0
    input_size = config.n_features
    if config.conv_channels:
        n_frames = (n_frames + 2 * (config.conv_kernel // 2) - config.conv_kernel) // config.frame_stride + 1
        macs += n_frames * config.conv_channels * config.n_features * config.conv_kernel
        input_size = config.conv_channels
    for _ in range(config.num_layers):
        macs += 2 * n_frames * 4 * hidden * (input_size + hidden)  # 2 directions x 4 gates
        input_size = width
    macs += n_frames * (width * (width // 2) + width // 2)  # attention scores
    macs += n_frames * width  # weighted sum
    macs += width * config.n_classes  # head
    return 2 * macs


def average_weights(states: list[dict[str, torch.Tensor]], shares: list[float]) -> dict[str, torch.Tensor]:
    """A weighted average of state dicts of one shape ("model soup"): every float tensor, batch-norm
    statistics included; integer tensors (batch-norm step counters) from the first state."""
    return {name: sum(share * state[name] for share, state in zip(shares, states)) if tensor.is_floating_point()
            else tensor for name, tensor in states[0].items()}
