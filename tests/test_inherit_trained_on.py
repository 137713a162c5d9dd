"""training/inherit_trained_on.py: a fine-tune's metadata names its start's training data too (the model
card lists the synthetic voices, and their licences, from it), and the weights are left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from test_average_models import _tiny_model

from speech_app.modelfile import load_model

SCRIPT = Path(__file__).resolve().parent.parent / "training" / "inherit_trained_on.py"


def test_the_fine_tune_lists_its_own_data_then_the_starts_and_keeps_its_weights(tmp_path):
    start = _tiny_model(tmp_path / "start.safetensors", seed=0)
    tuned = _tiny_model(tmp_path / "tuned.safetensors", seed=1)
    before = load_model(tuned)
    weights_before, metrics_before = before.model.state_dict(), before.info["metrics"]
    result = subprocess.run([sys.executable, str(SCRIPT), str(start), str(tuned)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    after = load_model(tuned)
    assert after.info["trained_on"]["data"] == ["real1", "real0"]
    assert after.info["trained_on"]["synthetic"] == ["synth1", "synth0"]
    assert after.info["fine_tuned_from"]["trained_on"]["synthetic"] == ["synth0"]
    assert after.info["metrics"] == metrics_before  # its own validation figures stay
    for name, tensor in after.model.state_dict().items():
        torch.testing.assert_close(tensor, weights_before[name])


def test_an_unreadable_start_is_one_line_naming_the_file(tmp_path):
    tuned = _tiny_model(tmp_path / "tuned.safetensors", seed=1)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    result = subprocess.run([sys.executable, str(SCRIPT), str(broken), str(tuned)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "broken.safetensors" in result.stderr and len(result.stderr.strip().splitlines()) == 1
